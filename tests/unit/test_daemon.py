"""The daemon: schedule parsing, no overlapping runs (in-process and across processes), SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from apscheduler.triggers.interval import IntervalTrigger

from magsit.cli import run as cli_run
from magsit.config import parse_config
from magsit.daemon import Daemon, build_jobs
from magsit.errors import ConfigError
from magsit.jobs import REGISTRY, JobSpec, register, resolve_entry
from magsit.runner import JobResult
from magsit.schedule import _cron_dow, parse_trigger, period_seconds
from magsit.state import StateStore
from tests.configs import write_minimal_config
from tests.flows import push_only

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_magsit_logger():
    """In-process CLI runs call setup_logging (propagate=False, own handler): undo it for later tests."""
    logger = logging.getLogger("magsit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def make_config(tmp_path, schedule):
    return parse_config(
        {
            "magento": {"base_url": "http://127.0.0.1:9", "token": "t"},
            "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
            "state": {"path": str(tmp_path / "s.db")},
            "schedule": schedule,
        }
    )


@pytest.fixture
def registry():
    saved = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(saved)


FULL = click.Command("job-a", params=[click.Option(["--full"], is_flag=True)])


class Recorder:
    """Test flows that sleep, record [start, end] per job, and honour should_stop()."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spans: dict[str, list[tuple[float, float]]] = {}
        self.options: dict[str, list[dict]] = {}
        self.lock = threading.Lock()

    def flow(self, ctx):
        start = time.monotonic()
        deadline = start + self.seconds
        while time.monotonic() < deadline and not ctx.should_stop():
            time.sleep(0.02)
        with self.lock:
            self.spans.setdefault(ctx.job, []).append((start, time.monotonic()))
            self.options.setdefault(ctx.job, []).append(dict(ctx.options))
        return JobResult(counts={"slept": 1})


def overlaps(spans):
    spans = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


# -- schedule parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "seconds"), [("every 30s", 30), ("every 5m", 300), ("every 2h", 7200), ("every 1d", 86400), ("*/5 * * * *", 300)]
)
def test_schedule_expressions(expr, seconds):
    assert period_seconds(expr) == seconds
    if expr.startswith("every"):
        assert isinstance(parse_trigger(expr), IntervalTrigger)


@pytest.mark.parametrize("expr", ["every 5 parsecs", "every 0m", "*/5 * * *", "61 * * * *", "sometimes", "0 3 * * 9"])
def test_invalid_schedule_is_config_error_naming_the_key(tmp_path, expr):
    config = make_config(tmp_path, {"sync-stock": expr})
    with pytest.raises(ConfigError, match="sync-stock"):
        build_jobs(config)


def test_cron_weekday_numbers_mean_what_crontab_means():
    # APScheduler 3.x reads 0 as Monday; crontab reads 0 (and 7) as Sunday.
    assert _cron_dow("0") == "sun" and _cron_dow("7") == "sun"
    assert _cron_dow("1-5") == "mon,tue,wed,thu,fri"
    assert _cron_dow("*/2") == "sun,tue,thu,sat"
    assert _cron_dow("mon-fri") == "mon-fri" and _cron_dow("*") == "*"
    trigger = parse_trigger("0 3 * * 0")
    fire = trigger.get_next_fire_time(None, datetime(2024, 5, 1, tzinfo=UTC))  # a Wednesday
    assert fire == datetime(2024, 5, 5, 3, 0, tzinfo=UTC) and fire.strftime("%a") == "Sun"


def test_unknown_and_not_built_jobs_fail_at_start(tmp_path, registry):
    register(JobSpec("sync-nothing", "magsit.sync.does_not_exist_yet"))
    with pytest.raises(ConfigError, match="not built"):
        build_jobs(make_config(tmp_path, {"sync-nothing": "every 5m"}))
    with pytest.raises(ConfigError, match="unknown job 'sync-stok'"):
        build_jobs(make_config(tmp_path, {"sync-stok": "every 5m"}))
    with pytest.raises(ConfigError, match="No such option '--ful'. .Did you mean one of: '--full'"):
        resolve_entry("sync-stock --ful")
    with pytest.raises(ConfigError, match="empty"):
        build_jobs(make_config(tmp_path, {}))


def test_schedule_args_become_options(registry):
    rec = Recorder(0)
    register(JobSpec("sync-x", flow=push_only(rec.flow), command=click.Command(
        "sync-x", params=[click.Option(["--full"], is_flag=True), click.Option(["--sku", "skus"], multiple=True)])))  # fmt: skip
    assert resolve_entry("sync-x --full --sku A --sku=B").options == {"full": True, "skus": ("A", "B")}
    # The real registry parses with the job's own CLI command: the keys the flows read from ctx.options.
    assert REGISTRY["push-orders"].parse_args(["--since", "2024-05-01"]) == {"since": datetime(2024, 5, 1, tzinfo=UTC), "orders": []}
    assert REGISTRY["sync-stock"].parse_args(["--full", "--sku", "A"]) == {"full": True, "skus": ["A"]}


