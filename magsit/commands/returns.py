"""`magsit sync-returns`: store returns -> Magento credit memos; Magento credit memos -> Sitoo (thin)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from magsit.cli import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-returns")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Backfill: read Magento credit memos updated since this UTC date/time instead of the cursor.",
)
@pass_app
def command(app: App, since: datetime | None) -> int:
    """Store returns of web orders -> offline Magento credit memos; Magento credit memos -> Sitoo refund orders."""
    from magsit.sync import returns

    return run_flow(app, returns.JOB, returns.run, {"since": since.replace(tzinfo=UTC) if since else None})
