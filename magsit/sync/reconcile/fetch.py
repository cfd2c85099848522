"""pull: everything the report compares, read-only (GETs and state reads, nothing else).

Magento orders, invoices and credit memos created in the period (UTC bounds of the shop's local
period, ``created_at``, paged on total_count, ``fields=``); Sitoo orders whose ``orderdate`` lies
in the period (web orders magsit pushed, refund orders, POS sales), the counterparts of both that
fall outside the period, the originals of refunds, the late-arrival sweep, warehouses and stock of
the mapped warehouses and Magento sources.
"""

from __future__ import annotations

from typing import Any

from magsit.magento.search import SearchCriteria, item_fields
from magsit.runner import JobContext
from magsit.sync.orderpayload import sanitise_externalid
from magsit.sync.reconcile.figures import SITOO_GONE, additional, is_web_order
from magsit.sync.reconcile.period import Period
from magsit.sync.reconcile.snapshot import Snapshot

ORDER_ITEM_FIELDS = (
    "item_id", "parent_item_id", "sku", "qty_ordered", "base_row_total", "base_row_total_incl_tax", "base_tax_amount",
    "base_discount_amount", "base_discount_tax_compensation_amount",
)  # fmt: skip
MAGENTO_ORDER_FIELDS = (
    "entity_id", "increment_id", "created_at", "state", "status", "store_id", "base_currency_code", "base_grand_total",
    "base_tax_amount", "base_shipping_amount", "base_shipping_tax_amount", "base_shipping_incl_tax",
    "base_shipping_discount_amount", "base_discount_amount", "base_total_paid", "base_total_invoiced",
    "base_total_refunded", "payment[method]", f"items[{','.join(ORDER_ITEM_FIELDS)}]",
)  # fmt: skip
MAGENTO_INVOICE_FIELDS = ("entity_id", "increment_id", "order_id", "created_at", "state", "base_grand_total", "base_tax_amount")
MAGENTO_CREDITMEMO_FIELDS = (
    "entity_id", "increment_id", "order_id", "created_at", "state", "base_grand_total", "base_tax_amount",
    "base_shipping_incl_tax", "base_adjustment",
)  # fmt: skip
SITOO_ORDER_FIELDS = (
    "orderid", "externalid", "creditorderid", "ordertypeid", "orderstateid", "paymentstateid", "warehouseid", "registerid",
    "orderdate", "currencycode", "moneyfinal_net", "moneyfinal_vat", "moneytotal_gross_all", "moneytotal_gross_delivery",
    "checkouttypename", "additionaldata", "orderitems", "payments",
)  # fmt: skip


def fetch(ctx: JobContext, period: Period) -> Snapshot:
    config = ctx.config
    snap = Snapshot(period=period, now=ctx.started_at, externalid_prefix=config.orders.externalid_prefix)
    snap.stock_sources = dict(config.stock.sources)
    _magento_period(ctx, snap)
    _sitoo_period(ctx, snap)
    for mapping in ctx.state.mappings("order"):
        snap.mappings[str(mapping["external_id"])] = mapping
    _sitoo_counterparts(ctx, snap)
    _magento_counterparts(ctx, snap)
    _late_arrivals(ctx, snap)
    snap.warehouses = {int(w["warehouseid"]): str(w.get("name") or w["warehouseid"]) for w in ctx.sitoo.list_warehouses()}
    _stock(ctx, snap)
    return snap


def _magento_period(ctx: JobContext, snap: Snapshot) -> None:
    period = snap.period

    def in_period(*names: str) -> SearchCriteria:
        return (
            SearchCriteria()
            .where("created_at", period.magento_from, "gteq")
            .where("created_at", period.magento_to, "lt")
            .only(item_fields(*names))
        )

    # Every order of the period, sorted by the pager on entity_id (unique), stopping on total_count.
    snap.magento_orders = list(ctx.magento.search_orders(in_period(*MAGENTO_ORDER_FIELDS)))
    snap.magento_invoices = list(ctx.magento.search_invoices(in_period(*MAGENTO_INVOICE_FIELDS)))
    snap.magento_creditmemos = list(ctx.magento.search_creditmemos(in_period(*MAGENTO_CREDITMEMO_FIELDS)))
    ctx.counts["magento_orders"] = len(snap.magento_orders)


def _sitoo_period(ctx: JobContext, snap: Snapshot) -> None:
    period = snap.period
    snap.sitoo_orders = [
        o
        for o in ctx.sitoo.iter_orders(orderdate_from=period.sitoo_from, orderdate_to=period.sitoo_to, fields=SITOO_ORDER_FIELDS)
        # orderdateto's inclusiveness is not documented: the exact [from, to) cut is made here.
        if period.contains_epoch(o.get("orderdate"))
    ]
    ctx.counts["sitoo_orders"] = len(snap.sitoo_orders)


