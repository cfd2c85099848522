"""monitoring/: the Grafana dashboard and Prometheus alert rules match the metrics magsit writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from magsit.prometheus import prometheus_text

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "prometheus-rules.yml"
DASHBOARD = REPO / "monitoring" / "grafana-dashboard.json"


def written_metrics() -> set[str]:
    """Every metric name `magsit status --prometheus` can write (a report with every part present)."""
    report = {
        "jobs": [{"job": "sync-stock", "last_success_at": "2026-03-01T00:00:00Z", "last_exit_code": 0}],
        "open_exceptions": [{"owner": "ops", "kind": "unknown_sku", "count": 1}],
        "heartbeats": [{"name": "daemon", "at": "2026-03-01T00:00:00Z"}],
        "events": {"last_received_at": "2026-03-01T00:00:00Z", "queued": 1, "oldest_queued_age_seconds": 3,
                   "max_lag_seconds": 2, "given_up_last_day": 0},
    }  # fmt: skip
    return set(re.findall(r"^# TYPE (\S+) ", prometheus_text(report), re.M))


def magsit_names(expr: str) -> set[str]:
    return set(re.findall(r"\bmagsit_[a-z_]+", expr))


def test_alert_rules_are_valid_yaml_and_use_only_written_metrics():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) >= 8
    known = written_metrics()
    names = set()
    for rule in rules:
        assert re.fullmatch(r"Magsit[A-Za-z]+", rule["alert"]) and rule["alert"] not in names
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert magsit_names(rule["expr"]) <= known, rule["expr"]
    used = set().union(*(magsit_names(r["expr"]) for r in rules))
    # every health metric has an alert (open exceptions only as a pile-up warning; the trend is on the dashboard)
    assert {"magsit_last_success_timestamp_seconds", "magsit_last_run_exit_code", "magsit_daemon_heartbeat_timestamp_seconds",
            "magsit_events_oldest_queued_age_seconds", "magsit_events_given_up_last_day"} <= used  # fmt: skip


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_dashboard_is_valid_json_and_shows_every_written_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    shown = set().union(*(magsit_names(e) for e in exprs))
    assert shown <= written_metrics()
    assert written_metrics() - shown <= {"magsit_events_last_received_timestamp_seconds"}
    for panel in panels:  # the datasource is chosen on import (a template variable), not a hard-coded uid
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
