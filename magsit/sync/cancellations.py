"""Magento cancellations of pushed web orders -> Sitoo (issue 16 §2, pitfalls P19).

A sub-step of ``sync-fulfilment``, split like it: ``pull`` is called from its pull (which already
reads the Sitoo order and the deliveries of every open pushed order) and adds one batched Magento
read of those orders' states (``entity_id in (…)``, paged); ``plan`` from its plan, which takes
the orders cancelled in Magento out of the fulfilment plan; ``push`` from its push.

plan  — pure: an open pushed order whose Magento state is ``canceled`` (cancelled, or the
        original of an "edit order", which Magento cancels when it places ``<increment>-1``) or
        ``closed`` (a full refund before it shipped) is
        * cancelled in Sitoo (``orderstateid`` 20, which releases its reservation) when Sitoo has
          no delivery for it — sitoo-api.md §6: "You can't delete an order, set orderstate to
          cancelled instead";
        * left alone with an exception for ops when the store already delivered all or part of
          it (stop the parcel, settle the refund);
        * left to sync-fulfilment's own cancel path when Sitoo has cancelled it already.
push  — PUT ``orderstateid`` 20, then the mapping's lines count as cancelled in the same
        transaction, so their in-flight units leave the stock formula at once. The mapping is no
        longer open afterwards: a second round reads and writes nothing for the order.
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
# Magento states after which nothing of the order is to be delivered any more (magento-api.md §8:
# canceled = cancelled or replaced by an edit; closed = fully refunded).
MAGENTO_GONE = frozenset({"canceled", "closed"})


@dataclass
class Decision:
    action: str  # cancel (PUT orderstateid 20) | delivered (exception, nothing sent)
    increment_id: str
    sitoo_orderid: str
    magento_state: str
    delivered: int = 0  # units Sitoo delivered (for the message)
    ordered: int = 0
    refs: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": f"magento_cancel_{self.action}", "increment_id": self.increment_id,
                               "sitoo_orderid": self.sitoo_orderid, "magento_state": self.magento_state}
        if self.action == "delivered":
            out.update(delivered=self.delivered, ordered=self.ordered)
        return out

    def problem(self) -> RecordError:
        """The exception a ``delivered`` decision raises: the store delivered, a person decides."""
        what = "cancelled" if self.magento_state == "canceled" else "closed (fully refunded)"
        refs = f" (tracking {', '.join(self.refs[:5])})" if self.refs else ""
        return RecordError(
            "cancelled_after_delivery", "ops", self.increment_id,
            f"order {self.increment_id} was {what} in Magento, but the store already delivered "
            f"{self.delivered} of {self.ordered} unit(s) of Sitoo order {self.sitoo_orderid}{refs}. "
            "magsit cancelled nothing in Sitoo. Stop the parcel if it has not left (and cancel what is left of "
            "the order in Sitoo), make sure the customer is refunded in Magento for what they will not keep, "
            "then resolve this exception",
            {"sitoo_orderid": self.sitoo_orderid, "delivered": self.delivered, "refs": self.refs[:5]},
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


def states(magento_orders: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """entity_id -> Magento order state."""
    return {entity_id: str(row.get("state") or "") for entity_id, row in magento_orders.items()}


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
         magento_states: Mapping[int, str]) -> list[Decision]:
    """Per (order mapping, Sitoo order, its deliveries) whose Magento order is cancelled or closed."""
    decisions: list[Decision] = []
    for mapping, sitoo, deliveries in orders:
        data = mapping.get("data") or {}
        try:
            state = magento_states.get(int(data.get("entity_id")))
        except (TypeError, ValueError):
            continue
        if state not in MAGENTO_GONE:
            continue
        increment_id, orderid = str(mapping["external_id"]), str(mapping.get("other_id"))
        ordered = sum(int(line.get("qty") or 0) for line in data.get("lines") or [])
        sitoo_state = int(sitoo.get("orderstateid") or 0)
        if sitoo_state == SITOO_CANCELLED:
            # Cancelled on both sides (by the store, or by an earlier run of this step whose record
            # was lost): sync-fulfilment's own cancel path reads Magento and records it, writing nothing.
            continue
        units, refs = delivered_units(deliveries)
        if units or sitoo_state == SITOO_CLOSED:
            decisions.append(Decision("delivered", increment_id, orderid, state, units or ordered, ordered, refs))
        else:
            decisions.append(Decision("cancel", increment_id, orderid, state, ordered=ordered))
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
                                     decision.magento_state, units, decision.ordered, refs))
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
        else:
            _cancel(ctx, decision, backoff)
