"""`magsit exceptions`: the records that need a person, with the owner who should act."""

from __future__ import annotations

import contextlib
import json

import click

from magsit.app import App, pass_app
from magsit.errors import ExitCode
from magsit.report import line, print_json, rows_table
from magsit.state.store import StateStore


@click.group("exceptions", short_help="List, show, retry, resolve or ignore failed records.")
def command() -> None:
    """List, inspect, retry, resolve or ignore per-record exceptions."""


def _open(app: App) -> StateStore:
    return StateStore(app.config.state.path)


@command.command("list", short_help="Exceptions (open by default): record, kind, owner, message.")
@click.option("--owner", type=click.Choice(["ops", "ecommerce", "finance"]), help="Only this owner's.")
@click.option("--job", help="Only this job's (e.g. sync-stock).")
@click.option("--kind", help="Only this kind.")
@click.option("--status", type=click.Choice(["open", "resolved", "ignored", "all"]), default="open", show_default=True)
@click.option("--limit", type=int, default=200, show_default=True)
@pass_app
def list_(app: App, owner: str | None, job: str | None, kind: str | None, status: str, limit: int) -> int:
    """Each exception's record key (SKU, increment id, e-mail ...), kind, owner and message."""
    state = _open(app)
    try:
        rows = state.exceptions(None if status == "all" else status, owner, job, kind, limit)
    finally:
        state.close()
    if app.json:
        print_json(rows)
    elif rows:
        app.out.print(
            rows_table(rows, title=f"{status} exceptions", columns=["id", "record_key", "kind", "owner", "job", "attempts", "last_seen", "message"], limit=limit)
        )
    else:
        app.out.print(f"No {status} exceptions.")
    return ExitCode.OK


def _find(state: StateStore, refs: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    found: list[dict] = []
    missing: list[str] = []
    for ref in refs:
        rows = state.find_exceptions(ref.strip())
        if rows:
            found += [row for row in rows if row["id"] not in {f["id"] for f in found}]
        else:
            missing.append(ref)
    return found, missing


def _missing(app: App, missing: list[str]) -> int:
    app.err.print(f"no exception with id or record key {', '.join(missing)} (see `magsit exceptions list --status all`)", markup=False)
    return ExitCode.USAGE


@command.command("show", short_help="Everything recorded about one exception (by id or record key).")
@click.argument("refs", nargs=-1, required=True, metavar="ID_OR_KEY...")
@pass_app
def show(app: App, refs: tuple[str, ...]) -> int:
    """Everything recorded about an exception, payload excerpt included.

    Name it by id (`magsit exceptions show 12`) or by its record key: an increment id, SKU,
    e-mail … (`magsit exceptions show 000000007`); a key open under two jobs shows both.
    """
    state = _open(app)
    try:
        rows, missing = _find(state, refs)
    finally:
        state.close()
    if missing and not rows:
        return _missing(app, missing)
    if app.json:
        print_json(rows[0] if len(rows) == 1 and len(refs) == 1 else rows)
    else:
        for number, row in enumerate(rows):
            if number:
                app.out.print()
            for key, value in row.items():
                if key == "payload" and value:
                    with contextlib.suppress(ValueError):
                        value = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
                if key == "next_retry_at" and row["status"] == "open":
                    value = value or "due on the next run"
                app.out.print(line((key, "bold"), ": ", "" if value is None else value), highlight=False)
    return _missing(app, missing) if missing else ExitCode.OK


def _set(app: App, refs: tuple[str, ...], action: str) -> int:
    state = _open(app)
    try:
        rows, missing = _find(state, refs)
        for row in rows:
            if action == "retry":
                state.retry_exception(row["id"])
            else:
                state.set_exception_status(row["id"], action)
    finally:
        state.close()
    verb, after = {
        "retry": ("due on the next run", ""),
        "resolved": ("marked resolved", ""),
        "ignored": ("ignored", " No run works on these records until `magsit exceptions retry`."),
    }[action]
    if rows:
        done = ", ".join(f"{row['id']} ({row['job']} {row['record_key']})" for row in rows)
        app.out.print(f"{len(rows)} exception(s) {verb}: {done}.{after}", markup=False)
    return _missing(app, missing) if missing else ExitCode.OK


@command.command("retry")
@click.argument("refs", nargs=-1, required=True, metavar="ID_OR_KEY...")
@pass_app
def retry(app: App, refs: tuple[str, ...]) -> int:
    """Make these records due on the next run (after fixing the cause): skips the backoff wait,
    and brings an ignored or resolved record back."""
    return _set(app, refs, "retry")


@command.command("resolve")
@click.argument("refs", nargs=-1, required=True, metavar="ID_OR_KEY...")
@pass_app
def resolve(app: App, refs: tuple[str, ...]) -> int:
    """Mark these exceptions resolved by hand. Orders, deliveries and refunds you resolve are
    treated as handled: no run works on them again until `magsit exceptions retry`."""
    return _set(app, refs, "resolved")


@command.command("ignore")
@click.argument("refs", nargs=-1, required=True, metavar="ID_OR_KEY...")
@pass_app
def ignore(app: App, refs: tuple[str, ...]) -> int:
    """Leave these records alone: no run works on them (no API call) until `magsit exceptions retry`.
    They stay listed with --status ignored."""
    return _set(app, refs, "ignored")
