"""sync-fulfilment: Sitoo deliveries and cancellations of pushed web orders -> Magento.

pull  — the order mappings still open (status ``pushed``, plus shipped ones still watched); their
        Sitoo orders in batches of orderids, each one's deliveries; the Magento order (detail) of
        every order with news; the Magento state and item quantities of the open ones
        (``cancellations.pull``, one batched read); the record keys whose exception is not due.
plan  — pure: Magento cancellations to carry to Sitoo (``cancellations.plan``), units refunded
        before delivery that the Sitoo order still lists (``refundedunits.plan``: a task for ops),
        reservations to renew (``reservations.renewals``), and per new delivery one Magento shipment with explicit
        top-level items and the remaining quantities, the tracking reference as a track, the
        Magento source of the delivering warehouse; per Sitoo cancellation a Magento cancel.
push  — in that order. A shipment mapping (key = Sitoo orderdeliveryid) is written ``pending``
        before the POST. Quantities are always "cumulative delivered in Sitoo − already shipped in
        Magento", so a shipment whose POST outcome was unknown (or that Magento refuses with "does
        not allow a shipment") is recognised on the next run by the order's ``qty_shipped``: never twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from magsit.config import Config
from magsit.errors import ApiError, RecordError
from magsit.flow import Doing, Preview, plural, would, would_counts
from magsit.http import parallel_map
from magsit.runner import JobContext, JobResult
from magsit.state.store import iso
from magsit.sync import calls as api
from magsit.sync import cancellations, refundedunits, reservations
from magsit.sync.ordermapping import cancel_rest, finished_status, lines_from_sitoo, units_left
from magsit.testing.crashpoints import crashpoint

log = logging.getLogger("magsit.fulfilment")

JOB = "sync-fulfilment"
SITOO_OPEN, SITOO_CLOSED, SITOO_CANCELLED = 0, 10, 20
NOT_ALLOWED = "does not allow a shipment to be created"


@dataclass
class OrderState:
    mapping: dict[str, Any]
    sitoo: dict[str, Any]
    deliveries: list[dict[str, Any]]
    magento: dict[str, Any] | None = None


@dataclass
class ShipmentPlan:
    increment_id: str
    entity_id: int
    key: str  # shipment mapping key: the Sitoo orderdeliveryid (or order-<id> for a closed remainder)
    delivery_units: dict[int, int]  # mapping line index -> units delivered by this delivery
    body: dict[str, Any]
    items: dict[int, int]  # Magento order_item_id -> qty

    def describe(self) -> dict[str, Any]:
        return {"action": "ship", "increment_id": self.increment_id, "delivery": self.key, "items": self.items,
                "tracks": self.body.get("tracks", [])}


@dataclass
class Pulled:
    states: list[OrderState]
    magento_orders: dict[int, dict[str, Any]] = field(default_factory=dict)  # entity_id -> state, items (open orders)
    waiting: set[str] = field(default_factory=set)  # record keys whose exception is not due (backoff, held)
    returned: dict[str, dict[int, int]] = field(default_factory=dict)  # increment id -> item -> units store-returned
    open_refund_keys: set[str] = field(default_factory=set)  # open refundedunits exceptions


@dataclass
class FulfilmentPlan:
    checked: int = 0
    cancellations: list[cancellations.Decision] = field(default_factory=list)  # Magento cancellations -> Sitoo
    refunded: list[refundedunits.Decision] = field(default_factory=list)  # partial refunds still listed in Sitoo
    renewals: list[reservations.Renewal] = field(default_factory=list)
    shipments: list[ShipmentPlan] = field(default_factory=list)
    cancels: list[tuple[str, int]] = field(default_factory=list)  # (increment_id, entity_id)
    problems: list[RecordError] = field(default_factory=list)
    cancelled_after_ship: list[tuple[str, str]] = field(default_factory=list)  # (increment_id, delivery key) reported
    waiting: list[dict[str, Any]] = field(default_factory=list)  # plan rows of work left for a later run
    touch: list[str] = field(default_factory=list)  # open orders whose mapping status is brought up to date

    def rows(self) -> list[dict[str, Any]]:
        return ([d.describe() for d in self.cancellations] + [d.describe() for d in self.refunded]
                + [r.describe() for r in self.renewals]
                + [s.describe() for s in self.shipments]
                + [{"action": "cancel", "increment_id": inc} for inc, _ in self.cancels]
                + [{"action": "exception", "kind": p.kind, "key": p.key, "message": p.message} for p in self.problems]
                + self.waiting)  # fmt: skip

    def doings(self) -> tuple[Doing, ...]:
        return (("to_ship", len(self.shipments), "ship", "delivery"),
                ("to_cancel_in_magento", len(self.cancels), "cancel", "Magento order"),
                ("to_cancel_in_sitoo", sum(1 for d in self.cancellations if d.action == "cancel"), "cancel", "Sitoo order"),
                ("to_renew", len(self.renewals), "renew", "Sitoo reservation"))  # fmt: skip

    def preview(self) -> Preview:
        problems = [*self.problems, *(d.problem() for d in self.cancellations if d.action == "delivered"),
                    *(d.still_open() for d in self.cancellations if d.action != "delivered" and d.replaced_by),
                    *(d.problem() for d in self.refunded if d.report)]
        orders = {s.increment_id for s in self.shipments}
        notes = {"to_ship": f"of {plural(len(orders), 'order')}, as Magento shipments" if orders else "",
                 "to_cancel_in_magento": "cancelled in Sitoo",
                 "to_cancel_in_sitoo": "cancelled, refunded or replaced by an edit in Magento before any delivery"}  # fmt: skip
        summary = [f"{self.checked} open order(s) checked", would(*self.doings(), notes=notes)]
        if self.waiting:
            summary.append(f"{plural(len(self.waiting), 'delivery')} left for a later run (its exception, or an "
                           "earlier delivery's of the same order, waits for its retry time or is held)")
        counts = {"orders": self.checked, **would_counts(*self.doings())}  # "orders": what a dry run always said
        if self.waiting:
            counts["waiting"] = len(self.waiting)
        return Preview(self.rows(), summary, problems, counts)


def _magento_items(order: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(i["item_id"]): i for i in order.get("items") or []}


def _units(value: Any) -> int:
    return int(Decimal(str(value or 0)))


def target_shipped(lines: list[dict[str, Any]], delivered: list[int]) -> dict[int, int]:
    """Magento top-level item -> units that should be shipped once ``delivered`` (per line) are.

    A plain line ships one to one; bundle children ship their parent by whole bundles
    (the least complete child decides).
    """
    target: dict[int, int] = {}
    groups: dict[int, list[tuple[dict[str, Any], int]]] = {}
    for line, units in zip(lines, delivered, strict=True):
        groups.setdefault(int(line.get("ship_item_id") or line["item_id"]), []).append((line, units))
    for ship_item_id, members in groups.items():
        if len(members) == 1 and int(members[0][0]["item_id"]) == ship_item_id:
            target[ship_item_id] = members[0][1]
        else:
            target[ship_item_id] = min(units // max(1, int(line.get("per_parent") or 1)) for line, units in members)
    return target


def cancelled_after_ship(state: OrderState) -> list[str]:
    """Deliveries magsit shipped in Magento that Sitoo has cancelled since, not reported yet."""
    data = state.mapping["data"]
    done = set(data.get("deliveries_done") or [])
    reported = set(data.get("cancelled_deliveries_reported") or [])
    return [str(d["orderdeliveryid"]) for d in sorted(state.deliveries, key=lambda d: int(d["orderdeliveryid"]))
            if d.get("datecancelled") and str(d["orderdeliveryid"]) in done
            and str(d["orderdeliveryid"]) not in reported]  # fmt: skip


def plan_order(state: OrderState, config: Config) -> tuple[list[ShipmentPlan], bool, list[RecordError]]:
    """Shipments for one order's new deliveries (pure). Returns (shipments, cancel?, problems)."""
    mapping = state.mapping
    increment_id = str(mapping["external_id"])
    data = mapping["data"]
    lines = data.get("lines") or []
    magento = state.magento or {}
    m_items = _magento_items(magento)
    done = set(data.get("deliveries_done") or [])
    by_orderitem = {line.get("sitoo_orderitemid"): index for index, line in enumerate(lines)}
    delivered = [int(line.get("shipped") or 0) for line in lines]
    shipped_in_magento = {item_id: _units(item.get("qty_shipped")) for item_id, item in m_items.items()}
    shipments: list[ShipmentPlan] = []
    problems: list[RecordError] = []
    settings = config.orders
    todo = [d for d in sorted(state.deliveries, key=lambda d: int(d["orderdeliveryid"]))
            if str(d["orderdeliveryid"]) not in done and not d.get("datecancelled")]
    closed_remainder = (
        int(state.sitoo.get("orderstateid") or 0) == SITOO_CLOSED
        and not todo
        and any(units_left(line) > 0 for line in lines)
    )
    if closed_remainder:
        # Closed in Sitoo with units no delivery covers (e.g. collected in store): ship the rest.
        todo.append({"orderdeliveryid": f"order-{mapping['other_id']}", "warehouseid": data.get("warehouse_id"),
                     "orderdeliveryitems": [{"orderitemid": line.get("sitoo_orderitemid"),
                                             "quantity": units_left(line)} for line in lines]})
    for delivery in todo:
        key = str(delivery["orderdeliveryid"])
        units: dict[int, int] = {}
        unknown = []
        for item in delivery.get("orderdeliveryitems") or []:
            index = by_orderitem.get(item.get("orderitemid"))
            if index is None:
                unknown.append(item.get("orderitemid"))
                continue
            units[index] = units.get(index, 0) + int(item.get("quantity") or 0)
        if unknown and not units:
            problems.append(RecordError("unmatched_delivery", "ops", f"{increment_id}/delivery-{key}",
                                        f"Sitoo delivery {key} of order {increment_id} names order lines {unknown} "
                                        "that magsit did not push; ship it by hand in Magento, then ignore this "
                                        "exception"))
            continue
        for index, count in units.items():
            delivered[index] += count
        target = target_shipped(lines, delivered)
        items: dict[int, int] = {}
        for item_id, want in target.items():
            m_item = m_items.get(item_id, {})
            # Magento ships at most ordered - shipped - refunded - canceled (Order\Item::getSimpleQtyToShip):
            # a refunded unit counts against what is left to ship even when it had been delivered and
            # came back (a store return). Asking for more fails the whole shipment, so what the store
            # delivered beyond that is taken as covered by the refund.
            cap = (_units(m_item.get("qty_ordered")) - _units(m_item.get("qty_canceled"))
                   - _units(m_item.get("qty_refunded")))  # fmt: skip
            qty = min(want, cap) - shipped_in_magento.get(item_id, 0)
            if qty > 0:
                items[item_id] = qty
                shipped_in_magento[item_id] = shipped_in_magento.get(item_id, 0) + qty
        warehouse = delivery.get("warehouseid") or data.get("warehouse_id")
        source = config.stock.sources.get(str(warehouse))
        if source is None:
            problems.append(RecordError("unmapped_warehouse", "ops", f"{increment_id}/delivery-{key}",
                                        f"Sitoo delivery {key} of order {increment_id} left from warehouse {warehouse}, "
                                        "which feeds no Magento source: add it to [stock].sources in magsit.toml, then "
                                        "`magsit exceptions retry`"))
            # Undo this delivery's effect on the running totals: it is not shipped yet.
            for index, count in units.items():
                delivered[index] -= count
            continue
        body: dict[str, Any] = {
            "items": [{"order_item_id": item_id, "qty": qty} for item_id, qty in sorted(items.items())],
            "notify": True,
            "appendComment": True,
            "comment": {"comment": f"Delivered by Sitoo (delivery {key}, warehouse {warehouse})", "is_visible_on_front": 0},
            "arguments": {"extension_attributes": {"source_code": source}},
        }
        ref = str(delivery.get("orderdeliveryref") or "").strip()
        if ref:
            body["tracks"] = [{"track_number": ref, "title": settings.carrier_title, "carrier_code": settings.carrier_code}]
        shipments.append(ShipmentPlan(increment_id, int(data["entity_id"]), key, units, body, items))
    for key in cancelled_after_ship(state):
        # Magento has no "un-ship": the shipment (and its e-mail to the customer) stands. A person decides.
        problems.append(RecordError("delivery_cancelled_after_shipment", "ops", f"{increment_id}/delivery-{key}",
                         f"Sitoo delivery {key} of web order {increment_id} was cancelled in Sitoo after magsit had "
                         "already shipped it in Magento (the customer got the shipping e-mail). Ask the store whether "
                         "the parcel left: if not, stop it and refund or re-ship the order in Magento; then resolve "
                         "this exception"))  # fmt: skip
    cancel = int(state.sitoo.get("orderstateid") or 0) == SITOO_CANCELLED and not data.get("sitoo_cancelled_done")
    return shipments, cancel, problems


