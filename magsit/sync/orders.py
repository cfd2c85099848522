"""push-orders: Magento web orders -> Sitoo orders fulfilled by a store or warehouse, exactly once.

pull  — read orders changed since the cursor (keyset on ``(updated_at, entity_id)``, lookback,
        statuses filtered), plus the retry queue and any ``--order``; detail GET each candidate;
        look their ``externalid`` up in Sitoo (batched), pre-check SKUs and prices (batched).
plan  — pure: per order adopt (already in Sitoo), create, fail (exception kind/owner) or skip.
push  — per create: pending mapping (intent + externalid) BEFORE the POST, outcome after. An
        unknown outcome (timeout, 5xx, crash) is resolved by looking the externalid up first —
        now and on every later run — so one Magento order never becomes two Sitoo orders.
        Creates of different orders are in flight ``[orders].concurrency`` at a time; the state
        is written by the run's own thread only, in each order's own sequence.
The cursor commits in the same transaction as the run's last outcomes and never passes
``run_start − lookback``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from magsit.config import Config, OrderSettings
from magsit.errors import ApiError, RecordError
from magsit.flow import Doing, Preview, plural, would, would_counts
from magsit.http import parallel_map
from magsit.runner import JobContext, JobResult
from magsit.state.cursor import KeysetPosition
from magsit.sync import calls as api
from magsit.sync.keyset import key_of, keyset_scan, magento_ts, read_start, save_cursor
from magsit.sync.ordermapping import lines_from_sitoo
from magsit.sync.orderpayload import OrderPlan, build_order, is_pickup, order_email, sanitise_externalid
from magsit.sync.sitoousers import creating_users, forget_refused, settle_new_users, spellings_of
from magsit.testing.crashpoints import crashpoint

log = logging.getLogger("magsit.orders")

JOB = "push-orders"
STREAM = "magento-orders"
RETRY_ENTITY = "order_retry"
# Order mapping statuses that mean "the Sitoo order exists" (anything but an in-flight create).
DONE_STATUSES = frozenset({"pushed", "shipped", "canceled", "closed"})


@dataclass
class Snapshot:
    run_start: datetime
    cursor: KeysetPosition | None
    targeted: bool
    start: str | None = None  # where the keyset read began (None: a targeted run reads no range)
    seen: list[KeysetPosition] = field(default_factory=list)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)  # entity_id -> detail
    skipped: dict[str, str] = field(default_factory=dict)  # increment_id -> why
    in_sitoo: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalid -> Sitoo order
    known_skus: set[str] | None = None
    sitoo_prices: dict[str, Decimal] = field(default_factory=dict)
    warehouse_externalids: dict[int, str] = field(default_factory=dict)  # read only when a pickup order is in
    # Retry-queue entries push drops: the order is in Sitoo already, no longer pushable, or ignored.
    dequeue: set[str] = field(default_factory=set)
    linked_emails: set[str] = field(default_factory=set)  # e-mails of these orders already linked to a Sitoo customer


@dataclass
class Action:
    kind: str  # create | adopt | fail | skip
    increment_id: str
    entity_id: int
    plan: OrderPlan | None = None
    sitoo_order: dict[str, Any] | None = None
    error: RecordError | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.kind, "increment_id": self.increment_id}
        if self.plan is not None:
            out.update(externalid=self.plan.externalid, warehouse_id=self.plan.warehouse_id, bopis=self.plan.bopis,
                       lines=[{"sku": i.get("sku"), "qty": i["quantity"], "moneyrowprice": i["moneyrowprice"]}
                              for i in self.plan.payload["orderitems"]])
        if self.sitoo_order is not None:
            out["sitoo_orderid"] = self.sitoo_order.get("orderid")
        if self.error is not None:
            out.update(exception=self.error.kind, owner=self.error.owner, message=self.error.message)
        return out


@dataclass
class OrdersPlan:
    """What push-orders does with one run's orders, and where its cursor goes afterwards."""

    actions: list[Action]
    skipped: dict[str, str]  # increment_id -> why (not examined)
    dequeue: set[str]
    examined: int
    cursor: KeysetPosition | None = None
    seen: list[KeysetPosition] = field(default_factory=list)
    start: str | None = None
    linked_emails: set[str] = field(default_factory=set)

    def problems(self) -> list[RecordError]:
        return [RecordError(a.error.kind, a.error.owner, a.increment_id, a.error.message, a.error.payload)
                for a in self.actions if a.kind == "fail" and a.error is not None]  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        return [a.describe() for a in self.actions] + [
            {"action": "skip", "increment_id": key, "reason": why} for key, why in sorted(self.skipped.items())
        ]

    def summary(self) -> list[str]:
        return [f"{self.examined} order(s) to examine, {len(self.skipped)} skipped"]

    def doings(self) -> tuple[Doing, ...]:
        return (("to_push", sum(1 for a in self.actions if a.kind == "create"), "push", "order"),
                ("to_adopt", sum(1 for a in self.actions if a.kind == "adopt"), "adopt", "order"))  # fmt: skip

    def unlinked_emails(self) -> set[str]:
        """Customer e-mails of the orders to push with no Sitoo customer linked yet: push looks each
        up in Sitoo and creates the ones it does not find (so at most this many new customers)."""
        return {a.plan.email for a in self.actions
                if a.kind == "create" and a.plan is not None and a.plan.email and a.plan.email not in self.linked_emails}  # fmt: skip

    def preview(self) -> Preview:
        unlinked = len(self.unlinked_emails())
        notes = {"to_push": f"{plural(unlinked, 'customer e-mail')} not linked to a Sitoo customer yet: found there "
                            "or created" if unlinked else "",
                 "to_adopt": "already in Sitoo: only magsit's mapping is written"}  # fmt: skip
        counts = {"planned": len(self.actions), "skipped": len(self.skipped), **would_counts(*self.doings())}
        if unlinked:
            counts["customers_unlinked"] = unlinked
        return Preview(self.rows(), [*self.summary(), would(*self.doings(), notes=notes)], self.problems(), counts)


