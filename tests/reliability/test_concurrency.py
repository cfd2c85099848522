"""Concurrency: one run per job (the loser exits 4 and touches nothing), different jobs side by
side on one state file (WAL + busy timeout), and proof that the lock is what prevents duplicates."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import magsit.runner
from magsit.config import load_config
from magsit.errors import LockedError
from magsit.state.store import MIGRATIONS, StateStore
from magsit.sync import orders as orders_flow
from magsit.sync import sitoousers
from tests.e2e.conftest import Env
from tests.reliability.conftest import run_here, run_proc
from tests.reliability.scenarios import SCENARIOS, integrity, seed_customers, seed_orders

pytestmark = pytest.mark.e2e


def popen(env: Env, *args: str) -> subprocess.Popen:
    child_env = {k: v for k, v in os.environ.items() if k not in ("MAGSIT_CONFIG", "MAGSIT_CRASH_AT")}
    return subprocess.Popen([sys.executable, "-m", "magsit", "--config", str(env.config_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=env.tmp, env=child_env)  # fmt: skip


def wait_for(predicate: Any, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def runs(env: Env) -> list[dict[str, Any]]:
    state = StateStore(env.state_path)
    try:
        return state.runs(limit=100)
    finally:
        state.close()


def test_second_run_of_the_same_job_exits_4_and_touches_nothing(sandbox: Env, reference) -> None:
    scenario = SCENARIOS["orders"]
    scenario.seed(sandbox)
    # Hold the first run inside its first Magento read, while it owns the lock.
    hold = sandbox.magento.control.add_fault("slow", method="GET", path=r"/V1/orders$", times=1, delay=2.0)
    # The second process imports magsit while the first starts, then waits for a go on stdin: its
    # attempt then lands inside the first run's window however slow interpreter start-up is.
    second = subprocess.Popen(
        [sys.executable, "-c", "import sys; from magsit.cli import run; sys.stdin.readline(); "
         f"sys.exit(run(['--config', {str(sandbox.config_path)!r}, 'push-orders']))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sandbox.tmp,
    )  # fmt: skip
    first = popen(sandbox, "push-orders")
    try:
        wait_for(lambda: hold.fired == 1)
        before = len(sandbox.magento.control.calls()) + len(sandbox.sitoo.control.calls())
        second_out, second_err = second.communicate("go\n", timeout=60)
        after = len(sandbox.magento.control.calls()) + len(sandbox.sitoo.control.calls())
        still_held = first.poll() is None
        out, err = first.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    assert still_held  # the refusal happened while the first run was in flight
    assert second.returncode == 4, second_out + second_err
    assert "another run holds the lock" in second_err and "Traceback" not in second_err
    assert before == after  # the loser sent nothing to either API
    assert first.returncode == 0, out + err
    assert [r["job"] for r in runs(sandbox)] == ["push-orders"]  # and wrote no run row
    assert scenario.dupes(sandbox) == {}
    assert scenario.snapshot(sandbox) == reference("orders")[1]


def test_lock_of_a_killed_run_does_not_block_the_next(sandbox: Env) -> None:
    seed_orders(sandbox)
    hold = sandbox.magento.control.add_fault("slow", method="GET", path=r"/V1/orders$", times=1, delay=5.0)
    victim = popen(sandbox, "push-orders")
    wait_for(lambda: hold.fired == 1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert run_here(sandbox, "push-orders").code == 0
    assert runs(sandbox)[-1]["status"] == "failed"  # the dead run, marked as such by the next one


def test_different_jobs_run_side_by_side_on_one_state_file(sandbox: Env, reference) -> None:
    seed_orders(sandbox)
    seed_customers(sandbox)
    # Slow answers on both emulators keep all three runs inside their windows at the same time.
    sandbox.magento.control.latency = 0.02
    sandbox.sitoo.control.latency = 0.02
    procs = [popen(sandbox, job) for job in ("push-orders", "sync-customers", "sync-stock")]
    results = [(p.wait(timeout=60), p.stdout.read() + p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0, 0, 0], results
    assert all("Traceback" not in text and "locked" not in text for _, text in results)
    assert integrity(sandbox.state_path) == "ok"
    spans = sorted((r["started_at"], r["finished_at"], r["job"], r["status"]) for r in runs(sandbox))
    assert [s[3] for s in spans] == ["ok", "ok", "ok"]
    assert SCENARIOS["orders"].dupes(sandbox) == {} and SCENARIOS["customers"].dupes(sandbox) == {}
    assert SCENARIOS["orders"].snapshot(sandbox)["sitoo_orders"] == reference("orders")[1]["sitoo_orders"]


def test_a_busy_state_file_makes_a_run_wait_not_fail(sandbox: Env) -> None:
    """Another process holds the state file's write lock for a second: the run waits (busy
    timeout) and finishes, instead of failing with 'database is locked'."""
    seed_orders(sandbox)
    StateStore(sandbox.state_path).close()
    holder = sqlite3.connect(str(sandbox.state_path), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        ran = run_proc(sandbox, "push-orders")
    finally:
        release.join()
        holder.close()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(sandbox.sitoo.state.orders) == 3


class _NoLock:
    """The guarantee removed: a lock that never excludes anyone."""

    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> _NoLock:
        return self

    def acquire(self) -> _NoLock:
        return self

    def release(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "lock-removed"])
def test_overlapping_runs_duplicate_only_without_the_lock(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    """Two runs of push-orders in one process (flock excludes threads too). With the lock, the
    second is refused; with the lock removed both pass the existence check before either creates,
    and the duplicate detector fires — the concurrency test above would fail."""
    scenario = SCENARIOS["orders"]
    scenario.seed(sandbox)
    if not locked:
        monkeypatch.setattr(magsit.runner, "JobLock", _NoLock)
        # The customer-create lock would otherwise queue the second run behind the first's orders.
        monkeypatch.setattr(sitoousers, "JobLock", _NoLock)
    # Both runs are held in their first order read, then race to create the same orders.
    sandbox.magento.control.add_fault("slow", method="GET", path=r"/V1/orders$", times=2, delay=0.5)
    if not locked:
        # Without the lock, make the overlap certain: each run's first order create waits until the
        # other run has planned too (with the lock the second run never gets that far).
        from magsit.sync import calls

        both_planned = threading.Barrier(2, timeout=10)
        real_create = calls.sitoo_create_order
        runs_creating: set[int] = set()  # per run, not per thread: creates go out from a pool
        guard = threading.Lock()

        def create_after_both_planned(ctx: Any, payload: Any) -> Any:
            with guard:
                first = id(ctx) not in runs_creating
                runs_creating.add(id(ctx))
            if first:
                both_planned.wait()
            return real_create(ctx, payload)

        monkeypatch.setattr(calls, "sitoo_create_order", create_after_both_planned)
    config = load_config(sandbox.config_path)
    outcomes: list[Any] = []

    def one() -> None:
        try:
            outcomes.append(magsit.runner.run_job(config, "push-orders", orders_flow).exit_code)
        except LockedError:
            outcomes.append(4)
        except BaseException as exc:  # surfaced by the assertions below
            outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if locked:
        assert sorted(outcomes, key=str) == [0, 4], outcomes
        assert scenario.dupes(sandbox) == {}
    else:
        assert "order creates sent again" in scenario.dupes(sandbox), outcomes


def test_two_processes_creating_the_state_file_at_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cron and the daemon start on a new state file together: both read schema version 0; the one
    that gets the write lock second must not run the migrations again ('table runs already exists')."""
    path = tmp_path / "magsit.db"
    original = StateStore.transaction
    raced: list[bool] = []

    def transaction(self: StateStore) -> Any:
        if not raced:
            raced.append(True)
            StateStore(path).close()  # the other process migrates first, while this one waits
        return original(self)

    monkeypatch.setattr(StateStore, "transaction", transaction)
    store = StateStore(path)
    try:
        assert store.schema_version == len(MIGRATIONS) and raced
    finally:
        store.close()