# -- pull (reads only) ---------------------------------------------------------------------------
def _watched(ctx: JobContext) -> list[dict[str, Any]]:
    """Orders shipped in full within ``[orders].watch_shipped_hours`` (or named by an event): Sitoo
    may still cancel one of their deliveries, which needs a person (no "un-ship" in Magento)."""
    hours = ctx.config.orders.watch_shipped_hours
    wanted = set(ctx.options.get("orders") or ())
    since = iso(ctx.started_at - timedelta(hours=hours))
    return [m for status in ("shipped", "closed") for m in ctx.state.mappings("order", status=status)
            if m.get("other_id") and (m["external_id"] in wanted or (hours and str(m.get("updated_at") or "") >= since))]


def waiting_keys(ctx: JobContext) -> set[str]:
    """Record keys of this job that a run must not work on now: their exception backs off, or a
    person ignored it (or resolved it by hand)."""
    open_keys = {row["record_key"] for row in ctx.state.exceptions(status="open", job=ctx.job)}
    return {key for key in open_keys if not ctx.is_due(key)} | ctx.held_keys()


def pull(ctx: JobContext) -> Pulled:
    mappings = [m for m in ctx.state.mappings("order", status="pushed") if m.get("other_id")] + _watched(ctx)
    wanted = set(ctx.options.get("orders") or ())
    if wanted:
        mappings = [m for m in mappings if m["external_id"] in wanted]
    if not mappings:
        return Pulled([])
    sitoo_orders = {str(o["orderid"]): o for o in api.sitoo_orders_by(ctx, "orderid", [m["other_id"] for m in mappings])}
    states = [OrderState(m, sitoo_orders.get(str(m["other_id"]), {}), []) for m in mappings]
    states = [s for s in states if s.sitoo]

    def deliveries(state: OrderState) -> OrderState:
        state.deliveries = api.sitoo_deliveries(ctx, int(state.mapping["other_id"]))
        return state

    states = list(parallel_map(deliveries, states, ctx.config.sitoo.concurrency))
    for state in states:
        lines_from_sitoo(state.mapping["data"], state.sitoo)  # the read copy only: deliveries name lines by it
    news = [s for s in states if _has_news(s)]

    def detail(state: OrderState) -> OrderState:
        state.magento = api.magento_order(ctx, int(state.mapping["data"]["entity_id"]))
        return state

    list(parallel_map(detail, news, ctx.config.magento.concurrency))
    magento_orders = cancellations.pull(ctx, states)
    pulled = Pulled(states, magento_orders, waiting_keys(ctx))
    if refundedunits.needs_returns(magento_orders):
        pulled.returned = refundedunits.returned_units(ctx.state.mappings("refund"))
    pulled.open_refund_keys = {row["record_key"] for row in ctx.state.exceptions(status="open", job=ctx.job,
                                                                                  kind=refundedunits.KIND)}  # fmt: skip
    return pulled