def test_a_schedule_line_accepts_what_the_command_accepts_and_nothing_else(registry):
    """One parser: sync-fulfilment has --order and no --since, on the command line and on a schedule."""
    from magsit.cli import cli

    assert resolve_entry("sync-fulfilment --order 000000042 --order=43").options == {"orders": ["000000042", "43"]}
    with pytest.raises(ConfigError, match=r"\[schedule\] key 'sync-fulfilment --since 2024-05-01': No such option '--since'"):
        resolve_entry("sync-fulfilment --since 2024-05-01")
    # The same words the CLI refuses and accepts (cli registers the global options on its commands).
    assert cli.commands["sync-fulfilment"].make_context("sync-fulfilment", ["--order", "1"]).params == {"order_ids": ("1",)}
    with pytest.raises(click.NoSuchOption):
        cli.commands["sync-fulfilment"].make_context("sync-fulfilment", ["--since", "2024-05-01"])
    # The global options the CLI takes after a command are not job options on a schedule.
    with pytest.raises(ConfigError, match="--dry-run is a global option"):
        resolve_entry("sync-stock --dry-run")
    with pytest.raises(ConfigError, match="-v is a global option"):
        resolve_entry("sync-stock -v")
    with pytest.raises(ConfigError, match="No such option '--help'"):  # not printed help and a silent exit
        resolve_entry("push-orders --help")
    with pytest.raises(ConfigError, match="--json is for a run by hand"):
        resolve_entry("reconcile --month 2024-05 --json")
    assert resolve_entry("reconcile --month 2024-05 --no-stock").options["no_stock"] is True
    with pytest.raises(ConfigError, match="audit takes no arguments"):
        resolve_entry("audit --csv out")
    with pytest.raises(ConfigError, match="Invalid value for '--since'"):
        resolve_entry("push-orders --since yesterday")


def test_daemon_cli_reports_bad_schedule_with_exit_2(tmp_path, capsys):
    path = write_minimal_config(tmp_path, '''
        [schedule]
        "sync-stock --full" = "every fortnight"
        ''')
    assert cli_run(["--config", str(path), "daemon"]) == 2
    assert "sync-stock --full" in capsys.readouterr().err


# -- running -------------------------------------------------------------------------------------
def run_daemon_for(daemon: Daemon, seconds: float) -> None:
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    thread.start()
    time.sleep(seconds)
    daemon.stop("test")
    thread.join(timeout=10)
    assert not thread.is_alive(), "daemon did not stop"


def test_two_jobs_run_on_schedule_and_never_overlap_themselves(tmp_path, registry):
    rec = Recorder(1.3)  # longer than the 1 s interval: the next slot finds the previous run still busy
    register(JobSpec("job-a", flow=push_only(rec.flow), command=FULL))
    register(JobSpec("job-b", flow=push_only(rec.flow)))
    config = make_config(tmp_path, {"job-a --full": "every 1s", "job-b": "every 1s"})
    daemon = Daemon(config, heartbeat_seconds=0.2)
    run_daemon_for(daemon, 4.5)
    assert len(rec.spans["job-a"]) >= 2 and len(rec.spans["job-b"]) >= 2
    assert not overlaps(rec.spans["job-a"]) and not overlaps(rec.spans["job-b"])
    assert rec.options["job-a"][0] == {"full": True}
    # The two different jobs did run side by side (one slow job does not hold up the other).
    assert overlaps(rec.spans["job-a"] + rec.spans["job-b"])
    state = StateStore(config.state.path)
    runs = state.runs(limit=100)
    assert {r["job"] for r in runs} == {"job-a", "job-b"} and all(r["status"] == "ok" for r in runs)
    beat = next(hb for hb in state.heartbeats() if hb["name"] == "daemon")
    assert beat["info"]["jobs"] == ["job-a --full", "job-b"] and beat["info"]["last"]["job-b"]["status"] == "ok"


def test_two_entries_of_one_job_share_its_lock(tmp_path, registry):
    rec = Recorder(0.8)
    register(JobSpec("job-a", flow=push_only(rec.flow), command=FULL))
    config = make_config(tmp_path, {"job-a": "every 1s", "job-a --full": "every 1s"})
    run_daemon_for(Daemon(config, heartbeat_seconds=0.5), 3.5)
    assert len(rec.spans["job-a"]) >= 2
    assert not overlaps(rec.spans["job-a"])