class _NoCheck:
    """The cross-job guard removed: no shared lock, no re-check before creating."""

    @staticmethod
    def settle(ctx: Any, emails: list[str], lookup: Any, *, searched: bool, spellings: Any = None) -> tuple[dict, list[str]]:
        return ({}, list(emails)) if searched else ({e: u for e, u in lookup(emails).items() if u}, list(emails))


def _customer_race_setup(sandbox: Env) -> Any:
    seed_orders(sandbox)  # Anna is a Magento customer with a web order: both jobs want her in Sitoo
    sandbox.configure(customers={"create_in_magento": False})
    return load_config(sandbox.config_path)


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_sync_customers_links_a_customer_push_orders_created_after_it_looked(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    """sync-customers looks Anna up (absent), then push-orders creates her for her order, then
    sync-customers goes on to create: it must find her and link her instead."""
    from magsit.sync import customers as customers_flow

    config = _customer_race_setup(sandbox)
    real_pull = customers_flow.pull

    def pull_then_push_orders(ctx: Any) -> Any:
        snapshot = real_pull(ctx)
        assert magsit.runner.run_job(config, "push-orders", orders_flow).exit_code == 0
        return snapshot

    monkeypatch.setattr(customers_flow, "pull", pull_then_push_orders)
    if not guarded:
        monkeypatch.setattr(customers_flow, "settle_new_users", _NoCheck.settle)
    code = magsit.runner.run_job(config, "sync-customers", customers_flow).exit_code
    dupes = {**SCENARIOS["orders"].dupes(sandbox), **SCENARIOS["customers"].dupes(sandbox)}
    if not guarded:  # the create is sent again (and refused: a false exception for e-commerce)
        assert dupes and code == 3
        return
    assert code == 0 and dupes == {}
    users = [u for u in sandbox.sitoo.state.users.values() if str(u["email"]).lower() == "anna.berg@example.com"]
    anna = next(c for c in sandbox.magento.state.customers.values() if c["email"].lower() == "anna.berg@example.com")
    assert [u.get("externalid") for u in users] == [str(anna["id"])]  # linked to her Magento account


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_push_orders_and_sync_customers_creating_the_same_customer_at_once(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    """push-orders is between its Sitoo lookup and its create when sync-customers (another thread,
    as in the daemon) wants to create the same customer: the shared lock makes it wait and link."""
    from magsit.sync import calls
    from magsit.sync import customers as customers_flow

    config = _customer_race_setup(sandbox)
    if not guarded:
        monkeypatch.setattr(sitoousers, "JobLock", _NoLock)
    real_lookup = calls.sitoo_users_by_emails
    other: list[threading.Thread] = []
    outcomes: list[Any] = []

    def lookup_while_customers_runs(ctx: Any, emails: list[str]) -> Any:
        found = real_lookup(ctx, emails)
        if not other:
            other.append(threading.Thread(target=lambda: outcomes.append(
                magsit.runner.run_job(config, "sync-customers", customers_flow).exit_code)))  # fmt: skip
            other[0].start()
            # Unguarded it runs to the end here; guarded it queues for the lock this run holds.
            other[0].join(timeout=1.0 if guarded else 30)
        return found

    monkeypatch.setattr(calls, "sitoo_users_by_emails", lookup_while_customers_runs)
    assert magsit.runner.run_job(config, "push-orders", orders_flow).exit_code == 0
    other[0].join(timeout=30)
    assert outcomes == [0]
    dupes = {**SCENARIOS["orders"].dupes(sandbox), **SCENARIOS["customers"].dupes(sandbox)}
    if guarded:
        assert dupes == {}
    else:
        assert dupes