# -- plan (pure) ---------------------------------------------------------------------------------
def plan(snapshot: Snapshot, config: Config, now: datetime) -> OrdersPlan:
    return OrdersPlan(plan_actions(snapshot, config.orders, now), dict(snapshot.skipped), set(snapshot.dequeue),
                      len(snapshot.orders), snapshot.cursor, list(snapshot.seen), snapshot.start,
                      set(snapshot.linked_emails))  # fmt: skip


def plan_actions(snapshot: Snapshot, settings: OrderSettings, now: datetime) -> list[Action]:
    """Per examined order (in keyset order): adopt (already in Sitoo), create, fail or skip."""
    actions: list[Action] = []
    for entity_id in sorted(snapshot.orders, key=lambda e: key_of(snapshot.orders[e])):
        actions.append(_plan_order(snapshot, settings, now, entity_id))
    return actions


def _plan_order(snapshot: Snapshot, settings: OrderSettings, now: datetime, entity_id: int) -> Action:
    order = snapshot.orders[entity_id]
    increment_id = str(order["increment_id"])
    if order.get("status") not in settings.statuses and _in_sitoo(snapshot, settings, increment_id) is None:
        return Action("skip", increment_id, entity_id)
    try:
        try:
            built = build_order(order, settings, now=now, sitoo_prices=snapshot.sitoo_prices,
                                warehouse_externalids=snapshot.warehouse_externalids)
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            # Garbage in one order (a field of the wrong type, a missing price) fails that order only.
            raise RecordError("bad_order_data", "ecommerce", increment_id,
                              f"order {increment_id} has data magsit cannot read ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); check the order in Magento") from None  # fmt: skip
    except RecordError as error:
        existing = _in_sitoo(snapshot, settings, increment_id)
        if existing is not None:  # it is in Sitoo already (an earlier attempt): adopt, whatever changed
            return Action("adopt", increment_id, entity_id, sitoo_order=existing)
        return Action("fail", increment_id, entity_id, error=error)
    existing = snapshot.in_sitoo.get(built.externalid)
    if existing is not None:
        return Action("adopt", increment_id, entity_id, plan=built, sitoo_order=existing)
    if snapshot.known_skus is not None:
        unknown = sorted({line.sku for line in built.product_lines} - snapshot.known_skus)
        if unknown:
            return Action("fail", increment_id, entity_id, error=RecordError(
                "unknown_sku", "ecommerce", increment_id,
                f"order {increment_id} has SKU {', '.join(unknown)} which does not exist in Sitoo; create the "
                "product in Sitoo (or fix the SKU in Magento) — the order is retried automatically",
                {"unknown_skus": unknown},
            ))  # fmt: skip
        if settings.shipping_sku not in snapshot.known_skus:
            # No service product for shipping in Sitoo: keep the money on a line without a SKU
            # rather than have Sitoo refuse the whole order.
            for item in built.payload["orderitems"]:
                if item.get("additionaldata", {}).get("web-line") == "shipping":
                    item.pop("sku", None)
    return Action("create", increment_id, entity_id, plan=built)


