"""Sitoo reservations of pushed web orders: renew them before they lapse, and check that Sitoo
holds them at all (issue 16 §3).

sitoo-api.md §5 "Reservations": ``datereserved`` is "the date that a warehouse stock reservation
is valid until"; nothing public says more (whether Sitoo reserves for API-created orders, whether
a PUT of a later ``datereserved`` renews a reservation). magsit's answer (docs/reliability.md):

* ``renewals`` (planned by sync-fulfilment, which reads the Sitoo orders of the open pushed orders
  anyway; ``push_renewals`` in its push): an open Sitoo order whose ``datereserved`` is less than half of
  ``[orders].reservation_days`` away (or past) gets ``datereserved`` = now + reservation_days.
* Whatever Sitoo does with that, sync-stock never adds back more in-flight units than Sitoo shows
  reserved (``stockplan.unheld``), so a lapsed or missing reservation costs at most a transient
  undersell, never a double count.
* ``not_reserving`` (run by sync-stock on the warehouse items it reads anyway): conclusive
  evidence that Sitoo does not hold units of orders magsit pushed — the item has had no stock
  transaction since the orders were pushed (so no delivery took the units away) and shows fewer
  units reserved than those orders hold. That is a run-level alert to ops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from magsit.errors import ApiError, RecordError
from magsit.runner import JobContext
from magsit.state.store import parse_iso
from magsit.sync import calls as api
from magsit.sync.inflight import mapping_is_open

log = logging.getLogger("magsit.reservations")

SITOO_OPEN = 0
DAY = 86400
ALERT_KEY = "sitoo-reservations"
# Sitoo's and magsit's clocks differ a little: a stock transaction this close to a push may be after it.
CLOCK_MARGIN = 300


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Renewal:
    increment_id: str
    sitoo_orderid: str
    until: int  # new datereserved (epoch seconds)
    was: int

    @property
    def key(self) -> str:
        """Its exception's record key."""
        return f"{self.increment_id}/reservation"

    def describe(self) -> dict[str, Any]:
        return {"action": "renew_reservation", "increment_id": self.increment_id, "sitoo_orderid": self.sitoo_orderid,
                "datereserved": self.until, "was": self.was}


def renewals(orders: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], now: int, days: int) -> list[Renewal]:
    """Pure: (order mapping, Sitoo order) pairs -> the reservations to renew now."""
    if days <= 0:
        return []
    out: list[Renewal] = []
    for mapping, sitoo in orders:
        until = _epoch(sitoo.get("datereserved"))
        # null = "no reservation" (sitoo-api.md §5): nothing to keep alive
        if until is None or int(sitoo.get("orderstateid") or 0) != SITOO_OPEN or mapping.get("status", "pushed") != "pushed":
            continue
        if until - now < days * DAY / 2:
            out.append(Renewal(str(mapping["external_id"]), str(mapping.get("other_id")), now + days * DAY, until))
    return out


def push_renewals(ctx: JobContext, todo: list[Renewal], backoff: timedelta | None) -> None:
    """sync-fulfilment's push: the planned renewals (those whose exception is not due are left out)."""
    for renewal in todo:
        if ctx.should_stop():
            break
        try:
            api.sitoo_update_order(ctx, int(renewal.sitoo_orderid), {"datereserved": renewal.until})
        except ApiError as error:
            ctx.fail(
                "reservation_renewal_failed", "ops", renewal.key,
                f"the Sitoo reservation of order {renewal.increment_id} (Sitoo order {renewal.sitoo_orderid}) ends "
                f"{datetime.fromtimestamp(renewal.was, tz=ctx.started_at.tzinfo):%Y-%m-%d %H:%M} UTC and could not be "
                f"renewed: {error.message}. After that the store can sell the units at the till. magsit tries again; "
                "if this persists, ship the order soon or set its reservation in Sitoo Backoffice",
                {"sitoo_orderid": renewal.sitoo_orderid, "datereserved": renewal.was}, retry_after=backoff,
            )
            continue
        ctx.succeeded(renewal.key)
        ctx.counts["reservations_renewed"] += 1


# -- does Sitoo hold what magsit pushed? ------------------------------------------------------------
@dataclass
class Shortfall:
    sku: str
    warehouse: str
    expected: Decimal  # units of open pushed orders since the item's last transaction
    reserved: Decimal


