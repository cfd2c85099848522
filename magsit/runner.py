"""Runs one job: lock, run record, the flow's pull/plan/push, exception capture, exit code.

A flow is a module satisfying ``magsit.flow.SyncFlow`` (pull -> plan -> push); everything around
it (locking, the run row, ``--dry-run``, turning record failures into exception rows, mapping
errors to exit codes) lives here once, so a flow module holds only its own logic. In a dry run
the runner stops after ``plan`` and returns ``plan.preview()``; the flow's ``ctx.state`` is then a
read-only view of the state file and its API clients refuse anything but GET, while the run
record goes through the runner's own writable store.
"""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from magsit.config import Config
from magsit.errors import ExitCode, LockedError, MagsitError, Owner, RecordError
from magsit.flow import SyncFlow
from magsit.logs import log_context
from magsit.state.lock import JobLock
from magsit.state.store import StateStore, now_utc

if TYPE_CHECKING:
    from magsit.magento.client import MagentoClient
    from magsit.sitoo.client import SitooClient

log = logging.getLogger("magsit.runner")

PRUNE_EVERY = 100  # runs between clean-ups of old history in the state file

# Jobs whose records are events (a web order, a delivery, a refund): an exception a person resolved
# means "handled by hand", so the record is held like an ignored one until `exceptions retry`. The
# other jobs sync a state (stock, product, customer): resolved there means "fixed", and the record
# is synced again when it changes.
HANDLED_BY_HAND = frozenset({"push-orders", "sync-fulfilment", "sync-returns"})


@dataclass
class RecordFailure:
    kind: str
    owner: Owner
    key: str
    message: str
    id: int | None = None  # the exception row's id (None in --dry-run): `magsit exceptions show ID`


@dataclass
class JobResult:
    """What a flow did. ``counts`` are for humans and `status`; ``plan`` is what --dry-run prints."""

    counts: dict[str, int] = field(default_factory=dict)
    plan: Any = None
    summary: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # Set by a flow whose result itself means "not clean" (e.g. reconcile variances) without record failures.
    findings: int = 0


@dataclass
class RunOutcome:
    job: str
    exit_code: int
    status: str
    result: JobResult
    failures: list[RecordFailure]
    run_id: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "status": self.status,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "counts": self.result.counts,
            "summary": self.result.summary,
            "failures": [f.__dict__ for f in self.failures],
            "plan": self.result.plan,
            "details": self.result.details,
            "error": self.error,
        }


