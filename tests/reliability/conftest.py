"""Reliability suites: the e2e sandbox (both emulators on loopback, schema-checked) plus two ways
to run the real CLI — as a subprocess (what cron does; needed to SIGKILL it) and in this process
(``magsit.cli.run``, the same error boundary and exit codes, ~50x cheaper than a new interpreter,
and monkeypatchable for the "guarantee removed" demonstrations).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from magsit.sandbox.magento import MagentoSandbox
from magsit.sandbox.sitoo import SitooSandbox
from magsit.state.store import StateStore
from tests.e2e.conftest import Env, sandbox, write_config  # noqa: F401  (the sandbox fixture, re-exported)

# Short, bounded HTTP policy for fault tests: every fault settles in well under a second.
FAST_HTTP = {"max_retries": 2, "backoff_base": 0.01, "max_wait": 0.2, "read_timeout": 0.5, "connect_timeout": 1}
TIMEOUT_DELAY = 1.0  # `timeout` faults sleep this long: twice the read timeout


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_proc(env: Env, *args: str, crash_at: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m magsit --config <cfg> <args>` as a child process; ``crash_at`` arms a crash point."""
    child_env = dict(os.environ)
    child_env.pop("MAGSIT_CONFIG", None)
    child_env.pop("MAGSIT_CRASH_AT", None)
    if crash_at:
        child_env["MAGSIT_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "magsit", "--config", str(env.config_path), *args],
        capture_output=True, text=True, timeout=timeout, cwd=env.tmp, env=child_env,
    )  # fmt: skip


def run_here(env: Env, *args: str) -> Ran:
    """The CLI in this process (magsit.cli.run: the one error boundary), output captured."""
    from magsit.cli import run

    logger = logging.getLogger("magsit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(["--config", str(env.config_path), *args])
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_crash_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MAGSIT_CRASH_AT", raising=False)
    yield


_references: dict[str, tuple[int, dict[str, Any]]] = {}


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory):
    """Exit code and end state of one uninterrupted run of a flow's scenario (computed once per flow)."""

    def get(name: str) -> tuple[int, dict[str, Any]]:
        if name not in _references:
            tmp = tmp_path_factory.mktemp(f"reference-{name}")
            magento, sitoo = MagentoSandbox().start(), SitooSandbox().start()
            try:
                env = Env(magento, sitoo, tmp, tmp / "magsit.toml")
                write_config(env)
                from tests.reliability.scenarios import SCENARIOS

                scenario = SCENARIOS[name]
                scenario.seed(env)
                code = run_here(env, *scenario.command).code
                _references[name] = (code, scenario.snapshot(env))
            finally:
                magento.stop()
                sitoo.stop()
        return _references[name]

    return get


def expire_backoffs(env: Env) -> None:
    """Let time pass for the exception rows: every failed record is due again (as after its backoff)."""
    state = StateStore(env.state_path)
    try:
        state.db.execute("UPDATE exceptions SET next_retry_at = NULL")
    finally:
        state.close()
