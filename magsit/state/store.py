"""The local state file: runs, cursors, ID mappings, the stock baseline and per-record exceptions.

SQLite in WAL mode with a busy timeout, so cron runs, the daemon and a human can share it; created
0600 because mappings and payload excerpts are business data. Schema changes are numbered
migrations keyed on ``PRAGMA user_version``; a state file written by a newer magsit is refused
rather than silently misread.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils
from sqlite_utils.db import NotFoundError, Table

from magsit.errors import ExitCode, MagsitError, Owner
from magsit.state.cursor import C, Cursor, cursor_from_json, cursor_to_json

OWNERS: tuple[Owner, ...] = ("ops", "ecommerce", "finance")
PAYLOAD_LIMIT = 2000


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    return (moment or now_utc()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


# Migrations: one function per schema version, said with sqlite-utils' table API (create,
# create_index, add_column, and transform for a change add_column cannot make). Each runs in its own
# BEGIN IMMEDIATE in _migrate, where sqlite-utils' own atomic() is a SAVEPOINT: a crash half way
# leaves the file at the previous version. Rewriting a released migration must not change what it
# builds (state files in use ran it as it was): tests/unit/test_state_schema.py pins every version.
def _migration_1(db: sqlite_utils.Database) -> None:
    db.table("runs").create(
        {
            "id": int,
            "job": str,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | ok | partial | failed | skipped | interrupted
            "exit_code": int,
            "counts": str,
            "message": str,
            "pid": int,
            "dry_run": int,
        },
        pk="id",
        not_null={"job", "started_at", "status", "counts", "dry_run"},
        defaults={"counts": "{}", "dry_run": 0},
    ).create_index(["job", "started_at"], index_name="runs_job")
    db.table("cursors").create(
        {"job": str, "stream": str, "value": str, "updated_at": str},
        pk=("job", "stream"),
        not_null={"job", "stream", "value", "updated_at"},
    )
    db.table("mappings").create(
        {
            "entity": str,  # order | customer | creditmemo | refund | shipment | product ...
            "system": str,  # the system whose id is external_id: magento | sitoo
            "external_id": str,
            "other_id": str,  # the counterpart's id (NULL while a create is in flight)
            "status": str,
            "data": str,
            "created_at": str,
            "updated_at": str,
        },
        pk=("entity", "system", "external_id"),
        not_null={"entity", "system", "external_id", "status", "data", "created_at", "updated_at"},
        defaults={"status": "done", "data": "{}"},
    ).create_index(["entity", "other_id"], index_name="mappings_other").create_index(
        ["entity", "status"], index_name="mappings_status"
    )
    db.table("pushed_stock").create(
        {"sku": str, "source_code": str, "quantity": str, "status": int, "pushed_at": str},
        pk=("sku", "source_code"),
        not_null={"sku", "source_code", "quantity", "status", "pushed_at"},
    )
    # SQL for this one table: UNIQUE (job, record_key) is a table constraint, which sqlite-utils'
    # create() cannot declare. A unique index would enforce the same, but then a new file's schema
    # would differ from every file already in use (a named index instead of the constraint's
    # autoindex), and the next migration would have two shapes of the table to upgrade.
    db.execute(
        """
        CREATE TABLE exceptions (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL,
            record_key TEXT NOT NULL,
            message TEXT NOT NULL,
            payload TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'open',   -- open | resolved | ignored
            next_retry_at TEXT,
            resolved_at TEXT,
            alerted_at TEXT,
            UNIQUE (job, record_key)
        )
        """
    )
    db.table("exceptions").create_index(["status", "owner"], index_name="exceptions_status")
    db.table("heartbeats").create(
        {"name": str, "at": str, "pid": int, "info": str},
        pk="name",
        not_null={"at", "info"},
        defaults={"info": "{}"},
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Sitoo Events SPI queue (magsit.events): one row per event_id, so a re-sent event is stored once."""
    db.table("events").create(
        {
            "event_id": str,
            "event_type": str,
            "event_date": int,  # Sitoo's epoch seconds
            "account_id": str,
            "data": str,
            "received_at": float,  # epoch seconds (fractional): lag is measured in seconds
            "status": str,  # queued | processed | ignored | failed
            "attempts": int,
            "next_attempt_at": float,
            "processed_at": float,
            "lag_seconds": float,  # received -> applied
            "note": str,
        },
        pk="event_id",
        not_null={"event_type", "data", "received_at", "status", "attempts"},
        defaults={"data": "{}", "status": "queued", "attempts": 0},
    ).create_index(["status", "received_at"], index_name="events_status")