def not_reserving(
    mappings: Iterable[Mapping[str, Any]],
    observed: Mapping[tuple[str, str], tuple[Decimal | None, int | None]],
    now: datetime,
    days: int,
) -> tuple[list[Shortfall], int]:
    """Pure. ``observed``: (sku, Sitoo warehouse) -> (decimalreserved, datelastmodified) as read.

    Only conclusive cases count: orders pushed after the item's last stock transaction (plus a
    clock margin; a delivery is a transaction, so none of their units can have been delivered) and
    young enough that their ``datereserved`` cannot have lapsed (less than half of
    ``reservation_days``, the renewal point). Returns (shortfalls, number of conclusive items).
    """
    if days <= 0:
        return [], 0
    young = now - timedelta(days=days / 2)
    expected: dict[tuple[str, str], Decimal] = {}
    for mapping in mappings:
        created = parse_iso(mapping.get("created_at"))
        if created is None or created < young or not mapping_is_open(mapping):
            continue
        data = mapping.get("data") or {}
        if data.get("adopted"):
            continue  # found in Sitoo, not created by this push: it may be older than its mapping
        warehouse = str(data.get("warehouse_id"))
        for line in data.get("lines") or []:
            if not isinstance(line, Mapping) or not isinstance(line.get("sku"), str):
                continue
            key = (line["sku"], warehouse)
            if key not in observed:
                continue
            _, modified = observed[key]
            if modified is None or modified + CLOCK_MARGIN >= created.timestamp():
                continue  # a transaction since the push (maybe a delivery): inconclusive
            try:
                units = Decimal(str(line.get("qty") or 0)) - Decimal(str(line.get("shipped") or 0)) - Decimal(
                    str(line.get("canceled") or 0))
            except ArithmeticError:
                continue
            if units > 0:
                expected[key] = expected.get(key, Decimal(0)) + units
    shortfalls = []
    for key, units in sorted(expected.items()):
        reserved = observed[key][0]
        if reserved is not None and reserved < units:
            shortfalls.append(Shortfall(key[0], key[1], units, reserved))
    return shortfalls, len(expected)


@dataclass
class ReservationCheck:
    """What sync-stock's plan concluded: the ``sitoo_not_reserving`` alert to raise, or whether the
    evidence was conclusive enough to resolve an open one."""

    problem: RecordError | None = None
    resolve: bool = False


def plan_check(
    mappings: Iterable[Mapping[str, Any]],
    observed: Mapping[tuple[str, str], tuple[Decimal | None, int | None]],
    now: datetime,
    days: int,
) -> ReservationCheck:
    """Pure (sync-stock's plan): the run-level ``sitoo_not_reserving`` alert, or a resolve."""
    shortfalls, conclusive = not_reserving(mappings, observed, now, days)
    if not shortfalls:
        return ReservationCheck(resolve=bool(conclusive))
    first = shortfalls[0]
    more = f" (and {len(shortfalls) - 1} more SKU/warehouse pair(s))" if len(shortfalls) > 1 else ""
    return ReservationCheck(RecordError(
        "sitoo_not_reserving", "ops", ALERT_KEY,
        f"Sitoo shows {first.reserved} unit(s) of SKU {first.sku} reserved in warehouse {first.warehouse}, but "
        f"web orders magsit pushed there since its last stock movement hold {first.expected}{more}: Sitoo does "
        "not reserve stock for these orders. The web shop is not oversold (magsit counts only what Sitoo shows "
        "reserved), but the store can sell those units at the till. Ask Sitoo support why orders created through "
        "the API with datereserved do not reserve; this resolves itself once reservations show",
        {"sku": first.sku, "warehouse": first.warehouse, "expected": str(first.expected),
         "reserved": str(first.reserved), "pairs": len(shortfalls)},
    ))


def push_check(ctx: JobContext, check: ReservationCheck) -> None:
    """sync-stock's push: raise (or resolve) the run-level ``sitoo_not_reserving`` alert."""
    if check.problem is not None:
        ctx.fail_record(check.problem)
    elif check.resolve:
        ctx.succeeded(ALERT_KEY)