def _in_sitoo(snapshot: Snapshot, settings: OrderSettings, increment_id: str) -> dict[str, Any] | None:
    return snapshot.in_sitoo.get(sanitise_externalid(settings.externalid_prefix, increment_id))


# -- pull (reads only) ---------------------------------------------------------------------------
def pull(ctx: JobContext) -> Snapshot:
    targeted = [str(i) for i in ctx.options.get("orders") or ()]
    cursor = ctx.state.get_cursor(JOB, STREAM, KeysetPosition)
    snap = Snapshot(run_start=ctx.started_at, cursor=cursor, targeted=bool(targeted))
    rows: dict[int, dict[str, Any]] = {}
    forced: set[int] = set()
    if targeted:
        for row in api.magento_orders_by(ctx, "increment_id", targeted):
            rows[int(row["entity_id"])] = row
            forced.add(int(row["entity_id"]))
        missing = set(targeted) - {str(r["increment_id"]) for r in rows.values()}
        for increment_id in sorted(missing):
            snap.skipped[increment_id] = "not found in Magento"
    else:
        _read_changed(ctx, snap, rows)
    # Pending creates (unknown outcome in an earlier run) are always re-examined.
    pending = {m["external_id"]: m for m in ctx.state.mappings("order", status="pending")}
    pending_wanted = [str(m["data"].get("entity_id")) for m in pending.values()
                      if m["data"].get("entity_id") and int(m["data"]["entity_id"]) not in rows]
    if pending_wanted and not targeted:
        for row in api.magento_orders_by(ctx, "entity_id", pending_wanted):
            rows[int(row["entity_id"])] = row
            forced.add(int(row["entity_id"]))
    candidates = _candidates(ctx, snap, rows, forced, set(pending))
    if candidates:
        _read_details(ctx, snap, candidates)
    return snap


def _read_changed(ctx: JobContext, snap: Snapshot, rows: dict[int, dict[str, Any]]) -> None:
    """Orders changed since the cursor (keyset), and the retry queue the cursor moved past."""
    settings = ctx.config.orders
    start = snap.start = read_start(
        snap.cursor,
        run_start=snap.run_start,
        lookback=timedelta(seconds=settings.lookback_seconds),
        initial_lookback=timedelta(hours=settings.initial_lookback_hours),
        since=ctx.options.get("since"),
    )
    until = magento_ts(snap.run_start - timedelta(minutes=settings.delay_minutes)) if settings.delay_minutes else None
    status_filter = ("status", ",".join(settings.statuses), "in")
    for row in keyset_scan(
        lambda filters, size: api.magento_search_orders(ctx, [*filters, status_filter], size),
        start,
        ctx.config.magento.page_size,
        until=until,
        what="Magento orders",
    ):
        snap.seen.append(key_of(row))
        rows[int(row["entity_id"])] = row
    # The retry queue: failed orders are re-read although the cursor moved past them.
    queued = {int(m["other_id"]): m for m in ctx.state.mappings(RETRY_ENTITY) if m.get("other_id")}
    ignored = {r["record_key"] for r in ctx.state.exceptions(status="ignored", job=JOB)}
    for entity_id, entry in list(queued.items()):
        if entry["external_id"] in ignored:
            snap.dequeue.add(entry["external_id"])
            queued.pop(entity_id)
    wanted = [str(e) for e in queued if e not in rows]
    if wanted:
        for row in api.magento_orders_by(ctx, "entity_id", wanted):
            rows[int(row["entity_id"])] = row


