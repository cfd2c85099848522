"""`magsit status`: is each job healthy, and who has records waiting for them."""

from __future__ import annotations

from pathlib import Path

import click

from magsit.alerts import UNSCHEDULED_ON_DEMAND, schedule_periods
from magsit.app import App, pass_app
from magsit.errors import ExitCode
from magsit.events.drain import JOB as EVENTS_JOB
from magsit.events.queue import event_stats
from magsit.jobs import REGISTRY
from magsit.prometheus import write_textfile
from magsit.report import line, print_json, rows_table
from magsit.state.store import StateStore, _pid_alive, now_utc, parse_iso

ALERT_MARKER = "alert:"  # bookkeeping rows of magsit.alerts in the heartbeats table, not processes
# Duties a job does beside what its name says (docs/runbook.md), with the counts that show them.
DUTIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("sync-fulfilment", "sends Magento cancellations (and full refunds before shipping) to Sitoo",
     ("cancelled_in_sitoo", "cancelled_after_delivery")),
    ("sync-fulfilment", "tells ops which units refunded before delivery to take off the Sitoo order",
     ("refunded_units_reported", "refunded_units_settled")),
    ("sync-fulfilment", "renews the Sitoo reservations of open pushed orders", ("reservations_renewed",)),
    ("sync-stock", "checks that Sitoo reserves the orders magsit pushed", ()),
]


def stale_limit_minutes(job: str, max_age_minutes: float, periods: dict[str, float]) -> float | None:
    """How long after its last success a job counts as stale; None: never (an unscheduled report).

    A job on the [schedule] is stale once it missed a run: no success for one period of its own
    schedule plus ``max_age`` minutes of slack (a monthly reconcile is not red all month). Without
    [schedule] (cron, systemd timers) the sync jobs use ``max_age``; reconcile, audit and events
    run when asked and are not judged.
    """
    if job in periods:
        return periods[job] / 60 + max_age_minutes
    if job in UNSCHEDULED_ON_DEMAND:
        return None
    return max_age_minutes


def build_status(state: StateStore, max_age_minutes: float | None = None, periods: dict[str, float] | None = None) -> dict:
    now = now_utc()
    jobs = []
    stale = []
    for run in state.last_runs():
        success = parse_iso(run.get("last_success_at"))
        age = (now - success).total_seconds() / 60 if success else None
        limit = None if max_age_minutes is None else stale_limit_minutes(run["job"], max_age_minutes, periods or {})
        is_stale = limit is not None and (age is None or age > limit)
        if is_stale:
            stale.append(run["job"])
        jobs.append(
            {
                "job": run["job"],
                "last_status": run["status"],
                "last_exit_code": run["exit_code"],
                "last_run_at": run["started_at"],
                "last_success_at": run.get("last_success_at"),
                "success_age_minutes": None if age is None else round(age, 1),
                "stale_after_minutes": None if limit is None else round(limit, 1),
                "stale": is_stale,
                "counts": run["counts"],
            }
        )
    exceptions = state.exception_counts()
    by_owner: dict[str, int] = {}
    for row in exceptions:
        by_owner[row["owner"]] = by_owner.get(row["owner"], 0) + row["count"]
    return {
        "state_file": str(state.path),
        "jobs": jobs,
        "open_exceptions_by_owner": by_owner,
        "open_exceptions": exceptions,
        "heartbeats": [
            {**hb, "state": _process_state(hb)} for hb in state.heartbeats() if not hb["name"].startswith(ALERT_MARKER)
        ],
        "stale_jobs": stale,
        "events": event_stats(state.db),
        "duties": _duties(jobs),
    }


def _process_state(beat: dict) -> str:
    """running / stopping / stopped / not running, from the last heartbeat and its pid (same host)."""
    info = beat.get("info") or {}
    alive = bool(beat.get("pid")) and _pid_alive(int(beat["pid"]))
    if info.get("stopping"):
        return "stopping" if alive else "stopped"
    return "running" if alive else "not running (its process is gone: it did not stop cleanly)"


