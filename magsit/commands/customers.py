"""`magsit sync-customers`: one customer per e-mail across Magento and Sitoo (thin: parse, call, render)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-customers", short_help="One customer per e-mail, Magento <-> Sitoo.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    metavar="DATE",
    help="Backfill: read Magento customers updated since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC) instead of the cursor.",
)
@click.option("--full", is_flag=True, help="Read every Sitoo customer (finds e-mails spelt with other case/spaces).")
@pass_app
def command(app: App, since: datetime | None, full: bool) -> int:
    """One customer per normalised e-mail: Magento <-> Sitoo users (names follow [customers].master)."""
    from magsit.sync import customers

    return run_flow(app, customers, job_options(since, full))


def job_options(since: datetime | None, full: bool) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"since": since.replace(tzinfo=UTC) if since else None, "full": full}
