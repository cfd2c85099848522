import os
import sqlite3
import stat
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from magsit.errors import LockedError
from magsit.state import JobLock, StateStore
from magsit.state.store import MIGRATIONS, StateError


def test_created_0600_with_wal(tmp_path):
    path = tmp_path / "s.db"
    store = StateStore(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version == len(MIGRATIONS)
    assert store.integrity_check() == "ok"


def test_newer_state_file_is_refused(tmp_path):
    path = tmp_path / "s.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateError, match="newer magsit"):
        StateStore(path)


def test_transaction_is_atomic(tmp_path):
    store = StateStore(tmp_path / "s.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.put_mapping("order", "magento", "000000001", "17")
        store.set_cursor("push-orders", "orders", ["2026-01-01 00:00:00", 1])
        raise RuntimeError("crash between outcome and cursor")
    assert store.get_mapping("order", "magento", "000000001") is None
    assert store.get_cursor("push-orders", "orders") is None
    with store.transaction():
        store.put_mapping("order", "magento", "000000001", "17", {"lines": {"1": 0}})
        store.set_cursor("push-orders", "orders", ["2026-01-01 00:00:00", 1])
    assert store.get_mapping("order", "magento", "000000001")["data"] == {"lines": {"1": 0}}
    assert store.find_mapping_by_other("order", "17")["external_id"] == "000000001"


def test_exceptions_lifecycle_and_backoff(tmp_path):
    store = StateStore(tmp_path / "s.db")
    row = store.record_exception("push-orders", "unknown_sku", "ecommerce", "000000007", "SKU X is not in Sitoo", retry_after=timedelta(minutes=5))
    assert row["attempts"] == 1 and row["status"] == "open"
    assert not store.exception_due("push-orders", "000000007")
    row = store.record_exception("push-orders", "unknown_sku", "ecommerce", "000000007", "again", retry_after=timedelta(minutes=5))
    assert row["attempts"] == 2
    assert store.retry_exception(row["id"])
    assert store.exception_due("push-orders", "000000007")
    assert store.resolve_exception("push-orders", "000000007")
    assert store.exceptions() == []
    assert store.exceptions(status="resolved")[0]["record_key"] == "000000007"
    with pytest.raises(ValueError):
        store.record_exception("j", "k", "nobody", "key", "m")


def test_pushed_stock_baseline(tmp_path):
    store = StateStore(tmp_path / "s.db")
    store.record_pushed_stock([("A/B", "default", Decimal("3"), 1), ("C", "store-2", Decimal("0"), 0)])
    store.record_pushed_stock([("A/B", "default", Decimal("2"), 1)])
    assert store.pushed_stock() == {("A/B", "default"): (Decimal("2"), 1), ("C", "store-2"): (Decimal("0"), 0)}


def test_lock_excludes_second_holder_and_dies_with_holder(tmp_path):
    path = tmp_path / "s.db"
    with JobLock(path, "sync-stock"):
        with pytest.raises(LockedError, match="another run holds the lock"):
            JobLock(path, "sync-stock").acquire()
        JobLock(path, "push-orders").acquire().release()  # other jobs are independent
    JobLock(path, "sync-stock").acquire().release()
    # A holder killed with SIGKILL leaves the lock file behind but not the lock.
    pid = os.fork()
    if pid == 0:
        JobLock(path, "sync-stock").acquire()
        os.kill(os.getpid(), 9)
    os.waitpid(pid, 0)
    JobLock(path, "sync-stock").acquire().release()


def test_a_waiting_lock_queues_for_a_short_section_then_gives_up(tmp_path):
    path = tmp_path / "s.db"
    holder = JobLock(path, "sitoo-users").acquire()
    threading.Timer(0.2, holder.release).start()
    started = time.monotonic()
    JobLock(path, "sitoo-users", wait_seconds=5).acquire().release()  # got it once the holder let go
    assert 0.15 < time.monotonic() - started < 2
    with JobLock(path, "sitoo-users"):
        started = time.monotonic()
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            JobLock(path, "sitoo-users", wait_seconds=0.2).acquire()
        assert time.monotonic() - started >= 0.2


def test_prune_history_keeps_the_latest_and_open_rows(tmp_path):
    store = StateStore(tmp_path / "s.db")
    old = "2020-01-01T00:00:00Z"
    for job, status in [("sync-stock", "ok"), ("sync-stock", "failed"), ("sync-stock", "ok"), ("push-orders", "ok")]:
        run = store.start_run(job)
        store.finish_run(run, status, 0, {})
    store.db.execute("UPDATE runs SET started_at = ?", (old,))
    store.record_exception("j", "k", "ops", "open-one", "m")
    store.record_exception("j", "k", "ops", "closed-one", "m")
    store.resolve_exception("j", "closed-one")
    store.db.execute("UPDATE exceptions SET last_seen = ?, resolved_at = CASE WHEN resolved_at IS NULL THEN NULL ELSE ? END", (old, old))
    assert store.prune_history(keep_days=30) == 3
    assert sorted((r["job"], r["status"]) for r in store.runs()) == [("push-orders", "ok"), ("sync-stock", "ok")]
    assert [r["record_key"] for r in store.exceptions(status=None)] == ["open-one"]
