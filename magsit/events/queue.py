"""The queue of received Sitoo events in the state file (the ``events`` table).

One row per ``event_id``, so an event Sitoo re-sends is stored once; the receiver writes with a
short busy timeout and ``synchronous=FULL``, the drain reads what is due, marks it processed,
ignored or failed, or defers it with backoff. ``event_stats`` gives `magsit status` its figures.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magsit.state.store import StateStore

WORKER_BUSY_TIMEOUT = 30.0
MAX_BACKOFF_SECONDS = 300.0
MAX_ATTEMPTS = 40  # ~3 h of failed runs (backoff capped at 5 min); the scheduled jobs heal the rest
DRAIN_LIMIT = 2000  # events per drain pass (coalesced into at most three runs)
RETAIN_SECONDS = 7 * 86400  # handled events kept for de-duplication (Sitoo retries for ~24 h)
HANDLED_TYPES = frozenset({"warehouse-transaction", "order", "order-delivery"})


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    event_date: int
    account_id: str
    data: dict[str, Any]


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
