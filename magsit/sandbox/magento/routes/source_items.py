"""MSI source items: search, batch save and delete (§6.2, §6.3)."""

from __future__ import annotations

import re
from typing import Any

from magsit.sandbox.magento.errors import ApiError
from magsit.sandbox.magento.routing import Ctx, body_object, route
from magsit.sandbox.magento.search import paginate, parse_criteria, search, select_rows


@route("GET", "inventory/source-items", "Magento_InventoryApi::source")
def source_items_list(ctx: Ctx) -> Any:
    state = ctx.state
    columns = {"sku", "source_code", "quantity", "status"}
    crit = parse_criteria(ctx.query)
    used = {f["field"] for g in crit.groups for f in g} | {s["field"] for s in crit.sort_orders}
    if not used <= {"sku", "source_code"}:
        rows = [dict(i) for i in state.source_items.values()]
        return search(rows, ctx.query, state, "sku", fields=columns)
    # Filters and sorts on sku/source_code only: their order changes only when items come or go, so
    # the selection is kept between page reads (same answers, without re-sorting every call).
    items = state.source_items
    signature = (getattr(items, "version", None), id(items), repr(crit.groups), repr(crit.sort_orders))
    if getattr(items, "version", None) is None or state.source_item_order is None or state.source_item_order[0] != signature:
        light = [{"sku": i["sku"], "source_code": i["source_code"], "_key": k} for k, i in items.items()]
        keys = [r["_key"] for r in select_rows(light, crit, "sku", columns)]
        state.source_item_order = (signature, keys)
    page, total = paginate(state.source_item_order[1], crit, state)
    return {"items": [dict(items[k]) for k in page], "search_criteria": crit.echo(), "total_count": total}


def _source_item_errors(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The MSI source item validators (Inventory/etc/di.xml, §6.3)."""
    errors = []
    sku = item.get("sku")
    if sku is None or str(sku).strip() == "":
        errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "sku"}})
    elif str(sku) != str(sku).strip():
        errors.append({"message": '"%field" can not contain leading or trailing spaces.', "parameters": {"field": "sku"}})
    code = item.get("source_code")
    if code is None or str(code).strip() == "":
        errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "source_code"}})
    elif re.search(r"\s", str(code)):
        errors.append({"message": '"%field" can not contain whitespaces.', "parameters": {"field": "source_code"}})
    if not _numeric(item.get("quantity")):
        errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}})
    status = item.get("status")
    if not _numeric(status):
        errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "status"}})
    elif int(float(status)) not in (0, 1):
        errors.append({"message": '"%field" should a known status.', "parameters": {"field": "status"}})
    return errors


def _numeric(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _render(message: str, parameters: dict[str, Any] | list[Any]) -> str:
    if isinstance(parameters, dict):
        for key in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{key}", str(parameters[key]))
    else:
        for i, value in enumerate(parameters, 1):
            message = message.replace(f"%{i}", str(value))
    return message


@route("POST", "inventory/source-items", "Magento_InventoryApi::stock_source_item_assign")
def source_items_save(ctx: Ctx) -> Any:
    state = ctx.state
    items = body_object(ctx, "sourceItems")
    if not items:
        raise ApiError(400, "Input data is empty")
    # All items are validated first; one invalid item fails the whole batch (§6.3).
    errors = [e for item in items for e in _source_item_errors(item)]
    if errors:
        first = _render(errors[0]["message"], errors[0]["parameters"])
        raise ApiError(400, f"Validation Failed: {first}", errors=errors)
    # Unknown source code = FK violation of the multi-row insert -> nothing saved.
    if any(str(i["source_code"]) not in state.sources for i in items):
        raise ApiError(400, "Could not save Source Item")
    for item in items:
        # No product check: unknown SKUs are stored as orphans (§6.3).
        state.set_source_item(str(item["sku"]), str(item["source_code"]), float(item["quantity"]), int(float(item["status"])))
    return []


@route("POST", "inventory/source-items-delete", "Magento_InventoryApi::source_item_delete")
def source_items_delete(ctx: Ctx) -> Any:
    items = body_object(ctx, "sourceItems")
    if not items:
        raise ApiError(400, "Input data is empty")
    for item in items:
        ctx.state.source_items.pop((str(item.get("source_code")), str(item.get("sku", "")).lower()), None)
    return []
