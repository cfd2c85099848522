"""The report: its sections, their columns and titles. Filled by ``compute``, printed by ``render``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