def _open(state: OrderState) -> bool:
    return state.mapping["status"] == "pushed"


def _has_news(state: OrderState) -> bool:
    if cancelled_after_ship(state):
        return True
    if not _open(state):
        return False  # a shipped order is only watched for cancelled deliveries
    data = state.mapping["data"]
    done = set(data.get("deliveries_done") or [])
    if any(str(d["orderdeliveryid"]) not in done and not d.get("datecancelled") for d in state.deliveries):
        return True
    sitoo_state = int(state.sitoo.get("orderstateid") or 0)
    return sitoo_state in (SITOO_CLOSED, SITOO_CANCELLED)


# -- plan (pure) ---------------------------------------------------------------------------------
def _with_cancelled(state: OrderState, settled: dict[int, int]) -> OrderState:
    """A copy of ``state`` whose mapping counts the refunded units Sitoo no longer lists as
    cancelled, as push records them: a Sitoo order closed after its last delivery is then not
    "shipped for the rest" with units the customer got their money back for."""
    data = {**state.mapping["data"], "lines": [dict(line) for line in state.mapping["data"].get("lines") or []]}
    for index, units in settled.items():
        data["lines"][index]["canceled"] = max(int(data["lines"][index].get("canceled") or 0), units)
    return OrderState({**state.mapping, "data": data}, state.sitoo, state.deliveries, state.magento)


