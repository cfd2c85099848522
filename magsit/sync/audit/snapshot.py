"""Everything the audit compares, and how a Sitoo web order names its Magento order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from magsit.config import Config
from magsit.sync.orderpayload import sanitise_externalid
from magsit.sync.stockplan import Overrides


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
