"""Stock: orphan source items, and Magento quantities that differ from what sync-stock would write
(its own terms and formula, ``magsit.sync.stockplan``: one implementation)."""

from __future__ import annotations

from decimal import Decimal

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import SELLABLE_TYPES, decimal_or_none, plain, sku_of
from magsit.sync.audit.snapshot import AuditSnapshot
from magsit.sync.audit.sources import mapped_sources
from magsit.sync.stockplan import Levels, target, warehouse_terms


def stock(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    products = {sku.casefold(): sku for p in snap.magento_products if (sku := sku_of(p.get("sku")))}
    stock_products = {
        sku for p in snap.magento_products if (sku := sku_of(p.get("sku"))) and p.get("type_id") in SELLABLE_TYPES
    }
    sitoo_skus = {sku for p in snap.sitoo_products if (sku := sku_of(p.get("sku")))}
    matched = stock_products & sitoo_skus
    magento_qty: dict[tuple[str, str], Decimal] = {}
    for item in snap.source_items:
        sku, code = sku_of(item.get("sku")), str(item.get("source_code") or "")
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
    for source, warehouses in sorted(mapped_sources(config).items()):
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