def plan(pulled: Pulled, config: Config, now: datetime) -> FulfilmentPlan:
    """Magento cancellations first (those orders leave the rest of the plan), then the
    reservations of the orders still open, then deliveries and Sitoo cancellations."""
    result = FulfilmentPlan(checked=len(pulled.states))
    open_states = cancellations.open_orders(pulled.states)
    decisions = cancellations.plan(((s.mapping, s.sitoo, s.deliveries) for s in open_states), pulled.magento_orders)
    gone = {d.increment_id for d in decisions}
    result.cancellations = [d for d in decisions if d.action == "delivered" or d.increment_id not in pulled.waiting]
    result.refunded = refundedunits.plan(((s.mapping, s.sitoo, s.deliveries) for s in open_states),
                                         pulled.magento_orders, pulled.returned, pulled.open_refund_keys,
                                         pulled.waiting)  # fmt: skip
    settled = {d.increment_id: d.settled for d in result.refunded if d.settled}
    states = [_with_cancelled(s, settled[str(s.mapping["external_id"])]) if str(s.mapping["external_id"]) in settled
              else s for s in pulled.states if str(s.mapping["external_id"]) not in gone]  # fmt: skip
    renewals = reservations.renewals(((s.mapping, s.sitoo) for s in states), int(now.timestamp()),
                                     config.orders.reservation_days)  # fmt: skip
    result.renewals = [r for r in renewals if r.key not in pulled.waiting]
    blocked: set[str] = set()  # orders with a delivery waiting: later ones build on its quantities
    for state in states:
        if state.magento is None:
            continue
        increment_id = str(state.mapping["external_id"])
        result.cancelled_after_ship.extend((increment_id, key) for key in cancelled_after_ship(state))
        shipments, cancel, problems = plan_order(state, config)
        if not _open(state):
            result.problems.extend(p for p in problems if p.kind == "delivery_cancelled_after_shipment")
            continue
        result.problems.extend(problems)
        result.touch.append(increment_id)
        for shipment in shipments:
            record = f"{increment_id}/delivery-{shipment.key}"
            if increment_id in blocked or record in pulled.waiting:
                blocked.add(increment_id)
                result.waiting.append({"action": "wait", "increment_id": increment_id, "delivery": shipment.key})
                continue
            result.shipments.append(shipment)
        if cancel and increment_id not in blocked and increment_id not in pulled.waiting:
            result.cancels.append((increment_id, int(state.mapping["data"]["entity_id"])))
    return result