def test_lock_held_by_another_process_skips_the_run(tmp_path, registry, caplog):
    rec = Recorder(0.1)
    register(JobSpec("job-a", flow=push_only(rec.flow)))
    register(JobSpec("job-b", flow=push_only(rec.flow)))
    config = make_config(tmp_path, {"job-a": "every 1s", "job-b": "every 1s"})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom magsit.state.lock import JobLock\n"
            f"with JobLock({str(config.state.path)!r}, 'job-a'):\n    print('locked', flush=True)\n    time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        caplog.set_level("INFO", logger="magsit")
        run_daemon_for(Daemon(config, heartbeat_seconds=0.5), 2.5)
    finally:
        holder.kill()
        holder.wait()
    assert "job-a" not in rec.spans and len(rec.spans["job-b"]) >= 2
    assert any("job-a: skipped" in r.getMessage() for r in caplog.records)
    assert {r["job"] for r in StateStore(config.state.path).runs(limit=100)} == {"job-b"}  # the skip touched nothing


SITECUSTOMIZE = """
import json, os, time
from types import SimpleNamespace
from pathlib import Path
from magsit.jobs import JobSpec, register
from magsit.runner import JobResult

MARKS = Path(os.environ["MAGSIT_TEST_MARKS"])


def slow(ctx):
    with MARKS.open("a") as fh:
        fh.write(json.dumps({"event": "start", "job": ctx.job}) + "\\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ctx.should_stop():
        time.sleep(0.05)
    with MARKS.open("a") as fh:
        fh.write(json.dumps({"event": "end", "job": ctx.job, "stopped": ctx.should_stop()}) + "\\n")
    return JobResult(counts={"done": 1})


class _Nothing:
    def preview(self):
        from magsit.flow import Preview

        return Preview([])


register(JobSpec("test-slow", flow=SimpleNamespace(JOB="test-slow", pull=lambda ctx: None,
                                                   plan=lambda pulled, config, now: _Nothing(), push=lambda ctx, plan: slow(ctx))))
"""


def test_sigterm_stops_the_daemon_cleanly(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "sitecustomize.py").write_text(SITECUSTOMIZE)  # registers the test job in the child process
    marks = tmp_path / "marks.jsonl"
    path = write_minimal_config(tmp_path, '''
        [schedule]
        test-slow = "every 1s"
        ''')
    env = {**os.environ, "PYTHONPATH": f"{plugin}{os.pathsep}{REPO}", "MAGSIT_TEST_MARKS": str(marks)}
    env.pop("MAGSIT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "magsit", "--config", str(path), "--log-format", "json", "-v", "daemon", "--heartbeat-seconds", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (marks.exists() and "start" in marks.read_text()):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert marks.exists(), "the scheduled job never started"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 5
    events = [json.loads(line) for line in marks.read_text().splitlines()]
    assert events[-1] == {"event": "end", "job": "test-slow", "stopped": True}
    state = StateStore(tmp_path / "s.db")
    run = state.runs("test-slow")[0]
    assert run["status"] == "ok" and run["finished_at"]  # the run in hand finished and was recorded
    beat = next(hb for hb in state.heartbeats() if hb["name"] == "daemon")
    assert beat["pid"] == proc.pid and beat["info"]["stopping"] is True
    # Structured logs carry the job/run context.
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("job") == "test-slow" and r.get("run_id") == run["id"] for r in records), err


def test_scheduled_run_waits_for_its_lock_instead_of_being_skipped(tmp_path, registry):
    """The nightly `--full` beside the 5-minute run: a run that finds the job's lock held waits (a
    bounded time) and then runs; a stopping daemon stops waiting at once."""
    from magsit.daemon import lock_wait_seconds
    from magsit.state.lock import JobLock

    rec = Recorder(0.05)
    register(JobSpec("job-a", flow=push_only(rec.flow), command=FULL))
    config = make_config(tmp_path, {"job-a": "every 5m", "job-a --full": "0 2 * * *"})
    daemon = Daemon(config, heartbeat_seconds=0.5)
    [(full, _trigger, period)] = [j for j in daemon.jobs if j[0].entry == "job-a --full"]
    assert lock_wait_seconds(period) == 600 and lock_wait_seconds(300) == 150
    holder = JobLock(config.state.path, "job-a").acquire()
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    daemon._run(full, lock_wait_seconds(period))
    assert len(rec.spans["job-a"]) == 1 and time.monotonic() - started >= 0.4
    holder = JobLock(config.state.path, "job-a").acquire()
    try:
        started = time.monotonic()
        threading.Timer(0.3, daemon.stop_event.set).start()
        daemon._run(full, 600)  # gives up when the daemon stops, not after 10 minutes
        assert time.monotonic() - started < 5 and len(rec.spans["job-a"]) == 1
    finally:
        holder.release()
        daemon._state.close()
