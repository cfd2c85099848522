"""Route table of the REST layer: the handler context, path patterns and their ACL resources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from magsit.sandbox.magento.errors import BAD_TYPE, REQUIRED, ApiError, not_found_entity
from magsit.sandbox.magento.search import search
from magsit.sandbox.magento.state import MagentoState


@dataclass
class Ctx:
    state: MagentoState
    store: str  # store view code, or "all" (admin store, id 0)
    method: str
    body: Any
    query: list[tuple[str, str]]


Handler = Callable[..., Any]


@dataclass
class Route:
    method: str
    pattern: str
    parts: tuple[str, ...]
    handler: Handler
    acl: str
    anonymous: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.parts):
            return None
        params = {}
        for part, seg in zip(self.parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part != seg:
                return None
        return params


ROUTES: list[Route] = []


def route(method: str, pattern: str, acl: str, anonymous: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, tuple(pattern.split("/")), fn, acl, anonymous))
        # Literal segments win over parameters (customers/search before customers/{id}).
        ROUTES.sort(key=lambda r: sum(p.startswith("{") for p in r.parts))
        return fn

    return register


def path_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, BAD_TYPE, {"value": value, "type": "int"}) from None


def body_object(ctx: Ctx, key: str) -> dict[str, Any]:
    value = (ctx.body or {}).get(key)
    if value is None:
        raise ApiError(400, REQUIRED, {"fieldName": key})
    return value



def comment_text(body: dict[str, Any]) -> str | None:
    comment = body.get("comment") or {}
    return comment.get("comment") if isinstance(comment, dict) else None


def document_routes(plural: str, singular: str, attr: str, acl: str) -> None:
    def list_docs(ctx: Ctx) -> Any:
        return search(list(getattr(ctx.state, attr).values()), ctx.query, ctx.state, "entity_id")

    def get_doc(ctx: Ctx, id: str) -> Any:  # noqa: A002
        doc = getattr(ctx.state, attr).get(path_int(id))
        if doc is None:
            raise not_found_entity()
        return doc

    route("GET", plural, acl)(list_docs)
    route("GET", f"{singular}/{{id}}", acl)(get_doc)