# -- push (the only writer) ----------------------------------------------------------------------
def _save(ctx: JobContext, increment_id: str, mutate: Any) -> dict[str, Any]:
    mapping = ctx.state.get_mapping("order", "magento", increment_id)
    assert mapping is not None
    data = mapping["data"]
    mutate(data)
    status = finished_status(data) if mapping["status"] == "pushed" else mapping["status"]
    ctx.state.put_mapping("order", "magento", increment_id, mapping["other_id"], data, status)
    return data


def ship_parts(items: dict[int, int], limit: int) -> list[dict[int, int]]:
    """A shipment's items cut to the shop's input list limit: one Magento shipment per part (§5.1)."""
    rows = sorted(items.items())
    size = max(1, limit)
    return [dict(rows[i : i + size]) for i in range(0, len(rows), size)]


def _part_body(shipment: ShipmentPlan, part: dict[int, int], number: int, total: int) -> dict[str, Any]:
    """The planned body for one part: its items, the delivery's tracking and notify=true on every part."""
    body = {**shipment.body, "items": [{"order_item_id": item_id, "qty": qty} for item_id, qty in sorted(part.items())]}
    if total > 1 and body.get("comment"):
        text = str(body["comment"]["comment"]).removesuffix(")")
        body["comment"] = {**body["comment"], "comment": f"{text}, part {number} of {total})"}
    return body


