"""Request conformance checks against the published Magento and Sitoo schemas.

Used by the sandbox emulators on every request they receive (violations are counted; the e2e suite
asserts none) and by the client conformance tests. The schema files are reference data outside the
repo (``shared/schemas`` beside the clone, see magento-api.md §15 and sitoo-api.md §12); they are
located at runtime and never copied in.

A checker is ``checker(method, raw_path, query_pairs, json_body) -> list[str]`` (``RequestChecker``
in ``common.py``); an empty list means the request conforms.

Path matching works on the raw (still percent-encoded) path split on ``/`` before decoding, so a
SKU ``A/B`` sent as ``A%2FB`` is one segment, exactly as Magento's router sees it. Templates are
compiled once into a segment trie (literal children tried before parameter children, so
``/V1/orders/items`` wins over ``/V1/orders/{id}``); that is one dict lookup per segment instead of
a scan over ~470 regexes. Validators are built lazily and cached per (template, method).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from jsonschema import Draft4Validator

from magsit.sandbox.common import RequestChecker

__all__ = [
    "MAGENTO_SCHEMA_FILE",
    "SITOO_SCHEMA_FILE",
    "MagentoSchema",
    "SitooSchema",
    "find_schemas_dir",
    "magento_checker",
    "sitoo_checker",
]

MAGENTO_SCHEMA_FILE = Path("magento") / "admin-schema-2.4.7.json"
SITOO_SCHEMA_FILE = Path("sitoo") / "sitoo-v2-openapi.json"

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_BODY_ERRORS = 3


# --------------------------------------------------------------------------------------------------
# Locating the schema directory


def _looks_like_schemas_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "magento").is_dir() or (path / "sitoo").is_dir())


def find_schemas_dir(start: Path | None = None) -> Path | None:
    """Return the ``shared/schemas`` directory, or None when it is not around.

    ``MAGSIT_SCHEMAS_DIR`` wins when it names an existing directory. Otherwise walk up from
    ``start`` (default: cwd) and then from this file's directory, looking for ``shared/schemas`` in
    each ancestor; checking every ancestor also covers ``../shared/schemas`` (the local layout is
    /work/main beside /work/shared; CI clones into some folder with ``shared/`` next to it).
    """
    env = os.environ.get("MAGSIT_SCHEMAS_DIR")
    if env:
        candidate = Path(env).expanduser()
        if candidate.is_dir():
            return candidate.resolve()
        # A stale or mistyped override falls through to the search rather than disabling checks.
    starts = [Path.cwd() if start is None else Path(start), Path(__file__).resolve().parent]
    seen: set[Path] = set()
    for base in starts:
        base = base.resolve()
        for directory in (base, *base.parents):
            if directory in seen:
                continue
            seen.add(directory)
            candidate = directory / "shared" / "schemas"
            if _looks_like_schemas_dir(candidate):
                return candidate
    return None


# --------------------------------------------------------------------------------------------------
# Path templates


_PARAM = re.compile(r"\{[^/{}]+\}")


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    # Segments containing a parameter: ``{sku}`` or Sitoo's ``{siteid}.json``. Kept sorted so the
    # pattern with the most literal characters is tried first (``{id}.json`` before ``{id}``).
    patterns: list[tuple[re.Pattern[str], int, _Node]] = field(default_factory=list)
    # Several templates can share one shape (``/V1/orders/{id}`` GET and ``/V1/orders/{parent_id}``
    # PUT; ``/V1/invoices`` and ``/V1/invoices/``): keep them all, methods are resolved per template.
    templates: list[str] = field(default_factory=list)


class _Router:
    """Segment trie over path templates; a parameter matches exactly one raw segment."""

    def __init__(self, templates: Iterable[str]) -> None:
        self.root = _Node()
        for template in templates:
            self._add(template)

    def _add(self, template: str) -> None:
        node = self.root
        for segment in template.strip("/").split("/"):
            if "{" not in segment:
                node = node.literal.setdefault(segment, _Node())
                continue
            regex = re.compile(
                "".join(
                    "[^/]+" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^/{}]+\})", segment)
                    if part
                )
                + r"\Z"
            )
            for pattern, _, child in node.patterns:
                if pattern.pattern == regex.pattern:
                    node = child
                    break
            else:
                child = _Node()
                node.patterns.append((regex, len(_PARAM.sub("", segment)), child))
                node.patterns.sort(key=lambda item: -item[1])
                node = child
        node.templates.append(template)

    def match(self, path: str) -> list[str]:
        """All templates matching ``path``, most specific (leftmost literal) first."""
        segments = path.strip("/").split("/") if path.strip("/") else []
        return list(self._walk(self.root, segments, 0))

    def _walk(self, node: _Node, segments: list[str], index: int) -> Iterator[str]:
        if index == len(segments):
            yield from node.templates
            return
        segment = segments[index]
        if not segment:  # '//' or a trailing '/': no template has an empty segment
            return
        child = node.literal.get(segment)
        if child is None and "%" in segment:
            # A literal spelt with escapes (e.g. %56 for V) still names the literal; '%2F' decodes to
            # a '/' which no literal segment contains, so it cannot false-match here.
            child = node.literal.get(unquote(segment))
        if child is not None:
            yield from self._walk(child, segments, index + 1)
        for pattern, _, sub in node.patterns:
            if pattern.match(segment):
                yield from self._walk(sub, segments, index + 1)


def _resolve(
    router: _Router, methods: dict[str, frozenset[str]], method: str, path: str
) -> tuple[str | None, str | None]:
    """Pick the template for (method, path) -> (template, violation).

    Like Magento's router, the route table is per method: a path matching a literal template that
    lacks the method still reaches a parameterised template that has it.
    """
    candidates = router.match(path)
    if not candidates:
        return None, "no such path"
    for template in candidates:
        if method in methods[template]:
            return template, None
    best = candidates[0]
    allowed = ", ".join(sorted(m.upper() for m in methods[best]))
    return None, f"method {method.upper()} not allowed on {best} (allowed: {allowed})"


# --------------------------------------------------------------------------------------------------
# Query and body helpers

_KEY_PART = re.compile(r"([^\[\]]+)|\[([^\]]*)\]")
_SNAKE = re.compile(r"_([a-zA-Z0-9])")
_INT = re.compile(r"-?\d+\Z")


@functools.lru_cache(maxsize=4096)
def _normalise_magento_key(key: str) -> str:
    """``searchCriteria[filter_groups][3][filters][0][condition_type]`` ->
    ``searchCriteria[filterGroups][N][filters][N][conditionType]``.

    Magento runs every input key through ``SimpleDataObjectConverter::snakeCaseToUpperCamelCase``
    (magento-api.md §3), so snake_case and camelCase spellings are the same parameter; numeric
    indexes are wildcards because the schema declares only index 0.
    """
    out: list[str] = []
    for match in _KEY_PART.finditer(key):
        head, part = match.group(1), match.group(2)
        text = head if head is not None else part
        text = "N" if text.isdigit() else _SNAKE.sub(lambda m: m.group(1).upper(), text)
        out.append(text if head is not None and not out else f"[{text}]")
    return "".join(out)


def _int_violation(value: str, param_type: str | None, item_type: str | None) -> bool:
    """True when a query value cannot be the declared integer (or comma-separated integer list)."""
    if param_type == "integer":
        return not _INT.match(value.strip())
    if param_type == "array" and item_type == "integer":
        return any(not _INT.match(part.strip()) for part in value.split(",") if part.strip())
    return False


def _error_path(error: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _body_errors(validator: Draft4Validator, body: Any, prefix: str) -> list[str]:
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    out = [f"{prefix}: body{_error_path(e)}: {e.message}" for e in errors[:_MAX_BODY_ERRORS]]
    if len(errors) > _MAX_BODY_ERRORS:
        out.append(f"{prefix}: … and {len(errors) - _MAX_BODY_ERRORS} more body errors")
    return out


# --------------------------------------------------------------------------------------------------
# What both schemas share: routing, the compiled-operation cache, the request check


@dataclass(frozen=True)
class _Op:
    """One operation compiled for checks."""

    query: dict[str, tuple[str | None, str | None]]  # (normalised) name -> (type, item type)
    body_validator: Draft4Validator | None
    body_required: bool
    # Sitoo batch (array) bodies also take a single item: POST products/users with one object
    # returns its id (sitoo-api.md §2.3; AKL's single-object users POST). A separate validator
    # rather than an anyOf keeps the error messages specific.
    item_validator: Draft4Validator | None = None


class _Schema:
    """An API description compiled for request checks: ``check()`` is the ``RequestChecker``."""

    _PREFIX: re.Pattern[str]  # the API's path prefix; group 1 is the path the templates describe
    _FOREIGN: str  # how a path outside the prefix is described

    def __init__(self, spec: dict[str, Any]) -> None:
        self._paths: dict[str, dict[str, Any]] = spec["paths"]
        self._methods = {
            template: frozenset(m for m in ops if m in _HTTP_METHODS) for template, ops in self._paths.items()
        }
        self._router = _Router(self._paths)
        self._ops: dict[tuple[str, str], _Op] = {}

    def _compile(self, template: str, method: str) -> _Op:
        raise NotImplementedError

    def _query_key(self, key: str) -> str | None:
        """The name ``key`` is declared under (None: not checked)."""
        return key

    def _op(self, template: str, method: str) -> _Op:
        key = (template, method)
        op = self._ops.get(key)
        if op is None:
            op = self._ops[key] = self._compile(template, method)  # a racing thread builds an identical op
        return op

    def check(self, method: str, raw_path: str, query: list[tuple[str, str]], body: Any) -> list[str]:
        method_l = method.lower()
        match = self._PREFIX.match(raw_path)
        if match is None:
            return [f"{method.upper()} {raw_path}: {self._FOREIGN}"]
        template, problem = _resolve(self._router, self._methods, method_l, match.group(1))
        if template is None:
            return [f"{method.upper()} {raw_path}: {problem}"]
        op = self._op(template, method_l)
        prefix = f"{method.upper()} {template}"
        violations: list[str] = []
        for key, value in query:
            name = self._query_key(key)
            if name is None:
                continue
            declared = op.query.get(name)
            if declared is None:
                violations.append(f"{prefix}: unknown query parameter {key!r}")
            elif _int_violation(value, *declared):
                violations.append(f"{prefix}: query parameter {key!r}={value!r} is not an integer")
        if op.body_validator is None:
            # Magento merges a body into the service arguments; on an operation without a body
            # parameter anything non-empty is a client misunderstanding.
            if body not in (None, {}, []):
                violations.append(f"{prefix}: operation takes no request body")
        elif body is None:
            if op.body_required:
                violations.append(f"{prefix}: missing JSON body")
        elif isinstance(body, str):
            violations.append(f"{prefix}: body is not JSON")
        elif isinstance(body, dict) and op.item_validator is not None:
            violations.extend(_body_errors(op.item_validator, body, prefix))
        else:
            violations.extend(_body_errors(op.body_validator, body, prefix))
        return violations


@functools.lru_cache(maxsize=8)
def _load(kind: type[_Schema], path: Path) -> _Schema:
    with path.open(encoding="utf-8") as fh:
        return kind(json.load(fh))


# --------------------------------------------------------------------------------------------------
# Magento


def _close_objects(schema: Any) -> None:
    """Inject ``additionalProperties: false`` on every object schema that lists properties.

    The published schema has no additionalProperties at all, so a misspelled key (``qty`` for
    ``quantity``) would pass, while Magento answers it with a 500 (magento-api.md §15 caveat 2).
    Recurses through inline sub-schemas too; ``$ref`` targets are closed where they are defined.
    """
    if isinstance(schema, dict):
        if "properties" in schema and schema.get("type", "object") == "object":
            schema["additionalProperties"] = False
        for sub in schema.get("properties", {}).values():
            _close_objects(sub)
        if "items" in schema:
            _close_objects(schema["items"])
    elif isinstance(schema, list):
        for sub in schema:
            _close_objects(sub)


class MagentoSchema(_Schema):
    """Magento admin Swagger 2.0 schema (magento-api.md §15) compiled for request checks."""

    # /rest/<store_code>/V1/... or /rest/V1/... (no store code = default store, magento-api.md §2).
    _PREFIX = re.compile(r"/rest(?:/(?!V1(?:/|\Z))[^/]+)?(/V1(?:/.*)?)\Z")
    _FOREIGN = "not a Magento REST path (/rest[/<store>]/V1/…)"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        defs = copy.deepcopy(spec.get("definitions", {}))
        for definition in defs.values():
            _close_objects(definition)
        # framework-attribute-interface.value is PHP ``mixed`` that the generator renders as
        # "string"; Magento takes numbers and arrays there (multiselects, category_ids), so a
        # typed value must not count as a violation.
        attribute = defs.get("framework-attribute-interface", {}).get("properties", {})
        if "value" in attribute:
            attribute["value"] = {"description": attribute["value"].get("description", "")}
        self._defs = defs

    @classmethod
    def load(cls, path: Path) -> MagentoSchema:
        return cast(MagentoSchema, _load(cls, Path(path).resolve()))

    def _query_key(self, key: str) -> str | None:
        if key == "fields":  # partial responses work on every endpoint (magento-api.md §3)
            return None
        return _normalise_magento_key(key)

    def _compile(self, template: str, method: str) -> _Op:
        query: dict[str, tuple[str | None, str | None]] = {}
        validator: Draft4Validator | None = None
        body_required = False
        for param in self._paths[template][method].get("parameters", []):
            if param.get("in") == "query":
                query[_normalise_magento_key(param["name"])] = (param.get("type"), None)
            elif param.get("in") == "body":
                schema = copy.deepcopy(param["schema"])
                _close_objects(schema)
                if "properties" in schema:
                    schema["additionalProperties"] = False
                body_required = bool(schema.get("required"))
                # Refs are "#/definitions/…": hang the (closed) definitions on the body schema root.
                schema["definitions"] = self._defs
                validator = Draft4Validator(schema)
        return _Op(query, validator, body_required)


# --------------------------------------------------------------------------------------------------
# Sitoo

# Filters the official docs list but the third-party spec omits (sitoo-api.md §12).
# Values are (type, item type) as for declared parameters: the order filters are integer ids (a
# comma list like ``orderid``'s is accepted too); ``userid`` is a GUID string (§2.3, §7).
_SITOO_EXTRA_QUERY: dict[tuple[str, str], dict[str, tuple[str | None, str | None]]] = {
    ("/orders.json", "get"): {
        "receiptid": ("array", "integer"),
        "creditorderid": ("array", "integer"),
        "warehouseid": ("array", "integer"),
    },
    ("/sites/{siteid}/users.json", "get"): {"userid": ("string", None)},
}
_LOOSE_KEYWORDS = ("type", "required", "properties", "items")


def _loosen(schema: Any, *, top: bool, keep_required: bool) -> Any:
    """Reduce a Sitoo body schema to types and required, tolerant where the spec is known to be off.

    The spec is third-party and hand-written (sitoo-api.md §12), so only its structure is trusted:
    - no additionalProperties injection (it is not exhaustive; order ``additionaldata`` is open);
    - every nested value may also be null: the spec has no ``nullable`` yet the official examples
      send nulls (warehouse transaction ``"reasoncode": null``, sitoo-api.md §5);
    - ``required`` is dropped for PUT: Sitoo PUT is partial (§2.3, e.g. ``{"title": …}``, and
      ``PUT warehousebatch {"warehousebatchstate": 20}``) although the spec reuses the POST
      schema's required list;
    (A batch body also accepting a single item is handled by the caller, see ``_Op.item_validator``.)
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key in _LOOSE_KEYWORDS:
        if key not in schema:
            continue
        value = schema[key]
        if key == "properties":
            out[key] = {k: _loosen(v, top=False, keep_required=keep_required) for k, v in value.items()}
        elif key == "items":
            out[key] = _loosen(value, top=False, keep_required=keep_required)
        elif key == "required":
            if keep_required and value:
                out[key] = list(value)
        else:
            out[key] = value
    if not top and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


