"""`magsit sync-returns`: store returns -> Magento credit memos; Magento credit memos -> Sitoo (thin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-returns", short_help="Refunds both ways: credit memos <-> refund orders.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    metavar="DATE",
    help="Backfill: read Magento credit memos updated since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC) instead of the cursor.",
)
@pass_app
def command(app: App, since: datetime | None) -> int:
    """Store returns of web orders -> offline Magento credit memos; Magento credit memos -> Sitoo refund orders."""
    from magsit.sync import returns

    return run_flow(app, returns, job_options(since))


def job_options(since: datetime | None) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"since": since.replace(tzinfo=UTC) if since else None}