def _sitoo_counterparts(ctx: JobContext, snap: Snapshot) -> None:
    """Sitoo orders outside the period: those of this period's Magento orders, and the originals of refunds."""
    window = snap.sitoo_orders
    known = {int(o["orderid"]) for o in window}
    wanted_ids: set[int] = set()
    wanted_ext: set[str] = set()
    for order in snap.magento_orders:
        inc = str(order.get("increment_id"))
        mapping = snap.mappings.get(inc)
        if mapping and mapping.get("other_id"):
            wanted_ids.add(int(mapping["other_id"]))
        else:
            wanted_ext.add(sanitise_externalid(snap.externalid_prefix, inc))
    wanted_ids |= {int(o["creditorderid"]) for o in window if o.get("creditorderid")}
    wanted_ids -= known
    extra: list[dict[str, Any]] = []
    if wanted_ids:
        extra.extend(ctx.sitoo.get_orders(sorted(wanted_ids), fields=SITOO_ORDER_FIELDS))
    present_ext = {str(o.get("externalid")) for o in [*window, *extra] if o.get("externalid")}
    missing_ext = sorted(wanted_ext - present_ext)
    if missing_ext:
        extra.extend(ctx.sitoo.find_orders_by_externalid(missing_ext, fields=SITOO_ORDER_FIELDS))
    snap.sitoo_other_orders = [o for o in {int(o["orderid"]): o for o in extra}.values() if int(o["orderid"]) not in known]


def _magento_counterparts(ctx: JobContext, snap: Snapshot) -> None:
    """Magento orders outside the period: those of this period's Sitoo web orders and credit memos."""
    mag_known_inc = {str(o.get("increment_id")) for o in snap.magento_orders}
    mag_known_id = {int(o["entity_id"]) for o in snap.magento_orders if o.get("entity_id") is not None}
    inc_by_other = {str(m.get("other_id")): inc for inc, m in snap.mappings.items() if m.get("other_id")}
    want_inc: set[str] = set()
    for order in [*snap.sitoo_orders, *snap.sitoo_other_orders]:
        if is_web_order(order):
            inc = inc_by_other.get(str(order["orderid"])) or additional(order).get("magento-increment-id")
            if not inc:
                ext = str(order.get("externalid") or "")
                prefix = snap.externalid_prefix
                inc = ext[len(prefix):] if prefix and ext.startswith(prefix) else ext
            if inc and str(inc) not in mag_known_inc:
                want_inc.add(str(inc))
    fields = item_fields(*MAGENTO_ORDER_FIELDS)
    other: list[dict[str, Any]] = []
    if want_inc:
        other.extend(ctx.magento.orders_by("increment_id", sorted(want_inc), fields=fields))
    memo_orders = {int(m["order_id"]) for m in snap.magento_creditmemos if m.get("order_id")} - mag_known_id
    memo_orders -= {int(o["entity_id"]) for o in other if o.get("entity_id") is not None}
    if memo_orders:
        other.extend(ctx.magento.orders_by("entity_id", sorted(memo_orders), fields=fields))
    snap.magento_other_orders = other


def _late_arrivals(ctx: JobContext, snap: Snapshot) -> None:
    """Late arrivals (P11): created in Sitoo since the period's first order, dated before the period."""
    if not snap.sitoo_orders:
        return
    period = snap.period
    first = min(int(o["orderid"]) for o in snap.sitoo_orders)
    snap.sitoo_late = [
        o
        for o in ctx.sitoo.iter_orders(orderid_from=first, orderdate_to=period.sitoo_from, fields=SITOO_ORDER_FIELDS)
        if int(o.get("orderdate") or 0) < period.sitoo_from and o.get("orderstateid") not in SITOO_GONE
    ]


def _stock(ctx: JobContext, snap: Snapshot) -> None:
    if ctx.options.get("no_stock") or not snap.stock_sources:
        snap.stock_read = False
        return
    for wid in snap.stock_sources:
        for item in ctx.sitoo.iter_warehouse_items(int(wid), fields=("sku", "decimalavailable")):
            snap.sitoo_stock.append({"warehouseid": int(wid), "sku": item.get("sku"), "decimalavailable": item.get("decimalavailable")})
    snap.magento_stock = ctx.magento.source_items(source_codes=sorted(set(snap.stock_sources.values())))
