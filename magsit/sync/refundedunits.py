"""Units Magento no longer wants delivered on an order still open in Sitoo -> ops (a sync-fulfilment
sub-step, split like it; issue "refunds" point 1).

Magento refunds part of an order that is not shipped yet (a credit memo for 1 of 3 units; the
order stays ``processing``), or cancels the units not invoiced of a partly invoiced order. From then
on Magento ships at most ``qty_ordered - qty_shipped - qty_refunded - qty_canceled`` of the item
(``Order\\Item::getSimpleQtyToShip``), but the Sitoo order still lists every unit: the store would
pick and hand over goods the customer got their money back for.

Why magsit does not change the Sitoo order itself: sitoo-api.md §6 lists ``orderitems`` among the
writable order fields of the (partial) PUT, but documents no edit of a line — the orderitem write
schema has no ``orderitemid`` to name one, and what a PUT of ``orderitems`` does to the existing
lines, their ids (deliveries and store returns name lines by them), the deliveries and the
reservation is not documented anywhere (§6, §12). Guessing could drop or renumber lines of an order
a store is picking. So a person makes the change in Sitoo Backoffice, told exactly what to change.

pull  — nothing of its own: sync-fulfilment's batched Magento read of the open orders carries
        every item's ``qty_ordered``/``qty_refunded``/``qty_canceled`` (no extra call); the Sitoo
        order (its lines as they are now) and its deliveries are read already. ``returned_units``
        adds, from the state file, the units magsit itself refunded for store returns: those were
        delivered and came back, they are nothing to take off.
plan  — pure: per line, the units Magento no longer wants, less the units the Sitoo order no longer
        lists, bounded by the units Sitoo has not delivered = the units to take off.
push  — one ``refunded_units_open_in_sitoo`` exception for ops per refund: the mapping remembers
        what was reported (``refund_reported``), so later runs stay quiet until Magento refunds
        more. Once the Sitoo order lists the lower quantities (or is cancelled) the exception
        resolves itself and those units count as cancelled in the mapping, which takes them out
        of the in-flight stock count and out of any "closed in Sitoo: ship the rest" shipment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from magsit.errors import RecordError
from magsit.runner import JobContext
from magsit.sync.cancellations import MAGENTO_GONE, state_of
from magsit.sync.ordermapping import finished_status
from magsit.values import additional_data

KIND = "refunded_units_open_in_sitoo"
SITOO_OPEN, SITOO_CANCELLED = 0, 20


def record_key(increment_id: str) -> str:
    return f"{increment_id}/refunded-units"


def _units(value: Any) -> int:
    try:
        return int(Decimal(str(value or 0)))
    except ArithmeticError:
        return 0


@dataclass
class LineOff:
    index: int  # the order mapping's line
    sku: str
    orderitemid: Any  # the Sitoo line
    pushed: int  # units magsit pushed
    listed: int  # units the Sitoo order lists now
    delivered: int  # units Sitoo delivered (deliveries not cancelled)
    unwanted: int  # units Magento no longer wants delivered (refunded or cancelled, not returns)

    @property
    def removed(self) -> int:
        """Units someone already took off the Sitoo order."""
        return max(0, self.pushed - self.listed)

    @property
    def take_off(self) -> int:
        """Units still to take off the Sitoo order: unwanted, still listed and not delivered."""
        return max(0, min(self.listed - self.delivered, self.unwanted - self.removed))

    def describe(self) -> dict[str, Any]:
        return {"sku": self.sku, "sitoo_orderitemid": self.orderitemid, "quantity_now": self.listed,
                "take_off": self.take_off, "quantity_wanted": self.listed - self.take_off}  # fmt: skip


@dataclass
class Decision:
    increment_id: str
    sitoo_orderid: str
    lines: list[LineOff] = field(default_factory=list)
    report: bool = False  # raise the exception (first time, or Magento refunded more since)
    resolve: bool = False  # Sitoo shows the change (or the order is cancelled): close the exception
    settled: dict[int, int] = field(default_factory=dict)  # mapping line -> units to count as cancelled

    @property
    def key(self) -> str:
        return record_key(self.increment_id)

    def describe(self) -> dict[str, Any]:
        action = "refund_take_off" if self.report else "refund_settled" if self.resolve or self.settled else "refund_wait"
        return {"action": action, "increment_id": self.increment_id, "sitoo_orderid": self.sitoo_orderid,
                "lines": [line.describe() for line in self.lines if line.take_off]}  # fmt: skip

    def problem(self) -> RecordError:
        todo = [line for line in self.lines if line.take_off]
        what = "; ".join(
            f"{line.sku} x {line.take_off} (Sitoo line {line.orderitemid}: {line.listed} -> {line.listed - line.take_off})"
            for line in todo
        )
        return RecordError(
            "refunded_units_open_in_sitoo", "ops", self.key,
            f"Magento refunded (or cancelled) units of web order {self.increment_id} that the store has not "
            f"delivered yet, but Sitoo order {self.sitoo_orderid} still lists them for picking: take off {what}. "
            "magsit cannot change the lines of a Sitoo order (Sitoo's API documents no line edit). Lower those "
            f"quantities (or remove the lines) of order {self.sitoo_orderid} in Sitoo Backoffice and tell the "
            "store not to pick them; if the parcel already left, ask the customer to send the units back or "
            "invoice them in Magento. magsit sees the change on its next run and resolves this exception",
            {"sitoo_orderid": self.sitoo_orderid, "lines": [line.describe() for line in todo]},
        )


def needs_returns(magento_orders: Mapping[int, Mapping[str, Any]]) -> bool:
    """Whether any open order has refunded or cancelled units (only then is the state file asked
    which of them were store returns)."""
    return any(_units(item.get("qty_refunded")) or _units(item.get("qty_canceled"))
               for row in magento_orders.values() for item in row.get("items") or [])  # fmt: skip


def returned_units(refund_mappings: Iterable[Mapping[str, Any]]) -> dict[str, dict[int, int]]:
    """Order increment id -> Magento item -> units magsit refunded for store returns (the ``refund``
    mappings sync-returns writes, done or whose credit memo may exist already)."""
    out: dict[str, dict[int, int]] = {}
    for mapping in refund_mappings:
        data = mapping.get("data") or {}
        if data.get("action") != "creditmemo" or mapping.get("status") not in ("done", "pending"):
            continue  # an exported Magento memo, a return with nothing to refund, or one Magento refused
        per_item = out.setdefault(str(data.get("increment_id")), {})
        for item_id, qty in (data.get("items") or {}).items():
            per_item[int(item_id)] = per_item.get(int(item_id), 0) + _units(qty)
    return out


def listed_units(data: Mapping[str, Any], sitoo_order: Mapping[str, Any]) -> dict[int, int]:
    """Mapping line -> units its Sitoo line lists now. Lines are found by the ``web-itemid`` magsit
    pushed; a line no Sitoo item carries any more was removed (0). Without any web-itemid (not an
    order as magsit pushes them) lines are matched by orderitemid and a missing one is left out."""
    items = [i for i in sitoo_order.get("orderitems") or [] if isinstance(i, Mapping)]
    by_web = {str(additional_data(i).get("web-itemid")): i for i in items if additional_data(i).get("web-itemid") is not None}
    by_id = {i.get("orderitemid"): i for i in items}
    out: dict[int, int] = {}
    for index, line in enumerate(data.get("lines") or []):
        item = by_web.get(str(line.get("item_id"))) if by_web else by_id.get(line.get("sitoo_orderitemid"))
        if item is not None:
            out[index] = _units(item.get("quantity"))
        elif by_web:
            out[index] = 0
    return out


def delivered_per_line(data: Mapping[str, Any], deliveries: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    index_of = {line.get("sitoo_orderitemid"): index for index, line in enumerate(data.get("lines") or [])}
    out: dict[int, int] = {}
    for delivery in deliveries:
        if delivery.get("datecancelled"):
            continue
        for item in delivery.get("orderdeliveryitems") or []:
            index = index_of.get(item.get("orderitemid"))
            if index is not None:
                out[index] = out.get(index, 0) + _units(item.get("quantity"))
    return out


def plan_order(mapping: Mapping[str, Any], sitoo: Mapping[str, Any], deliveries: list[dict[str, Any]],
               magento: Mapping[str, Any], returned: Mapping[int, int]) -> Decision | None:
    """One open pushed order (pure): what to take off its Sitoo order, or what Sitoo settled."""
    data = mapping["data"]
    items = {_units(i.get("item_id")): i for i in magento.get("items") or []}
    sitoo_state = int(sitoo.get("orderstateid") or 0)
    listed = listed_units(data, sitoo)
    delivered = delivered_per_line(data, deliveries)
    lines: list[LineOff] = []
    for index, line in enumerate(data.get("lines") or []):
        top_id = int(line.get("ship_item_id") or line["item_id"])
        top = items.get(top_id)
        if top is None:
            continue
        pushed = int(line.get("qty") or 0)
        per = max(1, int(line.get("per_parent") or 1))
        gone = _units(top.get("qty_refunded")) - returned.get(top_id, 0) + _units(top.get("qty_canceled"))
        unwanted = min(pushed, max(0, gone) * per)
        if unwanted:
            lines.append(LineOff(index, str(line.get("sku")), line.get("sitoo_orderitemid"), pushed,
                                 listed.get(index, pushed), delivered.get(index, 0), unwanted))  # fmt: skip
    if not lines:
        return None
    decision = Decision(str(mapping["external_id"]), str(mapping.get("other_id")), lines)
    if sitoo_state == SITOO_CANCELLED:
        decision.resolve = True  # nothing of it is delivered any more; sync-fulfilment's cancel path goes on
        return decision
    if sitoo_state != SITOO_OPEN:
        return None  # closed: the store is done with it
    reported = {int(k): int(v) for k, v in (data.get("refund_reported") or {}).items()}
    for line in lines:
        settled = min(line.unwanted, line.removed, pushed_left(data["lines"][line.index]))
        if settled > int(data["lines"][line.index].get("canceled") or 0):
            decision.settled[line.index] = settled
    todo = [line for line in lines if line.take_off]
    decision.report = any(line.unwanted > reported.get(line.index, 0) for line in todo)
    # Settled only when Sitoo lists the change; units the store delivered anyway keep the row open.
    decision.resolve = not todo and all(line.removed >= line.unwanted for line in lines)
    return decision


def pushed_left(line: Mapping[str, Any]) -> int:
    """Units of a mapping line not shipped in Magento (the most that can count as cancelled)."""
    return max(0, int(line.get("qty") or 0) - int(line.get("shipped") or 0))


def plan(orders: Iterable[tuple[Mapping[str, Any], Mapping[str, Any], list[dict[str, Any]]]],
         magento_orders: Mapping[int, Mapping[str, Any]], returned: Mapping[str, Mapping[int, int]],
         open_keys: Iterable[str], waiting: Iterable[str] = ()) -> list[Decision]:
    """Per (order mapping, Sitoo order, its deliveries) of the open pushed orders; orders cancelled,
    closed or replaced by an edit belong to the cancellation step and are left out. ``open_keys``:
    this kind's open exceptions (only those are resolved); ``waiting``: record keys a person told
    magsit to leave alone (not reported again)."""
    still_open, held = set(open_keys), set(waiting)
    decisions = []
    for mapping, sitoo, deliveries in orders:
        try:
            magento = magento_orders.get(int(mapping["data"].get("entity_id")))
        except (TypeError, ValueError):
            continue
        if magento is None or state_of(magento) in MAGENTO_GONE:
            continue
        decision = plan_order(mapping, sitoo, deliveries, magento, returned.get(str(mapping["external_id"]), {}))
        if decision is None:
            continue
        decision.report = decision.report and decision.key not in held
        decision.resolve = decision.resolve and decision.key in still_open
        if decision.report or decision.resolve or decision.settled:
            decisions.append(decision)
    return decisions


def push(ctx: JobContext, decisions: list[Decision]) -> None:
    for decision in decisions:
        if ctx.should_stop():
            break
        with ctx.state.transaction():
            mapping = ctx.state.get_mapping("order", "magento", decision.increment_id)
            if mapping is None:
                continue
            data = mapping["data"]
            lines = data.get("lines") or []
            for index, units in decision.settled.items():
                lines[index]["canceled"] = max(int(lines[index].get("canceled") or 0), units)
            if decision.report:
                reported = data.setdefault("refund_reported", {})
                for line in decision.lines:
                    reported[str(line.index)] = max(int(reported.get(str(line.index)) or 0), line.unwanted)
            if decision.settled or decision.report:
                status = finished_status(data) if mapping["status"] == "pushed" else mapping["status"]
                ctx.state.put_mapping("order", "magento", decision.increment_id, mapping["other_id"], data, status)
            if decision.report:
                ctx.fail_record(decision.problem())
                ctx.counts["refunded_units_reported"] += 1
            elif decision.resolve:
                ctx.succeeded(decision.key)
            if decision.settled:
                ctx.counts["refunded_units_settled"] += sum(decision.settled.values())