def _candidates(ctx: JobContext, snap: Snapshot, rows: dict[int, dict[str, Any]], forced: set[int],
                pending: set[str]) -> list[dict[str, Any]]:
    """The rows this run examines; the others go to ``snap.skipped`` with the reason."""
    settings = ctx.config.orders
    candidates: list[dict[str, Any]] = []
    for entity_id, row in rows.items():
        increment_id = str(row["increment_id"])
        mapping = ctx.state.get_mapping("order", "magento", increment_id)
        if mapping is not None and mapping["status"] in DONE_STATUSES:
            # P9: our own writes bump updated_at; a pushed order is never pushed again.
            snap.skipped[increment_id] = f"already in Sitoo (order {mapping['other_id']})"
            snap.dequeue.add(increment_id)
            continue
        if row.get("status") not in settings.statuses and increment_id not in pending and not snap.targeted:
            snap.skipped[increment_id] = f"status '{row.get('status')}' is not in [orders].statuses"
            snap.dequeue.add(increment_id)
            continue
        if entity_id not in forced and not snap.targeted and not ctx.is_due(increment_id):
            snap.skipped[increment_id] = ctx.not_due_reason(increment_id)
            continue
        candidates.append(row)
    return candidates


def _read_details(ctx: JobContext, snap: Snapshot, candidates: list[dict[str, Any]]) -> None:
    """Detail GET per candidate, then their externalids, SKUs and prices in Sitoo (batched)."""
    settings = ctx.config.orders
    details = parallel_map(lambda r: api.magento_order(ctx, int(r["entity_id"])), candidates, ctx.config.magento.concurrency)
    for detail in details:
        snap.orders[int(detail["entity_id"])] = detail
    # For the plan's count of customers push would look up or create (the links themselves are
    # made in push, under the shared customer lock).
    for email in {order_email(o) for o in snap.orders.values()} - {""}:
        link = ctx.state.get_mapping("customer", "email", email)
        if link and link.get("other_id"):
            snap.linked_emails.add(email)
    externalids = [sanitise_externalid(settings.externalid_prefix, str(o["increment_id"])) for o in snap.orders.values()]
    snap.in_sitoo = {str(o.get("externalid")): o for o in api.sitoo_orders_by(ctx, "externalid", externalids)}
    skus = sorted({str(item.get("sku")) for o in snap.orders.values() for item in o.get("items") or [] if item.get("sku")}
                  | {settings.shipping_sku})
    products = api.sitoo_products_by_sku(ctx, skus)
    snap.known_skus = {str(p["sku"]) for p in products}
    snap.sitoo_prices = {
        str(p["sku"]): Decimal(str(p["moneyprice"])) for p in products if p.get("moneyprice") not in (None, "")
    }
    if any(is_pickup(o) for o in snap.orders.values()):
        snap.warehouse_externalids = {int(w["warehouseid"]): str(w["externalid"])
                                      for w in ctx.sitoo.list_warehouses(fields=("warehouseid", "externalid"))
                                      if w.get("externalid")}  # fmt: skip


# -- push (the only writer) ----------------------------------------------------------------------
def push(ctx: JobContext, plan_: OrdersPlan) -> JobResult:
    settings = ctx.config.orders
    for increment_id in sorted(plan_.dequeue):
        ctx.state.delete_mapping(RETRY_ENTITY, "magento", increment_id)
    push_actions(ctx, plan_.actions)
    if plan_.start is not None:
        save_cursor(ctx, JOB, STREAM, plan_.cursor, plan_.seen, start=plan_.start,
                    lookback=timedelta(seconds=settings.lookback_seconds),
                    initial_lookback=timedelta(hours=settings.initial_lookback_hours))  # fmt: skip
    ctx.counts["skipped"] += len(plan_.skipped)
    return JobResult(plan=plan_.rows(), summary=plan_.summary(), details={"skipped": plan_.skipped})


