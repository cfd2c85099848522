"""Month-end reconciliation: Sitoo transactions vs Magento orders, record by record.

pull      — read-only: Magento orders, invoices and credit memos created in the period (UTC bounds
            of the shop's local period, ``created_at``, paged on total_count, ``fields=``); Sitoo
            orders whose ``orderdate`` lies in the period (web orders magsit pushed, refund orders,
            POS sales), the counterparts of both that fall outside the period, the originals of
            refunds, the late-arrival sweep (below), warehouses and stock of the mapped warehouses
            and Magento sources.
reconcile — a pure function ``reconcile(snapshot, settings) -> Report``: no I/O, no clock (the
            snapshot carries ``now``); every figure is a ``Decimal`` summed exactly.
run       — pull, reconcile, write the requested exports; ``JobResult.findings`` = number of
            variance rows, so the runner exits 3 when anything disagrees beyond ``tolerance``.

Offline tills (pitfalls P11, sitoo-api §9): a till that was offline uploads its sales later but
keeps the transaction ``orderdate``. Decision: a sale is booked in the period of its ``orderdate``
(what the receipt, the Z-report and the customer see) — it is never moved into the month it
arrived in. Because the query is on ``orderdate``, a late upload *is* picked up by any run after it
arrived; the grace period (``grace_days``) says when a month is considered final. To make late
arrivals visible instead of silent, the report also sweeps by id (``orderidfrom`` = the first
Sitoo order id of the period, ``orderdateto`` = period start): orders created in Sitoo during the
period but dated before it are listed under "late arrivals" — sales of an earlier month that a
report of that month run before they arrived did not contain. They are not added to this period's
totals.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from magsit.config import Config, ReconcileSettings
from magsit.errors import ConfigError
from magsit.runner import JobContext, JobResult
from magsit.state.store import now_utc

log = logging.getLogger("magsit.reconcile")

JOB = "reconcile"
CENT = Decimal("0.01")
ZERO = Decimal(0)
MAGENTO_TS = "%Y-%m-%d %H:%M:%S"

# Sitoo enums (sitoo-api §6).
SITOO_CLOSED = 10
SITOO_CANCELLED = 20
SITOO_ABANDONED = -1
# Magento states whose orders are not expected in Sitoo when they are missing there (never paid,
# or cancelled before anyone pushed them). A pushed one is still compared normally.
NOT_FOR_SITOO = frozenset({"canceled", "pending_payment", "payment_review", "new", "holded"})
MAGENTO_DONE = frozenset({"complete", "closed"})

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


# -- money -----------------------------------------------------------------------------------------
def dec(value: Any) -> Decimal:
    """Any API number (Magento JSON floats, Sitoo "123.50" strings) as an exact Decimal.

    ``str()`` first: ``Decimal(0.1)`` would carry the float's binary error into the sums.
    """
    if value is None or value == "" or isinstance(value, bool):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return ZERO


def money_sum(values: Iterable[Any]) -> Decimal:
    """Exact sum of API numbers (floats go through ``str``); never quantized on the way."""
    return sum((dec(v) for v in values), ZERO)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# -- period ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """``[start, end)`` in the shop's timezone; ``end`` is exclusive (local midnight after the last day)."""

    start: datetime
    end: datetime
    timezone: str
    label: str

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def magento_from(self) -> str:
        return self.start_utc.strftime(MAGENTO_TS)

    @property
    def magento_to(self) -> str:
        return self.end_utc.strftime(MAGENTO_TS)

    @property
    def sitoo_from(self) -> int:
        return int(self.start.timestamp())

    @property
    def sitoo_to(self) -> int:
        return int(self.end.timestamp())

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def final_at(self, grace_days: int) -> datetime:
        return self.end + timedelta(days=grace_days)

    def contains_epoch(self, epoch: Any) -> bool:
        try:
            value = int(epoch)
        except (TypeError, ValueError):
            return False
        return self.sitoo_from <= value < self.sitoo_to

    def local_date_of_epoch(self, epoch: Any) -> date | None:
        try:
            return datetime.fromtimestamp(int(epoch), ZoneInfo(self.timezone)).date()
        except (TypeError, ValueError):
            return None

    def local_date_of_magento(self, text: Any) -> date | None:
        try:
            moment = datetime.strptime(str(text)[:19], MAGENTO_TS).replace(tzinfo=UTC)
        except ValueError:
            return None
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def days(self) -> list[date]:
        out, day = [], self.start.date()
        while day <= self.last_day:
            out.append(day)
            day += timedelta(days=1)
        return out

    def describe(self, grace_days: int, now: datetime) -> dict[str, Any]:
        final_at = self.final_at(grace_days)
        return {
            "label": self.label,
            "timezone": self.timezone,
            "from": self.start.date().isoformat(),
            "to": self.last_day.isoformat(),
            "from_utc": self.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to_utc_exclusive": self.end_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "final": now >= final_at,
            "final_after": final_at.isoformat(),
            "generated_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[reconcile] timezone {name!r} is not a known IANA timezone (e.g. Europe/Stockholm)") from None


