"""Units of web orders that Sitoo already holds for us but Magento has not shipped or cancelled.

Contract with push-orders / sync-fulfilment (magsit/sync/orders.py): per pushed order,

    state.put_mapping("order", "magento", increment_id, sitoo_orderid,
                      data={..., "warehouse_id": W,
                            "lines": [{"sku": S, "qty": Q, "shipped": 0, "canceled": 0, ...}],
                            "open": True},
                      status="pushed")

and sync-fulfilment raises ``shipped`` / ``canceled`` and sets a finished status (or ``open``
False) when the order is done. Sitoo has reserved (or delivered) these units, so its
``decimalavailable`` no longer contains them, while Magento still holds its own reservation for
them: without adding them back the unit would be subtracted twice (undersell). They are added back
in the warehouse that reserved them (a store with 0 on hand and 1 reserved shows available −1:
−1 + 1 = 0, not 0 + 1). See DESIGN.md "Stock: what Magento should show" and pitfalls P25.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# Mapping statuses after which Magento no longer holds a reservation for the order's units.
FINISHED_STATUSES = frozenset(
    {"shipped", "complete", "completed", "closed", "canceled", "cancelled", "finished", "done", "failed", "abandoned"}
)


def _units(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def mapping_is_open(mapping: Mapping[str, Any]) -> bool:
    """Counts only orders really pushed (Sitoo id known) and not finished."""
    status = str(mapping.get("status") or "").lower()
    if status in FINISHED_STATUSES:
        return False
    # A create still in flight (no Sitoo order id yet) may not have reserved anything in Sitoo;
    # counting it could oversell, not counting it can only undersell until the next run.
    if not mapping.get("other_id"):
        return False
    data = mapping.get("data") or {}
    return isinstance(data, Mapping) and data.get("open", True) is not False


def in_flight_by_warehouse(
    order_mappings: Iterable[Mapping[str, Any]], warehouses: Collection[str] | None = None
) -> dict[tuple[str, str], Decimal]:
    """(sku, Sitoo warehouse id) -> units pushed − shipped − canceled over the open pushed orders.

    Per warehouse because that is where Sitoo reserved them: its ``decimalavailable`` there already
    excludes them (stockplan adds them back warehouse by warehouse). Orders pushed to a warehouse
    not in ``warehouses`` (when given) are ignored. Malformed lines are skipped rather than guessed
    at (they cannot raise): the worst case is a transient undersell.
    """
    totals: dict[tuple[str, str], Decimal] = {}
    for mapping in order_mappings:
        if not mapping_is_open(mapping):
            continue
        data = mapping.get("data") or {}
        warehouse = str(data.get("warehouse_id"))
        if warehouses is not None and warehouse not in warehouses:
            continue
        lines = data.get("lines") or []
        if not isinstance(lines, list):
            continue
        for line in lines:
            if not isinstance(line, Mapping):
                continue
            sku = line.get("sku")
            qty = _units(line.get("qty"))
            if not isinstance(sku, str) or not sku or qty is None:
                continue
            shipped = _units(line.get("shipped", 0)) or Decimal(0)
            canceled = _units(line.get("canceled", 0)) or Decimal(0)
            open_units = qty - shipped - canceled
            if open_units <= 0:
                continue
            key = (sku, warehouse)
            totals[key] = totals.get(key, Decimal(0)) + open_units
    return totals


def in_flight_by_source(
    order_mappings: Iterable[Mapping[str, Any]], warehouse_to_source: Mapping[str, str]
) -> dict[tuple[str, str], dict[str, Decimal]]:
    """(sku, source_code) -> {Sitoo warehouse id: in-flight units}: the shape stockplan needs."""
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    for (sku, warehouse), units in in_flight_by_warehouse(order_mappings, set(warehouse_to_source)).items():
        out.setdefault((sku, warehouse_to_source[warehouse]), {})[warehouse] = units
    return out


def in_flight_units(
    order_mappings: Iterable[Mapping[str, Any]], warehouse_to_source: Mapping[str, str]
) -> dict[tuple[str, str], Decimal]:
    """(sku, source_code) -> in-flight units summed over the source's warehouses (for reports;
    the stock formula needs them per warehouse: ``in_flight_by_source``)."""
    return {key: sum(per.values(), Decimal(0)) for key, per in in_flight_by_source(order_mappings, warehouse_to_source).items()}
