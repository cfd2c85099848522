"""Shipments: ``POST order/{id}/ship`` and the shipment reads (§9)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.routing import Ctx, comment_text, document_routes, path_int, route


@route("POST", "order/{id}/ship", "Magento_Sales::ship")
def order_ship(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    args = body.get("arguments") or {}
    source = (args.get("extension_attributes") or {}).get("source_code")
    return ctx.state.ship_order(path_int(id), body.get("items"), body.get("tracks"), source, bool(body.get("notify")), comment_text(body))


document_routes("shipments", "shipment", "shipments", "Magento_Sales::shipment")
