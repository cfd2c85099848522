"""audit: a read-only health check of both catalogues, the orders between them and the state file.

The most common reason web orders fail to reach the stores is product data that does not match
between Magento and Sitoo. ``magsit audit`` finds those gaps before they break an order:

pull  — reads everything it compares, read-only: products, sources/warehouses, source items and
        warehouse items of the mapped warehouses, recent orders on both sides (plus one batched
        externalid lookup in Sitoo and one batched increment-id lookup in Magento), customers,
        and the state file's order/customer mappings. No POST/PUT/DELETE (POST-reads neither).
audit — ``audit(snapshot, settings) -> list[Finding]``: pure, no I/O, property-tested.
run   — findings are the result (``JobResult.findings`` -> exit 3), not exception rows: an audit
        is a report, it does not open or resolve anyone's exceptions.

Every finding carries its kind, owner, record key, both sides' values and the fix in words. Kinds,
owners and fixes live in ``KINDS`` and are documented in docs/runbook.md ("audit findings").
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from magsit.config import Config
from magsit.errors import Owner
from magsit.runner import JobContext, JobResult
from magsit.sync.stockplan import Levels, Overrides, load_overrides, target, warehouse_terms

log = logging.getLogger("magsit.sync.audit")

JOB = "audit"
CENT = Decimal("0.01")
SELLABLE_TYPES = frozenset({"simple", "virtual"})  # configurable/bundle/grouped parents are not stock items
MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"

# kind -> (owner, what to do). The runbook's "audit findings" table says the same in more words.
KINDS: dict[str, tuple[Owner, str]] = {
    "sku_missing_in_sitoo": (
        "ecommerce",
        "Create the product in Sitoo (or the PIM feeding it) with exactly this SKU, or disable it / take it off the website in Magento.",
    ),
    "sku_missing_in_magento": (
        "ecommerce",
        "Create the product in Magento with exactly this SKU (or set [products] create_missing = true), or deactivate it in Sitoo.",
    ),
    "sku_near_miss": (
        "ecommerce",
        "Make the spellings identical on both sides (case, spaces, leading zeros, - vs _): correct the SKU in Sitoo, or in Magento if Sitoo is right.",
    ),
    "price_mismatch": (
        "ecommerce",
        "Correct the price on the wrong side: Sitoo is the price master (sync-products writes it to Magento); an active Magento special price must match the Sitoo campaign price.",
    ),
    "tax_class_mismatch": (
        "finance",
        "Set the Magento tax class to the one mapped for the Sitoo VAT group in [products].tax_classes (or fix the VAT group in Sitoo).",
    ),
    "unmapped_vat_group": (
        "finance",
        'Add "<vatid>" = <Magento tax_class_id> to [products].tax_classes.',
    ),
    "orphan_source_item": (
        "ops",
        "Delete the source item in Magento (POST /V1/inventory/source-items-delete) or create the product; MSI keeps such rows silently.",
    ),
    "unmapped_magento_source": (
        "ops",
        'Map a Sitoo warehouse to it in [stock].sources ("<warehouse id>" = "<source code>"), disable the source, or list it in [audit].ignore_sources.',
    ),
    "mapped_source_missing": (
        "ops",
        "Create the source in Magento or correct [stock].sources: sync-stock fails on an unknown source code.",
    ),
    "unmapped_sitoo_warehouse": (
        "ops",
        'Map it in [stock].sources ("<warehouse id>" = "<source code>") if it should feed the web shop, else list it in [audit].ignore_warehouses.',
    ),
    "mapped_warehouse_missing": (
        "ops",
        "Correct [stock].sources: the Sitoo warehouse id does not exist (or the API user cannot see it).",
    ),
    "stock_drift": (
        "ops",
        "Run `magsit sync-stock --sku <SKU>` (or --full); if it comes back, look for hand edits in Magento or another tool writing stock.",
    ),
    "order_not_in_sitoo": (
        "ops",
        "Check `magsit exceptions list` for the order, fix the cause, then `magsit push-orders --order <increment id>`.",
    ),
    "sitoo_order_without_magento_order": (
        "ops",
        "The Magento order was deleted (or the externalid is wrong): cancel the Sitoo order if nothing should ship, else recreate/restore the Magento order.",
    ),
    "stale_mapping": (
        "ops",
        "The state file points at a record that no longer exists; check the record, then remove or correct the mapping (see runbook: state file recovery).",
    ),
    "duplicate_customer": (
        "ecommerce",
        "Merge the customer records on that side so one e-mail has one account (case and spaces do not make a different customer).",
    ),
    "refund_shipping_tax_setting": (
        "finance",
        "Set [returns].shipping_amount_includes_tax as the message says (it must match Magento's Tax > Orders, Invoices, "
        "Credit Memos Display Settings > Display Shipping Amount), then refund the named difference by hand in Magento.",
    ),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    owner: Owner
    key: str
    message: str
    fix: str
    magento: Any = None
    sitoo: Any = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def finding(kind: str, key: str, message: str, magento: Any = None, sitoo: Any = None) -> Finding:
    owner, fix = KINDS[kind]
    return Finding(kind, owner, key, message, fix, magento, sitoo)


# -- normalisation (pure) -------------------------------------------------------------------------
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def sku_key(sku: str) -> str:
    """The spelling-insensitive form of a SKU: no whitespace, case-folded, ``_`` as ``-``, no
    leading zeros in any digit run (``" ab_007 "`` and ``"AB-7"`` meet)."""
    text = "".join(str(sku).split()).casefold().replace("_", "-")
    return _LEADING_ZEROS.sub("", text)


def email_key(email: str) -> str:
    return str(email).strip().casefold()


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def plain(number: Decimal) -> Decimal:
    """``20.000`` / ``2E+1`` -> ``20``: quantities as people write them (no exponent, no zeros)."""
    return Decimal(format(number.normalize(), "f"))


def gross(net: Decimal, vat_percent: Decimal) -> Decimal:
    return (net * (1 + vat_percent / 100)).quantize(CENT, rounding=ROUND_HALF_UP)


def custom_attribute(product: Mapping[str, Any], code: str) -> Any:
    for attribute in product.get("custom_attributes") or []:
        if isinstance(attribute, Mapping) and attribute.get("attribute_code") == code:
            return attribute.get("value")
    return None


def parse_magento_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text.strip():
        return None
    raw = text.strip()
    for fmt in (MAGENTO_TIME, "%Y-%m-%d"):
        try:
            return datetime.strptime(raw[: len("2000-01-01 00:00:00")] if fmt == MAGENTO_TIME else raw[:10], fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def active_special_price(product: Mapping[str, Any], now: datetime) -> Decimal | None:
    """The special price Magento applies now: ``special_from_date <= now``, and ``special_to_date``
    counts as the whole day (Magento compares dates, not times)."""
    price = decimal_or_none(custom_attribute(product, "special_price"))
    if price is None:
        return None
    start = parse_magento_time(custom_attribute(product, "special_from_date"))
    end = parse_magento_time(custom_attribute(product, "special_to_date"))
    if start is not None and now < start:
        return None
    if end is not None and now >= end.replace(hour=0, minute=0, second=0) + timedelta(days=1):
        return None
    return price


def sitoo_is_active(product: Mapping[str, Any], status_from: str) -> bool:
    pos, web = product.get("activepos") is not False, product.get("active") is not False
    if status_from == "active":
        return web
    if status_from == "both":
        return pos and web
    return pos


def _website_ids(product: Mapping[str, Any]) -> list[int]:
    ids = (product.get("extension_attributes") or {}).get("website_ids") or []
    out = []
    for value in ids:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


def magento_is_sellable(product: Mapping[str, Any], website_id: int) -> bool:
    try:
        enabled = int(product.get("status") or 0) == 1
    except (TypeError, ValueError):
        enabled = False
    return enabled and product.get("type_id") in SELLABLE_TYPES and website_id in _website_ids(product)


# -- the snapshot ---------------------------------------------------------------------------------
@dataclass
class AuditSnapshot:
    """Everything ``audit`` compares, as read by ``pull`` (or built by a test)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    magento_products: list[dict[str, Any]] = field(default_factory=list)
    sitoo_products: list[dict[str, Any]] = field(default_factory=list)
    magento_sources: list[dict[str, Any]] = field(default_factory=list)
    sitoo_warehouses: list[dict[str, Any]] = field(default_factory=list)
    source_items: list[dict[str, Any]] = field(default_factory=list)  # Magento MSI rows
    warehouse_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # warehouse id -> sku -> decimalavailable
    # warehouse id -> sku -> decimalreserved; None when not read (in-flight units then count as held)
    warehouse_reserved: dict[str, dict[str, Any]] | None = None
    in_flight: dict[tuple[str, str], dict[str, Decimal]] = field(default_factory=dict)  # (sku, source) -> warehouse -> units
    stock_overrides: Overrides = field(default_factory=dict)
    magento_orders: list[dict[str, Any]] = field(default_factory=list)  # pushable status, in the window
    sitoo_externalids: set[str] = field(default_factory=set)  # externalids of those found in Sitoo
    sitoo_web_orders: list[dict[str, Any]] = field(default_factory=list)  # Sitoo orders in the window
    magento_increment_ids: set[str] = field(default_factory=set)  # increment ids found in Magento by lookup
    sitoo_orderids: set[int] = field(default_factory=set)  # Sitoo order ids found by lookup
    order_mappings: list[dict[str, Any]] = field(default_factory=list)
    customer_mappings: list[dict[str, Any]] = field(default_factory=list)
    magento_customers: list[dict[str, Any]] = field(default_factory=list)
    sitoo_users: list[dict[str, Any]] = field(default_factory=list)
    # (refund mapping data, Magento credit memo) of store returns magsit refunded with shipping
    refund_memos: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


