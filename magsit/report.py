"""Rendering of results: rich tables for people, JSON for scripts. Nothing here decides anything."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from magsit.errors import ExitCode
from magsit.runner import RunOutcome
from magsit.values import plain

STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red", "interrupted": "red", "skipped": "dim"}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        return to_jsonable(value.__dict__)
    return value


def line(*parts: Any) -> Text:
    """One printed line from plain pieces and ``(text, style)`` pieces.

    Record data (SKUs, messages, hints, paths) never goes through rich markup: a SKU like
    ``gift[/b]wrap`` or a hint naming ``[stock]`` is printed as typed. (rich's own ``escape`` is
    not enough: it leaves ``\\[`` to be read as an escaped bracket and doubles a trailing backslash.)
    """
    return Text.assemble(*[(str(p[0]), p[1]) if isinstance(p, tuple) else str(p) for p in parts])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def rows_table(rows: list[dict[str, Any]], title: str | None = None, columns: list[str] | None = None, limit: int = 50) -> Table:
    columns = columns or (list(rows[0].keys()) if rows else [])
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows[:limit]:
        table.add_row(*[_cell(row.get(column)) for column in columns])
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more rows not shown (use --json for all)"
    return table


def _cell(value: Any) -> Text:
    # Text, not str: rich parses str cells as markup.
    if value is None:
        return Text("")
    if isinstance(value, bool):  # words, not Python's True/False
        return Text("yes" if value else "no")
    if isinstance(value, dict | list):
        return Text(json.dumps(to_jsonable(value), ensure_ascii=False))
    return Text(str(to_jsonable(value)))


NO_WRITE_ACTIONS = frozenset({"skip", "none", "unchanged", "exception", "fail", "wait"})  # wait: left for a later run


def _is_write(row: dict[str, Any]) -> bool:
    if "write" in row:
        return bool(row["write"])
    return row.get("action") not in NO_WRITE_ACTIONS


def plan_table(rows: list[dict[str, Any]], name: str) -> Table:
    """A dry run's plan: the rows that would be written first, and how many writes that is."""
    ordered = sorted(rows, key=lambda row: not _is_write(row))  # stable: plan order within each group
    writes = sum(1 for row in rows if _is_write(row))
    return rows_table(ordered, title=f"{name}: {writes} write(s) of {len(rows)} row(s), writes first")


def status_label(status: str, exit_code: int | None) -> str:
    """The words for a run's result; they never contradict the exit code (no "ok (exit 3)")."""
    if status == "ok" and exit_code == ExitCode.PARTIAL:
        return "done, with findings"
    return {
        "ok": "ok",
        "partial": "done, some records failed",
        "failed": "failed",
        "interrupted": "interrupted",
        "skipped": "skipped",
    }.get(status, status)


def render_outcome(outcome: RunOutcome, console: Console, *, dry_run: bool = False) -> None:
    style = STATUS_STYLE.get(outcome.status, "")
    label = status_label(outcome.status, outcome.exit_code)
    counts = dict(outcome.result.counts)
    if dry_run:
        # Nothing was recorded: "failed" would send the reader to `exceptions list`, which is empty.
        if outcome.status == "partial":
            label = "planned, some records would fail"
        if "failed" in counts:
            counts["would fail"] = counts.pop("failed")
        label += " (dry run, nothing written)"
    console.print(line((outcome.job, "bold"), ": ", (label, style), f" (exit {outcome.exit_code})"))
    if counts:
        console.print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), markup=False)
    for text in outcome.result.summary:
        console.print(f"  {text}", markup=False)
    plan = outcome.result.plan
    if dry_run and isinstance(plan, list) and plan and isinstance(plan[0], dict):
        console.print(plan_table(plan, "plan"))
    elif dry_run and isinstance(plan, dict):
        for name, rows in plan.items():
            if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                console.print(plan_table(rows, name))
    if outcome.failures:
        console.print(
            rows_table(
                [f.__dict__ for f in outcome.failures],
                title=("records that would fail (dry run: no exception recorded)" if dry_run
                       else "records that failed (see `magsit exceptions list`)"),
                columns=["id", "key", "kind", "owner", "message"] if not dry_run else ["key", "kind", "owner", "message"],
                limit=20,
            )
        )
    if outcome.error:
        console.print(line(("error:", "red"), " ", outcome.error))
