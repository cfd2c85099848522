"""Planning a drain (pure): the queued events and the facts read for them -> coalesced runs.

A burst becomes one run per job: ``sync-returns`` (full), then ``sync-fulfilment`` for the affected
pushed orders, then ``sync-stock`` for the union of the affected SKUs. No I/O here; the facts
come from ``drain.gather_facts``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from magsit.events.queue import QueuedEvent

MAX_TARGETED_SKUS = 500  # more changed SKUs than this: one incremental sync-stock reads them cheaper

STOCK, FULFILMENT, RETURNS = "sync-stock", "sync-fulfilment", "sync-returns"
RUN_ORDER = (RETURNS, FULFILMENT, STOCK)  # fulfilment updates the in-flight term stock reads
# Delivery states before the parcel leaves the store (sitoo-api.md §10): nothing to ship in Magento yet.
PRE_DISPATCH = frozenset({"new", "ready-to-ship"})


# -- planning: events + facts -> coalesced runs (pure) ---------------------------------------------
@dataclass
class Facts:
    """What the I/O step found out about the events' resources."""

    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # Sitoo orderid -> order mapping (any status)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # Sitoo orderid -> order (new orders)
    transactions: dict[str, list[str]] = field(default_factory=dict)  # warehousetransactionid -> SKUs
    unavailable: dict[str, str] = field(default_factory=dict)  # event_id -> why its facts could not be read


@dataclass
class RunSpec:
    job: str
    options: dict[str, Any]
    event_ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "options": self.options, "events": len(self.event_ids)}


@dataclass
class DrainPlan:
    runs: list[RunSpec] = field(default_factory=list)  # in RUN_ORDER
    ignored: dict[str, str] = field(default_factory=dict)  # event_id -> why no run is needed
    waiting: dict[str, str] = field(default_factory=dict)  # event_id -> facts missing: retry later

    def as_dict(self) -> dict[str, Any]:
        return {"runs": [r.as_dict() for r in self.runs], "ignored": len(self.ignored), "waiting": len(self.waiting)}


def id_text(value: Any) -> str | None:
    """An id as the text it is stored under (``12`` and ``"12"`` are the same order)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return text or None


def event_skus(data: dict[str, Any]) -> list[str]:
    """SKUs an event names itself (``skus``, ``sku`` or ``items[].sku``; the payload is not documented)."""
    found: list[str] = []
    skus = data.get("skus")
    if isinstance(skus, list):
        found.extend(s for s in skus if isinstance(s, str))
    if isinstance(data.get("sku"), str):
        found.append(data["sku"])
    items = data.get("items")
    if isinstance(items, list):
        found.extend(i["sku"] for i in items if isinstance(i, dict) and isinstance(i.get("sku"), str))
    return [s for s in dict.fromkeys(s.strip() for s in found) if s]


def transaction_id(data: dict[str, Any]) -> str | None:
    return id_text(data.get("warehouse_transaction_id") or data.get("warehousetransactionid") or data.get("transaction_id"))


def original_of(order: dict[str, Any]) -> str | None:
    """The sale a refund order returns (``creditorderid``, else ``pos-originalsales-orderid``)."""
    original = id_text(order.get("creditorderid"))
    if original and original != "0":
        return original
    extra = order.get("additionaldata")
    if isinstance(extra, dict):
        return id_text(extra.get("pos-originalsales-orderid"))
    return None


def _mapping_skus(mapping: dict[str, Any]) -> list[str]:
    lines = (mapping.get("data") or {}).get("lines") or []
    return [line["sku"] for line in lines if isinstance(line, dict) and isinstance(line.get("sku"), str) and line["sku"]]


def plan_drain(events: Iterable[QueuedEvent], facts: Facts, sources: Iterable[str]) -> DrainPlan:
    """Which runs the events need, coalesced: one run per job, whatever the number of events."""
    mapped_warehouses = {str(w) for w in sources}
    plan = DrainPlan()
    stock_skus: dict[str, None] = {}
    stock_events: list[str] = []
    stock_incremental = False
    orders: dict[str, None] = {}
    fulfilment_events: list[str] = []
    returns_events: list[str] = []

    for event in events:
        data, eid = event.data, event.event_id
        if event.event_id in facts.unavailable:
            plan.waiting[eid] = facts.unavailable[eid]
            continue
        if event.event_type == "warehouse-transaction":
            warehouse = id_text(data.get("warehouse_id"))
            if warehouse is not None and warehouse not in mapped_warehouses:
                plan.ignored[eid] = f"warehouse {warehouse} is not mapped in [stock].sources"
                continue
            skus = event_skus(data) or facts.transactions.get(transaction_id(data) or "", [])
            if skus:
                stock_skus.update(dict.fromkeys(skus))
            else:
                stock_incremental = True  # SKUs unknown: an incremental run reads whatever changed
            stock_events.append(eid)
            continue
        if event.event_type not in ("order", "order-delivery"):
            plan.ignored[eid] = f"event type {event.event_type} is not used by magsit"
            continue
        orderid = id_text(data.get("order_id"))
        if orderid is None:
            plan.ignored[eid] = "no order_id"
            continue
        mapping = facts.pushed.get(orderid)
        kind = data.get("order_event_type")
        if mapping is not None:
            delivery_state = str(data.get("order_delivery_state_changed") or "")
            if event.event_type == "order-delivery" and delivery_state == "cancelled" and mapping.get("status") in ("shipped", "closed"):
                # A delivery magsit already shipped in Magento: sync-fulfilment raises it for a person.
                orders[str(mapping["external_id"])] = None
                fulfilment_events.append(eid)
            elif mapping.get("status") != "pushed":
                plan.ignored[eid] = f"web order {mapping.get('external_id')} is no longer open in magsit ({mapping.get('status')})"
            elif event.event_type == "order-delivery" and delivery_state in PRE_DISPATCH:
                plan.ignored[eid] = (f"delivery {data.get('order_delivery_id')} of web order {mapping.get('external_id')} is "
                                     f"{data.get('order_delivery_state_changed')}: not dispatched yet, nothing to ship")
            elif event.event_type == "order-delivery" or (kind == "update" and data.get("order_state_changed")):
                orders[str(mapping["external_id"])] = None
                fulfilment_events.append(eid)
                # Fulfilment moves the order's in-flight units: re-read its SKUs' stock after it.
                stock_skus.update(dict.fromkeys(_mapping_skus(mapping)))
                stock_events.append(eid)
            else:
                plan.ignored[eid] = f"order event {kind!r} of web order {mapping.get('external_id')} needs no action"
            continue
        if event.event_type == "order" and kind == "add":
            order = facts.orders.get(orderid)
            if order is None:
                plan.ignored[eid] = f"order {orderid} was not found in Sitoo"
                continue
            original = original_of(order)
            if original is None:
                plan.ignored[eid] = f"order {orderid} is not a refund"
            elif original in facts.pushed:
                returns_events.append(eid)
            else:
                plan.ignored[eid] = f"refund order {orderid} returns order {original}, which is not a web order magsit pushed"
            continue
        plan.ignored[eid] = f"order {orderid} is not a web order magsit pushed"

    if returns_events:
        plan.runs.append(RunSpec(RETURNS, {}, returns_events))
    if fulfilment_events:
        plan.runs.append(RunSpec(FULFILMENT, {"orders": list(orders)}, fulfilment_events))
    if stock_events:
        if stock_incremental or len(stock_skus) > MAX_TARGETED_SKUS or not stock_skus:
            options: dict[str, Any] = {}
        else:
            options = {"skus": list(stock_skus)}
        plan.runs.append(RunSpec(STOCK, options, stock_events))
    return plan

