"""pull: everything the audit compares, read-only.

Products, sources/warehouses, source items and warehouse items of the mapped warehouses, recent
orders on both sides (plus one batched externalid lookup in Sitoo and one batched increment-id
lookup in Magento), customers, the state file's order/customer mappings, and the credit memos
magsit made for store returns with shipping. No POST/PUT/DELETE (POST-reads neither).
"""

from __future__ import annotations

from datetime import UTC, timedelta

from magsit.magento.search import SearchCriteria, in_group, item_fields
from magsit.runner import JobContext
from magsit.sync.audit.normalise import MAGENTO_TIME, decimal_or_none
from magsit.sync.audit.snapshot import AuditSnapshot, externalid_for, increment_id_of, is_web_order
from magsit.sync.inflight import in_flight_by_source
from magsit.sync.stockplan import load_overrides

MAGENTO_PRODUCT_FIELDS = ("id", "sku", "price", "status", "type_id", "extension_attributes[website_ids]", "custom_attributes")
SITOO_PRODUCT_FIELDS = ("productid", "sku", "title", "moneyprice", "vatid", "vatvalue", "active", "activepos")
SITOO_ORDER_FIELDS = ("orderid", "externalid", "registerid", "creditorderid", "orderstateid", "orderdate")


def fetch(ctx: JobContext) -> AuditSnapshot:
    snap = AuditSnapshot(now=ctx.started_at.astimezone(UTC))
    _catalogues(ctx, snap)
    snap.order_mappings = ctx.state.mappings("order")
    snap.customer_mappings = ctx.state.mappings("customer")
    snap.in_flight = in_flight_by_source(snap.order_mappings, {str(k): v for k, v in ctx.config.stock.sources.items()})
    snap.stock_overrides = load_overrides(ctx.config.stock.overrides_csv)
    _orders(ctx, snap)
    _customers(ctx, snap)
    _refund_memos(ctx, snap)
    return snap


def _catalogues(ctx: JobContext, snap: AuditSnapshot) -> None:
    """Products, sources and warehouses of both sides; stock of the mapped warehouses."""
    magento, sitoo = ctx.magento, ctx.sitoo
    mapping = {str(k): v for k, v in ctx.config.stock.sources.items()}
    snap.magento_products = list(magento.search_products(SearchCriteria().only(item_fields(*MAGENTO_PRODUCT_FIELDS))))
    snap.sitoo_products = list(sitoo.iter_products(include_inactive=True, fields=SITOO_PRODUCT_FIELDS))
    snap.magento_sources = magento.list_sources()
    snap.sitoo_warehouses = sitoo.list_warehouses()
    snap.source_items = magento.search_source_items()
    known = {str(w.get("warehouseid")) for w in snap.sitoo_warehouses}
    for warehouse in sorted(mapping):
        if warehouse in known:
            items = list(sitoo.iter_warehouse_items(int(warehouse), fields=("sku", "decimalavailable", "decimalreserved")))
            snap.warehouse_items[warehouse] = {str(i.get("sku")): i.get("decimalavailable") for i in items}
            reserved = snap.warehouse_reserved = snap.warehouse_reserved or {}
            reserved[warehouse] = {str(i.get("sku")): i.get("decimalreserved") for i in items}


def _orders(ctx: JobContext, snap: AuditSnapshot) -> None:
    config, magento, sitoo, now = ctx.config, ctx.magento, ctx.sitoo, snap.now
    # Orders: pushable Magento orders of the window, then one batched externalid lookup in Sitoo.
    window_start = now - timedelta(days=config.audit.order_window_days)
    cutoff = now - timedelta(minutes=config.audit.order_age_minutes)
    if config.orders.statuses:
        criteria = (
            SearchCriteria()
            .any_of(*in_group("status", list(config.orders.statuses)))
            .where("created_at", window_start.strftime(MAGENTO_TIME), "gteq")
            .where("created_at", cutoff.strftime(MAGENTO_TIME), "lteq")
            .only(item_fields("entity_id", "increment_id", "status", "created_at"))
        )
        snap.magento_orders = list(magento.search_orders(criteria))
    externalids = [externalid_for(config, str(o.get("increment_id"))) for o in snap.magento_orders if o.get("increment_id")]
    if externalids:
        found = sitoo.find_orders_by_externalid(externalids, fields=("orderid", "externalid"))
        snap.sitoo_externalids = {str(o.get("externalid")) for o in found if o.get("externalid")}

    # Sitoo web orders of the window and the state's order mappings: one batched lookup per side.
    snap.sitoo_web_orders = [
        o for o in sitoo.iter_orders(orderdate_from=int(window_start.timestamp()), fields=SITOO_ORDER_FIELDS) if is_web_order(o)
    ]
    by_orderid = {str(m["other_id"]): str(m["external_id"]) for m in snap.order_mappings if m.get("other_id")}
    candidates = {i for o in snap.sitoo_web_orders if (i := increment_id_of(config, o, by_orderid))}
    candidates |= {str(m["external_id"]) for m in snap.order_mappings if m.get("other_id")}
    if candidates:
        rows = magento.orders_by("increment_id", sorted(candidates), fields=item_fields("entity_id", "increment_id"))
        snap.magento_increment_ids = {str(o.get("increment_id")) for o in rows}
    orderids = sorted({int(m["other_id"]) for m in snap.order_mappings if str(m.get("other_id") or "").isdigit()})
    if orderids:
        snap.sitoo_orderids = {int(o["orderid"]) for o in sitoo.get_orders(orderids, fields=("orderid",)) if o.get("orderid") is not None}


def _customers(ctx: JobContext, snap: AuditSnapshot) -> None:
    snap.magento_customers = list(
        ctx.magento.search_customers(
            SearchCriteria().where("website_id", ctx.config.magento.website_id).only(item_fields("id", "email", "website_id"))
        )
    )
    snap.sitoo_users = list(ctx.sitoo.iter_users(fields=("userid", "email", "role")))


def _refund_memos(ctx: JobContext, snap: AuditSnapshot) -> None:
    """Credit memos magsit made for store returns with shipping: a handful, one read each."""
    for refund in ctx.state.mappings("refund", status="done"):
        data = refund["data"]
        if data.get("origin") == "sitoo" and str(refund.get("other_id") or "").isdigit() and decimal_or_none(data.get("shipping_amount")):
            snap.refund_memos.append((data, ctx.magento.get_creditmemo(int(refund["other_id"]))))