class SitooSchema(_Schema):
    """Third-party Sitoo v2 OpenAPI 3 spec (sitoo-api.md §12) compiled for request checks."""

    _PREFIX = re.compile(r"/v2/accounts/[^/]+(/.*)\Z")
    _FOREIGN = "not a Sitoo v2 path (/v2/accounts/{accountid}/…)"

    @classmethod
    def load(cls, path: Path) -> SitooSchema:
        return cast(SitooSchema, _load(cls, Path(path).resolve()))

    def _compile(self, template: str, method: str) -> _Op:
        item = self._paths[template]
        operation = item[method]
        query: dict[str, tuple[str | None, str | None]] = {}
        for param in [*item.get("parameters", []), *operation.get("parameters", [])]:
            if param.get("in") == "query":
                schema = param.get("schema", {})
                query[param["name"]] = (schema.get("type"), (schema.get("items") or {}).get("type"))
        for name, declared in _SITOO_EXTRA_QUERY.get((template, method), {}).items():
            query.setdefault(name, declared)
        validator: Draft4Validator | None = None
        item_validator: Draft4Validator | None = None
        body_required = False
        request_body = operation.get("requestBody")
        if request_body:
            schema = (request_body.get("content", {}).get("application/json") or {}).get("schema")
            if schema:
                loose = _loosen(schema, top=True, keep_required=method != "put")
                validator = Draft4Validator(loose)
                if loose.get("type") == "array" and isinstance(loose.get("items"), dict):
                    item = dict(loose["items"])
                    item["type"] = "object"  # the single item itself must not be null
                    item_validator = Draft4Validator(item)
                body_required = bool(request_body.get("required"))
        return _Op(query, validator, body_required, item_validator)


# --------------------------------------------------------------------------------------------------
# Checker factories


def _checker(kind: type[_Schema], file: Path, schemas_dir: Path | None) -> RequestChecker | None:
    base = schemas_dir if schemas_dir is not None else find_schemas_dir()
    if base is None or not (Path(base) / file).is_file():
        return None
    return _load(kind, (Path(base) / file).resolve()).check


def magento_checker(schemas_dir: Path | None = None) -> RequestChecker | None:
    """Checker against admin-schema-2.4.7.json, or None when the schema files are not around."""
    return _checker(MagentoSchema, MAGENTO_SCHEMA_FILE, schemas_dir)


def sitoo_checker(schemas_dir: Path | None = None) -> RequestChecker | None:
    """Checker against sitoo-v2-openapi.json, or None when the schema files are not around."""
    return _checker(SitooSchema, SITOO_SCHEMA_FILE, schemas_dir)
