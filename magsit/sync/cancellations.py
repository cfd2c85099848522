"""Magento cancellations of pushed web orders -> Sitoo (issue 16 §2, pitfalls P19).

A sub-step of ``sync-fulfilment``, split like it: ``pull`` is called from its pull (which already
reads the Sitoo order and the deliveries of every open pushed order) and adds one batched Magento
read of those orders' states (``entity_id in (…)``, paged); ``plan`` from its plan, which takes
the orders cancelled in Magento out of the fulfilment plan; ``push`` from its push.

plan  — pure: an open pushed order whose Magento state is ``canceled`` (cancelled, or the
        original of an "edit order", which Magento cancels when it places ``<increment>-1``),
        ``closed`` (a full refund before it shipped) or ``EDITED`` (replaced by an edit, but
        Magento could not cancel it: already invoiced) is
        * cancelled in Sitoo (``orderstateid`` 20, which releases its reservation) when Sitoo has
          no delivery for it — sitoo-api.md §6: "You can't delete an order, set orderstate to
          cancelled instead";
        * left alone with an exception for ops when the store already delivered all or part of
          it (stop the parcel, settle the refund);
        * left to sync-fulfilment's own cancel path when Sitoo has cancelled it already.
push  — PUT ``orderstateid`` 20, then the mapping's lines count as cancelled in the same
        transaction, so their in-flight units leave the stock formula at once. The mapping is no
        longer open afterwards: a second round reads and writes nothing for the order. An EDITED
        original stays open in Magento with its payment: finance get one exception to refund it.

Why the original and not the edit: the edit is what the customer buys now (Magento itself cancels
the original whenever it can), and push-orders pushes it like any order. Cancelling the original
in Sitoo is what Magento would have done on its side; only the money on the invoiced original is
left, which is finance's call (refund it, or move it to the edit), not the store's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from magsit.errors import ApiError, RecordError
from magsit.runner import JobContext
from magsit.sync import calls as api
from magsit.sync.ordermapping import cancel_rest
from magsit.testing.crashpoints import crashpoint

log = logging.getLogger("magsit.cancellations")

SITOO_CLOSED, SITOO_CANCELLED = 10, 20
# Not a Magento state: the order was replaced by an edit (``relation_child_real_id``, pitfalls P19)
# but Magento could not cancel it (already invoiced), so it stays e.g. ``processing``. The customer
# now buys the edit, which push-orders pushes as its own order: the store must not deliver both.
EDITED = "edited"
# States after which nothing of the order is to be delivered any more (magento-api.md §8:
# canceled = cancelled, or replaced by an edit Magento could cancel; closed = fully refunded).
MAGENTO_GONE = frozenset({"canceled", "closed", EDITED})


@dataclass
class Decision:
    action: str  # cancel (PUT orderstateid 20) | delivered (exception, nothing sent) | recorded (see plan)
    increment_id: str
    sitoo_orderid: str
    magento_state: str
    delivered: int = 0  # units Sitoo delivered (for the message)
    ordered: int = 0
    refs: list[str] = field(default_factory=list)
    replaced_by: str = ""  # the edit's increment id (EDITED)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": f"magento_cancel_{self.action}", "increment_id": self.increment_id,
                               "sitoo_orderid": self.sitoo_orderid, "magento_state": self.magento_state}
        if self.action == "delivered":
            out.update(delivered=self.delivered, ordered=self.ordered)
        return out

    def problem(self) -> RecordError:
        """The exception a ``delivered`` decision raises: the store delivered, a person decides."""
        what = {"canceled": "cancelled", "closed": "closed (fully refunded)"}.get(
            self.magento_state, f"replaced by its edit {self.replaced_by} (which magsit pushes as its own order)")
        refs = f" (tracking {', '.join(self.refs[:5])})" if self.refs else ""
        both = (f" The store may deliver {self.replaced_by} too: decide with the customer what they keep."
                if self.replaced_by else "")  # fmt: skip
        return RecordError(
            "cancelled_after_delivery", "ops", self.increment_id,
            f"order {self.increment_id} was {what} in Magento, but the store already delivered "
            f"{self.delivered} of {self.ordered} unit(s) of Sitoo order {self.sitoo_orderid}{refs}.{both} "
            "magsit cancelled nothing in Sitoo. Stop the parcel if it has not left (and cancel what is left of "
            "the order in Sitoo), make sure the customer is refunded in Magento for what they will not keep, "
            "then resolve this exception",
            {"sitoo_orderid": self.sitoo_orderid, "delivered": self.delivered, "refs": self.refs[:5]},
        )

    def still_open(self) -> RecordError:
        """After the Sitoo original of an EDITED order is cancelled: Magento keeps the original open
        with its invoice, and nobody else will close it."""
        return RecordError(
            "edited_original_still_open", "finance", self.increment_id,
            f"web order {self.increment_id} was replaced by its edit {self.replaced_by}, but Magento could not "
            f"cancel {self.increment_id} (it is already invoiced), so it stays open with its payment. magsit "
            f"cancelled its Sitoo order {self.sitoo_orderid} so the store delivers only {self.replaced_by}, and "
            f"will not ship {self.increment_id}. Refund {self.increment_id} in Magento (credit memo; offline if its "
            f"money was moved to {self.replaced_by}) so the customer does not pay twice, then resolve this exception",
            {"sitoo_orderid": self.sitoo_orderid, "replaced_by": self.replaced_by},
        )


class _Order(Protocol):
    mapping: dict[str, Any]
    sitoo: dict[str, Any]
    deliveries: list[dict[str, Any]]


def open_orders(orders: Iterable[_Order]) -> list[_Order]:
    """Only open pushed orders: shipped ones that sync-fulfilment still watches are done for Sitoo."""
    return [o for o in orders if o.mapping.get("status") == "pushed"]


def pull(ctx: JobContext, orders: Iterable[_Order]) -> dict[int, dict[str, Any]]:
    """entity_id -> the Magento order (``calls.OPEN_ORDER_FIELDS``: state, edit, item quantities)
    of the open pushed orders among sync-fulfilment's ``orders``."""
    entity_ids = sorted({str(o.mapping["data"]["entity_id"]) for o in open_orders(orders) if o.mapping["data"].get("entity_id")})
    return api.magento_open_orders(ctx, entity_ids) if entity_ids else {}