def period_for(
    settings: ReconcileSettings,
    *,
    month: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
    today: date | None = None,
) -> Period:
    """The reporting period: ``month`` (YYYY-MM), or ``date_from``..``date_to`` (both inclusive local
    dates), or by default the previous calendar month (what a cron run on the 5th wants)."""
    zone = _zone(settings.timezone)
    if month and (date_from or date_to):
        raise ConfigError("give either --month or --from/--to, not both")
    if month:
        try:
            year, mon = (int(p) for p in str(month).split("-"))
        except ValueError:
            raise ConfigError(f"--month {month!r} is not YYYY-MM (e.g. 2026-03)") from None
        if not 1 <= mon <= 12:
            raise ConfigError(f"--month {month!r}: month {mon} is out of range (01 to 12)")
        try:
            first = date(year, mon, 1)
        except ValueError:
            raise ConfigError(f"--month {month!r}: year {year} is out of range") from None
        last = date(year, mon, calendar.monthrange(year, mon)[1])
        label = f"{year:04d}-{mon:02d}"
    elif date_from or date_to:
        if not (date_from and date_to):
            raise ConfigError("--from and --to go together (dates in the shop's timezone, both inclusive)")
        try:
            first = date_from if isinstance(date_from, date) else date.fromisoformat(str(date_from))
            last = date_to if isinstance(date_to, date) else date.fromisoformat(str(date_to))
        except ValueError:
            raise ConfigError("--from/--to must be dates (YYYY-MM-DD)") from None
        if last < first:
            raise ConfigError(f"--to {last} is before --from {first}")
        label = f"{first.isoformat()}..{last.isoformat()}"
    else:
        today = today or datetime.now(zone).date()
        last = today.replace(day=1) - timedelta(days=1)
        first = last.replace(day=1)
        label = f"{first.year:04d}-{first.month:02d}"
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return Period(start, end, settings.timezone, label)


# -- snapshot --------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    period: Period
    now: datetime
    magento_orders: list[dict[str, Any]] = field(default_factory=list)  # created in the period
    magento_other_orders: list[dict[str, Any]] = field(default_factory=list)  # counterparts/refunded orders outside it
    magento_invoices: list[dict[str, Any]] = field(default_factory=list)
    magento_creditmemos: list[dict[str, Any]] = field(default_factory=list)
    sitoo_orders: list[dict[str, Any]] = field(default_factory=list)  # orderdate in the period
    sitoo_other_orders: list[dict[str, Any]] = field(default_factory=list)  # counterparts / refund originals outside it
    sitoo_late: list[dict[str, Any]] = field(default_factory=list)  # created in the period, dated before it
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)  # increment_id -> order mapping row
    warehouses: dict[int, str] = field(default_factory=dict)
    stock_sources: dict[str, str] = field(default_factory=dict)  # Sitoo warehouse id -> Magento source code
    sitoo_stock: list[dict[str, Any]] = field(default_factory=list)  # {warehouseid, sku, decimalavailable}
    magento_stock: list[dict[str, Any]] = field(default_factory=list)  # {sku, source_code, quantity}
    externalid_prefix: str = ""
    stock_read: bool = True


# -- report ----------------------------------------------------------------------------------------
VARIANCE_COLUMNS = [
    "kind", "order", "sitoo_orderid", "field", "magento", "sitoo", "difference", "magento_status", "sitoo_state", "note",
]  # fmt: skip
SECTION_COLUMNS: dict[str, list[str]] = {
    "summary": ["figure", "basis", "magento", "sitoo", "difference"],
    "variances": VARIANCE_COLUMNS,
    "stores": [
        "warehouse_id", "store", "pos_sales", "pos_sales_gross", "pos_sales_net", "pos_refunds", "pos_refunds_gross",
        "web_orders", "web_orders_gross", "web_refunds_gross", "total_gross",
    ],
    "payments": ["channel", "method", "orders", "magento", "sitoo", "difference"],
    "stock_drift": ["sku", "source", "sitoo_available", "magento_quantity", "drift"],
    "late_arrivals": ["orderid", "orderdate", "store", "kind", "gross"],
    "daily": ["date", "magento_web", "sitoo_web", "sitoo_pos"],
}  # fmt: skip
SECTION_TITLES = {
    "summary": "Summary",
    "variances": "Variances",
    "stores": "Per store",
    "payments": "Per payment method",
    "stock_drift": "Stock drift (Magento source quantity − Sitoo available)",
    "late_arrivals": "Late arrivals (dated before the period, reached Sitoo during it)",
    "daily": "Daily totals (gross)",
}


