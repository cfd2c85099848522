"""`magsit reconcile`: the month-end report, Sitoo transactions vs Magento orders (thin: parse, call, render)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from magsit.app import App, pass_app
from magsit.report import print_json
from magsit.runner import run_job

DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.command("reconcile", short_help="Month-end report: Sitoo vs Magento, order by order.")
@click.option("--month", metavar="YYYY-MM", help="Calendar month in the shop's timezone ([reconcile] timezone). Default: last month.")
@click.option("--from", "date_from", type=DATE, metavar="YYYY-MM-DD", help="First day (shop timezone), with --to.")
@click.option("--to", "date_to", type=DATE, metavar="YYYY-MM-DD", help="Last day, inclusive (shop timezone), with --from.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), help="Write one CSV per section into this folder.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a self-contained HTML report to this file.")
@click.option("--no-stock", is_flag=True, help="Skip the stock drift section (no warehouse/source-item reads).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON (same as the global --json).")
@pass_app
def command(app: App, as_json: bool, **params: Any) -> int:
    """Month-end report: Sitoo transactions vs Magento orders, record by record.

    Exit 0 when everything matches within [reconcile] tolerance, 3 when there are variances.
    """
    from magsit.report import render_outcome
    from magsit.sync import reconcile
    from magsit.sync.reconcile.render import render_terminal

    options = job_options(**params)
    # Bad periods and timezones are usage errors (exit 2) before any call or lock.
    reconcile.period_from_options(app.config, options)
    outcome = run_job(app.config, reconcile.JOB, reconcile, dry_run=app.dry_run, options=options, lock_wait=app.wait_lock)
    report = outcome.result.details.get("report")
    if app.json or as_json:
        data = outcome.as_dict()
        data["details"] = {k: v for k, v in data["details"].items() if k != "report"}
        data["report"] = report
        print_json(data)
        return outcome.exit_code
    if app.quiet and not outcome.exit_code:
        return outcome.exit_code
    console = app.out
    if report is not None:
        render_terminal(report, console)
    render_outcome(outcome, console if not app.quiet else app.err, dry_run=app.dry_run)
    return outcome.exit_code


# --json prints the report on the terminal: a scheduled run has none to print to.
NOT_ON_SCHEDULE = ("as_json",)


def job_options(
    month: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    csv_dir: Path | None,
    html_path: Path | None,
    no_stock: bool,
) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {
        "month": month,
        "from": date_from.date().isoformat() if date_from else None,
        "to": date_to.date().isoformat() if date_to else None,
        "csv": str(csv_dir.resolve()) if csv_dir else None,
        "html": str(html_path.resolve()) if html_path else None,
        "no_stock": no_stock,
    }