def push_actions(ctx: JobContext, actions: list[Action]) -> list[str]:
    """Carry out the actions; returns the increment ids now in Sitoo (created or adopted after a POST)."""
    settings = ctx.config.orders
    backoff = timedelta(minutes=settings.retry_backoff_minutes) or None
    users = resolve_users(ctx, [a.plan for a in actions if a.kind == "create" and a.plan is not None])
    # Orders whose run died between their create and the read-back below still lack Sitoo line ids.
    created: list[str] = [m["external_id"] for m in ctx.state.mappings("order", status="pushed")
                          if any(line.get("sitoo_orderitemid") is None for line in m["data"].get("lines") or [])]
    creates: list[Action] = []
    for action in actions:
        if ctx.should_stop():
            break
        if action.kind == "fail":
            assert action.error is not None
            _fail(ctx, action, action.error, backoff)
            continue
        if action.kind == "adopt":
            _adopt(ctx, action)
            continue
        if action.kind == "skip":
            # Status no longer pushable and not in Sitoo: forget any stale intent.
            pending = ctx.state.get_mapping("order", "magento", action.increment_id)
            if pending is not None and pending["status"] == "pending":
                ctx.state.delete_mapping("order", "magento", action.increment_id)
            ctx.state.delete_mapping(RETRY_ENTITY, "magento", action.increment_id)
            continue
        assert action.plan is not None
        plan_ = action.plan
        userid = users.get(plan_.email)
        if userid:
            plan_.payload["additionaldata"]["sitoo-userid"] = userid
        creates.append(action)
    created.extend(_send_creates(ctx, creates, backoff))
    _fill_orderitem_ids(ctx, created)
    return created


def _fail(ctx: JobContext, action: Action, error: RecordError, backoff: timedelta | None) -> None:
    ctx.fail(error.kind, error.owner, action.increment_id, error.message, error.payload, retry_after=backoff)
    ctx.state.put_mapping(RETRY_ENTITY, "magento", action.increment_id, str(action.entity_id), {"kind": error.kind}, "queued")
    pending = ctx.state.get_mapping("order", "magento", action.increment_id)
    if pending is not None and pending["status"] == "pending":
        # The lookup just said Sitoo has no such order: the old intent is void.
        ctx.state.delete_mapping("order", "magento", action.increment_id)


def _adopt(ctx: JobContext, action: Action) -> None:
    sitoo_order = action.sitoo_order or {}
    mapping = ctx.state.get_mapping("order", "magento", action.increment_id)
    data: dict[str, Any] = dict(mapping["data"]) if mapping else {}
    if action.plan is not None:
        data.update(action.plan.mapping_data())
        _positions(data, action.plan)
    data.setdefault("entity_id", action.entity_id)
    data.setdefault("warehouse_id", sitoo_order.get("warehouseid"))
    data.pop("planned_lines", None)
    if "lines" not in data and mapping and mapping["data"].get("planned_lines"):
        data["lines"] = mapping["data"]["planned_lines"]
    data = lines_from_sitoo(data, sitoo_order)
    data["adopted"] = True
    with ctx.state.transaction():
        ctx.state.put_mapping("order", "magento", action.increment_id, str(sitoo_order["orderid"]), data, "pushed")
        ctx.state.delete_mapping(RETRY_ENTITY, "magento", action.increment_id)
        ctx.succeeded(action.increment_id)
    ctx.counts["adopted"] += 1
    log.info("order %s was already in Sitoo as %s: adopted", action.increment_id, sitoo_order["orderid"])


def _positions(data: dict[str, Any], plan_: OrderPlan) -> None:
    index = {line.item_id: pos for pos, line in enumerate(plan_.lines)}
    for line in data.get("lines") or []:
        line["position"] = index.get(line["item_id"])


@dataclass
class _Answer:
    """What a worker brings back for one create: Sitoo's orderid, or the error and what a lookup
    of the externalid found right after (None: the lookup failed too)."""

    orderid: Any = None
    error: ApiError | None = None
    found: list[dict[str, Any]] | None = None


def _post(ctx: JobContext, plan_: OrderPlan) -> _Answer:
    """The part of a create that runs in a worker: API calls only, no state."""
    try:
        return _Answer(orderid=api.sitoo_create_order(ctx, plan_.payload))
    except ApiError as error:
        # Whatever the failure, ask Sitoo before deciding: a 5xx/timeout may have stored the
        # order, a 4xx may be "externalid already exists". A GET is safe to retry.
        try:
            found: list[dict[str, Any]] | None = api.sitoo_orders_by(ctx, "externalid", [plan_.externalid])
        except ApiError:
            found = None
        return _Answer(error=error, found=found)


