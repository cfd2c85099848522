"""What the reconciliation compares, as ``pull`` read it (or a test built it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from magsit.sync.reconcile.period import Period


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