class JobContext:
    """Everything a flow needs: config, state, clients, options, and the record-failure API."""

    def __init__(
        self,
        config: Config,
        state: StateStore,
        job: str,
        *,
        dry_run: bool = False,
        options: dict[str, Any] | None = None,
        magento: MagentoClient | None = None,
        sitoo: SitooClient | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.job = job
        self.dry_run = dry_run
        self.options = options or {}
        self.counts: Counter[str] = Counter()
        self.failures: list[RecordFailure] = []
        self.run_id: int | None = None
        self.started_at = now_utc()
        self.stop_event = stop_event or threading.Event()
        self._magento = magento
        self._sitoo = sitoo
        self._held: set[str] | None = None

    @property
    def magento(self) -> MagentoClient:
        if self._magento is None:
            from magsit.magento.client import MagentoClient

            self._magento = MagentoClient(self.config.magento, self.config.http, read_only=self.dry_run)
        return self._magento

    @property
    def sitoo(self) -> SitooClient:
        if self._sitoo is None:
            from magsit.sitoo.client import SitooClient

            self._sitoo = SitooClient(self.config.sitoo, self.config.http, read_only=self.dry_run)
        return self._sitoo

    def should_stop(self) -> bool:
        """True once SIGTERM/SIGINT asked the daemon to stop: finish the record in hand, then return."""
        return self.stop_event.is_set()

    def fail(
        self,
        kind: str,
        owner: Owner,
        key: str,
        message: str,
        payload: Any = None,
        retry_after: timedelta | None = None,
    ) -> None:
        """One record failed: open its exception row (not in --dry-run) and go on with the batch.

        A record a person ignored (or handled by hand) is not a failure of this run: its row stays
        as the person left it, and the run's exit code does not say "records failed" for it."""
        if key in self.held_keys():
            self.counts["held"] += 1
            log.info("%s: %s [%s] left alone: its exception is %s", self.job, key, kind, "ignored or resolved by hand")
            return
        failure = RecordFailure(kind, owner, key, message)
        self.failures.append(failure)
        self.counts["failed"] += 1
        if not self.dry_run:
            failure.id = self.state.record_exception(self.job, kind, owner, key, message, payload, retry_after)["id"]
        # INFO: the command prints every failed record in its table (and the daemon's alerts route
        # them); a WARNING here would print each one twice. -v shows them as they happen.
        log.info("%s: %s [%s, owner %s]: %s", self.job, key, kind, owner, message)

    def fail_record(self, error: RecordError, retry_after: timedelta | None = None) -> None:
        self.fail(error.kind, error.owner, error.key, error.message, error.payload, retry_after)

    def succeeded(self, key: str) -> None:
        """A record went through: its open exception (if any) resolves itself."""
        if not self.dry_run and self.state.resolve_exception(self.job, key):
            self.counts["resolved"] += 1

    def is_due(self, key: str) -> bool:
        """May this run work on the record? False while its exception backs off, and for records a
        person ignored (or, in event jobs, resolved by hand) until `magsit exceptions retry`."""
        return self.state.exception_due(self.job, key, hold_resolved=self.job in HANDLED_BY_HAND)

    def not_due_reason(self, key: str) -> str:
        """Why is_due(key) is False, in words for a dry run's plan or a summary."""
        if key in self.held_keys():
            return "left alone: its exception was ignored or resolved by hand (`magsit exceptions retry` brings it back)"
        return "waiting for its retry time (backoff; `magsit exceptions retry` makes it due now)"

    def held_keys(self) -> set[str]:
        """Record keys a person told magsit to leave alone (read once per run): flows that pick their
        records by change rather than by exception drop these before any API write."""
        if self._held is None:
            self._held = self.state.held_exception_keys(self.job, hold_resolved=self.job in HANDLED_BY_HAND)
        return self._held

    def due_skus(self) -> set[str]:
        """SKUs (from the payload) of this job's open exceptions whose retry time has come: the
        records a SKU-keyed flow re-reads by name, so its cursor can move on without losing them
        (poison records wait for their backoff)."""
        return self.due_payload_values("sku")

    def due_payload_values(self, field: str, kinds: Collection[str] | None = None) -> set[str]:
        """``field`` of the payloads of this job's open exceptions (of ``kinds``, if given) whose
        retry time has come."""
        values: set[str] = set()
        for row in self.state.exceptions(status="open", job=self.job):
            if (kinds is not None and row["kind"] not in kinds) or not self.is_due(row["record_key"]):
                continue
            try:
                payload = json.loads(row.get("payload") or "{}")
            except ValueError:
                continue
            value = payload.get(field) if isinstance(payload, dict) else None
            if isinstance(value, str) and value:
                values.add(value)
        return values


Flow = SyncFlow
AfterRunHook = Callable[[Config, StateStore, RunOutcome], None]
after_run_hooks: list[AfterRunHook] = []


def run_job(
    config: Config,
    job: str,
    flow: Flow,
    *,
    dry_run: bool = False,
    options: dict[str, Any] | None = None,
    state: StateStore | None = None,
    magento: MagentoClient | None = None,
    sitoo: SitooClient | None = None,
    stop_event: threading.Event | None = None,
    lock_wait: float = 0.0,
) -> RunOutcome:
    """Run ``flow`` under the job's lock. Raises LockedError (exit 4) if another run holds it (after
    waiting up to ``lock_wait`` seconds for it: scheduled runs that must not be skipped)."""
    own_state = state is None
    if state is None:
        # A dry run never creates the state file: with none yet it plans against an empty state
        # and its run record lives in memory only.
        fresh = dry_run and not StateStore.exists(config.state.path)
        state = StateStore(":memory:") if fresh else StateStore(config.state.path)
    try:
        with JobLock(config.state.path, job, lock_wait, stop_event):
            return _run_locked(config, state, job, flow, dry_run, options, magento, sitoo, stop_event)
    finally:
        if own_state:
            state.close()


def _run_locked(
    config: Config,
    state: StateStore,
    job: str,
    flow: Flow,
    dry_run: bool,
    options: dict[str, Any] | None,
    magento: MagentoClient | None,
    sitoo: SitooClient | None,
    stop_event: threading.Event | None,
) -> RunOutcome:
    state.mark_abandoned_runs()
    # A dry run's flow sees the state file through a read-only connection: only the runner's own
    # store (``state``) writes, and only the run record.
    view = state.read_only_view() if dry_run else state
    try:
        ctx = JobContext(
            config, view, job, dry_run=dry_run, options=options, magento=magento, sitoo=sitoo, stop_event=stop_event
        )
        ctx.run_id = state.start_run(job, dry_run=dry_run)
        with log_context(job=job, run_id=ctx.run_id):
            # -v: every flow says when it starts and what it did (its counts and summary).
            log.info("%s: run %s started%s", job, ctx.run_id, " (dry run)" if dry_run else "")
            outcome = _run_flow(config, state, ctx, flow)
            counts = ", ".join(f"{k} {v}" for k, v in sorted(outcome.result.counts.items())) or "nothing to do"
            log.info("%s: run %s %s (exit %s): %s", job, ctx.run_id, outcome.status, outcome.exit_code, counts)
            for line in outcome.result.summary:
                log.info("%s: %s", job, line)
            return outcome
    finally:
        if view is not state:
            view.close()


def _call_flow(ctx: JobContext, flow: Flow) -> JobResult:
    """pull -> plan -> verify (if the flow has it) -> (dry run: the plan's preview | push)."""
    plan = flow.plan(flow.pull(ctx), ctx.config, ctx.started_at)
    verify = getattr(flow, "verify", None)
    if verify is not None:
        verify(ctx, plan)  # a dry run too: it fails where the real run would, before any write
    if not ctx.dry_run:
        return flow.push(ctx, plan)
    preview = plan.preview()
    for problem in preview.problems:
        ctx.fail_record(problem)  # listed, never recorded (and held records stay quiet)
    ctx.counts.update(preview.counts)
    return JobResult(plan=preview.rows, summary=list(preview.summary), details=dict(preview.details), findings=preview.findings)


class _CyclicGcPause:
    """Pauses CPython's cyclic garbage collector while any job's flow runs.

    A big run builds millions of long-lived objects (pages, snapshots, plan rows) and the collector
    re-scans them again and again: about 40 % of the CPU of planning a 200k-row --full stock run.
    magsit's data is acyclic and freed by reference counting; the few cycles a run leaves
    (exception frames, futures) wait for the collector to resume. Counted, because the daemon and
    the events worker can run several jobs at once: the collector resumes when the last one ends,
    and only if it was on before the first began.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._was_enabled:
                gc.enable()


_gc_paused = _CyclicGcPause()


def _run_flow(config: Config, state: StateStore, ctx: JobContext, flow: Flow) -> RunOutcome:
    job = ctx.job
    result = JobResult()
    error: str | None = None
    try:
        with _gc_paused:
            result = _call_flow(ctx, flow)
    except KeyboardInterrupt:
        outcome = _finish(state, ctx, result, "interrupted", ExitCode.INTERRUPTED, "interrupted")
        raise _Interrupted(outcome) from None
    except LockedError:
        raise
    except MagsitError as exc:
        error = exc.message
        outcome = _finish(state, ctx, result, "failed", ExitCode.FAILED, error)
        _after_run(config, state, outcome)
        return outcome
    except Exception as exc:  # the run fails; the traceback goes to the debug log, never to the operator
        log.debug("unexpected error in %s", job, exc_info=True)
        if isinstance(exc, sqlite3.OperationalError) and ctx.dry_run and "readonly" in str(exc):
            error = f"internal error: the dry run tried to write the state file ({exc}); nothing was written"
        elif isinstance(exc, sqlite3.OperationalError):
            # Another process held the state file longer than the busy timeout, or the disk is full.
            error = f"state file {config.state.path} could not be written ({exc}); the next run re-checks what this one did"
        else:
            error = f"internal error: {type(exc).__name__}: {exc}"
        outcome = _finish(state, ctx, result, "failed", ExitCode.FAILED, error)
        _after_run(config, state, outcome)
        return outcome
    if ctx.failures:
        status, code = "partial", ExitCode.PARTIAL
    elif result.findings:
        status, code = "ok", ExitCode.PARTIAL
    else:
        status, code = "ok", ExitCode.OK
    outcome = _finish(state, ctx, result, status, code, "")
    _after_run(config, state, outcome)
    return outcome


class _Interrupted(KeyboardInterrupt):
    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__()
        self.outcome = outcome


def _finish(state: StateStore, ctx: JobContext, result: JobResult, status: str, code: int, message: str) -> RunOutcome:
    counts = dict(ctx.counts)
    counts.update(result.counts)
    result.counts = counts
    if ctx.run_id is not None:
        state.finish_run(ctx.run_id, status, code, counts, message)
        if ctx.run_id % PRUNE_EVERY == 0:
            state.prune_history()
    return RunOutcome(ctx.job, code, status, result, list(ctx.failures), ctx.run_id, message or None)


def _after_run(config: Config, state: StateStore, outcome: RunOutcome) -> None:
    for hook in after_run_hooks:
        try:
            hook(config, state, outcome)
        except Exception:  # an alert that cannot be delivered must never fail the sync run
            log.warning("after-run hook %r failed", hook, exc_info=True)
