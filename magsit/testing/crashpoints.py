"""Named crash points for the crash tests (tests/reliability/test_crash.py).

``crashpoint("orders.after_create")`` kills the process with SIGKILL on the n-th time that point is
reached, when the environment says so::

    MAGSIT_CRASH_AT=orders.after_create:2     # die the 2nd time the point is passed (default 1st)

Several points may be listed, comma-separated. Without the variable every call is a dictionary
lookup and a return: nothing is counted, nothing can fire. SIGKILL (not an exception) because that
is what a power cut, the OOM killer or ``kill -9`` does: no ``finally``, no rollback handler, no
flush — exactly the failure the state file and check-then-create must survive.

The points sit at the places where an interruption is interesting: before a create (intent
recorded, nothing sent), after a create was applied but before its outcome is recorded, inside a
state transaction, between the batches of a run.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "MAGSIT_CRASH_AT"

_lock = threading.Lock()
_hits: dict[str, int] = {}
_plan: dict[str, int] | None = None
_plan_source: str | None = None


def _parse(spec: str) -> dict[str, int]:
    plan: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        plan[name.strip()] = int(count) if count.strip().isdigit() else 1
    return plan


def crashpoint(name: str) -> None:
    """Die here (SIGKILL) if MAGSIT_CRASH_AT names this point and this is its n-th hit."""
    global _plan, _plan_source
    spec = os.environ.get(ENV)
    if not spec:
        return
    with _lock:
        if spec != _plan_source:
            _plan, _plan_source = _parse(spec), spec
            _hits.clear()
        assert _plan is not None
        if name not in _plan:
            return
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] != _plan[name]:
            return
    os.kill(os.getpid(), signal.SIGKILL)
