"""Applying the queued events: read them, gather the facts, plan, run the jobs, mark the events.

``drain`` is one pass under the ``events`` lock (``magsit events process`` loops it with
``drain_all``; the ``Worker`` thread of ``magsit events serve`` runs it after each stored batch).
The runs go through ``runner.run_job`` with the same per-job locks as cron and the daemon. An event
is marked processed only once every run it needs finished (ok or partial); a run locked elsewhere
leaves its events queued for a retry in a few seconds; a failed run defers them with backoff.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from magsit.config import Config
from magsit.errors import ConfigError, ExitCode, LockedError, MagsitError
from magsit.events.plan import Facts, event_skus, id_text, original_of, plan_drain, transaction_id
from magsit.events.queue import (
    DRAIN_LIMIT,
    MAX_ATTEMPTS,
    RETAIN_SECONDS,
    WORKER_BUSY_TIMEOUT,
    EventStore,
    QueuedEvent,
)
from magsit.logs import log_context
from magsit.state.lock import JobLock
from magsit.state.store import StateStore

log = logging.getLogger("magsit.events")

JOB = "events"  # the drain's own lock name (one drainer at a time: serve's worker or `events process`)
DEBOUNCE_SECONDS = 0.2  # after a wake-up, let the rest of a burst arrive: one run for all of it
POLL_SECONDS = 10.0
LOCKED_RETRY_SECONDS = 2.0  # a job lock held by cron/the daemon: try again shortly


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
            orderid = id_text(event.data.get("order_id"))
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
        warehouse = id_text(event.data.get("warehouse_id"))
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
        if found is not None and id_text(found.get("warehousetransactionid")) == txid:
            facts.transactions[txid] = event_skus(found)
    return facts


# -- draining ---------------------------------------------------------------------------------------
RunFn = Callable[[Config, str, dict[str, Any], "threading.Event | None"], Any]


def run_registered(config: Config, job: str, options: dict[str, Any], stop_event: threading.Event | None) -> Any:
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
    run: RunFn = run_registered,
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
                entry.update(status="locked", exit_code=ExitCode.LOCKED)
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

    def __init__(self, config: Config, stop_event: threading.Event, run: RunFn = run_registered) -> None:
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

