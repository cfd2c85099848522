"""Issue 17 through the real CLI (subprocess, no emulators needed): config and state errors are one
clear line with exit 2, global options work after the subcommand, errors name the likely cause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_cli import CONFIG as BASE_CONFIG

CONFIG = BASE_CONFIG + """
[state]
path = "{state}"
"""


def magsit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "magsit", *args], capture_output=True, text=True, env=env, timeout=60)


def config(tmp_path: Path, state: Path | str | None = None, extra: str = "", port: int = 9) -> Path:
    path = tmp_path / "magsit.toml"
    path.write_text(CONFIG.format(port=port, state=state or tmp_path / "magsit.db") + extra)
    path.chmod(0o600)
    return path


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output and "SECRET" not in output and "internal error" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["status"], ["exceptions", "list"], ["sync-stock"], ["push-orders", "--dry-run"]])
def test_impossible_state_path_is_a_config_error(tmp_path, command):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = config(tmp_path, state=blocker / "magsit.db")
    line = one_line(magsit("--config", str(path), *command), 2)
    assert "state file" in line and "[state] path" in line


def test_check_verifies_the_state_path_is_writable(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = magsit("--config", str(config(tmp_path, state=blocker / "magsit.db")), "check")
    assert result.returncode == 1
    assert "FAIL state: file writable" in result.stdout and "[state] path" in result.stdout
    good = tmp_path / "new" / "magsit.db"
    result = magsit("--config", str(config(tmp_path, state=good)), "check")
    assert "ok   state: file writable" in result.stdout and good.exists()


def test_global_options_work_after_the_subcommand(tmp_path):
    path = str(config(tmp_path))
    result = magsit("--config", path, "exceptions", "list", "--json")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    result = magsit("status", "--config", path, "--json", "-q")
    assert result.returncode == 0 and result.stdout.lstrip().startswith("{"), result.stderr
    # -v after the subcommand turns on INFO logs like before it; --log-format after it too.
    result = magsit("--config", path, "sync-stock", "--dry-run", "-v", "--log-format", "json")
    assert "No such option" not in result.stderr
    assert '"level": "info"' in result.stderr or '"level": "error"' in result.stderr


def test_errors_say_the_likely_cause_in_words(tmp_path):
    path = str(config(tmp_path))
    # Nothing listens on port 9: the host and port, not urllib3's connection-pool repr.
    result = magsit("--config", path, "check")
    text = " ".join(result.stdout.split())
    assert "cannot connect to 127.0.0.1:9: connection refused" in text and "HTTPConnectionPool" not in text
    line = one_line(magsit("--config", path, "reconcile", "--month", "2026-13"), 2)
    assert "month 13 is out of range" in line
    line = one_line(magsit("--config", path, "reconcile", "--month", "march"), 2)
    assert "is not YYYY-MM" in line


def test_typo_is_reported_before_missing_keys_and_env_values_name_the_variable(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[magento]\nbase_url = "http://127.0.0.1:9"\ntokn = "x"\n')
    line = one_line(magsit("--config", str(path), "status"), 2)
    assert "unknown key 'magento.tokn'" in line
    import os

    env = {**os.environ, "MAGSIT_STOCK_BUFFER": "lots"}
    line = one_line(magsit("--config", str(config(tmp_path)), "status", env=env), 2)
    assert line.startswith("magsit: error: environment variable MAGSIT_STOCK_BUFFER:") and "magsit.toml" not in line


def test_check_validates_the_reconcile_timezone(tmp_path):
    result = magsit("--config", str(config(tmp_path, extra='\n[reconcile]\ntimezone = "Europe/Stockholmm"\n')), "check")
    assert result.returncode == 1
    assert "FAIL reconcile: timezone" in result.stdout and "Europe/Stockholmm" in result.stdout


def test_status_says_the_daemon_stopped_or_died(tmp_path):
    from magsit.state import StateStore

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    path = str(config(tmp_path))
    for info, words in (({"stopping": True}, "daemon: stopped"), ({"stopping": False}, "daemon: not running")):
        state = StateStore(tmp_path / "magsit.db")
        state.heartbeat("daemon", info)
        state._exec("UPDATE heartbeats SET pid = ? WHERE name = 'daemon'", (pid,))
        state.close()
        result = magsit("--config", path, "status")
        assert result.returncode == 0 and words in result.stdout, result.stdout
    state = StateStore(tmp_path / "magsit.db")
    state.heartbeat("daemon", {"stopping": False})  # this (live) test process
    state.close()
    assert "daemon: running" in magsit("--config", path, "status").stdout


def _ran(state_path: Path, job: str, minutes_ago: float) -> None:
    from datetime import timedelta

    from magsit.state import StateStore
    from magsit.state.store import iso, now_utc

    state = StateStore(state_path)
    state.db.execute("DELETE FROM runs WHERE job = ?", [job])  # this run is the job's only one
    run_id = state.start_run(job)
    state.finish_run(run_id, "ok", 0, {})
    moment = iso(now_utc() - timedelta(minutes=minutes_ago))
    state.db.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE id = ?", [moment, moment, run_id])
    state.close()


def test_max_age_judges_each_job_by_its_own_schedule(tmp_path):
    state = tmp_path / "magsit.db"
    schedule = '\n[schedule]\nsync-stock = "every 5m"\nsync-products = "every 1h"\nreconcile = "0 6 4 * *"\n'
    path = str(config(tmp_path, extra=schedule))
    _ran(state, "sync-stock", 10)
    _ran(state, "sync-products", 80)  # hourly: one run late by 20 min, within 30 min of slack
    _ran(state, "reconcile", 60 * 24 * 20)  # monthly: 20 days ago is on time
    _ran(state, "audit", 60 * 24 * 20)  # not scheduled: a report run when asked, never stale
    result = magsit("--config", path, "status", "--max-age", "30")
    assert result.returncode == 0, result.stdout
    _ran(state, "sync-products", 100)  # the run of the last hour is missing by more than 30 min
    result = magsit("--config", path, "status", "--max-age", "30")
    assert result.returncode == 1 and "stale: sync-products" in result.stdout
    # Without [schedule] (cron): the sync jobs use --max-age, reconcile and audit are never stale.
    plain = str(config(tmp_path))
    _ran(state, "sync-products", 5)
    result = magsit("--config", plain, "status", "--max-age", "30")
    assert result.returncode == 0, result.stdout


def test_status_job_with_an_unknown_name_is_a_usage_error(tmp_path):
    result = magsit("--config", str(config(tmp_path)), "status", "--max-age", "30", "--job", "sync-stonk")
    assert result.returncode == 2 and "unknown job sync-stonk" in result.stderr


def test_json_logs_keep_the_traceback_at_vv(tmp_path, monkeypatch):
    """An unexpected error in a flow: the operator gets one line; -vv --log-format json has the traceback."""
    import json

    from click.testing import CliRunner

    from magsit.cli import cli
    from magsit.sync import stock

    def broken(ctx):
        raise RuntimeError("boom in the flow")

    monkeypatch.setattr(stock, "pull", broken)
    path = str(config(tmp_path))
    result = CliRunner().invoke(cli, ["--config", path, "-vv", "--log-format", "json", "sync-stock"], standalone_mode=False)
    assert result.return_value == 1  # what `magsit` exits with (cli.run maps the command's return value)
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [crash] = [e for e in entries if "traceback" in e]
    assert "RuntimeError: boom in the flow" in crash["traceback"] and "Traceback (most recent call last)" in crash["traceback"]
    assert crash["job"] == "sync-stock"
    quiet = CliRunner().invoke(cli, ["--config", path, "--log-format", "json", "sync-stock"])
    assert "Traceback" not in quiet.stderr + quiet.stdout and "boom in the flow" in quiet.stdout + quiet.stderr


@pytest.mark.parametrize(("command", "lock"), [(["events", "process"], "events"), (["sync-stock"], "sync-stock")])
def test_a_held_lock_is_exit_4_and_one_line_from_the_one_error_boundary(tmp_path, command, lock):
    from magsit.state import JobLock

    path = config(tmp_path)
    with JobLock(tmp_path / "magsit.db", lock):
        line = one_line(magsit("--config", str(path), *command), 4)
    assert line.startswith("magsit: error: ") and lock in line
