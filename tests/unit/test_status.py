"""`magsit status`: staleness exit code, Prometheus textfile; and the deployment files in cron/."""

from __future__ import annotations

import configparser
import json
import logging
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from magsit.cli import run as cli_run
from magsit.config import load_config
from magsit.runner import JobResult, run_job
from magsit.state import StateStore
from magsit.state.store import iso, now_utc
from tests.configs import write_minimal_config
from tests.flows import push_only

REPO = Path(__file__).resolve().parents[2]
CRON = REPO / "cron"


@pytest.fixture(autouse=True)
def _restore_magsit_logger():
    """In-process CLI runs call setup_logging (propagate=False, own handler): undo it for later tests."""
    logger = logging.getLogger("magsit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def config_path(tmp_path):
    return write_minimal_config(tmp_path)


def seed(config_path, stale_job_minutes=90):
    config = load_config(config_path)
    state = StateStore(config.state.path)
    run_job(config, "sync-stock", push_only(lambda ctx: JobResult()), state=state)

    def partial(ctx):
        ctx.fail("unknown_sku", "ecommerce", "SKU-1", "SKU-1 is not a Magento product")
        ctx.fail("unknown_sku", "ecommerce", 'SKU-"2"', "quote in key")
        ctx.fail("price_mismatch", "finance", "100000042", "total differs")
        return JobResult()

    run_job(config, "push-orders", push_only(partial), state=state)
    old = iso(now_utc() - timedelta(minutes=stale_job_minutes))
    state.db.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE job = 'push-orders'", [old, old])
    state.heartbeat("daemon", {"started_at": old})
    state.heartbeat("alert:stale:push-orders", {"alerted": old})  # alert bookkeeping, not a process
    return config, state


def test_max_age_exit_code(config_path, capsys):
    seed(config_path)
    assert cli_run(["--config", str(config_path), "status", "--max-age", "60"]) == 1
    assert "push-orders" in capsys.readouterr().out
    assert cli_run(["--config", str(config_path), "status", "--max-age", "120"]) == 0
    assert cli_run(["--config", str(config_path), "status", "--max-age", "60", "--job", "sync-stock"]) == 0
    # A job that never ran at all is stale too, when asked about by name.
    assert cli_run(["--config", str(config_path), "status", "--max-age", "60", "--job", "sync-returns"]) == 1


def test_json_status_hides_alert_bookkeeping(config_path, capsys):
    seed(config_path)
    assert cli_run(["--config", str(config_path), "--json", "status"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [hb["name"] for hb in report["heartbeats"]] == ["daemon"]


def test_a_duty_of_a_job_that_never_ran_says_so_instead_of_zero_counts(config_path, capsys):
    seed(config_path)  # sync-stock and push-orders ran; sync-fulfilment never did
    assert cli_run(["--config", str(config_path), "--json", "status"]) == 0
    duties = {d["job"]: d for d in json.loads(capsys.readouterr().out)["duties"]}
    assert duties["sync-fulfilment"]["last_run"] is None
    assert cli_run(["--config", str(config_path), "status"]) == 0
    out = capsys.readouterr().out
    assert "(not run yet)" in out and "cancelled in sitoo 0" not in out


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A small strict parser of the text exposition format (enough for node-exporter textfiles)."""
    assert text.endswith("\n")
    metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter") and name not in types
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, f"bad sample line: {line!r}"
        name, _, raw_labels, value = match.groups()
        assert name in types, f"{name} has no TYPE line"
        labels: dict[str, str] = {}
        rest = raw_labels or ""
        while rest:
            label = _LABEL.match(rest)
            assert label, f"bad labels in {line!r}"
            labels[label.group(1)] = label.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            rest = rest[label.end():]
        metrics.setdefault(name, []).append((labels, float(value)))
    return metrics


def test_prometheus_textfile(config_path, tmp_path):
    config, state = seed(config_path)
    target = tmp_path / "textfile" / "magsit.prom"
    assert cli_run(["--config", str(config_path), "status", "--prometheus", str(target)]) == 0
    metrics = parse_prometheus(target.read_text())
    success = {labels["job"]: value for labels, value in metrics["magsit_last_success_timestamp_seconds"]}
    assert set(success) == {"sync-stock", "push-orders"}
    assert abs(success["sync-stock"] - now_utc().timestamp()) < 120
    assert abs(success["push-orders"] - (now_utc() - timedelta(minutes=90)).timestamp()) < 120
    codes = {labels["job"]: value for labels, value in metrics["magsit_last_run_exit_code"]}
    assert codes == {"sync-stock": 0, "push-orders": 3}
    open_ = {(labels["owner"], labels["kind"]): value for labels, value in metrics["magsit_open_exceptions"]}
    assert open_ == {("ecommerce", "unknown_sku"): 2, ("finance", "price_mismatch"): 1}
    [(labels, beat)] = metrics["magsit_daemon_heartbeat_timestamp_seconds"]
    assert labels == {} and abs(beat - now_utc().timestamp()) < 120
    assert [p.name for p in target.parent.iterdir()] == ["magsit.prom"]  # no temp file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_prometheus_file_without_daemon_or_runs(config_path, tmp_path):
    target = tmp_path / "m.prom"
    assert cli_run(["--config", str(config_path), "status", "--prometheus", str(target)]) == 0
    metrics = parse_prometheus(target.read_text())
    assert metrics == {}  # HELP/TYPE only; no made-up samples


def test_prometheus_events_gauges_once_events_arrive(config_path, tmp_path):
    from magsit.events import queue

    config = load_config(config_path)
    store = queue.EventStore(config.state.path)
    received = now_utc().timestamp() - 30
    batch = [queue.Event(f"e{n}", "warehouse-transaction", 1, "1", {"sku": "A"}) for n in range(2)]
    store.store(batch, max_queue=100, now=received)
    store.close()
    target = tmp_path / "m.prom"
    assert cli_run(["--config", str(config_path), "status", "--prometheus", str(target)]) == 0
    metrics = parse_prometheus(target.read_text())
    assert metrics["magsit_events_queued"] == [({}, 2.0)]
    [(_, age)] = metrics["magsit_events_oldest_queued_age_seconds"]
    assert 25 < age < 120
    assert metrics["magsit_events_given_up_last_day"] == [({}, 0.0)]
    assert "magsit_events_max_lag_seconds" not in metrics  # nothing processed in the last hour: no sample
    [(_, last)] = metrics["magsit_events_last_received_timestamp_seconds"]
    assert abs(last - received) < 2


def test_prometheus_parser_rejects_garbage():
    with pytest.raises(AssertionError):
        parse_prometheus("# TYPE x gauge\nx{job=\"a} 1\n")
    with pytest.raises(AssertionError):
        parse_prometheus("y 1\n")


# -- deployment files ------------------------------------------------------------------------------
UNITS = ["magsit@.service", "magsit@.timer", "magsit-daemon.service"]


def read_unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#", ";"), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string((CRON / name).read_text())
    return parser


def test_units_have_required_keys_and_run_magsit():
    """The equivalent check where systemd-analyze is missing: structure, keys, ExecStart -> magsit."""
    for name in ("magsit@.service", "magsit-daemon.service"):
        unit = read_unit(name)
        service = unit["Service"]
        exec_start = service["ExecStart"].split()
        assert Path(exec_start[0]).name == "magsit" and Path(exec_start[0]).is_absolute()
        for key in ("User", "NoNewPrivileges", "ProtectSystem", "ReadWritePaths", "PrivateTmp", "KillSignal"):
            assert key in service, f"{name}: {key} missing"
        assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
        assert "/var/lib/magsit" in service["ReadWritePaths"]
        assert "Description" in unit["Unit"]
    oneshot = read_unit("magsit@.service")["Service"]
    assert oneshot["Type"] == "oneshot" and "%i" in oneshot["ExecStart"] and "%I" not in oneshot["ExecStart"]
    assert set(oneshot["SuccessExitStatus"].split()) == {"3", "4"}
    daemon = read_unit("magsit-daemon.service")
    assert daemon["Service"]["ExecStart"].split()[-1] == "daemon" and daemon["Install"]["WantedBy"]
    timer = read_unit("magsit@.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Unit"] == "magsit@%i.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    magsit = shutil.which("magsit") or str(REPO / ".venv" / "bin" / "magsit")
    assert Path(magsit).exists()
    for name in UNITS:
        # ExecStart must exist for verify; point it at this checkout's magsit.
        (tmp_path / name).write_text((CRON / name).read_text().replace("/opt/magsit/.venv/bin/magsit", magsit))
    (tmp_path / "magsit@sync-stock.service").symlink_to(tmp_path / "magsit@.service")
    (tmp_path / "magsit@sync-stock.timer").symlink_to(tmp_path / "magsit@.timer")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "magsit-daemon.service", "magsit@sync-stock.service", "magsit@sync-stock.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values, but prints them: any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr


def test_k8s_cronjob_manifest():
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all((CRON / "k8s-cronjob.yaml").read_text()) if d]
    cronjobs = [d for d in docs if d["kind"] == "CronJob"]
    assert cronjobs
    for job in cronjobs:
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert "magsit" in " ".join(container.get("command", []) + container.get("args", []))
        assert any("secretRef" in source for source in container["envFrom"])
        env_values = json.dumps(container.get("env", []))
        assert "PASSWORD" not in env_values and "TOKEN" not in env_values  # secrets only from the Secret


def test_crontab_example_lines_are_valid():
    from magsit.schedule import parse_trigger

    jobs = 0
    for line in (CRON / "crontab.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        parse_trigger(" ".join(fields[:5]))
        assert "magsit " in fields[5]
        jobs += 1
    assert jobs >= 5