def push_shipment(ctx: JobContext, shipment: ShipmentPlan, backoff: timedelta | None) -> None:
    """Ship one delivery, in as many Magento shipments as the shop's input list limit needs.

    Each part is a document create (never resent blindly). A crash or failure between parts is safe:
    the delivery's mapping stays ``pending`` until the last part, and the next run plans from the
    order's ``qty_shipped``, so only what no part shipped yet is sent again.
    """
    key = shipment.key
    record = f"{shipment.increment_id}/delivery-{key}"

    def apply(data: dict[str, Any]) -> None:
        lines = data.get("lines") or []
        for index, count in shipment.delivery_units.items():
            lines[index]["shipped"] = min(int(lines[index]["qty"]), int(lines[index].get("shipped") or 0) + count)
        data.setdefault("deliveries_done", [])
        if key not in data["deliveries_done"]:
            data["deliveries_done"].append(key)

    existing = ctx.state.get_mapping("shipment", "sitoo", key)
    shipment_ids: list[str] = list((existing or {}).get("data", {}).get("shipment_ids") or [])
    earlier = len(shipment_ids)  # parts a previous run already shipped

    def done(how: str) -> None:
        with ctx.state.transaction():
            ctx.state.put_mapping("shipment", "sitoo", key, shipment_ids[0] if shipment_ids else None,
                                  {"increment_id": shipment.increment_id, "entity_id": shipment.entity_id, "how": how,
                                   "items": {str(k): v for k, v in shipment.items.items()},
                                   "shipment_ids": shipment_ids}, "done")  # fmt: skip
            _save(ctx, shipment.increment_id, apply)
            ctx.succeeded(record)
        # "shipments" counts Magento shipments created by this run (a delivery in parts makes several).
        ctx.counts[how] += max(1, len(shipment_ids) - earlier) if how == "shipments" else 1

    def intent() -> None:
        ctx.state.put_mapping("shipment", "sitoo", key, None, {"increment_id": shipment.increment_id,
                                                               "entity_id": shipment.entity_id,
                                                               "shipment_ids": shipment_ids}, "pending")  # fmt: skip

    if existing is not None and existing["status"] == "done":
        with ctx.state.transaction():
            _save(ctx, shipment.increment_id, apply)
        return
    if not shipment.items:
        # Everything this delivery covers is already shipped in Magento (an earlier POST whose answer
        # was lost, a part shipped before a crash, or a shipment made by hand): record it, create nothing.
        done("already_shipped" if not shipment_ids else "shipments")
        return
    intent()
    crashpoint("fulfilment.before_ship")
    pending = ship_parts(shipment.items, ctx.magento.list_limit)
    while pending:
        part = pending.pop(0)
        number = len(shipment_ids) + 1  # parts shipped before a crash keep their numbers
        try:
            shipment_id = api.magento_ship(ctx, shipment.entity_id, _part_body(shipment, part, number, number + len(pending)))
        except ApiError as error:
            if ctx.magento.adapt_list_limit(error, len(part)):
                # Refused as a whole (nothing saved): cut this part and the rest to the shop's limit.
                rest = {k: v for p in [part, *pending] for k, v in p.items()}
                pending = ship_parts(rest, ctx.magento.list_limit)
                continue
            if _already_shipped(ctx, shipment.entity_id, part, error):
                continue
            if not error.outcome_unknown and not shipment_ids:
                ctx.state.delete_mapping("shipment", "sitoo", key)
            ctx.fail(
                "shipment_failed", "ops", record,
                f"Magento did not create the shipment for Sitoo delivery {key} of order {shipment.increment_id}: "
                f"{error.message}. Check the order in Magento (on hold? already shipped by hand?); magsit retries it"
                + (" and first checks whether the shipment exists" if error.outcome_unknown else "")
                + (f" ({len(shipment_ids)} part(s) of this delivery are already shipped; only the rest is sent)"
                   if shipment_ids else ""),
                {"items": shipment.items}, retry_after=backoff,
            )
            return
        shipment_ids.append(str(shipment_id))
        crashpoint("fulfilment.after_ship")
        if pending:
            intent()  # this part is in Magento: recorded before the next one is sent
            crashpoint("fulfilment.between_parts")
    done("shipments" if len(shipment_ids) > earlier else "already_shipped")


def _already_shipped(ctx: JobContext, entity_id: int, part: dict[int, int], error: ApiError) -> bool:
    """"The order does not allow a shipment" after a lost answer: true when Magento's ``qty_shipped``
    already covers this part (§9: verify and treat as success)."""
    if NOT_ALLOWED not in (error.message or "") and NOT_ALLOWED not in str(error.body or ""):
        return False
    try:
        fresh = _magento_items(api.magento_order(ctx, entity_id))
    except ApiError:
        return False  # unreadable now: a shipment_failed row, re-checked on the next run
    return bool(fresh) and all(_units(fresh.get(i, {}).get("qty_shipped")) >= q for i, q in part.items())


