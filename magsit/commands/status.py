"""`magsit status`: is each job healthy, and who has records waiting for them."""

from __future__ import annotations

import click

from magsit.cli import App, pass_app
from magsit.errors import EXIT_FAILED, EXIT_OK
from magsit.report import print_json, rows_table
from magsit.state.store import StateStore, now_utc, parse_iso


def build_status(state: StateStore, max_age_minutes: float | None = None) -> dict:
    now = now_utc()
    jobs = []
    stale = []
    for run in state.last_runs():
        success = parse_iso(run.get("last_success_at"))
        age = (now - success).total_seconds() / 60 if success else None
        is_stale = max_age_minutes is not None and (age is None or age > max_age_minutes)
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
        "heartbeats": state.heartbeats(),
        "stale_jobs": stale,
    }


@click.command("status")
@click.option("--max-age", type=float, default=None, help="Minutes since a job's last success before it counts as stale (exit 1).")
@click.option("--job", "jobs", multiple=True, help="Only check these jobs for staleness (repeatable).")
@pass_app
def command(app: App, max_age: float | None, jobs: tuple[str, ...]) -> int:
    """Last run per job, its age, counts, and open exceptions by owner and kind."""
    state = StateStore(app.config.state.path)
    try:
        report = build_status(state, max_age)
    finally:
        state.close()
    if jobs:
        report["stale_jobs"] = [job for job in report["stale_jobs"] if job in jobs]
        missing = [job for job in jobs if job not in {j["job"] for j in report["jobs"]}]
        if max_age is not None:
            report["stale_jobs"].extend(missing)
    if app.json:
        print_json(report)
    else:
        out = app.out
        if report["jobs"]:
            out.print(
                rows_table(
                    report["jobs"],
                    title="jobs",
                    columns=["job", "last_status", "last_exit_code", "last_run_at", "last_success_at", "success_age_minutes", "stale"],
                )
            )
        else:
            out.print("No runs recorded yet.")
        if report["open_exceptions"]:
            out.print(rows_table(report["open_exceptions"], title="open exceptions", columns=["owner", "job", "kind", "count"]))
        else:
            out.print("No open exceptions.")
        if report["stale_jobs"]:
            out.print(f"[red]stale:[/red] {', '.join(report['stale_jobs'])}")
    return EXIT_FAILED if report["stale_jobs"] else EXIT_OK