@dataclass
class Report:
    period: dict[str, Any]
    tolerance: Decimal
    summary: list[dict[str, Any]] = field(default_factory=list)
    variances: list[dict[str, Any]] = field(default_factory=list)
    stores: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    stock_drift: list[dict[str, Any]] = field(default_factory=list)
    late_arrivals: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    matched: int = 0
    notes: list[str] = field(default_factory=list)

    def sections(self) -> dict[str, list[dict[str, Any]]]:
        return {name: getattr(self, name) for name in SECTION_COLUMNS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "tolerance": self.tolerance,
            "matched_web_orders": self.matched,
            "variance_count": len(self.variances),
            "notes": self.notes,
            **self.sections(),
        }


# -- figures of one order, per side ----------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    grand_total: Decimal
    tax: Decimal
    shipping: Decimal
    discount: Decimal


def magento_figures(order: dict[str, Any]) -> Figures:
    """``base_*`` fields (accounting currency). Shipping gross; discount as the gross amount the
    customer did not pay (same rule push-orders uses, whatever "apply discount on prices" says)."""
    shipping = dec(order.get("base_shipping_incl_tax")) or (
        dec(order.get("base_shipping_amount")) + dec(order.get("base_shipping_tax_amount"))
    )
    items = [i for i in order.get("items") or [] if not i.get("parent_item_id")]
    if items and any(i.get("base_row_total_incl_tax") is not None for i in items):
        discount = ZERO
        for item in items:
            off = abs(dec(item.get("base_discount_amount")))
            if not off:
                continue
            paid = (
                dec(item.get("base_row_total"))
                + dec(item.get("base_tax_amount"))
                + dec(item.get("base_discount_tax_compensation_amount"))
                - off
            )
            discount += dec(item.get("base_row_total_incl_tax")) - paid
        discount += abs(dec(order.get("base_shipping_discount_amount")))
    else:
        discount = abs(dec(order.get("base_discount_amount")))
    return Figures(dec(order.get("base_grand_total")), dec(order.get("base_tax_amount")), shipping, discount)


def _additional(order: dict[str, Any]) -> dict[str, Any]:
    data = order.get("additionaldata")
    return data if isinstance(data, dict) else {}


def sitoo_figures(order: dict[str, Any]) -> Figures:
    """Sitoo's booked figures of a web order. Shipping is a service line tagged ``web-line=shipping``
    (push-orders ``shipping_as = "line"``), Sitoo's own delivery money, or — ``shipping_as =
    "fields"`` — only ``additionaldata.delivery-moneygross``, which Sitoo does not count in its
    totals; that amount is added here so both sides mean "what the customer paid"."""
    gross = dec(order.get("moneytotal_gross_all"))
    tax = dec(order.get("moneyfinal_vat"))
    shipping = dec(order.get("moneytotal_gross_delivery"))
    discount = ZERO
    for item in order.get("orderitems") or []:
        extra = item.get("additionaldata") if isinstance(item.get("additionaldata"), dict) else {}
        if extra.get("web-line") == "shipping":
            shipping += dec(item.get("moneyitemtotal_net")) + dec(item.get("moneyitemtotal_vat"))
        per_unit = dec(item.get("moneydiscount"))
        if per_unit:
            qty = abs(dec(item.get("quantity")))
            discount += cents(per_unit * qty * (1 + dec(item.get("vatvalue")) / 100))
    added = dec(_additional(order).get("delivery-moneygross"))
    if added and not shipping:
        rate = dec(_additional(order).get("delivery-vatvalue"))
        gross += added
        tax += added - cents(added / (1 + rate / 100)) if rate else ZERO
        shipping = added
    return Figures(gross, tax, shipping, discount)


def is_web_order(order: dict[str, Any]) -> bool:
    return (
        not order.get("registerid")
        and not order.get("creditorderid")
        and bool(order.get("externalid") or _additional(order).get("weborder") == "true")
    )


def _payment_names(order: dict[str, Any]) -> list[tuple[str, Decimal]]:
    payments = [p for p in order.get("payments") or [] if isinstance(p, dict)]
    return [(str(p.get("name") or "(unnamed)"), dec(p.get("moneyamount"))) for p in payments]


