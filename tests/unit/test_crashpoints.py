"""magsit.testing.crashpoints: inert without MAGSIT_CRASH_AT, SIGKILL on exactly the n-th hit."""

from __future__ import annotations

import signal
import subprocess
import sys

from magsit.testing import crashpoints
from magsit.testing.crashpoints import crashpoint


def test_inert_without_the_variable(monkeypatch):
    monkeypatch.delenv("MAGSIT_CRASH_AT", raising=False)
    for _ in range(3):
        crashpoint("orders.after_create")  # returns: nothing counted, nothing fires


def test_other_points_and_earlier_hits_do_not_fire(monkeypatch):
    kills = []
    monkeypatch.setattr(crashpoints.os, "kill", lambda pid, sig: kills.append(sig))
    monkeypatch.setenv("MAGSIT_CRASH_AT", "a.b:3, c.d")
    crashpoint("x.y")
    crashpoint("a.b")
    crashpoint("a.b")
    assert kills == []
    crashpoint("a.b")
    assert kills == [signal.SIGKILL]
    crashpoint("a.b")  # only the n-th hit
    crashpoint("c.d")  # default: the first hit
    assert kills == [signal.SIGKILL, signal.SIGKILL]


def test_kills_the_process_with_sigkill():
    code = "from magsit.testing.crashpoints import crashpoint\ncrashpoint('p'); crashpoint('p'); print('survived')"
    result = subprocess.run([sys.executable, "-c", code], env={"MAGSIT_CRASH_AT": "p:2"}, capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL and "survived" not in result.stdout
