"""Fault matrix: every fault the emulators can inject, on a read and on a write of every writing flow.

Each case: the faulted run either recovers (exit 0, and then it must already have done
everything) or ends with a clear error (exit 1, a one-line reason, no "internal error") or with
record failures (exit 3, each with kind, owner and message) — never a traceback. Then a later
clean run (after the backoff of any failed record) converges to the state of an uninterrupted run
with nothing duplicated.

The CLI runs in this process (`magsit.cli.run`, the same error boundary as the console script)
so 70 cases take seconds; `[http]` is short (2 retries, 10 ms backoff, 0.5 s read timeout
against 1 s `timeout` faults).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import magsit.http
from magsit.sandbox.common import FAULT_KINDS
from tests.e2e.conftest import Env
from tests.reliability.conftest import FAST_HTTP, TIMEOUT_DELAY, Ran, expire_backoffs, run_here
from tests.reliability.scenarios import SCENARIOS, blind_recreates, pending_mappings

pytestmark = pytest.mark.e2e

KINDS = [k for k in FAULT_KINDS if k != "slow"]  # slow = latency only (used by the concurrency suite)

# flow -> side -> (emulator, method, path regex): the first matching request gets the fault
TARGETS: dict[str, dict[str, tuple[str, str, str]]] = {
    "stock": {"read": ("sitoo", "GET", r"/warehouseitems\.json"), "write": ("magento", "POST", r"/inventory/source-items$")},
    "orders": {"read": ("magento", "GET", r"/V1/orders$"), "write": ("sitoo", "POST", r"/orders\.json$")},
    "fulfilment": {"read": ("sitoo", "GET", r"/orderdeliveries\.json$"), "write": ("magento", "POST", r"/ship$")},
    "returns": {"read": ("sitoo", "GET", r"/orders\.json$"), "write": ("magento", "POST", r"/refund$")},
    "customers": {"read": ("magento", "GET", r"/customers/search$"), "write": ("sitoo", "POST", r"/users\.json$")},
}


def outcome(ran: Ran) -> dict[str, Any]:
    assert "Traceback" not in ran.text, ran.text
    try:
        return json.loads(ran.out)
    except ValueError:  # a failure before the run started (e.g. the lock): a one-line error on stderr
        return {"exit_code": ran.code, "error": ran.err.strip(), "failures": []}


def assert_clear(ran: Ran, kind: str) -> dict[str, Any]:
    result = outcome(ran)
    assert ran.code in (0, 1, 3), ran.text
    assert result["exit_code"] == ran.code
    if ran.code == 1:
        error = result["error"] or ""
        assert error and "internal error" not in error, f"unclear failure: {error!r}"
        assert "magento" in error.lower() or "sitoo" in error.lower(), error  # names the system at fault
        if kind == "html403":
            assert "WAF" in error
    if ran.code == 3:
        assert result["failures"], ran.text
        for failure in result["failures"]:
            assert failure["kind"] and failure["owner"] in ("ops", "ecommerce", "finance") and failure["message"]
    return result


def settle(control: Any, limit: float = 5.0) -> None:
    """Wait until every delayed (timeout/slow) request has been answered by the emulator."""
    deadline = time.monotonic() + limit
    while any(r.fault in ("timeout", "slow") and not r.status for r in control.calls()):
        assert time.monotonic() < deadline, "the emulator never finished a delayed request"
        time.sleep(0.02)


CASES = [(flow, side, kind) for flow in TARGETS for side in ("read", "write") for kind in KINDS]


@pytest.mark.parametrize(("flow", "side", "kind"), CASES, ids=[f"{f}-{s}-{k}" for f, s, k in CASES])
def test_fault_then_clean_run_converges(sandbox: Env, reference, flow: str, side: str, kind: str) -> None:
    scenario = SCENARIOS[flow]
    sandbox.configure(http=FAST_HTTP)
    scenario.seed(sandbox)
    system, method, path = TARGETS[flow][side]
    fault = getattr(sandbox, system).control.add_fault(
        kind, method=method, path=path, times=1, delay=TIMEOUT_DELAY, retry_after="0"
    )
    expected_code, expected = reference(flow)
    first = run_here(sandbox, "--json", *scenario.command)
    assert fault.fired == 1, f"the {kind} fault never fired on {method} {path}"
    assert_clear(first, kind)
    if first.code == 0:
        # A run that says "done" has done everything: nothing was skipped past the fault (P33).
        assert scenario.snapshot(sandbox) == expected
    if kind == "timeout":
        # The emulator applies the request the client gave up on a little later; a lookup before
        # that cannot see it (true of a real server too — which is why the intent stays pending).
        settle(getattr(sandbox, system).control)

    getattr(sandbox, system).control.clear_faults()
    expire_backoffs(sandbox)
    clean = run_here(sandbox, *scenario.command)
    assert clean.code == expected_code, clean.text
    assert scenario.dupes(sandbox) == {}
    assert pending_mappings(sandbox) == []
    assert scenario.snapshot(sandbox) == expected


@pytest.mark.parametrize("flow", list(TARGETS))
def test_a_read_that_keeps_failing_fails_the_run_and_keeps_the_cursor(sandbox: Env, reference, flow: str) -> None:
    """P33: a page that fails after every retry is never skipped: exit 1, nothing claimed done, and
    the next run still sees everything."""
    scenario = SCENARIOS[flow]
    sandbox.configure(http=FAST_HTTP)
    scenario.seed(sandbox)
    system, method, path = TARGETS[flow]["read"]
    fault = getattr(sandbox, system).control.add_fault("503", method=method, path=path, times=1000)
    first = run_here(sandbox, "--json", *scenario.command)
    assert first.code == 1, first.text
    assert "gave up after 3 attempts" in outcome(first)["error"]
    # bounded: max_retries 2 -> 3 attempts per request (fulfilment reads one list per open order)
    assert fault.fired in (3, 6, 9)
    getattr(sandbox, system).control.clear_faults()
    expire_backoffs(sandbox)
    expected_code, expected = reference(flow)
    assert run_here(sandbox, *scenario.command).code == expected_code
    assert scenario.snapshot(sandbox) == expected


def test_retry_after_is_honoured(sandbox: Env) -> None:
    """429 + Retry-After: 1 -> the retry waits at least a second (capped by [http] max_wait)."""
    scenario = SCENARIOS["orders"]
    sandbox.configure(http={**FAST_HTTP, "max_wait": 5})
    scenario.seed(sandbox)
    sandbox.magento.control.add_fault("429", method="GET", path=r"/V1/orders$", times=1, retry_after="1")
    assert run_here(sandbox, *scenario.command).code == 0
    calls = sandbox.magento.control.calls("GET", r"/V1/orders$")
    assert calls[0].status == 429 and calls[1].at - calls[0].at >= 0.95


def test_blind_post_retries_would_be_caught(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix has teeth: if the HTTP layer resent POSTs like GETs, a create applied before its
    500 answer (`500_after`) is sent again — the detector used above reports it."""
    real = magsit.http.HttpSession.request

    def blind(self: Any, method: str, path: str, *, retry: bool | None = None, **kwargs: Any) -> Any:
        return real(self, method, path, retry=True if method.upper() == "POST" else retry, **kwargs)

    monkeypatch.setattr(magsit.http.HttpSession, "request", blind)
    scenario = SCENARIOS["orders"]
    sandbox.configure(http=FAST_HTTP)
    scenario.seed(sandbox)
    sandbox.sitoo.control.add_fault("500_after", method="POST", path=r"/orders\.json$", times=1)
    run_here(sandbox, *scenario.command)
    again = blind_recreates(sandbox.sitoo.control, r"/orders\.json$", lambda r: (r.body or {}).get("externalid"))
    # Creates go [orders].concurrency at a time: whichever order's POST met the fault is the one resent.
    assert list(again.values()) == [1], again