def _send_creates(ctx: JobContext, actions: list[Action], backoff: timedelta | None) -> list[str]:
    """Creates of different orders, ``[orders].concurrency`` in flight; returns the created ones.

    Only the POSTs (and the lookup after a failed one) run in the workers. This thread writes each
    order's intent just before its POST is handed out and its outcome when the answer is in, so
    every order keeps the one-at-a-time sequence (intent, POST, outcome; check-then-create after
    an unknown outcome) and a crash leaves at most the orders in flight pending, each settled by
    its externalid on the next run. A 429 is waited out by the HTTP session (Retry-After), which
    also holds back the other workers' calls meanwhile.
    """
    created: list[str] = []
    waiting = list(reversed(actions))
    workers = max(1, ctx.config.orders.concurrency)
    in_flight: dict[Future[_Answer], Action] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="magsit-orders")

    def hand_out() -> None:
        while waiting and len(in_flight) < workers and not ctx.should_stop():
            action = waiting.pop()
            assert action.plan is not None
            _intent(ctx, action.plan)
            crashpoint("orders.before_create")
            in_flight[pool.submit(_post, ctx, action.plan)] = action

    try:
        hand_out()
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            answered = [(in_flight.pop(future), future.result()) for future in done]
            hand_out()  # the free slots send again while these outcomes are recorded
            for action, answer in answered:
                if _settle(ctx, action, answer, backoff):
                    created.append(action.increment_id)
    except BaseException:
        # Answers already on their way are still recorded where the state allows; an intent that
        # stays pending is looked up by its externalid on the next run.
        for future in wait(in_flight).done:
            try:
                if _settle(ctx, in_flight[future], future.result(), backoff):
                    created.append(in_flight[future].increment_id)
            except Exception:
                log.debug("order %s: outcome not recorded; settled by lookup next run", in_flight[future].increment_id)
        raise
    finally:
        pool.shutdown(wait=True)
    return created


def _intent(ctx: JobContext, plan_: OrderPlan) -> None:
    data = plan_.mapping_data()
    _positions(data, plan_)
    intent = {key: value for key, value in data.items() if key != "lines"}
    intent["planned_lines"] = data["lines"]  # not "lines": an unconfirmed create holds no units in flight
    ctx.state.put_mapping("order", "magento", plan_.increment_id, None, intent, "pending")


def _settle(ctx: JobContext, action: Action, answer: _Answer, backoff: timedelta | None) -> bool:
    """Record one create's outcome; True when the order is in Sitoo (created or adopted)."""
    plan_ = action.plan
    assert plan_ is not None
    if answer.error is not None:
        return _after_failed_post(ctx, action, answer.error, backoff, answer.found)
    crashpoint("orders.after_create")
    data = plan_.mapping_data()
    _positions(data, plan_)
    with ctx.state.transaction():
        ctx.state.put_mapping("order", "magento", plan_.increment_id, str(answer.orderid), data, "pushed")
        crashpoint("orders.mid_transaction")
        ctx.state.delete_mapping(RETRY_ENTITY, "magento", plan_.increment_id)
        ctx.succeeded(plan_.increment_id)
        for warning in plan_.warnings:
            ctx.fail(warning.kind, warning.owner, plan_.increment_id, warning.message, warning.payload)
    ctx.counts["pushed"] += 1
    return True


