"""Invoices: ``POST order/{id}/invoice`` and the invoice reads (§10)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.routing import Ctx, comment_text, document_routes, path_int, route


@route("POST", "order/{id}/invoice", "Magento_Sales::invoice")
def order_invoice(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    return ctx.state.invoice_order(path_int(id), body.get("items"), bool(body.get("capture", True)), bool(body.get("notify")), comment_text(body))


document_routes("invoices", "invoices", "invoices", "Magento_Sales::sales_invoice")