def state_of(row: Mapping[str, Any]) -> str:
    """The Magento state, or EDITED for an original its edit replaced but Magento left open."""
    state = str(row.get("state") or "")
    if row.get("relation_child_real_id") and state not in ("canceled", "closed", "complete"):
        return EDITED
    return state


def states(magento_orders: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """entity_id -> ``state_of`` the Magento order."""
    return {entity_id: state_of(row) for entity_id, row in magento_orders.items()}


def delivered_units(deliveries: Iterable[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """Units the store delivered (deliveries not cancelled) and their tracking references."""
    units, refs = 0, []
    for delivery in deliveries:
        if delivery.get("datecancelled"):
            continue
        count = sum(int(item.get("quantity") or 0) for item in delivery.get("orderdeliveryitems") or [])
        if count:
            units += count
            ref = str(delivery.get("orderdeliveryref") or "").strip()
            if ref:
                refs.append(ref)
    return units, refs


def plan(orders: Iterable[tuple[Mapping[str, Any], Mapping[str, Any], list[dict[str, Any]]]],
         magento_orders: Mapping[int, Mapping[str, Any]]) -> list[Decision]:
    """Per (order mapping, Sitoo order, its deliveries) whose Magento order is cancelled, closed or
    replaced by an edit (``calls.OPEN_ORDER_FIELDS`` rows by entity_id)."""
    decisions: list[Decision] = []
    for mapping, sitoo, deliveries in orders:
        data = mapping.get("data") or {}
        try:
            row = magento_orders.get(int(data.get("entity_id")))
        except (TypeError, ValueError):
            continue
        state = None if row is None else state_of(row)
        if row is None or state not in MAGENTO_GONE:
            continue
        replaced_by = str(row.get("relation_child_real_id") or "") if state == EDITED else ""
        increment_id, orderid = str(mapping["external_id"]), str(mapping.get("other_id"))
        ordered = sum(int(line.get("qty") or 0) for line in data.get("lines") or [])
        sitoo_state = int(sitoo.get("orderstateid") or 0)
        if sitoo_state == SITOO_CANCELLED:
            if state == EDITED:
                # Cancelled in Sitoo already (by a person, or by an earlier run whose record was lost):
                # recorded like our own cancel, no PUT. Magento's open original is finance's to refund,
                # not a Sitoo cancellation for sync-fulfilment to carry to Magento (cancel_refused).
                decisions.append(Decision("recorded", increment_id, orderid, state, ordered=ordered, replaced_by=replaced_by))
            # Otherwise cancelled on both sides (by the store, or by an earlier run of this step whose
            # record was lost): sync-fulfilment's own cancel path reads Magento and records it, writing nothing.
            continue
        units, refs = delivered_units(deliveries)
        if units or sitoo_state == SITOO_CLOSED:
            decisions.append(Decision("delivered", increment_id, orderid, state, units or ordered, ordered, refs,
                                      replaced_by))  # fmt: skip
        else:
            decisions.append(Decision("cancel", increment_id, orderid, state, ordered=ordered, replaced_by=replaced_by))
    return decisions


# -- push -----------------------------------------------------------------------------------------
def _finish(ctx: JobContext, decision: Decision, how: str) -> None:
    """The Magento order holds nothing any more: its lines count as cancelled (in-flight units drop
    out of the stock formula) and the mapping leaves the open orders."""
    mapping = ctx.state.get_mapping("order", "magento", decision.increment_id)
    if mapping is None:
        return
    data = cancel_rest(dict(mapping["data"]))
    data["magento_cancelled"] = {"state": decision.magento_state, "how": how}
    shipped = any(int(line.get("shipped") or 0) for line in data.get("lines") or [])
    ctx.state.put_mapping("order", "magento", decision.increment_id, mapping["other_id"], data,
                          "closed" if shipped else "canceled")


def _cancel(ctx: JobContext, decision: Decision, backoff: timedelta | None) -> None:
    try:
        # The store may have delivered since the batch read: one more look narrows that window.
        units, refs = delivered_units(api.sitoo_deliveries(ctx, int(decision.sitoo_orderid)))
        if units:
            _delivered(ctx, Decision("delivered", decision.increment_id, decision.sitoo_orderid,
                                     decision.magento_state, units, decision.ordered, refs, decision.replaced_by))
            return
        api.sitoo_update_order(ctx, int(decision.sitoo_orderid), {"orderstateid": SITOO_CANCELLED})
        crashpoint("cancellations.after_cancel")  # cancelled in Sitoo, not yet recorded: the next run reads 20
    except ApiError as error:
        ctx.fail(
            "sitoo_cancel_failed", "ops", decision.increment_id,
            f"order {decision.increment_id} is {decision.magento_state} in Magento, but cancelling Sitoo order "
            f"{decision.sitoo_orderid} failed: {error.message}. Until it is cancelled the store may still pick it: "
            "magsit tries again on the next runs; if this persists, cancel the order in Sitoo Backoffice",
            {"sitoo_orderid": decision.sitoo_orderid, "status": error.status}, retry_after=backoff,
        )
        return
    with ctx.state.transaction():
        _finish(ctx, decision, "cancelled_in_sitoo")
        if decision.magento_state == EDITED:
            ctx.fail_record(decision.still_open())  # the Sitoo side is done; Magento's original is not
        else:
            ctx.succeeded(decision.increment_id)
    ctx.counts["cancelled_in_sitoo"] += 1
    log.info("order %s is %s in Magento: Sitoo order %s cancelled", decision.increment_id,
             decision.magento_state, decision.sitoo_orderid)


def _delivered(ctx: JobContext, decision: Decision) -> None:
    with ctx.state.transaction():
        _finish(ctx, decision, "delivered_before_cancel")
        ctx.fail_record(decision.problem())
    ctx.counts["cancelled_after_delivery"] += 1


def push(ctx: JobContext, decisions: list[Decision]) -> None:
    """``decisions`` as planned: the cancels whose exception is not due are already left out."""
    backoff = timedelta(minutes=ctx.config.orders.retry_backoff_minutes) or None
    for decision in decisions:
        if ctx.should_stop():
            break
        if decision.action == "delivered":
            _delivered(ctx, decision)
        elif decision.action == "recorded":
            with ctx.state.transaction():
                _finish(ctx, decision, "cancelled_in_sitoo_before")
                ctx.fail_record(decision.still_open())
        else:
            _cancel(ctx, decision, backoff)
