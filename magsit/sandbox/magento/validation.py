"""Request body checks: types, unknown keys and the Web API input limits (§4, §5.1)."""

from __future__ import annotations

import json
from typing import Any

from magsit.sandbox.magento.errors import BAD_TYPE, ApiError, masked_error
from magsit.sandbox.magento.schemas import BODY_DEFS

_PHP_TYPES = {"s": "string", "i": "int", "n": "float", "b": "bool"}


def php_interface(defname: str) -> str:
    """PHP interface named in `Maximum items of type "%type"` (§5.1), e.g. for source items
    ``\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface``."""
    if defname == "framework-attribute":
        return "\\Magento\\Framework\\Api\\AttributeInterface"
    module, _, rest = defname.partition("-data-")
    camel = "".join(p.capitalize() for p in module.split("-"))
    name = "".join(p.capitalize() for p in rest.split("-"))
    return f"\\Magento\\{camel}\\Api\\Data\\{name}Interface"


def _check_scalar(value: Any, code: str) -> None:
    if value is None or code == "*":
        return
    ok = True
    if code in ("i", "n"):
        if isinstance(value, (bool, dict | list)):
            ok = False
        elif isinstance(value, str):
            try:
                float(value)
            except ValueError:
                ok = False
    elif code == "b":
        ok = isinstance(value, bool) or value in (0, 1, "0", "1", "true", "false", "")
    elif code == "s":
        ok = not isinstance(value, dict | list)
    if not ok:
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        raise ApiError(400, BAD_TYPE, {"value": shown, "type": _PHP_TYPES.get(code, code)})


def validate_body(value: Any, code: str, limit: int | None) -> None:
    """Type-check ``value`` against a type code; unknown keys -> masked 500, bad scalars -> 400,
    arrays of objects longer than ``limit`` -> 400 (input limits on, §5.1)."""
    if code.startswith("["):
        if value is None:
            return
        if not isinstance(value, list):
            raise ApiError(400, BAD_TYPE, {"value": str(value), "type": _PHP_TYPES.get(code[1:], code[1:]) + "[]"})
        inner = code[1:]
        if inner.startswith("@") and limit is not None and len(value) > limit:
            raise ApiError(400, 'Maximum items of type "%type" is %max', {"type": php_interface(inner[1:]), "max": limit})
        for element in value:
            validate_body(element, inner, limit)
        return
    if code.startswith("@"):
        if value is None:
            return
        if not isinstance(value, dict):
            raise ApiError(400, BAD_TYPE, {"value": str(value), "type": php_interface(code[1:])})
        validate_object(value, BODY_DEFS[code[1:]], limit)
        return
    _check_scalar(value, code)


def validate_object(value: dict[str, Any], props: dict[str, str], limit: int | None) -> None:
    for key, item in value.items():
        if key not in props:
            raise masked_error()
        validate_body(item, props[key], limit)
