"""`magsit sync-returns`: store returns -> Magento credit memos; Magento credit memos -> Sitoo (thin)."""

from __future__ import annotations

from datetime import UTC, datetime

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

    return run_flow(app, returns, {"since": since.replace(tzinfo=UTC) if since else None})
