"""Sitoo Events SPI: receive pushed events (``POST /events``) and drain them into targeted runs.

Receiving (``magsit events serve``, a waitress WSGI service)
  Sitoo sends batches of up to 10 events, in order, waits at most 15 s for the answer, retries
  only 429/503/504 (for ~24 h) and drops the batch on any other code; it may send an event more
  than once (sitoo-api.md §10, pitfalls P36). So the handler does the least that makes the events
  safe — validate, store each one in the state file keyed by ``event_id`` (a re-sent event is a
  no-op that still answers 200), commit with ``synchronous=FULL`` — and answers. Anything that
  may be transient (state file locked or busy, queue full, an internal error) answers 503 so that
  Sitoo retries; only a payload that can never become valid answers 400 (logged). The receiving
  connection waits at most ``RECEIVE_BUSY_TIMEOUT`` seconds for a write lock, far inside the 15 s.

Applying (a worker thread of ``serve``, and ``magsit events process`` for cron)
  The queued events are read, turned into facts (which pushed web order an order id is, whether a
  new order is a refund of one, which SKUs a warehouse transaction touched) and *planned* by the
  pure ``plan_drain``: a burst becomes one run per job — ``sync-returns`` (full), then
  ``sync-fulfilment`` for the affected pushed orders, then ``sync-stock`` for the union of the
  affected SKUs — through the same ``runner.run_job`` and per-job locks as cron and the daemon.
  An event is marked processed only once every run it needs finished (ok or partial: record
  failures are exception rows with owners from then on). A run that is locked elsewhere leaves
  its events queued for a retry in a few seconds; a failed run leaves them queued with backoff;
  after ``MAX_ATTEMPTS`` they are given up (``failed``) — the scheduled jobs stay the safety net
  that heals anything an event did not.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magsit.config import Config, EventSettings
from magsit.errors import ConfigError, ExitCode, LockedError, MagsitError
from magsit.logs import log_context
from magsit.state.lock import JobLock
from magsit.state.store import StateStore

log = logging.getLogger("magsit.events")

JOB = "events"  # the drain's own lock name (one drainer at a time: serve's worker or `events process`)
MAX_BATCH = 10  # "an array which can contain up to 10 items" (§10)
MAX_BODY = 1024 * 1024  # 10 events are a few KiB; anything near this is not Sitoo
MAX_ID_LENGTH = 200
RECEIVE_BUSY_TIMEOUT = 2.0  # seconds the receiver waits for the state file's write lock before 503
WORKER_BUSY_TIMEOUT = 30.0
DEBOUNCE_SECONDS = 0.2  # after a wake-up, let the rest of a burst arrive: one run for all of it
POLL_SECONDS = 10.0
LOCKED_RETRY_SECONDS = 2.0  # a job lock held by cron/the daemon: try again shortly
MAX_BACKOFF_SECONDS = 300.0
MAX_ATTEMPTS = 40  # ~3 h of failed runs (backoff capped at 5 min); the scheduled jobs heal the rest
DRAIN_LIMIT = 2000  # events per drain pass (coalesced into at most three runs)
MAX_TARGETED_SKUS = 500  # more changed SKUs than this: one incremental sync-stock reads them cheaper
RETAIN_SECONDS = 7 * 86400  # handled events kept for de-duplication (Sitoo retries for ~24 h)

STOCK, FULFILMENT, RETURNS = "sync-stock", "sync-fulfilment", "sync-returns"
RUN_ORDER = (RETURNS, FULFILMENT, STOCK)  # fulfilment updates the in-flight term stock reads
HANDLED_TYPES = frozenset({"warehouse-transaction", "order", "order-delivery"})
# Delivery states before the parcel leaves the store (sitoo-api.md §10): nothing to ship in Magento yet.
PRE_DISPATCH = frozenset({"new", "ready-to-ship"})
REQUIRED = ("event_id", "event_type", "event_date", "account_id", "data")


# -- payload validation ---------------------------------------------------------------------------
class PayloadError(ValueError):
    """The batch can never be valid: 400 (Sitoo drops it; the scheduled jobs heal what it meant)."""


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    event_date: int
    account_id: str
    data: dict[str, Any]


def _id_text(value: Any, name: str, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"event {index}: {name} must be a string or an integer")
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH:
        raise PayloadError(f"event {index}: {name} must be 1-{MAX_ID_LENGTH} characters")
    return text


def validate_batch(payload: Any) -> list[Event]:
    """A JSON array of 1..10 event objects with event_id, event_type, event_date, account_id, data."""
    if not isinstance(payload, list):
        raise PayloadError("the body must be a JSON array of events")
    if not payload:
        raise PayloadError("the batch is empty")
    if len(payload) > MAX_BATCH:
        raise PayloadError(f"a batch holds at most {MAX_BATCH} events, got {len(payload)}")
    events: list[Event] = []
    for index, raw in enumerate(payload):
        if not isinstance(raw, dict):
            raise PayloadError(f"event {index}: not a JSON object")
        missing = [key for key in REQUIRED if key not in raw or raw[key] is None]
        if missing:
            raise PayloadError(f"event {index}: missing {', '.join(missing)}")
        event_id = _id_text(raw["event_id"], "event_id", index)
        event_type = raw["event_type"]
        if not isinstance(event_type, str) or not event_type.strip():
            raise PayloadError(f"event {index}: event_type must be a non-empty string")
        date = raw["event_date"]
        if isinstance(date, str) and date.strip().isdigit():
            date = int(date)
        if isinstance(date, bool) or not isinstance(date, int | float) or date < 0:
            raise PayloadError(f"event {index}: event_date must be epoch seconds")
        account_id = _id_text(raw["account_id"], "account_id", index)
        if not isinstance(raw["data"], dict):
            raise PayloadError(f"event {index}: data must be a JSON object")
        events.append(Event(event_id, event_type.strip(), int(date), account_id, raw["data"]))
    return events


# -- the queue in the state file ------------------------------------------------------------------
class QueueFull(Exception):
    pass


@dataclass
class QueuedEvent:
    event_id: str
    event_type: str
    data: dict[str, Any]
    received_at: float
    attempts: int = 0


class EventStore:
    """The ``events`` table through its own SQLite connection(s), one per thread.

    Its own connections (not StateStore's) so the receiver can use a short busy timeout and
    ``synchronous=FULL`` without changing how the sync jobs use the file.
    """

    def __init__(self, path: str | Path, busy_timeout: float = WORKER_BUSY_TIMEOUT, durable: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.durable = durable
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        StateStore(self.path).close()  # creates the file 0600 and applies the migrations once

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # FULL: the WAL is synced at every commit, so an event we said 200 for survives power loss.
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # the write lock up front, or SQLITE_BUSY after busy_timeout
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def store(self, events: list[Event], max_queue: int, now: float | None = None) -> tuple[int, int]:
        """Insert the new events; (new, duplicates). QueueFull if they would not fit."""
        now = time.time() if now is None else now
        with self._write() as conn:
            ids = [e.event_id for e in events]
            marks = ",".join("?" * len(ids))
            seen = {row[0] for row in conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", ids)}
            fresh: dict[str, Event] = {}
            for event in events:
                if event.event_id not in seen:
                    fresh.setdefault(event.event_id, event)  # the same id twice in one batch: once
            if not fresh:
                return 0, len(events)
            queued = conn.execute("SELECT COUNT(*) FROM events WHERE status = 'queued'").fetchone()[0]
            if queued + len(fresh) > max_queue:
                raise QueueFull(f"{queued} events are waiting (max_queue {max_queue})")
            for event in fresh.values():
                handled = event.event_type in HANDLED_TYPES
                conn.execute(
                    "INSERT INTO events (event_id, event_type, event_date, account_id, data, received_at, status, "
                    "processed_at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.event_id,
                        event.event_type,
                        event.event_date,
                        event.account_id,
                        json.dumps(event.data, sort_keys=True, default=str),
                        now,
                        "queued" if handled else "ignored",
                        None if handled else now,
                        None if handled else f"event type {event.event_type} is not used by magsit",
                    ),
                )
            return len(fresh), len(events) - len(fresh)

    def due(self, now: float | None = None, limit: int = DRAIN_LIMIT) -> list[QueuedEvent]:
        now = time.time() if now is None else now
        rows = self._conn().execute(
            "SELECT event_id, event_type, data, received_at, attempts FROM events WHERE status = 'queued' "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY received_at, rowid LIMIT ?",
            (now, limit),
        )
        out = []
        for row in rows:
            try:
                data = json.loads(row["data"] or "{}")
            except ValueError:
                data = {}
            out.append(QueuedEvent(row["event_id"], row["event_type"], data, float(row["received_at"]), int(row["attempts"])))
        return out

    def next_due(self) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(COALESCE(next_attempt_at, received_at)) FROM events WHERE status = 'queued'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def finish(self, notes: dict[str, str | None], status: str, now: float | None = None) -> None:
        """processed / ignored: the lag (received -> applied) is recorded for processed events."""
        if not notes:
            return
        now = time.time() if now is None else now
        with self._write() as conn:
            for event_id, note in notes.items():
                conn.execute(
                    "UPDATE events SET status = ?, processed_at = ?, note = ?, next_attempt_at = NULL, "
                    "lag_seconds = CASE WHEN ? = 'processed' THEN MAX(0, ? - received_at) END "
                    "WHERE event_id = ? AND status = 'queued'",
                    (status, now, note, status, now, event_id),
                )

    def defer(self, notes: dict[str, str], delay: float | None, now: float | None = None) -> list[str]:
        """Leave events queued. ``delay`` None: a failed attempt (counted, backoff, given up after
        MAX_ATTEMPTS); a number: not their fault (lock held elsewhere), retry after it. Returns the
        ids given up."""
        if not notes:
            return []
        now = time.time() if now is None else now
        given_up: list[str] = []
        with self._write() as conn:
            for event_id, note in notes.items():
                row = conn.execute("SELECT attempts FROM events WHERE event_id = ? AND status = 'queued'", (event_id,)).fetchone()
                if row is None:
                    continue
                attempts = int(row[0]) + (0 if delay is not None else 1)
                wait = delay if delay is not None else min(MAX_BACKOFF_SECONDS, 5.0 * 2 ** (attempts - 1))
                if delay is None and attempts >= MAX_ATTEMPTS:
                    given_up.append(event_id)
                    conn.execute(
                        "UPDATE events SET status = 'failed', attempts = ?, processed_at = ?, note = ? WHERE event_id = ?",
                        (attempts, now, f"given up after {attempts} attempts: {note}"[:500], event_id),
                    )
                else:
                    conn.execute(
                        "UPDATE events SET attempts = ?, next_attempt_at = ?, note = ? WHERE event_id = ?",
                        (attempts, now + wait, note[:500], event_id),
                    )
        return given_up

    def purge(self, now: float | None = None, keep_seconds: float = RETAIN_SECONDS) -> int:
        now = time.time() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM events WHERE status != 'queued' AND COALESCE(processed_at, received_at) < ?",
                (now - keep_seconds,),
            )
            return int(cursor.rowcount or 0)


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


def _key(value: Any) -> str | None:
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
    return _key(data.get("warehouse_transaction_id") or data.get("warehousetransactionid") or data.get("transaction_id"))


def original_of(order: dict[str, Any]) -> str | None:
    """The sale a refund order returns (``creditorderid``, else ``pos-originalsales-orderid``)."""
    original = _key(order.get("creditorderid"))
    if original and original != "0":
        return original
    extra = order.get("additionaldata")
    if isinstance(extra, dict):
        return _key(extra.get("pos-originalsales-orderid"))
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
            warehouse = _key(data.get("warehouse_id"))
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
        orderid = _key(data.get("order_id"))
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


# -- facts: the reads the plan needs ---------------------------------------------------------------
def gather_facts(events: list[QueuedEvent], state: StateStore, sitoo: Any) -> Facts:
    """Order mappings from the state file; new orders and SKU-less transactions from Sitoo.

    A failed Sitoo read of a new order leaves that event waiting (it may be a refund); a failed
    transaction read only costs precision (the plan falls back to an incremental stock run).
    """
    facts = Facts()

    def lookup(orderid: str | None) -> None:
        if orderid and orderid not in facts.pushed:
            mapping = state.find_mapping_by_other("order", orderid)
            if mapping is not None:
                facts.pushed[orderid] = mapping

    new_orders: dict[str, list[str]] = {}
    for event in events:
        if event.event_type in ("order", "order-delivery"):
            orderid = _key(event.data.get("order_id"))
            lookup(orderid)
            is_add = event.event_type == "order" and event.data.get("order_event_type") == "add"
            if is_add and orderid and orderid not in facts.pushed and orderid.isdigit():
                new_orders.setdefault(orderid, []).append(event.event_id)
    if new_orders:
        try:
            for order in sitoo.get_orders([int(o) for o in new_orders], fields=("orderid", "creditorderid", "additionaldata")):
                facts.orders[str(order.get("orderid"))] = order
        except MagsitError as exc:
            for ids in new_orders.values():
                for event_id in ids:
                    facts.unavailable[event_id] = f"could not read the new order from Sitoo: {exc.message}"
        for order in facts.orders.values():
            lookup(original_of(order))

    for event in events:
        if event.event_type != "warehouse-transaction" or event_skus(event.data):
            continue
        txid = transaction_id(event.data)
        if not txid or not txid.isdigit() or txid in facts.transactions:
            continue
        warehouse = _key(event.data.get("warehouse_id"))
        try:
            found = next(
                iter(
                    sitoo.iter_warehouse_transactions(
                        warehouse_id=int(warehouse) if warehouse and warehouse.isdigit() else None,
                        id_from=int(txid),
                        fields=("warehousetransactionid", "items"),
                    )
                ),
                None,
            )
        except MagsitError as exc:
            log.info("warehouse transaction %s could not be read (%s): an incremental sync-stock covers it", txid, exc.message)
            continue
        if found is not None and _key(found.get("warehousetransactionid")) == txid:
            facts.transactions[txid] = event_skus(found)
    return facts


# -- draining ---------------------------------------------------------------------------------------
RunFn = Callable[[Config, str, dict[str, Any], "threading.Event | None"], Any]


def _run_registered(config: Config, job: str, options: dict[str, Any], stop_event: threading.Event | None) -> Any:
    from magsit.jobs import REGISTRY
    from magsit.runner import run_job

    flow = REGISTRY[job].resolve()  # ConfigError when the flow is not built in this version
    return run_job(config, job, flow, options=options, stop_event=stop_event)


@dataclass
class DrainReport:
    read: int = 0
    processed: int = 0
    ignored: int = 0
    deferred: int = 0
    given_up: int = 0
    locked: bool = False  # another drainer holds the events lock
    runs: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None

    @property
    def clean(self) -> bool:
        return self.deferred == 0 and self.given_up == 0 and not self.locked

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "processed": self.processed,
            "ignored": self.ignored,
            "deferred": self.deferred,
            "given_up": self.given_up,
            "locked": self.locked,
            "runs": self.runs,
            "plan": self.plan,
        }


def drain(
    config: Config,
    store: EventStore,
    *,
    sitoo: Any = None,
    stop_event: threading.Event | None = None,
    dry_run: bool = False,
    run: RunFn = _run_registered,
    limit: int = DRAIN_LIMIT,
) -> DrainReport:
    """One pass: read the due events, plan, run, mark. LockedError if another drainer is at it."""
    report = DrainReport()
    with JobLock(config.state.path, JOB), log_context(job=JOB):
        if not dry_run:
            _purge_now_and_then(store)
        events = store.due(limit=limit)
        report.read = len(events)
        if not events:
            return report
        if sitoo is None:
            from magsit.sitoo.client import SitooClient

            sitoo = SitooClient(config.sitoo, config.http)
        state = StateStore(config.state.path)
        try:
            facts = gather_facts(events, state, sitoo)
        finally:
            state.close()
        plan = plan_drain(events, facts, config.stock.sources)
        report.plan = plan.as_dict()
        if dry_run:
            return report
        store.finish(plan.ignored, "ignored")
        report.ignored = len(plan.ignored)
        report.given_up += len(store.defer(plan.waiting, None))
        report.deferred += len(plan.waiting)

        locked: dict[str, str] = {}
        failed: dict[str, str] = {}
        for spec in plan.runs:
            if stop_event is not None and stop_event.is_set():
                locked.update({e: "stopped before the run" for e in spec.event_ids})
                continue
            entry: dict[str, Any] = {"job": spec.job, "options": spec.options, "events": len(spec.event_ids)}
            try:
                outcome = run(config, spec.job, spec.options, stop_event)
            except LockedError as exc:
                entry.update(status="locked", exit_code=4)
                locked.update({e: f"{spec.job}: {exc.message}" for e in spec.event_ids})
            except ConfigError as exc:
                # e.g. a flow not built in this version: nothing an event can do, the schedule covers it.
                entry.update(status="not run", error=exc.message)
                for event_id in spec.event_ids:
                    failed.setdefault(event_id, f"{spec.job}: {exc.message}")
            except Exception as exc:  # state file trouble etc.: keep the events, try again later
                log.error("%s could not run for %d event(s): %s", spec.job, len(spec.event_ids), exc)
                entry.update(status="error", error=str(exc))
                for event_id in spec.event_ids:
                    failed.setdefault(event_id, f"{spec.job}: {exc}")
            else:
                entry.update(status=outcome.status, exit_code=outcome.exit_code, run_id=outcome.run_id)
                if outcome.status not in ("ok", "partial"):
                    for event_id in spec.event_ids:
                        failed.setdefault(event_id, f"{spec.job} {outcome.status}: {outcome.error or ''}".strip())
            report.runs.append(entry)
            log.info("%s for %d event(s): %s", spec.job, len(spec.event_ids), entry.get("status"))

        done = {e: None for spec in plan.runs for e in spec.event_ids if e not in locked and e not in failed}
        store.finish(done, "processed")  # type: ignore[arg-type]
        report.processed = len(done)
        # A failed run counts against its events; a lock held elsewhere does not.
        report.given_up += len(store.defer(failed, None))
        store.defer({e: n for e, n in locked.items() if e not in failed}, LOCKED_RETRY_SECONDS)
        report.deferred += len(failed) + len({e for e in locked if e not in failed})
        if report.given_up:
            log.warning(
                "%d event(s) given up after %d attempts; the scheduled jobs will apply their changes",
                report.given_up,
                MAX_ATTEMPTS,
            )
    return report


_last_purge = 0.0


def _purge_now_and_then(store: EventStore) -> None:
    global _last_purge
    if time.monotonic() - _last_purge > 3600 or _last_purge == 0.0:
        _last_purge = time.monotonic()
        try:
            removed = store.purge()
        except sqlite3.Error as exc:
            log.info("old events not purged this time: %s", exc)
            return
        if removed:
            log.info("purged %d handled event(s) older than %d days", removed, RETAIN_SECONDS // 86400)


def drain_all(config: Config, store: EventStore, *, dry_run: bool = False, max_passes: int = 20, **kw: Any) -> DrainReport:
    """``events process``: passes until nothing is due (or only deferred events remain)."""
    total = DrainReport()
    for _ in range(max_passes):
        report = drain(config, store, dry_run=dry_run, **kw)
        total.read += report.read
        total.processed += report.processed
        total.ignored += report.ignored
        total.deferred += report.deferred
        total.given_up += report.given_up
        total.runs.extend(report.runs)
        total.plan = report.plan if total.plan is None else total.plan
        if dry_run or report.read == 0 or report.read < kw.get("limit", DRAIN_LIMIT):
            break
    return total


# -- the worker thread of `serve` -------------------------------------------------------------------
class Worker(threading.Thread):
    """Drains the queue after each stored batch (debounced) and on a timer for deferred events."""

    def __init__(self, config: Config, stop_event: threading.Event, run: RunFn = _run_registered) -> None:
        super().__init__(name="magsit-events-worker", daemon=True)
        self.config = config
        self.stop_event = stop_event
        self._wake = threading.Event()
        self._run = run
        self.passes = 0

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        store = EventStore(self.config.state.path, WORKER_BUSY_TIMEOUT)
        timeout = 0.0  # drain what is left from before a restart at once
        try:
            while not self.stop_event.is_set():
                if self._wake.wait(timeout):
                    self.stop_event.wait(DEBOUNCE_SECONDS)
                if self.stop_event.is_set():
                    break
                self._wake.clear()
                timeout = self._pass(store)
        finally:
            store.close()

    def _pass(self, store: EventStore) -> float:
        """One drain; returns how long to sleep unless woken."""
        try:
            drain(self.config, store, stop_event=self.stop_event, run=self._run)
        except LockedError:
            return LOCKED_RETRY_SECONDS  # `magsit events process` from cron is draining right now
        except Exception as exc:  # never let the worker die: the receiver keeps storing meanwhile
            log.error("draining events failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return LOCKED_RETRY_SECONDS * 5
        finally:
            self.passes += 1
        try:
            next_due = store.next_due()
        except sqlite3.Error:
            return LOCKED_RETRY_SECONDS
        if next_due is None:
            return POLL_SECONDS
        return max(0.05, min(POLL_SECONDS, next_due - time.time()))


# -- the HTTP side -----------------------------------------------------------------------------------
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    503: "503 Service Unavailable",
}


def check_auth_settings(settings: EventSettings) -> tuple[bytes, bytes] | None:
    """The Basic-auth pair the endpoint requires, or None (open endpoint, e.g. behind a proxy that checks)."""
    password = settings.password.get_secret_value() if settings.password is not None else None
    if bool(settings.user) != bool(password):
        raise ConfigError("[events] user and password go together: set both (Basic auth on POST /events) or neither")
    if not settings.user or not password:
        return None
    if ":" in settings.user:
        raise ConfigError("[events] user cannot contain ':' (Basic auth)")
    return settings.user.encode(), password.encode()


def _authorised(header: str | None, expected: tuple[bytes, bytes]) -> bool:
    user = password = b""
    if header and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        user, _, password = decoded.partition(b":")
    # Both compares always run (constant time, no early exit telling which half was wrong).
    ok_user = hmac.compare_digest(user, expected[0])
    ok_password = hmac.compare_digest(password, expected[1])
    return ok_user and ok_password


def make_app(settings: EventSettings, store: EventStore, on_stored: Callable[[], None] = lambda: None) -> WsgiApp:
    """The WSGI app: ``POST /events`` (the Events SPI), ``GET /health`` (for the proxy / monitoring)."""
    credentials = check_auth_settings(settings)

    def reply(start_response: Callable[..., Any], code: int, body: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(extra or [])]
        start_response(_REASONS[code], headers)
        return [data]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/health" and method in ("GET", "HEAD"):
            return reply(start_response, 200, {"ok": True})
        if path.rstrip("/") != "/events":
            return reply(start_response, 404, {"error": "not found"})
        if method != "POST":
            return reply(start_response, 405, {"error": "use POST"}, [("Allow", "POST")])
        peer = environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or "?"
        if credentials is not None and not _authorised(environ.get("HTTP_AUTHORIZATION"), credentials):
            log.warning("POST /events from %s: wrong or missing Basic auth (401)", peer)
            return reply(start_response, 401, {"error": "unauthorized"}, [("WWW-Authenticate", 'Basic realm="magsit events"')])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            log.warning("POST /events from %s: body of %d bytes refused (413)", peer, length)
            return reply(start_response, 413, {"error": f"body larger than {MAX_BODY} bytes"})
        raw = environ["wsgi.input"].read(length if length > 0 else MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return reply(start_response, 413, {"error": f"body larger than {MAX_BODY} bytes"})
        try:
            events = validate_batch(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:  # PayloadError and JSONDecodeError are ValueErrors
            reason = str(exc) if isinstance(exc, PayloadError) else f"not JSON: {exc}"
            log.warning("POST /events from %s: malformed batch (400): %s; body starts %r", peer, reason, raw[:200])
            return reply(start_response, 400, {"error": reason})
        try:
            new, duplicates = store.store(events, settings.max_queue)
        except QueueFull as exc:
            log.warning("POST /events: queue full, answering 503 so Sitoo retries later: %s", exc)
            return reply(start_response, 503, {"error": "queue full, retry later"}, [("Retry-After", "60")])
        except sqlite3.Error as exc:  # locked/busy state file, disk full …: transient from Sitoo's side
            log.warning("POST /events: state file not writable now (%s); answering 503 so Sitoo retries", exc)
            return reply(start_response, 503, {"error": "busy, retry later"}, [("Retry-After", "5")])
        except Exception:
            log.error("POST /events: internal error; answering 503 so Sitoo retries", exc_info=True)
            return reply(start_response, 503, {"error": "internal error, retry later"})
        log.debug("POST /events: %d event(s), %d new, %d already seen", len(events), new, duplicates)
        if new:
            on_stored()
        return reply(start_response, 200, {"stored": new, "duplicates": duplicates})

    return app


def serve(
    config: Config,
    host: str | None = None,
    port: int | None = None,
    *,
    threads: int = 4,
    ready: Callable[[str, int], None] | None = None,
    install_signals: bool = True,
    run: RunFn = _run_registered,
) -> int:
    """Run the receiver (waitress) and the worker thread until SIGTERM/SIGINT; returns 0."""
    import waitress.server

    settings = config.events
    check_auth_settings(settings)
    store = EventStore(config.state.path, RECEIVE_BUSY_TIMEOUT, durable=True)
    stop_event = threading.Event()
    worker = Worker(config, stop_event, run)
    app = make_app(settings, store, worker.wake)
    server = waitress.server.create_server(
        app,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        threads=threads,
        ident="magsit-events",
        channel_timeout=30,
        clear_untrusted_proxy_headers=True,
    )
    bound_host, bound_port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    previous: dict[int, Any] = {}
    if install_signals:
        def stop(signum: int, _frame: Any) -> None:
            log.info("%s: stopping (the run in hand finishes first)", signal.Signals(signum).name)
            stop_event.set()
            raise SystemExit(0)  # ends waitress' loop in the main thread; it then shuts its threads down

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    worker.start()
    log.info("receiving Sitoo events at http://%s:%s/events", bound_host, bound_port)
    if ready is not None:
        ready(str(bound_host), int(bound_port))
    try:
        server.run()
    finally:
        stop_event.set()
        worker.wake()
        worker.join(timeout=120)
        store.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ExitCode.OK


# -- figures for `magsit status` ---------------------------------------------------------------------
def event_stats(db: Any, now: float | None = None) -> dict[str, Any]:
    """Queue length and lag (received -> applied) over the last hour; ``db`` has ``execute``."""
    now = time.time() if now is None else now
    try:
        queued, oldest = db.execute("SELECT COUNT(*), MIN(received_at) FROM events WHERE status = 'queued'").fetchone()
        processed, lag_max, lag_avg = db.execute(
            "SELECT COUNT(*), MAX(lag_seconds), AVG(lag_seconds) FROM events WHERE status = 'processed' AND processed_at >= ?",
            (now - 3600,),
        ).fetchone()
        failed = db.execute(
            "SELECT COUNT(*) FROM events WHERE status = 'failed' AND processed_at >= ?", (now - 86400,)
        ).fetchone()[0]
        last = db.execute("SELECT MAX(received_at) FROM events").fetchone()[0]
    except sqlite3.Error:  # a state file from before the events table (read-only status of an old file)
        return {}
    return {
        "queued": int(queued or 0),
        "oldest_queued_age_seconds": None if oldest is None else round(now - float(oldest), 1),
        "processed_last_hour": int(processed or 0),
        "max_lag_seconds": None if lag_max is None else round(float(lag_max), 3),
        "avg_lag_seconds": None if lag_avg is None else round(float(lag_avg), 3),
        "given_up_last_day": int(failed or 0),
        "last_received_at": None if last is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(last))),
    }
