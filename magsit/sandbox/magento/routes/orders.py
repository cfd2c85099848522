"""Orders: search, items, comments, cancel (§8)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.routing import Ctx, body_object, path_int, route
from magsit.sandbox.magento.search import search

# Columns of the order grid a search may filter or sort on; any other is an SQL error (§3).
ORDER_FIELDS = {
    "entity_id", "increment_id", "state", "status", "created_at", "updated_at", "customer_email", "customer_id", "store_id",
    "customer_is_guest", "customer_firstname", "customer_lastname", "grand_total", "base_grand_total", "total_paid", "base_total_paid",
    "total_refunded", "base_total_refunded", "total_due", "quote_id", "shipping_method", "customer_group_id",
}  # fmt: skip


@route("GET", "orders", "Magento_Sales::actions_view")
def orders_list(ctx: Ctx) -> Any:
    return search(list(ctx.state.orders.values()), ctx.query, ctx.state, "entity_id", fields=ORDER_FIELDS)


@route("GET", "orders/items", "Magento_Sales::actions_view")
def order_items_list(ctx: Ctx) -> Any:
    rows = [item for order in ctx.state.orders.values() for item in order["items"]]
    return search(rows, ctx.query, ctx.state, "item_id")


@route("GET", "orders/{id}", "Magento_Sales::actions_view")
def order_get(ctx: Ctx, id: str) -> Any:  # noqa: A002 - route parameter name
    return ctx.state.order(path_int(id))


@route("GET", "orders/{id}/comments", "Magento_Sales::actions_view")
def order_comments(ctx: Ctx, id: str) -> Any:  # noqa: A002
    return search(list(ctx.state.order(path_int(id))["status_histories"]), ctx.query, ctx.state, "entity_id")


@route("POST", "orders/{id}/comments", "Magento_Sales::comment")
def order_comment_add(ctx: Ctx, id: str) -> Any:  # noqa: A002
    history = body_object(ctx, "statusHistory")
    return ctx.state.add_comment(
        path_int(id),
        str(history.get("comment") or ""),
        int(history.get("is_customer_notified") or 0),
        int(history.get("is_visible_on_front") or 0),
        history.get("status"),
    )


@route("POST", "orders/{id}/cancel", "Magento_Sales::cancel")
def order_cancel(ctx: Ctx, id: str) -> Any:  # noqa: A002
    return ctx.state.cancel_order(path_int(id))
