"""`magsit audit`: read-only health check of both catalogues (thin: parse, call, render).

Exit 0 when both sides agree, 3 when there are findings, 1 when the audit itself failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from magsit.app import App, pass_app
from magsit.report import print_json, render_outcome, rows_table
from magsit.runner import RunOutcome, run_job
from magsit.state.store import now_utc
from magsit.tabular import Section, described, readable, write_csv_dir, write_html

FINDING_COLUMNS = ["kind", "owner", "key", "magento", "sitoo", "message", "fix"]


def sections(outcome: RunOutcome) -> list[Section]:
    details = outcome.result.details
    summary = details.get("summary") or {}
    return [
        Section("summary", "Findings by kind", list(summary.get("by_kind") or []), columns=["kind", "owner", "count"]),
        Section("findings", "Findings", list(details.get("findings") or []), columns=FINDING_COLUMNS,
                note="Each finding's owner acts on it, as its last column says; the runbook's 'audit findings' "
                     "table explains every kind."),
    ]  # fmt: skip


CHECKED = (
    "SKUs on both sides (missing, near-miss spellings), prices (Sitoo gross vs Magento net + VAT), tax classes, "
    "Magento sources vs Sitoo warehouses, stock levels, recent orders on both sides, magsit's own records of "
    "pushed orders, and customers sharing an e-mail address"
)


def shops(app: App) -> str:
    """Which shop and which Sitoo account the report is about (no credentials: host and ids only)."""
    config = app.config
    magento = urlsplit(config.magento.base_url).hostname or config.magento.base_url
    account = urlsplit(config.sitoo.base_url).path.rstrip("/").rsplit("/", 1)[-1]
    return (
        f"Magento shop {magento} (website {config.magento.website_id}) compared with "
        f"Sitoo account {account} (site {config.sitoo.site_id})"
    )


def html_summary(app: App, outcome: RunOutcome) -> list[tuple[str, Any]]:
    totals = outcome.result.details.get("summary") or {}
    found = int(totals.get("total", 0))
    result = f"{found} finding(s) to act on" if found else "Both sides agree: nothing to act on"
    counts = outcome.result.counts
    owners = ", ".join(f"{owner} {count}" for owner, count in (totals.get("by_owner") or {}).items())
    rows: list[tuple[str, Any]] = [("Result", result)]
    if owners:
        rows.append(("Who acts", owners))
    rows.append(("Checked", f"{CHECKED}: {counts.get('magento_products', 0)} Magento and "
                            f"{counts.get('sitoo_products', 0)} Sitoo products."))  # fmt: skip
    return rows


def html_sections(parts: list[Section]) -> list[Section]:
    """For people: kinds as words, the two sides' values as "key: value" lines instead of JSON."""
    out = []
    for section in parts:
        rows = []
        for row in section.rows:
            row = dict(row)
            if "kind" in row:
                row["kind"] = readable(row["kind"])
            for side in ("magento", "sitoo"):
                if isinstance(row.get(side), dict | list):
                    row[side] = described(row[side])
            rows.append(row)
        out.append(Section(section.name, section.title, rows, columns=section.columns, note=section.note))
    return out


def as_json(outcome: RunOutcome) -> dict[str, Any]:
    data = outcome.as_dict()
    details = data.pop("details") or {}
    data["totals"] = details.get("summary") or {"total": 0, "by_kind": [], "by_owner": {}}
    data["findings"] = details.get("findings") or []
    return data


def render(outcome: RunOutcome, app: App) -> None:
    console = app.err if app.quiet else app.out
    render_outcome(outcome, console, dry_run=app.dry_run)
    details = outcome.result.details
    summary = details.get("summary") or {}
    if summary.get("by_kind"):
        console.print(rows_table(summary["by_kind"], title="findings by kind", columns=["kind", "owner", "count"]))
        owners = ", ".join(f"{owner} {count}" for owner, count in (summary.get("by_owner") or {}).items())
        console.print(f"  by owner: {owners}", markup=False)
        console.print(
            rows_table(details.get("findings") or [], title="findings", columns=["key", "kind", "owner", "message", "fix"], limit=200)
        )


@click.command("audit", short_help="Read-only check: SKU, price, stock and order gaps.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), help="Also write summary.csv and findings.csv into this folder.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML report to this file.")
@pass_app
def command(app: App, csv_dir: Path | None, html_file: Path | None) -> int:
    """Find data gaps between Magento and Sitoo before they break orders (read-only).

    Compares SKUs (missing, near-miss spellings), prices (Sitoo gross vs Magento net + VAT),
    tax classes, sources/warehouses, stock, orders on both sides, state mappings and duplicate
    customers. Exit 0: clean; 3: findings (each with its owner and the fix).
    """
    from magsit.sync import audit

    outcome = run_job(app.config, audit.JOB, audit, dry_run=app.dry_run, lock_wait=app.wait_lock)
    if app.dry_run:
        # Like reconcile: a dry run writes no file, it says which it would write.
        for target in (csv_dir and f"CSV files into {csv_dir}", html_file):
            if target:
                app.echo(f"dry run: would write {target}")
    elif outcome.status != "failed":
        parts = sections(outcome)
        if csv_dir is not None:
            written = write_csv_dir(csv_dir, parts)
            app.echo(f"CSV: {', '.join(str(p) for p in written)}")
        if html_file is not None:
            write_html(html_file, "Magento and Sitoo audit", html_sections(parts), html_summary(app, outcome),
                       generated_at=now_utc(), subtitle=shops(app))  # fmt: skip
            app.echo(f"HTML: {html_file}")
    if app.json:
        print_json(as_json(outcome))
    elif not app.quiet or outcome.exit_code:
        render(outcome, app)
    return outcome.exit_code
