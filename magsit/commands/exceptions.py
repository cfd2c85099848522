"""`magsit exceptions`: the records that need a person, with the owner who should act."""

from __future__ import annotations

import contextlib
import json

import click

from magsit.cli import App, pass_app
from magsit.errors import EXIT_OK, EXIT_USAGE
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
    return EXIT_OK


@command.command("show", short_help="Everything recorded about one exception.")
@click.argument("exception_id", type=int)
@pass_app
def show(app: App, exception_id: int) -> int:
    """Everything recorded about one exception, payload excerpt included."""
    state = _open(app)
    try:
        row = state.get_exception(exception_id)
    finally:
        state.close()
    if row is None:
        app.err.print(f"no exception with id {exception_id}")
        return EXIT_USAGE
    if app.json:
        print_json(row)
        return EXIT_OK
    for key, value in row.items():
        if key == "payload" and value:
            with contextlib.suppress(ValueError):
                value = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        app.out.print(line((key, "bold"), ": ", "" if value is None else value), highlight=False)
    return EXIT_OK


def _set(app: App, ids: tuple[int, ...], action: str) -> int:
    state = _open(app)
    missing = []
    try:
        for exception_id in ids:
            ok = state.retry_exception(exception_id) if action == "retry" else state.set_exception_status(exception_id, action)
            if not ok:
                missing.append(exception_id)
    finally:
        state.close()
    done = [i for i in ids if i not in missing]
    verb = {"retry": "will be retried on the next run", "resolved": "marked resolved", "ignored": "ignored"}[action]
    if done:
        app.out.print(f"{len(done)} exception(s) {verb}: {', '.join(map(str, done))}")
    if missing:
        app.err.print(f"no exception with id {', '.join(map(str, missing))}")
        return EXIT_USAGE
    return EXIT_OK


@command.command("retry")
@click.argument("ids", type=int, nargs=-1, required=True)
@pass_app
def retry(app: App, ids: tuple[int, ...]) -> int:
    """Make these records due on the next run (after fixing the cause)."""
    return _set(app, ids, "retry")


@command.command("resolve")
@click.argument("ids", type=int, nargs=-1, required=True)
@pass_app
def resolve(app: App, ids: tuple[int, ...]) -> int:
    """Mark these exceptions resolved by hand."""
    return _set(app, ids, "resolved")


@command.command("ignore")
@click.argument("ids", type=int, nargs=-1, required=True)
@pass_app
def ignore(app: App, ids: tuple[int, ...]) -> int:
    """Stop reporting these exceptions (they stay recorded)."""
    return _set(app, ids, "ignored")
