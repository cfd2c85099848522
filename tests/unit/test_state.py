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
from magsit.state.cursor import KeysetPosition
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
        store.set_cursor("push-orders", "orders", KeysetPosition("2026-01-01 00:00:00", 1))
        raise RuntimeError("crash between outcome and cursor")
    assert store.get_mapping("order", "magento", "000000001") is None
    assert store.get_cursor("push-orders", "orders", KeysetPosition) is None
    with store.transaction():
        store.put_mapping("order", "magento", "000000001", "17", {"lines": {"1": 0}})
        store.set_cursor("push-orders", "orders", KeysetPosition("2026-01-01 00:00:00", 1))
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


def test_a_failed_transaction_leaves_nothing_and_commits_nothing_early(tmp_path):
    """sqlite-utils wraps its writes in db.atomic(): inside our transaction that must be a savepoint,
    never a COMMIT another connection could see before the transaction ends."""
    path = tmp_path / "s.db"
    store, other = StateStore(path), StateStore(path)
    store.put_mapping("order", "magento", "000000002", "18", {"lines": {"1": 0}})
    with pytest.raises(RuntimeError), store.transaction():
        store.put_mapping("order", "magento", "000000001", "17")
        store.put_mapping("order", "magento", "000000002", "99", {"lines": {}})
        store.delete_mapping("order", "magento", "000000002")
        store.set_cursor("push-orders", "orders", KeysetPosition("2026-01-01 00:00:00", 1))
        store.record_pushed_stock([("A", "default", Decimal("3"), 1)])
        store.record_exception("push-orders", "unknown_sku", "ecommerce", "000000003", "SKU X is not in Sitoo")
        store.heartbeat("daemon", {"jobs": 1})
        run_id = store.start_run("push-orders")
        store.finish_run(run_id, "ok", 0, {"pushed": 1})
        # Nothing is visible outside the transaction yet.
        assert other.get_mapping("order", "magento", "000000001") is None
        assert other.get_mapping("order", "magento", "000000002")["other_id"] == "18"
        assert other.runs() == [] and other.exceptions() == [] and other.heartbeats() == []
        raise RuntimeError("crash between outcome and cursor")
    for view in (store, other):
        assert view.get_mapping("order", "magento", "000000001") is None
        assert view.get_mapping("order", "magento", "000000002")["data"] == {"lines": {"1": 0}}
        assert view.get_cursor("push-orders", "orders", KeysetPosition) is None
        assert view.pushed_stock() == {} and not view.has_pushed_stock()
        assert view.exceptions() == [] and view.runs() == [] and view.heartbeats() == []


def test_mapping_upsert_keeps_created_at_and_missing_rows_are_no_ops(tmp_path):
    store = StateStore(tmp_path / "s.db")
    store.put_mapping("order", "magento", 7, None, status="pending")
    store.db.execute("UPDATE mappings SET created_at = '2026-01-01T00:00:00Z'")
    store.put_mapping("order", "magento", "7", 42, {"a": 1})
    row = store.get_mapping("order", "magento", "7")
    assert (row["other_id"], row["status"], row["data"], row["created_at"]) == ("42", "done", {"a": 1}, "2026-01-01T00:00:00Z")
    assert row["updated_at"] != row["created_at"]
    assert [m["external_id"] for m in store.mappings("order", status="done")] == ["7"]
    assert store.mappings("order", status="pending") == []
    store.delete_mapping("order", "magento", "404")  # nothing to delete: no error, as before
    store.finish_run(404, "ok", 0, {})
    assert not store.set_exception_status(404, "ignored") and not store.retry_exception(404)
    assert not store.resolve_exception("push-orders", "404")
    store.mark_alerted([404])


def test_exception_reopened_after_close_starts_a_new_episode(tmp_path):
    store = StateStore(tmp_path / "s.db")
    first = store.record_exception("push-orders", "unknown_sku", "ecommerce", "9", "m1")
    store.mark_alerted([first["id"]])
    again = store.record_exception("push-orders", "unknown_sku", "ecommerce", "9", "m2")
    assert again["alerted_at"] is not None and again["first_seen"] == first["first_seen"] and again["attempts"] == 2
    store.set_exception_status(first["id"], "ignored")
    store.db.execute("UPDATE exceptions SET first_seen = '2026-01-01T00:00:00Z'")
    held = store.record_exception("push-orders", "unknown_sku", "finance", "9", "m3")
    assert (held["status"], held["attempts"], held["alerted_at"], held["owner"]) == ("ignored", 1, None, "finance")
    assert held["first_seen"] != "2026-01-01T00:00:00Z" and held["resolved_at"] is None
    assert store.held_exception_keys("push-orders") == {"9"}
    assert store.find_exceptions(str(held["id"]))[0]["id"] == held["id"]
    assert store.exceptions(status="ignored", owner="finance", limit=1)[0]["message"] == "m3"


def test_forget_pushed_stock_by_key_in_chunks(tmp_path):
    store = StateStore(tmp_path / "s.db")
    rows = [(f"SKU-{n}", "default", Decimal(n), 1) for n in range(450)] + [("SKU-1", "store-2", Decimal("1"), 1)]
    store.record_pushed_stock(rows)
    store.forget_pushed_stock([(f"SKU-{n}", "default") for n in range(1, 450)])
    assert store.pushed_stock() == {("SKU-0", "default"): (Decimal("0"), 1), ("SKU-1", "store-2"): (Decimal("1"), 1)}
    assert store.pushed_stock(["SKU-1"]) == {("SKU-1", "store-2"): (Decimal("1"), 1)}
    store.forget_pushed_stock()
    assert not store.has_pushed_stock()


def test_read_only_store_reads_through_the_table_api_and_refuses_writes(tmp_path):
    path = tmp_path / "s.db"
    store = StateStore(path)
    store.put_mapping("order", "magento", "1", "2")
    store.record_pushed_stock([("A", "default", Decimal("3"), 1)])
    store.heartbeat("daemon")
    store.record_exception("push-orders", "unknown_sku", "ecommerce", "1", "m", retry_after=timedelta(hours=1))
    store.finish_run(store.start_run("push-orders"), "ok", 0, {"n": 1})
    schema = store.db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    view = store.read_only_view()
    assert view.get_mapping("order", "magento", "1")["other_id"] == "2"
    assert view.pushed_stock(["A"]) and view.has_pushed_stock()
    assert [row["name"] for row in view.heartbeats()] == ["daemon"]
    assert view.exceptions()[0]["record_key"] == "1" and not view.exception_due("push-orders", "1")
    assert view.runs("push-orders")[0]["counts"] == {"n": 1}
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        view.put_mapping("order", "magento", "3", "4")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        view.record_pushed_stock([("B", "default", Decimal("1"), 1)])
    assert store.db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert store.get_mapping("order", "magento", "3") is None