def _duties(jobs: list[dict]) -> list[dict]:
    """What a job does besides its name, with its last run's counts (None: the job has not run yet,
    so there are no counts to show — zeros would read as "ran and found nothing")."""
    counts = {job["job"]: job.get("counts") or {} for job in jobs}
    return [
        {"job": job, "duty": duty,
         "last_run": {name: counts[job].get(name, 0) for name in names} if job in counts else None}
        for job, duty, names in DUTIES
    ]  # fmt: skip


@click.command("status", short_help="Is every job healthy? Last runs, open exceptions.")
@click.option(
    "--max-age",
    type=float,
    default=None,
    help="Stale check (exit 1): a job on [schedule] is stale once it missed a run by more than this many minutes; "
    "without [schedule], a sync job with no success for this long. reconcile/audit/events without a schedule never are.",
)
@click.option("--job", "jobs", multiple=True, help="Only check these jobs for staleness (repeatable).")
@click.option(
    "--prometheus",
    "prometheus",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write node-exporter textfile metrics to FILE (atomically), e.g. /var/lib/node_exporter/magsit.prom.",
)
@pass_app
def command(app: App, max_age: float | None, jobs: tuple[str, ...], prometheus: Path | None) -> int:
    """Last run per job, its age, counts, and open exceptions by owner and kind."""
    known = [*REGISTRY, EVENTS_JOB]  # every job that takes a lock and records runs
    unknown = [job for job in jobs if job not in known]
    if unknown:
        raise click.BadParameter(f"unknown job {', '.join(unknown)} (one of: {', '.join(known)})", param_hint="--job")
    periods = schedule_periods(app.config)
    state = StateStore(app.config.state.path)
    try:
        report = build_status(state, max_age, periods)
    finally:
        state.close()
    if jobs:
        report["stale_jobs"] = [job for job in report["stale_jobs"] if job in jobs]
        missing = [job for job in jobs if job not in {j["job"] for j in report["jobs"]}]
        if max_age is not None:
            report["stale_jobs"].extend(j for j in missing if stale_limit_minutes(j, max_age, periods) is not None)
    if prometheus is not None:
        write_textfile(prometheus, report)
    if app.json:
        print_json(report)
    else:
        out = app.out
        if report["jobs"]:
            out.print(
                rows_table(
                    report["jobs"],
                    title="jobs",
                    columns=["job", "last_status", "last_exit_code", "last_run_at", "last_success_at", "success_age_minutes"]
                    + (["stale_after_minutes", "stale"] if max_age is not None else []),
                )
            )
        else:
            out.print("No runs recorded yet.")
        for duty in report["duties"]:
            if duty["last_run"] is None:
                out.print(f"{duty['job']} also {duty['duty']} (not run yet)", markup=False)
                continue
            last = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in duty["last_run"].items())
            out.print(f"{duty['job']} also {duty['duty']}" + (f" (last run: {last})" if last else ""), markup=False)
        if report["open_exceptions"]:
            out.print(rows_table(report["open_exceptions"], title="open exceptions", columns=["owner", "job", "kind", "count"]))
        else:
            out.print("No open exceptions.")
        for beat in report["heartbeats"]:
            moment = parse_iso(beat["at"])
            age = f", {(now_utc() - moment).total_seconds():.0f}s ago" if moment else ""
            out.print(f"{beat['name']}: {beat['state']} (pid {beat['pid']}; last heartbeat {beat['at']}{age})", markup=False)
        events = report["events"]
        if events.get("last_received_at") or events.get("queued"):
            lag = events["max_lag_seconds"]
            out.print(
                f"events: {events['queued']} queued, {events['processed_last_hour']} applied in the last hour"
                + (f" (lag max {lag}s, avg {events['avg_lag_seconds']}s)" if lag is not None else "")
                + f", last received {events['last_received_at']}",
                markup=False,
            )
        if report["stale_jobs"]:
            out.print(line(("stale:", "red"), " ", ", ".join(report["stale_jobs"])))
    return ExitCode.FAILED if report["stale_jobs"] else ExitCode.OK
