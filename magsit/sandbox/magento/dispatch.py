"""One REST request: raw-URI routing, store code, auth, body checks, handler, ``fields=`` (§2, §13)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from magsit.sandbox.magento.auth import authenticate
from magsit.sandbox.magento.errors import BAD_TYPE, NO_ROUTE, NOT_AUTHORIZED, ApiError
from magsit.sandbox.magento.fields import parse_fields, project
from magsit.sandbox.magento.routes import (  # noqa: F401 - importing a route module registers its handlers
    creditmemos,
    customers,
    invoices,
    orders,
    products,
    shipments,
    source_items,
    sources,
    store,
)
from magsit.sandbox.magento.routing import ROUTES, Ctx
from magsit.sandbox.magento.schemas import BODIES
from magsit.sandbox.magento.state import MagentoState
from magsit.sandbox.magento.validation import validate_object


def raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The request target as sent (werkzeug's server keeps it in REQUEST_URI / RAW_URI)."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not raw:
        from urllib.parse import quote

        raw = quote(environ.get("PATH_INFO", "")) + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
    if "://" in raw:
        parts = urlsplit(raw)
        raw = parts.path + ("?" + parts.query if parts.query else "")
    path, _, query = raw.partition("?")
    return path, query


def handle_rest(state: MagentoState, environ: dict[str, Any], raw_body: bytes) -> tuple[int, Any]:
    path, query = raw_target(environ)
    segments = path.split("/")[1:]
    if len(segments) < 2 or segments[0] != "rest":
        raise ApiError(404, NO_ROUTE)
    # PathProcessor: a known store code or "all" selects the store, anything else stays part of
    # the route and the default store is used (§2).
    if segments[1] == "all":
        store, rest = "all", segments[2:]
    elif segments[1] in state.store_codes:
        store, rest = segments[1], segments[2:]
    else:
        store, rest = "default", segments[1:]
    if not rest or rest[0] != "V1":
        raise ApiError(404, NO_ROUTE)
    # Route::match splits on "/" first, then urldecode()s each segment: %2F stays inside, "+" = space.
    decoded = [unquote_plus(s) for s in rest[1:]]
    method = environ.get("REQUEST_METHOD", "GET").upper()
    for candidate in ROUTES:
        if candidate.method != method:
            continue
        params = candidate.match(decoded)
        if params is not None:
            break
    else:
        raise ApiError(404, NO_ROUTE)
    if not authenticate(state, environ, path, query) and not candidate.anonymous:
        raise ApiError(401, NOT_AUTHORIZED, {"resources": candidate.acl})
    body: Any = None
    if raw_body.strip():
        try:
            body = json.loads(raw_body)
        except ValueError:
            raise ApiError(400, "Decoding error.") from None
    spec = BODIES.get((method, candidate.pattern))
    if spec is not None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, BAD_TYPE, {"value": str(body)[:80], "type": "object"})
        validate_object(body, spec, state.list_limit if state.input_limits else None)
    pairs = parse_qsl(query, keep_blank_values=True)
    ctx = Ctx(state, store, method, body, pairs)
    result = candidate.handler(ctx, **params)
    fields = next((v for k, v in pairs if k == "fields"), None)
    if fields:  # project first: only what is sent is encoded (project shares, never changes, values)
        result = project(result, parse_fields(fields))
    return 200, result  # may share the state's objects: the caller encodes it before releasing the lock
