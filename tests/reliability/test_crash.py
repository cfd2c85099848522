"""Crash tests: every writing flow is SIGKILLed at named points (MAGSIT_CRASH_AT, see
magsit/testing/crashpoints.py), then run again; the end state must equal that of an uninterrupted
run — no duplicate order, shipment, credit memo, refund order or customer, nothing lost — and the
state file must pass ``PRAGMA integrity_check``.

The killed run is a real ``python -m magsit`` child process (SIGKILL: no finally, no rollback
handler, no flush). The rerun goes through the same CLI entry point in this process, which keeps
the suite fast and lets the last tests remove a guarantee to show the detectors catch it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

import magsit.sync.calls
import magsit.sync.returns
from magsit.state.store import StateStore
from tests.e2e.conftest import Env
from tests.reliability.conftest import run_here, run_proc
from tests.reliability.scenarios import SCENARIOS, integrity, pending_mappings

pytestmark = pytest.mark.e2e

# (flow, crash point[:n-th hit]) — before a write, after a write was applied but before its outcome
# was recorded, mid-batch (a later hit of the same point), inside a state transaction.
CRASHES = [
    ("stock", "stock.after_batch:1"),
    ("stock", "stock.after_batch:2"),
    ("stock", "stock.mid_transaction"),
    ("orders", "orders.before_create"),
    ("orders", "orders.after_create"),
    ("orders", "orders.after_create:2"),
    ("orders", "orders.mid_transaction:3"),
    ("orders", "orders.after_user_create"),
    ("fulfilment", "fulfilment.before_ship"),
    ("fulfilment", "fulfilment.after_ship"),
    ("fulfilment", "fulfilment.after_ship:2"),
    ("fulfilment", "fulfilment.after_cancel"),
    ("ship_parts", "fulfilment.between_parts"),
    ("ship_parts", "fulfilment.between_parts:2"),
    ("ship_parts", "fulfilment.after_ship:3"),
    ("returns", "returns.before_refund"),
    ("returns", "returns.after_refund"),
    ("returns", "returns.after_export"),
    ("return_parts", "returns.between_parts"),
    ("return_parts", "returns.after_refund:2"),
    ("return_parts", "returns.between_parts:2"),
    ("customers", "customers.after_sitoo_create"),
    ("customers", "customers.after_magento_create"),
]

def _run_states(path: Path) -> list[tuple[str, str]]:
    state = StateStore(path)
    try:
        return [(r["status"], r["message"] or "") for r in state.runs(limit=50)]
    finally:
        state.close()


@pytest.mark.parametrize(("flow", "point"), CRASHES, ids=[p for _, p in CRASHES])
def test_killed_run_then_rerun_ends_like_an_uninterrupted_run(sandbox: Env, reference, flow: str, point: str) -> None:
    scenario = SCENARIOS[flow]
    scenario.seed(sandbox)
    killed = run_proc(sandbox, *scenario.command, crash_at=point)
    assert killed.returncode == -signal.SIGKILL, f"crash point {point} was not reached:\n{killed.stdout}{killed.stderr}"
    assert integrity(sandbox.state_path) == "ok"

    rerun = run_here(sandbox, *scenario.command)  # the lock of the dead run does not block it
    expected_code, expected = reference(flow)
    assert rerun.code == expected_code, rerun.text
    assert "Traceback" not in rerun.text
    assert integrity(sandbox.state_path) == "ok"
    assert scenario.dupes(sandbox) == {}
    assert pending_mappings(sandbox) == []  # every unknown outcome was settled by a lookup
    assert scenario.snapshot(sandbox) == expected
    # the run the kill interrupted is not left "running" forever
    assert ("failed", "process died during the run") in _run_states(sandbox.state_path)


@pytest.mark.parametrize("intent", [True, False], ids=["intent-row", "intent-removed"])
def test_customer_created_by_a_killed_push_orders_is_not_created_again_by_sync_customers(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch, intent: bool
) -> None:
    """sync-customers looks Anna up (absent); meanwhile push-orders creates her in Sitoo and is
    killed before recording it. The intent row it left makes sync-customers search again before
    creating; without it the create is sent twice."""
    from magsit.sync import customers as customers_flow

    SCENARIOS["orders"].seed(sandbox)
    sandbox.configure(customers={"create_in_magento": False})
    real_pull = customers_flow.pull

    def pull_then_killed_push_orders(ctx: Any) -> Any:
        snapshot = real_pull(ctx)
        killed = run_proc(sandbox, "push-orders", crash_at="orders.after_user_create")
        assert killed.returncode == -signal.SIGKILL
        if not intent:
            for _, email in pending_mappings(sandbox):
                ctx.state.delete_mapping("customer", "email", email)
        return snapshot

    monkeypatch.setattr(customers_flow, "pull", pull_then_killed_push_orders)
    customers = run_here(sandbox, "sync-customers")
    dupes = {**SCENARIOS["orders"].dupes(sandbox), **SCENARIOS["customers"].dupes(sandbox)}
    if not intent:
        assert dupes
        return
    assert customers.code == 0, customers.text
    assert run_here(sandbox, "push-orders").code == 0
    assert dupes == {} and SCENARIOS["orders"].dupes(sandbox) == {}
    assert pending_mappings(sandbox) == []


def test_crash_inside_a_transaction_leaves_neither_half(sandbox: Env) -> None:
    """SIGKILL between the two writes of the first outcome transaction: its order mapping is still
    the intent (pending) — the 'pushed' half was rolled back with the rest — and the file is sound.
    The other creates in flight at that moment (up to [orders].concurrency) are pending too: every
    Sitoo order has an intent, none is recorded as pushed, and the rerun settles them by lookup."""
    scenario = SCENARIOS["orders"]
    scenario.seed(sandbox)
    killed = run_proc(sandbox, *scenario.command, crash_at="orders.mid_transaction")
    assert killed.returncode == -signal.SIGKILL
    assert integrity(sandbox.state_path) == "ok"
    state = StateStore(sandbox.state_path)
    try:
        statuses = {m["external_id"]: m["status"] for m in state.mappings("order")}
    finally:
        state.close()
    assert set(statuses.values()) == {"pending"}
    created = {o["externalid"] for o in sandbox.sitoo.state.orders.values()}
    assert created and created <= set(statuses)  # at least the cut one was created; only records were lost
    assert run_here(sandbox, *scenario.command).code == 0
    assert pending_mappings(sandbox) == [] and scenario.dupes(sandbox) == {}


# -- the detectors catch a removed guarantee --------------------------------------------------------
def _no_order_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    real = magsit.sync.calls.sitoo_orders_by
    monkeypatch.setattr(magsit.sync.calls, "sitoo_orders_by",
                        lambda ctx, field, values: [] if field == "externalid" else real(ctx, field, values))  # fmt: skip


def _no_memo_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(magsit.sync.returns, "_existing_memo", lambda ctx, plan, skip=(): None)


@pytest.mark.parametrize(
    ("flow", "point", "remove", "symptom"),
    [
        ("orders", "orders.after_create", _no_order_lookup, "order creates sent again"),
        ("returns", "returns.after_refund", _no_memo_lookup, "refund requests sent again"),
    ],
    ids=["orders-check-then-create", "returns-check-then-create"],
)
def test_without_check_then_create_the_duplicate_is_detected(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch, flow: str, point: str, remove: Any, symptom: str
) -> None:
    """Proof that the crash tests have teeth: with the existence check removed, the same crash and
    rerun sends the create again, and the detector the crash tests assert with reports it."""
    scenario = SCENARIOS[flow]
    scenario.seed(sandbox)
    assert run_proc(sandbox, *scenario.command, crash_at=point).returncode == -signal.SIGKILL
    remove(monkeypatch)
    run_here(sandbox, *scenario.command)
    assert symptom in scenario.dupes(sandbox)
