"""node-exporter textfile metrics from a `magsit status` report (`magsit status --prometheus FILE`).

The metric names and labels are an interface: monitoring/prometheus-rules.yml and the Grafana
dashboard read them (tests/unit/test_monitoring.py checks both against what is written here).
prometheus_client does the exposition format (escaping, HELP/TYPE, number formatting). The metrics
are a custom collector rather than Gauge objects because a gauge without labels always has a
sample: "no daemon" and "no event ever arrived" must be an absent sample, not a 0 timestamp.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from magsit.state.store import parse_iso

_EVENT_GAUGES = (
    ("magsit_events_queued", "Sitoo events stored and waiting for the worker.", "queued"),
    ("magsit_events_oldest_queued_age_seconds", "Age of the oldest waiting event; 0 when none waits.",
     "oldest_queued_age_seconds"),
    ("magsit_events_max_lag_seconds", "Longest time from receipt to applied, events of the last hour.", "max_lag_seconds"),
    ("magsit_events_given_up_last_day", "Events the worker gave up on in the last 24 hours.", "given_up_last_day"),
)  # fmt: skip


def _ts(text: str | None) -> float | None:
    moment = parse_iso(text)
    return None if moment is None else moment.timestamp()


class StatusCollector(Collector):
    """The metrics of one build_status() report."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.report
        success = GaugeMetricFamily(
            "magsit_last_success_timestamp_seconds",
            "Unix time of the job's last successful (ok/partial) run; 0 if never.",
            labels=["job"],
        )
        for job in report["jobs"]:
            success.add_metric([str(job["job"])], round(_ts(job.get("last_success_at")) or 0))
        yield success
        exit_code = GaugeMetricFamily(
            "magsit_last_run_exit_code",
            "Exit code of the job's last finished run (0 ok, 1 failed, 3 records failed).",
            labels=["job"],
        )
        for job in report["jobs"]:
            if job.get("last_exit_code") is not None:
                exit_code.add_metric([str(job["job"])], int(job["last_exit_code"]))
        yield exit_code
        open_exceptions = GaugeMetricFamily(
            "magsit_open_exceptions", "Open per-record exceptions waiting for their owner.", labels=["owner", "kind"]
        )
        totals: dict[tuple[str, str], int] = {}
        for row in report["open_exceptions"]:
            key = (str(row["owner"]), str(row["kind"]))
            totals[key] = totals.get(key, 0) + int(row["count"])
        for (owner, kind), count in sorted(totals.items()):
            open_exceptions.add_metric([owner, kind], count)
        yield open_exceptions
        heartbeat = GaugeMetricFamily(
            "magsit_daemon_heartbeat_timestamp_seconds",
            "Unix time of the daemon's last heartbeat (absent without a daemon).",
        )
        daemon = next((hb for hb in report["heartbeats"] if hb["name"] == "daemon"), None)
        beat = _ts(daemon.get("at")) if daemon else None
        if beat is not None:
            heartbeat.add_metric([], round(beat))
        yield heartbeat
        yield from _event_metrics(report.get("events") or {})


def _event_metrics(events: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The real-time path's health; samples only once an event has ever arrived (absent without
    `magsit events serve`)."""
    received = _ts(events.get("last_received_at"))
    for name, text, key in _EVENT_GAUGES:
        gauge = GaugeMetricFamily(name, text)
        value = events.get(key)
        if received is not None and (value is not None or key == "oldest_queued_age_seconds"):
            gauge.add_metric([], float(value or 0))
        yield gauge
    last = GaugeMetricFamily("magsit_events_last_received_timestamp_seconds", "Unix time the last Sitoo event arrived.")
    if received is not None:
        last.add_metric([], round(received))
    yield last


def prometheus_text(report: dict[str, Any]) -> str:
    """The textfile exposition of a build_status() report."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(report))
    return generate_latest(registry).decode("utf-8")


def write_textfile(path: Path, report: dict[str, Any]) -> None:
    """tmp file in the same folder + rename, so node-exporter never reads a half-written file.

    Not prometheus_client.write_to_textfile: it neither creates the folder, nor fsyncs before the
    rename, nor sets a mode node-exporter (another user) can read under magsit's umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(prometheus_text(report))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # the metrics hold no secrets
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