# -- the pure reconciliation -----------------------------------------------------------------------
def reconcile(snapshot: Snapshot, settings: ReconcileSettings) -> Report:
    from magsit.sync.orderpayload import sanitise_externalid

    period = snapshot.period
    tol = settings.tolerance
    report = Report(period=period.describe(settings.grace_days, snapshot.now), tolerance=tol)
    # The accounting currency the figures are in (Magento base_*, Sitoo's order currency): named on
    # the report, since finance may run several shops.
    currencies = {str(o.get("base_currency_code")) for o in snapshot.magento_orders if o.get("base_currency_code")}
    currencies |= {str(o.get("currencycode")) for o in snapshot.sitoo_orders if o.get("currencycode")}
    report.period["currency"] = ", ".join(sorted(currencies)) or None
    if not report.period["final"]:
        report.notes.append(
            f"Not final yet: offline tills may still upload sales of this period until "
            f"{report.period['final_after']} ({settings.grace_days} days grace). Run again after that to sign off."
        )

    mag_by_inc: dict[str, dict[str, Any]] = {}
    mag_by_id: dict[int, dict[str, Any]] = {}
    for order in [*snapshot.magento_other_orders, *snapshot.magento_orders]:
        mag_by_inc[str(order.get("increment_id"))] = order
        if order.get("entity_id") is not None:
            mag_by_id[int(order["entity_id"])] = order
    in_period_mag = [str(o.get("increment_id")) for o in snapshot.magento_orders]

    sitoo_by_id: dict[int, dict[str, Any]] = {}
    for order in [*snapshot.sitoo_other_orders, *snapshot.sitoo_orders]:
        if order.get("orderid") is not None:
            sitoo_by_id[int(order["orderid"])] = order
    sitoo_by_ext = {str(o["externalid"]): o for o in sitoo_by_id.values() if o.get("externalid") and is_web_order(o)}
    inc_by_sitoo: dict[int, str] = {}
    for inc, mapping in snapshot.mappings.items():
        if mapping.get("other_id"):
            with contextlib.suppress(ValueError):
                inc_by_sitoo[int(mapping["other_id"])] = inc

    def increment_of(order: dict[str, Any]) -> str:
        oid = int(order["orderid"])
        if oid in inc_by_sitoo:
            return inc_by_sitoo[oid]
        tagged = _additional(order).get("magento-increment-id")
        if tagged:
            return str(tagged)
        ext = str(order.get("externalid") or "")
        prefix = snapshot.externalid_prefix
        return ext[len(prefix):] if prefix and ext.startswith(prefix) else ext

    def counterpart(inc: str) -> dict[str, Any] | None:
        mapping = snapshot.mappings.get(inc)
        if mapping and mapping.get("other_id"):
            try:
                found = sitoo_by_id.get(int(mapping["other_id"]))
            except ValueError:
                found = None
            if found is not None:
                return found
        ext = (mapping or {}).get("data", {}).get("externalid") or sanitise_externalid(snapshot.externalid_prefix, inc)
        return sitoo_by_ext.get(str(ext))

    # Which web orders belong to this period: created in Magento in it, or dated in Sitoo in it.
    keys: list[str] = list(dict.fromkeys(in_period_mag))
    for order in snapshot.sitoo_orders:
        if is_web_order(order):
            inc = increment_of(order)
            if inc not in keys:
                keys.append(inc)

    variances: list[dict[str, Any]] = []

    def add(kind: str, inc: str, m: dict[str, Any] | None, s: dict[str, Any] | None, fld: str,
            mv: Decimal | None, sv: Decimal | None, note: str) -> None:  # fmt: skip
        variances.append(
            {
                "kind": kind,
                "order": inc,
                "sitoo_orderid": None if s is None else s.get("orderid"),
                "field": fld,
                "magento": None if mv is None else cents(mv),
                "sitoo": None if sv is None else cents(sv),
                "difference": None if mv is None or sv is None else cents(sv - mv),
                "magento_status": None if m is None else m.get("status") or m.get("state"),
                "sitoo_state": None if s is None else _state_name(s.get("orderstateid")),
                "note": note,
            }
        )

    matched_sitoo: set[int] = set()
    web_pairs: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    not_for_sitoo = 0
    for inc in keys:
        m = mag_by_inc.get(inc)
        s = counterpart(inc) if m is not None else next(
            (o for o in snapshot.sitoo_orders if is_web_order(o) and increment_of(o) == inc), None
        )
        if s is not None:
            matched_sitoo.add(int(s["orderid"]))
        web_pairs.append((inc, m, s))
        if m is not None and s is None:
            if str(m.get("state")) in NOT_FOR_SITOO:
                not_for_sitoo += 1
                continue
            mapping = snapshot.mappings.get(inc)
            note = "the web order never reached Sitoo: operations can see why in magsit's exception list"
            if mapping:
                note = (f"magsit recorded the order as {mapping.get('status')} but Sitoo has no such order: "
                        "operations can see why in magsit's exception list")  # fmt: skip
            add("missing_in_sitoo", inc, m, None, "grand_total", magento_figures(m).grand_total, None, note)
            continue
        if m is None and s is not None:
            add("missing_in_magento", inc, None, s, "grand_total", None, sitoo_figures(s).grand_total,
                "Sitoo has a web order whose Magento order does not exist (wrong externalid prefix, deleted or test order)")  # fmt: skip
            continue
        if m is None or s is None:
            continue
        report.matched += 1
        mf, sf = magento_figures(m), sitoo_figures(s)
        for fld, hint in (
            ("grand_total", "what the customer paid differs"),
            ("tax", "VAT differs: rounding per line vs per order, or a different VAT rate on the product in Sitoo"),
            ("shipping", "shipping booked differently (line vs delivery fields) or not sent"),
            ("discount", "discount differs: a web promotion not carried to Sitoo"),
        ):
            mv, sv = getattr(mf, fld), getattr(sf, fld)
            if abs(sv - mv) > tol:
                add(fld, inc, m, s, fld, mv, sv, hint)
        state, sstate = str(m.get("state")), s.get("orderstateid")
        if sstate == SITOO_CLOSED and state not in MAGENTO_DONE and state != "canceled":
            add("status_shipped", inc, m, s, "status", None, None,
                "closed (delivered/collected) in Sitoo but not complete in Magento: the shipment has not reached the web shop yet, or it failed")  # fmt: skip
        if (sstate == SITOO_CANCELLED) != (state == "canceled"):
            side = "Sitoo" if sstate == SITOO_CANCELLED else "Magento"
            add("status_cancelled", inc, m, s, "status", None, None,
                f"cancelled in {side} only: the money may be kept on one side and refunded on the other")  # fmt: skip

    # -- refunds of web orders (Magento credit memos vs Sitoo refund orders), per original order --
    mag_refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for memo in snapshot.magento_creditmemos:
        order = mag_by_id.get(int(memo.get("order_id") or 0))
        inc = str(order.get("increment_id")) if order else f"order_id {memo.get('order_id')}"
        mag_refunds[inc].append(memo)
    sitoo_refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    pos_refunds: list[dict[str, Any]] = []
    pos_sales: list[dict[str, Any]] = []
    for order in snapshot.sitoo_orders:
        state = order.get("orderstateid")
        if state in (SITOO_CANCELLED, SITOO_ABANDONED):
            continue
        original = sitoo_by_id.get(int(order.get("creditorderid") or 0)) if order.get("creditorderid") else None
        if original is not None and is_web_order(original):
            sitoo_refunds[increment_of(original)].append(order)
        elif order.get("registerid") and (order.get("creditorderid") or dec(order.get("moneytotal_gross_all")) < 0):
            pos_refunds.append(order)
        elif order.get("registerid"):
            pos_sales.append(order)
        elif order.get("creditorderid"):
            pos_refunds.append(order)  # a refund of a non-web order without a till: count it with the store
    for inc in sorted(set(mag_refunds) | set(sitoo_refunds)):
        m_sum = money_sum(r.get("base_grand_total") for r in mag_refunds.get(inc, []))
        s_sum = sum((-dec(r.get("moneytotal_gross_all")) for r in sitoo_refunds.get(inc, [])), ZERO)
        m, s = mag_by_inc.get(inc), counterpart(inc)
        memos = ", ".join(str(r.get("increment_id")) for r in mag_refunds.get(inc, []))
        refs = ", ".join(str(r.get("orderid")) for r in sitoo_refunds.get(inc, []))
        if inc in mag_refunds and inc not in sitoo_refunds:
            add("refund_only_magento", inc, m, s, "refund", m_sum, None,
                f"credit memo {memos} has no Sitoo refund order: refunded online only, or the refund has not been passed to Sitoo yet")  # fmt: skip
        elif inc in sitoo_refunds and inc not in mag_refunds:
            add("refund_only_sitoo", inc, m, s, "refund", None, s_sum,
                f"Sitoo refund order {refs} (return in store) has no Magento credit memo yet")  # fmt: skip
        elif abs(s_sum - m_sum) > tol:
            add("refund_amount", inc, m, s, "refund", m_sum, s_sum,
                f"credit memo {memos} vs Sitoo refund {refs}: shipping or an adjustment refunded on one side only")  # fmt: skip

    variances.sort(key=lambda v: (v["kind"], v["order"]))
    report.variances = variances

    # -- summary ---------------------------------------------------------------------------------
    def total(rows: Iterable[Any], pick: Any) -> Decimal:
        return money_sum(pick(r) for r in rows)

    mag_period = snapshot.magento_orders
    sitoo_web = [o for o in snapshot.sitoo_orders if is_web_order(o)]
    mag_web_gross = total(mag_period, lambda o: dec(o.get("base_grand_total")))
    sitoo_web_gross = total(sitoo_web, lambda o: sitoo_figures(o).grand_total)
    mag_tax = total(mag_period, lambda o: dec(o.get("base_tax_amount")))
    sitoo_tax = total(sitoo_web, lambda o: sitoo_figures(o).tax)
    mag_ref = total(snapshot.magento_creditmemos, lambda r: dec(r.get("base_grand_total")))
    sitoo_ref = total((r for rs in sitoo_refunds.values() for r in rs), lambda r: -dec(r.get("moneytotal_gross_all")))
    invoiced = total(snapshot.magento_invoices, lambda r: dec(r.get("base_grand_total")))
    pos_gross = total(pos_sales, lambda o: dec(o.get("moneytotal_gross_all")))
    pos_net = total(pos_sales, lambda o: dec(o.get("moneyfinal_net")))
    pos_ref = total(pos_refunds, lambda o: -dec(o.get("moneytotal_gross_all")))

    def row(figure: str, basis: str, m: Decimal | int | None, s: Decimal | int | None) -> dict[str, Any]:
        diff = None if m is None or s is None else s - m
        if isinstance(m, Decimal) or isinstance(s, Decimal):
            m = None if m is None else cents(Decimal(m))
            s = None if s is None else cents(Decimal(s))
            diff = None if diff is None else cents(Decimal(diff))
        return {"figure": figure, "basis": basis, "magento": m, "sitoo": s, "difference": diff}

    report.summary = [
        row("web orders (count)", "orders", len(mag_period), len(sitoo_web)),
        row("web orders matched", "orders", report.matched, report.matched),
        row("web orders", "gross incl. VAT and shipping", mag_web_gross, sitoo_web_gross),
        row("web orders VAT", "VAT", mag_tax, sitoo_tax),
        row("web orders", "net excl. VAT", mag_web_gross - mag_tax, sitoo_web_gross - sitoo_tax),
        row("refunds of web orders", "gross", mag_ref, sitoo_ref),
        row("invoiced in Magento", "gross", invoiced, None),
        row("POS sales", "gross", None, pos_gross),
        row("POS sales", "net excl. VAT", None, pos_net),
        row("POS refunds", "gross", None, pos_ref),
    ]
    if not_for_sitoo:
        report.notes.append(
            f"{not_for_sitoo} Magento order(s) in the period are cancelled/unpaid and were never sent to Sitoo; not variances."
        )

    # -- per store -------------------------------------------------------------------------------
    stores: dict[int, dict[str, Any]] = {}

    def store(wid: Any) -> dict[str, Any]:
        key = int(wid or 0)
        if key not in stores:
            stores[key] = {
                "warehouse_id": key or None,
                "store": snapshot.warehouses.get(key, "(no warehouse)" if not key else f"warehouse {key}"),
                "pos_sales": 0, "pos_sales_gross": ZERO, "pos_sales_net": ZERO, "pos_refunds": 0,
                "pos_refunds_gross": ZERO, "web_orders": 0, "web_orders_gross": ZERO, "web_refunds_gross": ZERO,
                "total_gross": ZERO,
            }  # fmt: skip
        return stores[key]

    for order in pos_sales:
        st = store(order.get("warehouseid"))
        st["pos_sales"] += 1
        st["pos_sales_gross"] += dec(order.get("moneytotal_gross_all"))
        st["pos_sales_net"] += dec(order.get("moneyfinal_net"))
    for order in pos_refunds:
        st = store(order.get("warehouseid"))
        st["pos_refunds"] += 1
        st["pos_refunds_gross"] += -dec(order.get("moneytotal_gross_all"))
    for order in sitoo_web:
        if order.get("orderstateid") in (SITOO_CANCELLED, SITOO_ABANDONED):
            continue
        st = store(order.get("warehouseid"))
        st["web_orders"] += 1
        st["web_orders_gross"] += sitoo_figures(order).grand_total
    for refunds in sitoo_refunds.values():
        for order in refunds:
            store(order.get("warehouseid"))["web_refunds_gross"] += -dec(order.get("moneytotal_gross_all"))
    for st in stores.values():
        st["total_gross"] = st["pos_sales_gross"] - st["pos_refunds_gross"] + st["web_orders_gross"] - st["web_refunds_gross"]
        for k, v in st.items():
            if isinstance(v, Decimal):
                st[k] = cents(v)
    report.stores = [stores[k] for k in sorted(stores)]

    # -- per payment method ----------------------------------------------------------------------
    web_by_method: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO, ZERO])
    for _inc, m, s in web_pairs:
        if m is not None:
            method = str((m.get("payment") or {}).get("method") or "(none)")
            web_by_method[method][0] += 1
            web_by_method[method][1] += dec(m.get("base_grand_total"))
        if s is not None and s.get("orderstateid") not in (SITOO_CANCELLED, SITOO_ABANDONED):
            names = _payment_names(s)
            if names:
                for name, amount in names:
                    web_by_method[name][2] += amount
            else:
                # push-orders sends no payments[] (the money was taken by the web shop); it tags the method.
                method = str(_additional(s).get("payment-method") or "(none)")
                web_by_method[method][2] += sitoo_figures(s).grand_total
    pos_by_method: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO])
    for order in [*pos_sales, *pos_refunds]:
        for name, amount in _payment_names(order):
            pos_by_method[name][0] += 1
            pos_by_method[name][1] += amount
    report.payments = [
        {"channel": "web", "method": k, "orders": v[0], "magento": cents(v[1]), "sitoo": cents(v[2]), "difference": cents(v[2] - v[1])}
        for k, v in sorted(web_by_method.items())
    ] + [
        {"channel": "pos", "method": k, "orders": v[0], "magento": None, "sitoo": cents(v[1]), "difference": None}
        for k, v in sorted(pos_by_method.items())
    ]

    # -- stock drift -----------------------------------------------------------------------------
    if snapshot.stock_read:
        sitoo_qty: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        for item in snapshot.sitoo_stock:
            source = snapshot.stock_sources.get(str(item.get("warehouseid")))
            if source is not None and item.get("sku"):
                sitoo_qty[(str(item["sku"]), source)] += dec(item.get("decimalavailable"))
        mag_qty: dict[tuple[str, str], Decimal] = {}
        for item in snapshot.magento_stock:
            if item.get("sku") and item.get("source_code") in snapshot.stock_sources.values():
                mag_qty[(str(item["sku"]), str(item["source_code"]))] = dec(item.get("quantity"))
        # Magento SKUs compare case-insensitively; key Magento's spelling onto Sitoo's where they meet.
        folded = {(sku.casefold(), src): (sku, src) for sku, src in sitoo_qty}
        drift = []
        for (sku, src), qty in mag_qty.items():
            key = folded.get((sku.casefold(), src), (sku, src))
            s_qty = sitoo_qty.get(key, ZERO)
            if qty != s_qty:
                drift.append({"sku": key[0], "source": src, "sitoo_available": s_qty, "magento_quantity": qty, "drift": qty - s_qty})
        seen = {(k[0].casefold(), k[1]) for k in mag_qty}
        for (sku, src), qty in sitoo_qty.items():
            if (sku.casefold(), src) not in seen and qty:
                drift.append({"sku": sku, "source": src, "sitoo_available": qty, "magento_quantity": None, "drift": -qty})
        drift.sort(key=lambda r: (-abs(r["drift"]), r["sku"], r["source"]))
        report.stock_drift = drift[: settings.top_drift]
        if len(drift) > settings.top_drift:
            report.notes.append(f"stock drift: {len(drift)} SKU/source pairs differ; the largest {settings.top_drift} are shown")

    # -- late arrivals ---------------------------------------------------------------------------
    for order in sorted(snapshot.sitoo_late, key=lambda o: int(o["orderid"])):
        day = period.local_date_of_epoch(order.get("orderdate"))
        kind = "web order" if is_web_order(order) else ("refund" if order.get("creditorderid") else "POS sale")
        report.late_arrivals.append(
            {
                "orderid": order.get("orderid"),
                "orderdate": day.isoformat() if day else None,
                "store": snapshot.warehouses.get(int(order.get("warehouseid") or 0), str(order.get("warehouseid") or "")),
                "kind": kind,
                "gross": cents(dec(order.get("moneytotal_gross_all"))),
            }
        )
    if report.late_arrivals:
        report.notes.append(
            f"{len(report.late_arrivals)} Sitoo order(s) dated before this period reached Sitoo during it "
            "(offline tills); they belong to the earlier period — re-run that period if it was signed off before."
        )

    # -- daily totals ----------------------------------------------------------------------------
    daily = {d: {"date": d.isoformat(), "magento_web": ZERO, "sitoo_web": ZERO, "sitoo_pos": ZERO} for d in period.days()}
    for order in mag_period:
        d = period.local_date_of_magento(order.get("created_at"))
        if d in daily:
            daily[d]["magento_web"] += dec(order.get("base_grand_total"))
    for order in sitoo_web:
        d = period.local_date_of_epoch(order.get("orderdate"))
        if d in daily:
            daily[d]["sitoo_web"] += sitoo_figures(order).grand_total
    for order in [*pos_sales, *pos_refunds]:
        d = period.local_date_of_epoch(order.get("orderdate"))
        if d in daily:
            daily[d]["sitoo_pos"] += dec(order.get("moneytotal_gross_all"))
    report.daily = [{k: cents(v) if isinstance(v, Decimal) else v for k, v in row_.items()} for row_ in daily.values()]
    return report