def externalid_for(config: Config, increment_id: str) -> str:
    from magsit.sync.orderpayload import sanitise_externalid

    return sanitise_externalid(config.orders.externalid_prefix, str(increment_id))


def increment_id_of(config: Config, sitoo_order: Mapping[str, Any], by_orderid: Mapping[str, str]) -> str | None:
    """The Magento increment id a Sitoo web order stands for: the state mapping's (exact, also for
    shortened ids), else the externalid without the configured prefix; None if not one of ours."""
    mapped = by_orderid.get(str(sitoo_order.get("orderid")))
    if mapped:
        return mapped
    externalid = str(sitoo_order.get("externalid") or "")
    prefix = config.orders.externalid_prefix
    if prefix:
        if not externalid.startswith(prefix):
            return None  # not pushed by magsit (another integration's order)
        externalid = externalid[len(prefix) :]
    return externalid or None


def is_web_order(order: Mapping[str, Any]) -> bool:
    """A Sitoo order magsit pushed: externalid set, no till (registerid), not a refund order."""
    return bool(order.get("externalid")) and not order.get("registerid") and not order.get("creditorderid")


# -- the audit (pure) -----------------------------------------------------------------------------
def audit(snapshot: AuditSnapshot, settings: Config) -> list[Finding]:
    """All findings, in a stable order (by kind as listed in KINDS, then record key)."""
    out: list[Finding] = []
    out += _catalogue(snapshot, settings)
    out += _sources(snapshot, settings)
    out += _stock(snapshot, settings)
    out += _orders(snapshot, settings)
    out += _customers(snapshot, settings)
    out += _refund_shipping(snapshot, settings)
    rank = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(out, key=lambda f: (rank.get(f.kind, len(rank)), f.key))


