"""`magsit daemon`: an APScheduler 3.x BlockingScheduler built from ``[schedule]`` in the config.

Rules from pitfalls P30/P34:
- the job store is in memory and rebuilt from the config at every start (job stores must never be
  shared between schedulers), every job has an explicit id (the schedule key), ``max_instances=1``
  and ``coalesce=True``;
- APScheduler has no cross-process lock, so every run goes through ``runner.run_job`` and takes
  the same per-job flock as a cron or manual run; a run skipped because another process holds it
  is logged, not an error;
- a heartbeat row in the state file (every ~30 s and after each job) lets `magsit status` and
  Prometheus see that the daemon is alive, and stale jobs raise an alert.

SIGTERM/SIGINT set the stop event handed to every run (``ctx.should_stop()`` lets a flow finish
the record in hand), then the scheduler shuts down waiting for running jobs, and the process
exits 0. The shutdown runs on its own thread: calling it from inside the signal handler could
deadlock on a lock the interrupted main thread holds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from magsit import alerts
from magsit.config import Config
from magsit.errors import ConfigError, ExitCode, LockedError
from magsit.jobs import ScheduledJob, resolve_entry
from magsit.logs import log_context
from magsit.report import status_label
from magsit.runner import run_job
from magsit.schedule import parse_trigger, period_seconds
from magsit.state.store import StateStore, iso

log = logging.getLogger("magsit.daemon")

HEARTBEAT_SECONDS = 30.0


def grace_seconds(period: float) -> int:
    # Late by up to half a period (at most an hour) still runs; later than that waits for the next slot.
    return int(max(1, min(3600, period / 2)))


def lock_wait_seconds(period: float) -> float:
    """How long a scheduled run waits for its job's lock (held by another entry of the same job, e.g.
    the nightly `sync-stock --full` beside the 5-minute run, by cron or a person) before it is
    skipped: half its period, at most 10 minutes. A stopping daemon stops waiting at once."""
    return float(min(600.0, period / 2))


def build_jobs(config: Config) -> list[tuple[ScheduledJob, BaseTrigger, float]]:
    """Every [schedule] entry resolved and validated: ConfigError names the key. Nothing runs yet."""
    if not config.schedule:
        raise ConfigError("[schedule] is empty: add at least one job, e.g. sync-stock = \"every 5m\"")
    out = []
    for entry, expr in config.schedule.items():
        try:
            trigger = parse_trigger(expr)
            period = period_seconds(expr)
        except ValueError as exc:
            raise ConfigError(f"[schedule] key {entry!r}: {exc}") from None
        out.append((resolve_entry(entry), trigger, period))
    return out


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.heartbeat_seconds = heartbeat_seconds
        self.stop_event = threading.Event()
        self.jobs = build_jobs(config)
        alerts.install()  # failed runs and new exceptions reach their owners from scheduled runs too
        self.started_at = iso()
        self.last: dict[str, dict[str, Any]] = {}
        self._last_lock = threading.Lock()
        self._state = StateStore(config.state.path)
        self._on_stop = on_stop
        self._stopper: threading.Thread | None = None
        self._finished = threading.Event()
        self._missed_alerted: dict[str, float] = {}
        self.scheduler = BlockingScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=max(2, len(self.jobs)))},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        for scheduled, trigger, period in self.jobs:
            self.scheduler.add_job(
                self._run,
                trigger,
                args=[scheduled, lock_wait_seconds(period)],
                id=scheduled.entry,
                name=scheduled.entry,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace_seconds(period),
                replace_existing=True,
            )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- one run -----------------------------------------------------------------------------
    def _run(self, scheduled: ScheduledJob, lock_wait: float = 0.0) -> None:
        if self.stop_event.is_set():
            return
        with log_context(job=scheduled.job, entry=scheduled.entry):
            record: dict[str, Any] = {"at": iso()}
            try:
                outcome = run_job(
                    self.config, scheduled.job, scheduled.flow, options=dict(scheduled.options), stop_event=self.stop_event,
                    lock_wait=lock_wait,
                )
            except LockedError as exc:
                log.info("%s: skipped, %s", scheduled.entry, exc.message)
                record.update(status="skipped", exit_code=4)
            except Exception as exc:  # state file unreadable, etc.: log, alert, keep the daemon alive
                log.error("%s: could not run: %s", scheduled.entry, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                alerts.notify_ops(self.config, scheduled.job, "run_failed", f"could not run: {exc}")
                record.update(status="error", exit_code=1)
            else:
                record.update(status=outcome.status, exit_code=outcome.exit_code, run_id=outcome.run_id)
                level = logging.ERROR if outcome.status == "failed" else logging.INFO
                log.log(
                    level,
                    "%s: %s (exit %s)%s",
                    scheduled.entry,
                    status_label(outcome.status, outcome.exit_code),
                    outcome.exit_code,
                    f": {outcome.error}" if outcome.error else "",
                    extra={"run_id": outcome.run_id},
                )
            with self._last_lock:
                self.last[scheduled.entry] = record
            self.heartbeat()

    def _on_event(self, event: JobExecutionEvent) -> None:
        job_id = getattr(event, "job_id", "?")
        if event.code == EVENT_JOB_ERROR:
            log.error("%s: crashed: %r", job_id, getattr(event, "exception", None))
            alerts.notify_ops(self.config, job_id, "run_failed", f"the scheduled run crashed: {event.exception!r}")
        else:
            why = "still running from the previous slot" if event.code == EVENT_JOB_MAX_INSTANCES else "missed its slot"
            log.warning("%s: run skipped, %s", job_id, why)
            # Misses alert at most once an hour per job; a job that is really stuck shows up as stale.
            now = datetime.now(UTC).timestamp()
            if now - self._missed_alerted.get(job_id, 0) > 3600:
                self._missed_alerted[job_id] = now
                alerts.notify_ops(self.config, job_id, "run_missed", f"a scheduled run was skipped: {why}")

    # -- heartbeat -----------------------------------------------------------------------------
    def heartbeat(self) -> None:
        try:
            with self._last_lock:
                last = dict(self.last)
            self._state.heartbeat(
                "daemon",
                {
                    "started_at": self.started_at,
                    "jobs": [scheduled.entry for scheduled, _, _ in self.jobs],
                    "schedule": dict(self.config.schedule),
                    "last": last,
                    "stopping": self.stop_event.is_set(),
                },
            )
        except Exception:
            log.warning("could not write the daemon heartbeat", exc_info=True)

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_seconds):
            self.heartbeat()
            try:
                alerts.check_stale(self.config, self._state)
            except Exception:
                log.warning("stale check failed", exc_info=True)

    # -- start / stop --------------------------------------------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        """Ask every run to finish the record in hand, then shut the scheduler down (non-blocking)."""
        if self.stop_event.is_set():
            return
        log.info("daemon stopping (%s); waiting for running jobs to finish", reason)
        self.stop_event.set()
        self._stopper = threading.Thread(target=self._shutdown, name="magsit-daemon-stop")
        self._stopper.start()

    def _shutdown(self) -> None:
        # A signal that lands just before scheduler.start(): wait for it to be running, then stop it.
        deadline = time.monotonic() + 5
        while self.scheduler.state == STATE_STOPPED and not self._finished.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            if self.scheduler.state != STATE_STOPPED:
                self.scheduler.shutdown(wait=True)
        except Exception:
            log.warning("scheduler shutdown failed", exc_info=True)

    def run(self, install_signals: bool = True) -> int:
        """Blocks until stopped. Returns the exit code (0 after a graceful stop)."""
        if install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda num, _frame: self.stop(signal.Signals(num).name))
        log.info(
            "daemon started (pid %s): %s",
            os.getpid(),
            ", ".join(f"{s.entry} = {self.config.schedule[s.entry]!r}" for s, _, _ in self.jobs),
        )
        self.heartbeat()
        beat = threading.Thread(target=self._heartbeat_loop, name="magsit-heartbeat", daemon=True)
        beat.start()
        try:
            if not self.stop_event.is_set():
                self.scheduler.start()  # blocks until _shutdown() has waited for the running jobs
        finally:
            self._finished.set()
            self.stop_event.set()
            if self._stopper is not None:
                self._stopper.join()
            beat.join(timeout=5)
            self.heartbeat()
            self._state.close()
        log.info("daemon stopped")
        return ExitCode.OK
