"""The API calls the order flows make, in one place (thin wrappers over the two clients).

Flows call these instead of the clients directly so the flow logic reads as the sync it is, and
unit tests can replace the I/O wholesale.
"""

from __future__ import annotations

from typing import Any

from magsit.magento.search import item_fields
from magsit.runner import JobContext

SITOO_BATCH = 100  # ids per comma-separated Sitoo filter (keeps URLs short)
SITOO_ORDER_FIELDS = ("orderid", "externalid", "orderstateid", "paymentstateid", "warehouseid", "datereserved", "orderitems")


def magento_search_orders(
    ctx: JobContext, filters: list[tuple[str, str, str]], page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Page 1 of /V1/orders with these filters (one group each), sorted updated_at, entity_id ASC."""
    return ctx.magento.search_orders_page(filters, page_size)


def magento_orders_by(ctx: JobContext, field: str, values: list[str]) -> list[dict[str, Any]]:
    """Orders whose ``field`` is one of ``values`` (``in`` filter, chunked, paged on total_count)."""
    if not values:
        return []
    return ctx.magento.orders_by(field, values)


# What sync-fulfilment reads of every open pushed order in its batched read: the state (cancelled,
# closed), the edit that replaced it, and per item what is no longer to be shipped (magento-api.md
# §8: Magento ships at most qty_ordered - qty_shipped - qty_refunded - qty_canceled).
OPEN_ORDER_FIELDS = ("entity_id", "state", "relation_child_real_id",
                     "items[item_id,qty_ordered,qty_refunded,qty_canceled]")  # fmt: skip


def magento_open_orders(ctx: JobContext, entity_ids: list[str]) -> dict[int, dict[str, Any]]:
    """entity_id -> the order's ``OPEN_ORDER_FIELDS``, read in ``entity_id in (…)`` pages (not one
    call per order)."""
    if not entity_ids:
        return {}
    rows = ctx.magento.orders_by("entity_id", entity_ids, fields=item_fields(*OPEN_ORDER_FIELDS))
    return {int(row["entity_id"]): row for row in rows if row.get("entity_id") is not None}


def magento_order(ctx: JobContext, entity_id: int) -> dict[str, Any]:
    return ctx.magento.get_order(int(entity_id))


def magento_ship(ctx: JobContext, entity_id: int, body: dict[str, Any]) -> int:
    """``POST /V1/order/{id}/ship`` from a planned body (explicit items, tracks, source, notify)."""
    items = {int(i["order_item_id"]): i["qty"] for i in body["items"]}
    source = ((body.get("arguments") or {}).get("extension_attributes") or {}).get("source_code")
    comment = (body.get("comment") or {}).get("comment")
    return int(
        ctx.magento.ship(
            int(entity_id), items, body.get("tracks") or (), notify=bool(body.get("notify", True)),
            source_code=source, comment=comment,
        )
    )


def magento_cancel(ctx: JobContext, entity_id: int) -> bool:
    """True if cancelled; Magento answers 200 ``false`` when the order cannot be cancelled."""
    return ctx.magento.cancel_order(int(entity_id))


def magento_comment(ctx: JobContext, entity_id: int, comment: str) -> None:
    ctx.magento.add_order_comment(int(entity_id), comment)


def sitoo_orders_by(ctx: JobContext, field: str, values: list[str]) -> list[dict[str, Any]]:
    """Sitoo orders whose ``externalid`` or ``orderid`` is in ``values`` (comma lists, chunked by the client)."""
    values = [str(v) for v in values if v not in (None, "")]
    if not values:
        return []
    if field == "externalid":
        return ctx.sitoo.find_orders_by_externalid(values, fields=SITOO_ORDER_FIELDS)
    if field == "orderid":
        return ctx.sitoo.get_orders([int(v) for v in values], fields=SITOO_ORDER_FIELDS)
    raise ValueError(field)


def sitoo_create_order(ctx: JobContext, payload: dict[str, Any]) -> int:
    """POST one order (never resent by the client: an unknown outcome raises ApiError.outcome_unknown)."""
    return int(ctx.sitoo.create_order(payload))


def sitoo_update_order(ctx: JobContext, orderid: int, fields: dict[str, Any]) -> bool:
    """Partial PUT of one Sitoo order (``orderstateid`` 20 to cancel, a later ``datereserved``); both
    are absolute values, so repeating one after an unknown outcome changes nothing."""
    return ctx.sitoo.update_order(int(orderid), fields)


def sitoo_deliveries(ctx: JobContext, orderid: int) -> list[dict[str, Any]]:
    return ctx.sitoo.list_deliveries(int(orderid))


def sitoo_products_by_sku(ctx: JobContext, skus: list[str]) -> list[dict[str, Any]]:
    if not skus:
        return []
    return ctx.sitoo.get_products_by_skus(skus, fields=("productid", "sku", "moneyprice"))


def sitoo_users_by_emails(ctx: JobContext, emails: list[str]) -> dict[str, list[dict[str, Any]]]:
    """One lookup per address (Sitoo's ``email`` filter takes one value), run concurrently by the client."""
    return ctx.sitoo.find_users_by_email(emails, fields=("userid", "email", "namefirst", "namelast"))


def sitoo_create_users(ctx: JobContext, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Batch POST; per user ``{"ok", "userid", "error"}`` in the order sent."""
    return [
        {"ok": r.ok, "userid": None if r.value is None else str(r.value), "error": r.error}
        for r in ctx.sitoo.add_users(users)
    ]
