"""The stock drift section: Magento source quantity vs Sitoo available, per SKU and mapped source."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.money import ZERO, dec
from magsit.sync.reconcile.snapshot import Snapshot


def stock_drift(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Every SKU/source pair that differs, largest drift first."""
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
    return drift
