"""Credit memos: ``POST order/{id}/refund`` and the credit memo reads (§11)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.routing import Ctx, comment_text, document_routes, path_int, route


@route("POST", "order/{id}/refund", "Magento_Sales::creditmemo")
def order_refund(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    args = body.get("arguments") or {}
    ext = args.get("extension_attributes") or {}
    return ctx.state.refund_order(
        path_int(id),
        body.get("items"),
        args.get("shipping_amount"),
        float(args.get("adjustment_positive") or 0),
        float(args.get("adjustment_negative") or 0),
        ext.get("return_to_stock_items") or [],
        bool(body.get("notify")),
        comment_text(body),
    )


document_routes("creditmemos", "creditmemo", "creditmemos", "Magento_Sales::sales_creditmemo")