def _sku(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def near_miss_groups(magento_skus: Iterable[str], sitoo_skus: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Normalised key -> (Magento spellings, Sitoo spellings) for keys with more than one spelling."""
    groups: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for sku in magento_skus:
        groups[sku_key(sku)][0].add(sku)
    for sku in sitoo_skus:
        groups[sku_key(sku)][1].add(sku)
    out = {}
    for key, (m, s) in groups.items():
        # Any second spelling is a near miss: across the sides (an order line with one spelling
        # does not find the other product) and within one side (two products one typo apart).
        if len(m | s) > 1:
            out[key] = (sorted(m), sorted(s))
    return out


def _catalogue(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    website = config.magento.website_id
    status_from = config.products.status_from
    magento = {sku: p for p in snap.magento_products if (sku := _sku(p.get("sku")))}
    sitoo_all = {sku: p for p in snap.sitoo_products if (sku := _sku(p.get("sku")))}
    sitoo_active = {sku: p for sku, p in sitoo_all.items() if sitoo_is_active(p, status_from)}

    groups = near_miss_groups(magento, sitoo_active)
    near: set[str] = set()
    for key, (m_skus, s_skus) in sorted(groups.items()):
        near.add(key)
        spellings = " / ".join(dict.fromkeys(m_skus + s_skus))
        out.append(
            finding(
                "sku_near_miss",
                spellings,
                f"SKUs that differ only in case, spaces, leading zeros or -/_: Magento {m_skus or 'none'}, "
                f"Sitoo {s_skus or 'none'}. Order lines with one spelling do not find the other product.",
                magento=m_skus,
                sitoo=s_skus,
            )
        )

    for sku, product in sorted(magento.items()):
        if not magento_is_sellable(product, website) or sku in sitoo_all or sku_key(sku) in near:
            continue
        out.append(
            finding(
                "sku_missing_in_sitoo",
                sku,
                f"Magento sells {sku} (enabled {product.get('type_id')} product in website {website}) but Sitoo has no product "
                "with this SKU: its web orders cannot be fulfilled and it gets no stock.",
                magento={"type_id": product.get("type_id"), "status": product.get("status"), "price": product.get("price")},
            )
        )
    magento_fold = {sku.casefold() for sku in magento}
    for sku, product in sorted(sitoo_active.items()):
        if sku.casefold() in magento_fold or sku_key(sku) in near:
            continue
        out.append(
            finding(
                "sku_missing_in_magento",
                sku,
                f"Sitoo product {sku} is active but Magento has no product with this SKU: it cannot be sold online.",
                sitoo={"productid": product.get("productid"), "title": product.get("title"), "moneyprice": product.get("moneyprice")},
            )
        )

    # Prices and tax classes of the pairs that match exactly.
    tolerance = config.audit.price_tolerance
    tax_classes = {str(k): int(v) for k, v in config.products.tax_classes.items()}
    unmapped: dict[str, list[str]] = defaultdict(list)
    for sku, sp in sorted(sitoo_active.items()):
        mp = magento.get(sku)
        if mp is None or not magento_is_sellable(mp, website):
            continue
        out += _price(sku, mp, sp, snap.now, tolerance, config.products.magento_prices_include_tax)
        if tax_classes:
            vatid = sp.get("vatid")
            wanted = tax_classes.get(str(vatid))
            actual = custom_attribute(mp, "tax_class_id")
            if wanted is None:
                unmapped[str(vatid)].append(sku)
            elif str(actual) != str(wanted):
                out.append(
                    finding(
                        "tax_class_mismatch",
                        sku,
                        f"{sku}: Sitoo VAT group {vatid} ({sp.get('vatvalue')}%) maps to Magento tax class {wanted}, "
                        f"but the Magento product has tax class {actual}: the web shop charges a different VAT than the till.",
                        magento={"tax_class_id": actual},
                        sitoo={"vatid": vatid, "vatvalue": sp.get("vatvalue"), "expected_tax_class_id": wanted},
                    )
                )
    for vatid, skus in sorted(unmapped.items()):
        out.append(
            finding(
                "unmapped_vat_group",
                f"vatid {vatid}",
                f"Sitoo VAT group {vatid} is not in [products].tax_classes; {len(skus)} product(s) use it, e.g. {', '.join(skus[:5])}.",
                sitoo={"vatid": vatid, "skus": skus[:20], "count": len(skus)},
            )
        )
    return out


def _price(sku: str, mp: Mapping[str, Any], sp: Mapping[str, Any], now: datetime, tolerance: Decimal, incl_tax: bool) -> list[Finding]:
    sitoo_price = decimal_or_none(sp.get("moneyprice"))
    base = decimal_or_none(mp.get("price"))
    vat = decimal_or_none(sp.get("vatvalue"))
    if sitoo_price is None or base is None or (vat is None and not incl_tax):
        return []  # nothing comparable; sync-products reports unusable prices
    special = active_special_price(mp, now)
    effective = min(base, special) if special is not None else base
    compared = effective if incl_tax else gross(effective, vat or Decimal(0))
    if abs(compared - sitoo_price) <= tolerance:
        return []
    which = "special price" if special is not None and special <= base else "price"
    basis = "incl. VAT" if incl_tax else f"net, {vat}% VAT added"
    return [
        finding(
            "price_mismatch",
            sku,
            f"{sku}: Sitoo sells at {sitoo_price} (gross), Magento's {which} is {effective} ({basis}: {compared}); "
            f"difference {compared - sitoo_price} is above the tolerance {tolerance}.",
            magento={"price": base, "special_price": special, "compared_gross": compared},
            sitoo={"moneyprice": sitoo_price, "vatvalue": vat},
        )
    ]


def _mapped_sources(config: Config) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for warehouse, source in config.stock.sources.items():
        by_source[source].append(str(warehouse))
    return dict(by_source)


def _sources(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    mapping = {str(k): v for k, v in config.stock.sources.items()}
    codes = {str(s.get("source_code")): s for s in snap.magento_sources if s.get("source_code")}
    warehouses = {str(w.get("warehouseid")): w for w in snap.sitoo_warehouses if w.get("warehouseid") is not None}
    mapped_codes = set(mapping.values())
    ignore_sources = set(config.audit.ignore_sources)
    ignore_warehouses = {str(w) for w in config.audit.ignore_warehouses}
    for code, source in sorted(codes.items()):
        if code in mapped_codes or code in ignore_sources or source.get("enabled") is False:
            continue
        out.append(
            finding(
                "unmapped_magento_source",
                code,
                f"Magento source {code} ({source.get('name')}) is enabled but no Sitoo warehouse feeds it in [stock].sources: "
                "its quantities are never corrected by sync-stock.",
                magento={"source_code": code, "name": source.get("name"), "enabled": source.get("enabled")},
            )
        )
    for warehouse, code in sorted(mapping.items()):
        if code not in codes:
            out.append(
                finding(
                    "mapped_source_missing",
                    code,
                    f"[stock].sources maps Sitoo warehouse {warehouse} to Magento source {code}, which does not exist in Magento.",
                    sitoo={"warehouseid": warehouse},
                )
            )
        if warehouse not in warehouses:
            out.append(
                finding(
                    "mapped_warehouse_missing",
                    f"warehouse {warehouse}",
                    f"[stock].sources maps Sitoo warehouse {warehouse} to {code}, but Sitoo has no such warehouse.",
                    magento={"source_code": code},
                )
            )
    for wid, warehouse in sorted(warehouses.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if wid in mapping or wid in ignore_warehouses or warehouse.get("sellable") is False:
            continue
        out.append(
            finding(
                "unmapped_sitoo_warehouse",
                f"warehouse {wid}",
                f"Sitoo warehouse {wid} ({warehouse.get('name')}) is not mapped to a Magento source in [stock].sources: "
                "its stock never reaches the web shop.",
                sitoo={"warehouseid": wid, "name": warehouse.get("name"), "storeid": warehouse.get("storeid")},
            )
        )
    return out


def _stock(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    products = {sku.casefold(): sku for p in snap.magento_products if (sku := _sku(p.get("sku")))}
    stock_products = {
        sku for p in snap.magento_products if (sku := _sku(p.get("sku"))) and p.get("type_id") in SELLABLE_TYPES
    }
    sitoo_skus = {sku for p in snap.sitoo_products if (sku := _sku(p.get("sku")))}
    matched = stock_products & sitoo_skus
    magento_qty: dict[tuple[str, str], Decimal] = {}
    for item in snap.source_items:
        sku, code = _sku(item.get("sku")), str(item.get("source_code") or "")
        if sku is None:
            continue
        if sku.casefold() not in products:
            out.append(
                finding(
                    "orphan_source_item",
                    f"{sku}@{code}",
                    f"Magento holds a source item for {sku} at source {code}, but no product has this SKU: "
                    "MSI keeps it silently and it never reaches a product.",
                    magento={"sku": sku, "source_code": code, "quantity": item.get("quantity"), "status": item.get("status")},
                )
            )
            continue
        qty = decimal_or_none(item.get("quantity")) or Decimal(0)
        key = (products[sku.casefold()], code)
        magento_qty[key] = magento_qty.get(key, Decimal(0)) + qty

    levels = Levels(config.stock, snap.stock_overrides)
    threshold = config.audit.stock_drift_threshold
    for source, warehouses in sorted(_mapped_sources(config).items()):
        skus = {sku for w in warehouses for sku in snap.warehouse_items.get(w, {})} | {s for (s, c) in magento_qty if c == source}
        for sku in sorted(skus & matched):
            per_warehouse = {w: snap.warehouse_items.get(w, {}).get(sku) for w in warehouses if sku in snap.warehouse_items.get(w, {})}
            # sync-stock's own terms and formula (DESIGN "Stock: what Magento should show"), one implementation
            flights = snap.in_flight.get((sku, source)) or {}
            reserved = None
            if snap.warehouse_reserved is not None and flights:
                reserved = {w: decimal_or_none(snap.warehouse_reserved.get(w, {}).get(sku)) for w in flights}
            available, in_flight, _ = warehouse_terms(
                {w: decimal_or_none(v) or Decimal(0) for w, v in per_warehouse.items()}, flights, reserved
            )
            buffer, floor = levels(sku, source)
            expected, _ = target(available, in_flight, buffer, floor)
            actual = magento_qty.get((sku, source), Decimal(0))
            if abs(actual - expected) <= threshold:
                continue
            available, expected, actual, in_flight = plain(available), plain(expected), plain(actual), plain(in_flight)
            # Incremental runs only see Sitoo's items; --full also zeroes Sitoo products without one.
            hint = (
                f" Sitoo has no stock record for {sku} in warehouse(s) {', '.join(warehouses)} (never stocked there), "
                "so only `magsit sync-stock --full` sees it: it sets it to 0 (or book the stock in Sitoo)."
                if not per_warehouse
                else ""
            )
            out.append(
                finding(
                    "stock_drift",
                    f"{sku}@{source}",
                    f"{sku} at source {source}: Magento has {actual}, Sitoo's stock gives {expected} "
                    f"(in flight {in_flight} + available {available} - buffer {buffer}, 0 at or below floor {floor}).{hint}",
                    magento={"quantity": actual, "source_code": source},
                    sitoo={"available": available, "warehouses": per_warehouse, "in_flight": in_flight, "expected": expected},
                )
            )
    return out


def _orders(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    reported: set[str] = set()
    statuses = set(config.orders.statuses)
    cutoff = snap.now - timedelta(minutes=config.audit.order_age_minutes)
    for order in sorted(snap.magento_orders, key=lambda o: str(o.get("increment_id"))):
        increment_id = str(order.get("increment_id") or "")
        created = parse_magento_time(order.get("created_at"))
        if not increment_id or order.get("status") not in statuses or created is None or created > cutoff:
            continue
        externalid = externalid_for(config, increment_id)
        if externalid in snap.sitoo_externalids:
            continue
        reported.add(increment_id)
        age = int((snap.now - created).total_seconds() // 60)
        out.append(
            finding(
                "order_not_in_sitoo",
                increment_id,
                f"Magento order {increment_id} is '{order.get('status')}' since {order.get('created_at')} UTC ({age} min) "
                f"but Sitoo has no order with externalid {externalid}: no store will fulfil it.",
                magento={"entity_id": order.get("entity_id"), "status": order.get("status"), "created_at": order.get("created_at")},
                sitoo={"externalid": externalid},
            )
        )

    by_orderid = {str(m["other_id"]): str(m["external_id"]) for m in snap.order_mappings if m.get("other_id")}
    for order in sorted(snap.sitoo_web_orders, key=lambda o: int(o.get("orderid") or 0)):
        if not is_web_order(order):
            continue
        increment_id = increment_id_of(config, order, by_orderid)
        if increment_id is None or increment_id in snap.magento_increment_ids:
            continue
        reported.add(increment_id)
        out.append(
            finding(
                "sitoo_order_without_magento_order",
                increment_id,
                f"Sitoo web order {order.get('orderid')} (externalid {order.get('externalid')}) has no Magento order {increment_id}.",
                magento={"increment_id": increment_id},
                sitoo={"orderid": order.get("orderid"), "externalid": order.get("externalid"), "orderstateid": order.get("orderstateid")},
            )
        )

    for mapping in snap.order_mappings:
        increment_id, other = str(mapping.get("external_id")), mapping.get("other_id")
        if not other or increment_id in reported:
            continue  # an in-flight intent (no Sitoo id yet) points at nothing by design
        gone = []
        if increment_id not in snap.magento_increment_ids:
            gone.append(f"Magento order {increment_id}")
        try:
            if int(other) not in snap.sitoo_orderids:
                gone.append(f"Sitoo order {other}")
        except (TypeError, ValueError):
            gone.append(f"Sitoo order {other!r} (not a number)")
        if gone:
            out.append(
                finding(
                    "stale_mapping",
                    f"order {increment_id}",
                    f"The state file maps Magento order {increment_id} to Sitoo order {other} ({mapping.get('status')}), "
                    f"but {' and '.join(gone)} does not exist.",
                    magento={"increment_id": increment_id, "exists": increment_id in snap.magento_increment_ids},
                    sitoo={"orderid": other},
                )
            )
    userids = {str(u.get("userid")) for u in snap.sitoo_users if u.get("userid")}
    for mapping in snap.customer_mappings:
        other = mapping.get("other_id")
        if other and str(other) not in userids:
            out.append(
                finding(
                    "stale_mapping",
                    f"customer {mapping.get('external_id')}",
                    f"The state file maps customer {mapping.get('external_id')} to Sitoo user {other}, which does not exist.",
                    sitoo={"userid": other},
                )
            )
    return out


def duplicate_emails(rows: Iterable[Mapping[str, Any]], id_field: str) -> dict[str, list[tuple[str, str]]]:
    """Normalised e-mail -> [(id, e-mail as stored)] for e-mails held by more than one record."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        email = row.get("email")
        if isinstance(email, str) and email.strip():
            groups[email_key(email)].append((str(row.get(id_field)), email))
    return {k: sorted(v) for k, v in groups.items() if len(v) > 1}


def _customers(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    website = config.magento.website_id
    magento = [c for c in snap.magento_customers if str(c.get("website_id", website)) == str(website)]
    for email, records in sorted(duplicate_emails(magento, "id").items()):
        out.append(
            finding(
                "duplicate_customer",
                f"{email} (magento)",
                f"{len(records)} Magento customers in website {website} share the e-mail {email}: "
                f"ids {', '.join(i for i, _ in records)}. Orders and customer sync pick one at random.",
                magento=[{"id": i, "email": e} for i, e in records],
            )
        )
    customers = [u for u in snap.sitoo_users if not u.get("role")]  # staff accounts have a role
    for email, records in sorted(duplicate_emails(customers, "userid").items()):
        out.append(
            finding(
                "duplicate_customer",
                f"{email} (sitoo)",
                f"{len(records)} Sitoo customers share the e-mail {email}: userids {', '.join(i for i, _ in records)}.",
                sitoo=[{"userid": i, "email": e} for i, e in records],
            )
        )
    return out


# -- pull (read-only I/O) -------------------------------------------------------------------------
MAGENTO_PRODUCT_FIELDS = ("id", "sku", "price", "status", "type_id", "extension_attributes[website_ids]", "custom_attributes")
SITOO_PRODUCT_FIELDS = ("productid", "sku", "title", "moneyprice", "vatid", "vatvalue", "active", "activepos")
SITOO_ORDER_FIELDS = ("orderid", "externalid", "registerid", "creditorderid", "orderstateid", "orderdate")


def pull(ctx: JobContext) -> AuditSnapshot:
    from magsit.magento.search import SearchCriteria, in_group, item_fields
    from magsit.sync.inflight import in_flight_by_source

    config = ctx.config
    now = ctx.started_at.astimezone(UTC)
    snap = AuditSnapshot(now=now)
    magento, sitoo = ctx.magento, ctx.sitoo
    mapping = {str(k): v for k, v in config.stock.sources.items()}

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
    snap.order_mappings = ctx.state.mappings("order")
    snap.customer_mappings = ctx.state.mappings("customer")
    snap.in_flight = in_flight_by_source(snap.order_mappings, mapping)
    snap.stock_overrides = load_overrides(config.stock.overrides_csv)

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

    snap.magento_customers = list(
        magento.search_customers(
            SearchCriteria().where("website_id", config.magento.website_id).only(item_fields("id", "email", "website_id"))
        )
    )
    snap.sitoo_users = list(sitoo.iter_users(fields=("userid", "email", "role")))
    # Credit memos magsit made for store returns with shipping: a handful, one read each.
    for refund in ctx.state.mappings("refund", status="done"):
        data = refund["data"]
        if data.get("origin") == "sitoo" and str(refund.get("other_id") or "").isdigit() and decimal_or_none(data.get("shipping_amount")):
            snap.refund_memos.append((data, magento.get_creditmemo(int(refund["other_id"]))))
    return snap


def _refund_shipping(snap: AuditSnapshot, config: Config) -> list[Finding]:
    """Which way the shop reads a credit memo's ``shipping_amount`` (net, or gross when it displays
    shipping incl. tax, magento-api.md §11), from the memos magsit made: what was sent vs what the
    memo holds. Only memos whose shipping carries tax tell the two apart."""
    out: list[Finding] = []
    tolerance = config.reconcile.tolerance
    for data, memo in snap.refund_memos:
        sent = decimal_or_none(data.get("shipping_amount"))
        net, tax = decimal_or_none(memo.get("shipping_amount")), decimal_or_none(memo.get("shipping_tax_amount")) or Decimal(0)
        if not sent or net is None or not tax:
            continue
        gross = decimal_or_none(memo.get("shipping_incl_tax")) or net + tax
        sent_incl = bool(data.get("shipping_sent_incl_tax"))
        if abs((gross if sent_incl else net) - sent) <= tolerance:
            continue  # the shop read it the way magsit meant
        if abs((net if sent_incl else gross) - sent) <= tolerance:
            needed = "false" if sent_incl else "true"
            reads = "excluding" if sent_incl else "including"
        else:
            needed, reads = None, None
        memo_no = memo.get("increment_id") or memo.get("entity_id")
        message = (f"credit memo {memo_no} (order {data.get('increment_id')}): magsit sent shipping_amount {sent} "
                   f"{'incl.' if sent_incl else 'excl.'} tax; Magento refunded shipping {net} net / {gross} incl. tax")
        if needed:
            message += f". The shop reads shipping_amount {reads} tax: set [returns].shipping_amount_includes_tax = {needed}"
        out.append(finding("refund_shipping_tax_setting", f"creditmemo {memo_no}", message, magento=memo))
    return out


# -- run ------------------------------------------------------------------------------------------
def summarise(findings: list[Finding]) -> dict[str, Any]:
    by_kind: dict[str, int] = defaultdict(int)
    by_owner: dict[str, int] = defaultdict(int)
    for f in findings:
        by_kind[f.kind] += 1
        by_owner[f.owner] += 1
    return {
        "total": len(findings),
        "by_kind": [{"kind": k, "owner": KINDS[k][0], "count": by_kind[k]} for k in KINDS if by_kind.get(k)],
        "by_owner": dict(sorted(by_owner.items())),
    }


def run(ctx: JobContext) -> JobResult:
    snapshot = pull(ctx)
    findings = audit(snapshot, ctx.config)
    summary = summarise(findings)
    counts = {
        "findings": len(findings),
        "magento_products": len(snapshot.magento_products),
        "sitoo_products": len(snapshot.sitoo_products),
    }
    lines = [f"{len(findings)} finding(s)" + (": " + ", ".join(f"{r['kind']} {r['count']}" for r in summary["by_kind"]) if findings else "; both sides agree")]
    return JobResult(
        counts=counts,
        summary=lines,
        details={"summary": summary, "findings": [f.as_row() for f in findings]},
        findings=len(findings),
    )