def _migration_3(db: sqlite_utils.Database) -> None:
    """Who closed an exception: 'run' (the record went through) or 'person' (`exceptions resolve` /
    `ignore`). A record a person handled by hand must not be done again by the next run."""
    db.table("exceptions").add_column("resolved_by", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1, _migration_2, _migration_3]


class StateError(MagsitError):
    pass


class StatePathError(StateError):
    """The state file cannot be created or written where `[state] path` says: a config error."""

    exit_code = ExitCode.USAGE


def _path_error(path: Path, reason: object) -> StatePathError:
    return StatePathError(
        f"state file {path} cannot be created or written ({reason}); set [state] path to a file in a "
        "folder the user running magsit can write"
    )


def _enable_wal(conn: sqlite3.Connection, attempts: int = 300) -> None:
    """Switching a new file to WAL needs an exclusive lock and SQLite answers BUSY at once (no busy
    handler) while another process opens the same new file: retry for up to the busy timeout."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


class StateStore:
    """All reads and writes of the state file. Safe to share between threads of one process."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only:
            self.db = sqlite_utils.Database(self._connect_read_only())
            version = self._check_version()
            if version < len(MIGRATIONS):
                raise StateError(
                    f"state file {self.path} has schema {version}, this magsit needs {len(MIGRATIONS)}; "
                    "a read-only open does not upgrade it: run once without --dry-run"
                )
            return
        if str(self.path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    # Create it 0600 before SQLite does, so it is never briefly world-readable.
                    fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                    os.close(fd)
                elif not os.access(self.path, os.W_OK) or not os.access(self.path.parent, os.W_OK):
                    raise PermissionError("no write permission for the file or its folder")
            except OSError as exc:
                raise _path_error(self.path, exc.strerror or exc) from None
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 30000")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc):
                raise _path_error(self.path, exc) from None
            raise StateError(f"state file {self.path} cannot be opened: {exc}") from None
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Is there a state file at ``path`` (an in-memory store always "exists")? When there is
        none, StatePathError (exit 2) if it could not be created there either — checked without
        creating anything (a dry run's question)."""
        if str(path) == ":memory:" or Path(path).exists():
            return True
        folder = Path(path).absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise _path_error(Path(path), f"{folder} is not a folder this user can write")
        return False

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection SQLite itself refuses to write through (``mode=ro``): no migration, no
        journal-mode or other pragma writes. An in-memory store has no file to reopen: it is a new
        empty one, migrated and then switched to ``query_only``."""
        if str(self.path) == ":memory:":
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self._migrate()
            conn.execute("PRAGMA query_only = ON")
            return conn
        if not self.path.exists():
            raise StateError(f"state file {self.path} does not exist (a read-only open never creates it)")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 30000")  # per connection, writes nothing to the file
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path} cannot be opened read-only: {exc}") from None
        return conn

    def read_only_view(self) -> StateStore:
        """The same state file through a second, read-only connection (what a dry run's flow gets)."""
        return StateStore(self.path, read_only=True)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- schema ----------------------------------------------------------------------------------
    def _check_version(self) -> int:
        try:
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path} is not a magsit state file: {exc}") from None
        if version > len(MIGRATIONS):
            raise StateError(
                f"state file {self.path} was written by a newer magsit (schema {version}, this one knows "
                f"{len(MIGRATIONS)}); upgrade magsit instead of risking the state"
            )
        return version

    def _migrate(self) -> None:
        with self._lock:
            version = self._check_version()
            for number in range(version, len(MIGRATIONS)):
                with self.transaction():
                    # Another process (cron and the daemon starting on a new file) may have migrated
                    # while this one waited for the write lock: re-read the version under the lock.
                    if self.db.execute("PRAGMA user_version").fetchone()[0] > number:
                        continue
                    MIGRATIONS[number](self.db)
                    self.db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StateStore]:
        """One atomic unit: outcomes and the cursor that covers them commit together or not at all."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                savepoint = f"sp_{threading.get_ident()}_{id(self)}"
                conn.execute(f"SAVEPOINT {savepoint}")
                try:
                    yield self
                except BaseException:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                    raise
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                return
            # IMMEDIATE takes the write lock up front: a deferred transaction that upgrades later can
            # fail at once with SQLITE_BUSY under WAL when another process wrote in between. A
            # read-only store's transaction is a consistent read (a write in it still fails).
            conn.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.db.execute(sql, params)

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    # Single-table reads and writes go through sqlite-utils' table API; plain SQL is kept only where a
    # query is relational (joins, GROUP BY, correlated sub-selects) or on the per-order hot path (the
    # mapping read and write, see get_mapping), and says so. Every write runs
    # inside transaction(): sqlite-utils wraps its statements in ``db.atomic()``, which inside an open
    # transaction is a SAVEPOINT (never a COMMIT behind the caller's back; sqlite-utils 3.x used
    # ``with conn:``, which commits: hence the >=4.0 pin), and outside one would be a deferred BEGIN
    # whose read-then-write can fail at once with SQLITE_BUSY under WAL.
    def _table(self, name: str) -> Table:
        return self.db.table(name)

    def _where(self, table: str, where: str | None = None, params: Any = (), **options: Any) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._table(table).rows_where(where, list(params), **options))

    def _first(self, table: str, where: str, params: Any = (), select: str = "*") -> dict[str, Any] | None:
        rows = self._where(table, where, params, select=select, limit=1)
        return rows[0] if rows else None

    def _update(self, table: str, pk: Any, values: dict[str, Any]) -> bool:
        """Update one row by primary key; False when there is none (as an UPDATE matching nothing)."""
        with self.transaction():
            try:
                self._table(table).update(pk, values)
            except NotFoundError:
                return False
            return True

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, job: str, dry_run: bool = False) -> int:
        with self.transaction():
            runs = self._table("runs")
            runs.insert({"job": job, "started_at": iso(), "status": "running", "pid": os.getpid(), "dry_run": int(dry_run)})
            return int(runs.last_rowid or 0)

    def finish_run(self, run_id: int, status: str, exit_code: int, counts: dict[str, Any], message: str = "") -> None:
        self._update(
            "runs",
            run_id,
            {"finished_at": iso(), "status": status, "exit_code": exit_code, "counts": _json(counts), "message": message[:2000]},
        )

    def last_runs(self) -> list[dict[str, Any]]:
        """The newest run of each job, plus its newest successful run (SQL: a join on a GROUP BY)."""
        rows = self._rows(
            """
            SELECT r.* FROM runs r
            JOIN (SELECT job, MAX(id) AS id FROM runs WHERE dry_run = 0 GROUP BY job) last ON last.id = r.id
            ORDER BY r.job
            """
        )
        ok = {
            row["job"]: row
            for row in self._rows(
                "SELECT job, MAX(finished_at) AS finished_at FROM runs "
                "WHERE dry_run = 0 AND status IN ('ok', 'partial') GROUP BY job"
            )
        }
        for row in rows:
            row["counts"] = json.loads(row["counts"] or "{}")
            row["last_success_at"] = ok.get(row["job"], {}).get("finished_at")
        return rows

    def runs(self, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, params = ("job = ?", (job,)) if job else (None, ())
        rows = self._where("runs", where, params, order_by="id DESC", limit=int(limit))
        for row in rows:
            row["counts"] = json.loads(row["counts"] or "{}")
        return rows

    def prune_history(self, keep_days: int = 90) -> int:
        """Forget old run rows and closed exceptions; the newest run and success of each job stay.

        The events worker and the daemon add many runs a day; without this the file only grows.
        SQL, not delete_where: the rows kept are picked by GROUP BY sub-selects.
        """
        cutoff = iso(now_utc() - timedelta(days=keep_days))
        with self.transaction():
            runs = self._exec(
                """
                DELETE FROM runs WHERE started_at < ? AND status != 'running'
                  AND id NOT IN (SELECT MAX(id) FROM runs GROUP BY job)
                  AND id NOT IN (SELECT MAX(id) FROM runs WHERE status IN ('ok', 'partial') GROUP BY job)
                """,
                (cutoff,),
            ).rowcount
            closed = self._exec(
                "DELETE FROM exceptions WHERE status != 'open' AND COALESCE(resolved_at, last_seen) < ?", (cutoff,)
            ).rowcount
        return runs + closed

    def mark_abandoned_runs(self) -> None:
        """Runs left 'running' by a process that no longer exists (killed) are marked as such."""
        for row in self._where("runs", "status = 'running'", select="id, pid"):
            if row["pid"] and not _pid_alive(row["pid"]):
                self._update("runs", row["id"], {"status": "failed", "message": "process died during the run"})

    # -- cursors ---------------------------------------------------------------------------------
    def get_cursor(self, job: str, stream: str, kind: type[C]) -> C | None:
        """The ``(job, stream)`` cursor as a ``kind`` (``None`` if there is none); a stored value of
        another kind is a ``CursorError``, never misread."""
        row = self._first("cursors", "job = ? AND stream = ?", (job, stream), select="value")
        return cursor_from_json(kind, json.loads(row["value"]), where=f"{job}/{stream}") if row else None

    def set_cursor(self, job: str, stream: str, cursor: Cursor) -> None:
        value = cursor_to_json(cursor, where=f"{job}/{stream}")
        with self.transaction():
            self._table("cursors").upsert(
                {"job": job, "stream": stream, "value": _json(value), "updated_at": iso()}, pk=("job", "stream")
            )

    # -- mappings --------------------------------------------------------------------------------
    # The mapping reads and writes below are the hot path (several per order: a 2,000-order push
    # makes ~8,000 writes) and are one plain statement each: sqlite-utils' table API introspects the
    # table on every call (sqlite_master, PRAGMA table_info: ~20 statements per write), which cost a
    # push-orders run ~6 s of CPU (bench/README.md, 2026-12-03).
    def get_mapping(self, entity: str, system: str, external_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT * FROM mappings WHERE entity = ? AND system = ? AND external_id = ?", (entity, system, str(external_id))
        )
        return _mapping(rows[0]) if rows else None

    def find_mapping_by_other(self, entity: str, other_id: str) -> dict[str, Any] | None:
        row = self._first("mappings", "entity = ? AND other_id = ?", (entity, str(other_id)))
        return _mapping(row) if row else None

    def put_mapping(
        self,
        entity: str,
        system: str,
        external_id: str,
        other_id: str | None,
        data: dict[str, Any] | None = None,
        status: str = "done",
    ) -> None:
        values = {
            "other_id": None if other_id is None else str(other_id),
            "status": status,
            "data": _json(data or {}),
            "updated_at": iso(),
        }
        # created_at is kept on an update (sqlite-utils' upsert() would overwrite it too).
        with self.transaction():
            self._exec(
                "INSERT INTO mappings (entity, system, external_id, other_id, status, data, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entity, system, external_id) DO UPDATE SET "
                "other_id = excluded.other_id, status = excluded.status, data = excluded.data, "
                "updated_at = excluded.updated_at",
                (entity, system, str(external_id), values["other_id"], status, values["data"], values["updated_at"],
                 values["updated_at"]),
            )  # fmt: skip

    def mappings(self, entity: str, status: str | None = None) -> list[dict[str, Any]]:
        where, params = ("entity = ?", (entity,)) if status is None else ("entity = ? AND status = ?", (entity, status))
        return [_mapping(row) for row in self._where("mappings", where, params, order_by="external_id")]

    def delete_mapping(self, entity: str, system: str, external_id: str) -> None:
        with self.transaction():
            self._table("mappings").delete_where(
                "entity = ? AND system = ? AND external_id = ?", (entity, system, str(external_id))
            )

    # -- stock baseline --------------------------------------------------------------------------
    def pushed_stock(self, skus: Iterable[str] | None = None) -> dict[tuple[str, str], tuple[Decimal, int]]:
        """The stock baseline; with ``skus``, only the rows of those SKUs (a small incremental run
        need not load a catalogue-sized table)."""
        select = "sku, source_code, quantity, status"
        if skus is None:
            rows = self._where("pushed_stock", select=select)
        else:
            wanted = sorted(set(skus))
            rows = []
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                rows.extend(self._where("pushed_stock", f"sku IN ({','.join('?' * len(part))})", part, select=select))
        return {(row["sku"], row["source_code"]): (Decimal(row["quantity"]), int(row["status"])) for row in rows}

    def has_pushed_stock(self) -> bool:
        """Whether any stock baseline row exists (none: a new or lost state file)."""
        return self._first("pushed_stock", "1", select="1") is not None

    def record_pushed_stock(self, rows: list[tuple[str, str, Decimal, int]]) -> None:
        moment = iso()
        with self.transaction():
            self._table("pushed_stock").upsert_all(
                (
                    {"sku": sku, "source_code": source, "quantity": str(qty), "status": int(status), "pushed_at": moment}
                    for sku, source, qty, status in rows
                ),
                pk=("sku", "source_code"),
            )

    def forget_pushed_stock(self, keys: list[tuple[str, str]] | None = None) -> None:
        table = self._table("pushed_stock")
        with self.transaction():
            if keys is None:
                table.delete_where()
                return
            for start in range(0, len(keys), 400):
                part = keys[start : start + 400]
                marks = ", ".join(["(?, ?)"] * len(part))
                table.delete_where(f"(sku, source_code) IN (VALUES {marks})", [value for key in part for value in key])

    # -- exceptions ------------------------------------------------------------------------------
    def record_exception(
        self,
        job: str,
        kind: str,
        owner: Owner,
        record_key: str,
        message: str,
        payload: Any = None,
        retry_after: timedelta | None = None,
    ) -> dict[str, Any]:
        """Open (or refresh) the exception row of one record. Attempts count up; the retry time backs off."""
        if owner not in OWNERS:
            raise ValueError(f"owner must be one of {OWNERS}, not {owner!r}")
        moment = now_utc()
        excerpt = None if payload is None else _json(payload)[:PAYLOAD_LIMIT]
        seen = iso(moment)
        where = ("job = ? AND record_key = ?", (job, record_key))
        with self.transaction():
            existing = self._first("exceptions", *where)
            still_open = existing is not None and existing["status"] == "open"
            attempts = existing["attempts"] + 1 if still_open else 1
            values = {
                "kind": kind,
                "owner": owner,
                "message": message,
                "payload": excerpt,
                "last_seen": seen,
                "attempts": attempts,
                "next_retry_at": iso(moment + retry_after * (2 ** min(attempts - 1, 8))) if retry_after else None,
            }
            if existing is None:
                self._table("exceptions").insert({"job": job, "record_key": record_key, "first_seen": seen, "status": "open", **values})
            else:
                # A row that was closed starts a new episode: new first_seen, alert again. An ignored
                # record stays ignored (a person said so) but its details are refreshed.
                values |= {"status": "ignored" if existing["status"] == "ignored" else "open", "resolved_at": None}
                if not still_open:
                    values |= {"alerted_at": None, "first_seen": seen}
                self._update("exceptions", existing["id"], values)
            row = self._first("exceptions", *where)
        assert row is not None
        return row

    def resolve_exception(self, job: str, record_key: str) -> bool:
        """A record that went through resolves its open row. Returns whether there was one."""
        with self.transaction():
            row = self._first("exceptions", "job = ? AND record_key = ? AND status = 'open'", (job, record_key), select="id")
            return row is not None and self._update(
                "exceptions", row["id"], {"status": "resolved", "resolved_at": iso(), "resolved_by": "run"}
            )

    def open_exception_keys(self, job: str) -> set[str]:
        return {row["record_key"] for row in self._where("exceptions", "job = ? AND status = 'open'", (job,), select="record_key")}

    def exception_due(
        self, job: str, record_key: str, moment: datetime | None = None, *, hold_resolved: bool = False
    ) -> bool:
        """May a run work on this record now? The exception life cycle (docs/runbook.md):

        - no exception, or resolved because the record went through: yes;
        - open: once its backoff time has come (poison records wait, the pause doubling per attempt);
        - ignored by a person: never, until `magsit exceptions retry`;
        - resolved by a person: never if ``hold_resolved`` (the job's records are events a person
          handled by hand, e.g. an order entered in Sitoo by hand), else yes.
        """
        row = self._first(
            "exceptions", "job = ? AND record_key = ?", (job, record_key), select="next_retry_at, status, resolved_by"
        )
        if row is None:
            return True
        if row["status"] == "ignored":
            return False
        if row["status"] == "resolved":
            return not (hold_resolved and row["resolved_by"] == "person")
        due = parse_iso(row["next_retry_at"])
        return due is None or due <= (moment or now_utc())

    def held_exception_keys(self, job: str, *, hold_resolved: bool = False) -> set[str]:
        """Record keys of this job a person told magsit to leave alone (see exception_due)."""
        where = "job = ? AND (status = 'ignored'"
        if hold_resolved:
            where += " OR (status = 'resolved' AND resolved_by = 'person')"
        return {row["record_key"] for row in self._where("exceptions", where + ")", (job,), select="record_key")}

    def exceptions(
        self,
        status: str | None = "open",
        owner: str | None = None,
        job: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        for column, value in (("status", status), ("owner", owner), ("job", job), ("kind", kind)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses) or None
        return self._where("exceptions", where, params, order_by="last_seen DESC, id DESC", limit=int(limit) if limit else None)

    def get_exception(self, exception_id: int) -> dict[str, Any] | None:
        return self._first("exceptions", "id = ?", (exception_id,))

    def find_exceptions(self, ref: str) -> list[dict[str, Any]]:
        """Exceptions a person names by id or by record key (SKU, increment id, e-mail …): the row
        with that id and every row with that key (one per job), newest first."""
        rows = self._where("exceptions", "record_key = ?", (ref,), order_by="last_seen DESC, id DESC")
        if ref.isdigit() and not any(row["id"] == int(ref) for row in rows):
            by_id = self.get_exception(int(ref))
            if by_id is not None:
                rows.insert(0, by_id)
        return rows

    def set_exception_status(self, exception_id: int, status: str) -> bool:
        if status not in ("open", "resolved", "ignored"):
            raise ValueError(status)
        closed = status != "open"
        return self._update(
            "exceptions",
            exception_id,
            {"status": status, "resolved_at": iso() if closed else None, "next_retry_at": None, "resolved_by": "person" if closed else None},
        )

    def retry_exception(self, exception_id: int) -> bool:
        """Make the record due on the next run (after the cause was fixed), whatever its status: also
        the way back for an ignored or resolved record. Attempts keep counting, so the backoff of a
        record that fails again goes on growing."""
        return self._update(
            "exceptions", exception_id, {"status": "open", "next_retry_at": None, "resolved_at": None, "resolved_by": None}
        )

    def exception_counts(self) -> list[dict[str, Any]]:
        # SQL: a GROUP BY count, not a row lookup.
        return self._rows(
            "SELECT owner, job, kind, COUNT(*) AS count FROM exceptions WHERE status = 'open' "
            "GROUP BY owner, job, kind ORDER BY owner, job, kind"
        )

    def mark_alerted(self, ids: list[int]) -> None:
        moment = iso()
        with self.transaction():
            for exception_id in ids:
                self._update("exceptions", exception_id, {"alerted_at": moment})

    # -- heartbeats ------------------------------------------------------------------------------
    def heartbeat(self, name: str, info: dict[str, Any] | None = None) -> None:
        with self.transaction():
            self._table("heartbeats").upsert(
                {"name": name, "at": iso(), "pid": os.getpid(), "info": _json(info or {})}, pk="name"
            )

    def heartbeats(self) -> list[dict[str, Any]]:
        rows = self._where("heartbeats", order_by="name")
        for row in rows:
            row["info"] = json.loads(row["info"] or "{}")
        return rows

    def integrity_check(self) -> str:
        return str(self._exec("PRAGMA integrity_check").fetchone()[0])


def _mapping(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["data"] = json.loads(row.get("data") or "{}")
    return row


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
