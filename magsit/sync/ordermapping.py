"""The ``order`` mapping push-orders writes and the later order flows read (sync-fulfilment,
its cancellations and reservation renewals, sync-returns): shared helpers on its data.

``data`` holds ``entity_id``, ``externalid``, ``warehouse_id``, ``bopis``, ``email`` and per
product line ``item_id``, ``ship_item_id``, ``per_parent``, ``sku``, ``qty``,
``sitoo_orderitemid``, ``shipped``, ``canceled`` (``orderpayload.PlannedLine.mapping_line``).
"""

from __future__ import annotations

from typing import Any

from magsit.values import additional_data


def lines_from_sitoo(data: dict[str, Any], sitoo_order: dict[str, Any]) -> dict[str, Any]:
    """Fill ``sitoo_orderitemid`` per line from the Sitoo order's items (by web-itemid, else
    position); deliveries and store returns name the lines by it. Changes and returns ``data``."""
    items = sitoo_order.get("orderitems") or []
    by_web = {}
    for item in items:
        web = additional_data(item).get("web-itemid")
        if web is not None and item.get("orderitemid") is not None:
            by_web[str(web)] = item["orderitemid"]
    for index, line in enumerate(data.get("lines") or []):
        if str(line["item_id"]) in by_web:
            line["sitoo_orderitemid"] = by_web[str(line["item_id"])]
        elif line.get("sitoo_orderitemid") is None:
            line["sitoo_orderitemid"] = line.get("position", index)
    return data


def units_left(line: dict[str, Any]) -> int:
    """Units of a line neither shipped nor cancelled yet."""
    return int(line["qty"]) - int(line.get("shipped") or 0) - int(line.get("canceled") or 0)


def cancel_rest(data: dict[str, Any]) -> dict[str, Any]:
    """The order is over in Sitoo (cancelled on either side): every unit not shipped counts as
    cancelled, so it leaves the in-flight count, and sync-fulfilment does not cancel the Magento
    order again. Changes and returns ``data``."""
    for line in data.get("lines") or []:
        line["canceled"] = max(0, int(line.get("qty") or 0) - int(line.get("shipped") or 0))
    data["sitoo_cancelled_done"] = True
    return data


def finished_status(data: dict[str, Any]) -> str:
    """The status an open (``pushed``) order mapping has once its lines say so: still ``pushed``
    while units are left, else ``shipped``, ``canceled`` or ``closed`` (some of each)."""
    lines = data.get("lines") or []
    if any(units_left(line) > 0 for line in lines):
        return "pushed"
    shipped = sum(int(line.get("shipped") or 0) for line in lines)
    canceled = sum(int(line.get("canceled") or 0) for line in lines)
    if canceled and not shipped:
        return "canceled"
    if shipped and not canceled:
        return "shipped"
    return "closed"