def _state_name(state: Any) -> str | None:
    return {0: "open", 10: "closed", 20: "cancelled", -1: "abandoned"}.get(state, None if state is None else str(state))


# -- pull ------------------------------------------------------------------------------------------
def pull(ctx: JobContext, period: Period) -> Snapshot:
    from magsit.magento.search import SearchCriteria, item_fields

    config: Config = ctx.config
    snap = Snapshot(period=period, now=now_utc(), externalid_prefix=config.orders.externalid_prefix)
    snap.stock_sources = dict(config.stock.sources)

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

    window = [
        o
        for o in ctx.sitoo.iter_orders(orderdate_from=period.sitoo_from, orderdate_to=period.sitoo_to, fields=SITOO_ORDER_FIELDS)
        # orderdateto's inclusiveness is not documented: the exact [from, to) cut is made here.
        if period.contains_epoch(o.get("orderdate"))
    ]
    snap.sitoo_orders = window
    ctx.counts["sitoo_orders"] = len(window)
    known = {int(o["orderid"]) for o in window}

    for mapping in ctx.state.mappings("order"):
        snap.mappings[str(mapping["external_id"])] = mapping

    # Counterparts outside the period: Sitoo orders of this period's Magento orders, the originals
    # of refunds, and the Magento orders of this period's Sitoo web orders and credit memos.
    from magsit.sync.orderpayload import sanitise_externalid

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

    mag_known_inc = {str(o.get("increment_id")) for o in snap.magento_orders}
    mag_known_id = {int(o["entity_id"]) for o in snap.magento_orders if o.get("entity_id") is not None}
    inc_by_other = {str(m.get("other_id")): inc for inc, m in snap.mappings.items() if m.get("other_id")}
    want_inc: set[str] = set()
    for order in [*window, *snap.sitoo_other_orders]:
        if is_web_order(order):
            inc = inc_by_other.get(str(order["orderid"])) or _additional(order).get("magento-increment-id")
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

    # Late arrivals (P11): created in Sitoo since the period's first order, dated before the period.
    if window:
        first = min(int(o["orderid"]) for o in window)
        snap.sitoo_late = [
            o
            for o in ctx.sitoo.iter_orders(orderid_from=first, orderdate_to=period.sitoo_from, fields=SITOO_ORDER_FIELDS)
            if int(o.get("orderdate") or 0) < period.sitoo_from and o.get("orderstateid") not in (SITOO_CANCELLED, SITOO_ABANDONED)
        ]

    snap.warehouses = {int(w["warehouseid"]): str(w.get("name") or w["warehouseid"]) for w in ctx.sitoo.list_warehouses()}
    if not ctx.options.get("no_stock") and snap.stock_sources:
        for wid in snap.stock_sources:
            for item in ctx.sitoo.iter_warehouse_items(int(wid), fields=("sku", "decimalavailable")):
                snap.sitoo_stock.append({"warehouseid": int(wid), "sku": item.get("sku"), "decimalavailable": item.get("decimalavailable")})
        snap.magento_stock = ctx.magento.source_items(source_codes=sorted(set(snap.stock_sources.values())))
    else:
        snap.stock_read = False
    return snap


# -- run -------------------------------------------------------------------------------------------
def period_from_options(config: Config, options: dict[str, Any]) -> Period:
    return period_for(
        config.reconcile,
        month=options.get("month"),
        date_from=options.get("from"),
        date_to=options.get("to"),
    )


def run(ctx: JobContext) -> JobResult:
    from magsit import reconcile_report

    period = period_from_options(ctx.config, ctx.options)
    snapshot = pull(ctx, period)
    report = reconcile(snapshot, ctx.config.reconcile)
    written = reconcile_report.write_exports(report, csv_dir=ctx.options.get("csv"), html_path=ctx.options.get("html"))
    summary = [
        f"period {report.period['label']} ({report.period['from']} .. {report.period['to']}, {report.period['timezone']})"
        + ("" if report.period["final"] else f" — not final until {report.period['final_after'][:10]}"),
        f"{report.matched} web orders matched, {len(report.variances)} variance(s) beyond {report.tolerance}",
        *reconcile_report.report_notes(report.as_dict()),  # the "not final" note is the line above
        *(f"wrote {path}" for path in written),
    ]
    counts = {"variances": len(report.variances), "matched": report.matched}
    return JobResult(counts=counts, summary=summary, details={"report": report.as_dict()}, findings=len(report.variances))