def _after_failed_post(
    ctx: JobContext, action: Action, error: ApiError, backoff: timedelta | None, found: list[dict[str, Any]] | None
) -> bool:
    plan_ = action.plan
    assert plan_ is not None
    if found:
        _adopt(ctx, Action("adopt", action.increment_id, action.entity_id, plan=plan_, sitoo_order=found[0]))
        return True
    unknown = found is None or error.outcome_unknown
    if unknown or error.retryable:
        kind, owner = "sitoo_unavailable", "ops"
        message = (
            f"order {action.increment_id}: Sitoo did not confirm the order ({error.message}); it is looked up by "
            "its externalid before anything is sent again, automatically on the next runs"
        )
    else:
        kind, owner = "order_rejected", "ecommerce"
        message = (
            f"order {action.increment_id}: Sitoo refused the order ({error.message}); fix the order data named "
            "in the message, then `magsit exceptions retry`"
        )
    if not unknown:
        # Sitoo answered and has no such order: the intent is void.
        ctx.state.delete_mapping("order", "magento", action.increment_id)
    ctx.fail(kind, owner, action.increment_id, message, {"status": error.status}, retry_after=backoff)
    ctx.state.put_mapping(RETRY_ENTITY, "magento", action.increment_id, str(action.entity_id), {"kind": kind}, "queued")
    return False


def _fill_orderitem_ids(ctx: JobContext, increment_ids: list[str]) -> None:
    """Sitoo's orderitemid per line, read back in batches (deliveries name lines by it)."""
    mappings = [m for m in (ctx.state.get_mapping("order", "magento", i) for i in increment_ids) if m and m["other_id"]]
    if not mappings:
        return
    try:
        orders = {str(o["orderid"]): o for o in api.sitoo_orders_by(ctx, "orderid", [m["other_id"] for m in mappings])}
    except ApiError as error:
        log.warning("could not read back Sitoo order items (%s); positions are used", error)
        orders = {}
    for mapping in mappings:
        data = lines_from_sitoo(mapping["data"], orders.get(str(mapping["other_id"]), {}))
        ctx.state.put_mapping("order", "magento", mapping["external_id"], mapping["other_id"], data, mapping["status"])


# -- customers -----------------------------------------------------------------------------------
def resolve_users(ctx: JobContext, plans: Iterable[OrderPlan | None]) -> dict[str, str]:
    """Normalised e-mail -> Sitoo userid: from the mapping cache, one lookup per new address, one batch create."""
    by_email: dict[str, OrderPlan] = {}
    for plan_ in plans:
        if plan_ is not None and plan_.email:
            by_email.setdefault(plan_.email, plan_)
    found: dict[str, str] = {}
    unknown: list[str] = []
    for email in by_email:
        mapping = ctx.state.get_mapping("customer", "email", email)
        if mapping and mapping.get("other_id"):
            found[email] = str(mapping["other_id"])
        else:
            unknown.append(email)
    if not unknown:
        return found
    with creating_users(ctx):
        try:
            existing, missing = settle_new_users(ctx, unknown, lambda emails: api.sitoo_users_by_emails(ctx, emails),
                                                 searched=False,
                                                 spellings=spellings_of(by_email[e].email_as_given for e in unknown))  # fmt: skip
        except ApiError as error:
            log.warning("Sitoo customer lookup failed (%s); orders go without a customer link", error)
            ctx.counts["customer_link_failed"] += len(unknown)
            return found
        for email, users in existing.items():
            userid = str(users[0]["userid"])
            found[email] = userid
            ctx.state.put_mapping("customer", "email", email, userid, {"sitoo_userid": userid})
        if missing:
            _create_users(ctx, {email: by_email[email] for email in missing}, found)
    return found


def _create_users(ctx: JobContext, plans: dict[str, OrderPlan], found: dict[str, str]) -> None:
    bodies = []
    for email, plan_ in plans.items():
        body = {"email": email}
        for key in ("namefirst", "namelast", "phone"):
            if plan_.payload.get(key):
                body[key] = plan_.payload[key]
        bodies.append(body)
    try:
        results = api.sitoo_create_users(ctx, bodies)
    except ApiError as error:
        log.warning("creating Sitoo customers failed (%s); orders go without a customer link", error)
        ctx.counts["customer_link_failed"] += len(plans)
        return
    crashpoint("orders.after_user_create")
    for email, result in zip(plans, results, strict=False):
        if result.get("ok") and result.get("userid"):
            userid = str(result["userid"])
            found[email] = userid
            ctx.state.put_mapping("customer", "email", email, userid, {"sitoo_userid": userid, "created_by": JOB})
            ctx.counts["customers_created"] += 1
        else:
            forget_refused(ctx, email)
            ctx.counts["customer_link_failed"] += 1
            log.warning("Sitoo refused customer %s: %s", email, result.get("error"))