def push_cancel(ctx: JobContext, increment_id: str, entity_id: int, backoff: timedelta | None) -> None:
    try:
        # Read first: a cancel whose answer was lost shows as a cancelled order here (never sent twice).
        order = api.magento_order(ctx, entity_id)
        if order.get("state") in ("canceled", "closed", "complete"):
            accepted = True
        else:
            accepted = api.magento_cancel(ctx, entity_id) is True
    except ApiError as error:  # this order only: the other orders' shipments and cancels go on
        ctx.fail(
            "cancel_failed", "ops", increment_id,
            f"order {increment_id} was cancelled in Sitoo, but cancelling it in Magento failed: {error.message}. "
            "magsit tries again on the next runs; if this persists, check the order in Magento (on hold? deleted?)",
            retry_after=backoff,
        )
        return
    crashpoint("fulfilment.after_cancel")
    if accepted:
        with ctx.state.transaction():
            _save(ctx, increment_id, cancel_rest)
            ctx.succeeded(increment_id)
        ctx.counts["canceled"] += 1
        return
    mapping = ctx.state.get_mapping("order", "magento", increment_id) or {"data": {}}
    if not mapping["data"].get("cancel_refused_commented"):
        api.magento_comment(ctx, entity_id, (
            f"Sitoo cancelled this order (Sitoo order {mapping.get('other_id')}), but Magento refused to cancel it "
            "(invoiced or otherwise not cancellable). Refund or close it by hand."))
    # Sitoo no longer holds these units: they leave the in-flight count even though Magento keeps the order.
    with ctx.state.transaction():
        _save(ctx, increment_id, lambda d: cancel_rest(d).update(cancel_refused_commented=True))
    ctx.fail(
        "cancel_refused", "ops", increment_id,
        f"order {increment_id} was cancelled in Sitoo but Magento refused to cancel it (probably invoiced): "
        "create a credit memo / refund in Magento or re-create the Sitoo order, then resolve this exception",
        retry_after=backoff,
    )


def push(ctx: JobContext, plan_: FulfilmentPlan) -> JobResult:
    backoff = timedelta(minutes=ctx.config.orders.retry_backoff_minutes) or None
    cancellations.push(ctx, plan_.cancellations)
    refundedunits.push(ctx, plan_.refunded)
    reservations.push_renewals(ctx, plan_.renewals, backoff)
    for problem in plan_.problems:
        ctx.fail_record(problem, backoff)
    for increment_id, key in plan_.cancelled_after_ship:
        # Reported once: the exception row is the person's task; later runs do not raise it again.
        with ctx.state.transaction():
            _save(ctx, increment_id, lambda d, k=key: d.setdefault("cancelled_deliveries_reported", []).append(k))
    failed_orders: set[str] = set()
    shipped: list[str] = []
    for shipment in plan_.shipments:
        if ctx.should_stop():
            break
        if shipment.increment_id in failed_orders:
            continue  # a later delivery of an order whose earlier one failed waits: quantities build on it
        before = len(ctx.failures)
        push_shipment(ctx, shipment, backoff)
        if len(ctx.failures) > before:
            failed_orders.add(shipment.increment_id)
        elif shipment.increment_id not in shipped:
            shipped.append(shipment.increment_id)
            log.info("order %s: delivery %s shipped in Magento", shipment.increment_id, shipment.key)
    for increment_id, entity_id in plan_.cancels:
        if ctx.should_stop():
            break
        if increment_id not in failed_orders:
            push_cancel(ctx, increment_id, entity_id, backoff)
    # Orders that finished with nothing left to do (e.g. closed after their last delivery).
    for increment_id in plan_.touch:
        with ctx.state.transaction():
            _save(ctx, increment_id, lambda d: None)
    ctx.counts["orders_checked"] += plan_.checked
    summary = [f"{plan_.checked} open order(s) checked"]
    if shipped:
        summary.append(f"shipped in Magento: {', '.join(shipped[:20])}" + (f" and {len(shipped) - 20} more" if len(shipped) > 20 else ""))
    return JobResult(plan=plan_.rows(), summary=summary)
