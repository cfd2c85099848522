"""`magsit push-orders`: Magento web orders -> Sitoo for store fulfilment (thin: parse, call, render)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("push-orders", short_help="Magento web orders -> Sitoo orders, exactly once.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    metavar="DATE",
    help="Backfill: read orders updated since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC) instead of the cursor.",
)
@click.option("--order", "order_ids", multiple=True, metavar="INCREMENT_ID",
              help="Push this order now, ignoring its retry backoff (repeatable).")
@pass_app
def command(app: App, since: datetime | None, order_ids: tuple[str, ...]) -> int:
    """Magento web orders -> Sitoo orders fulfilled by a store (exactly once)."""
    from magsit.sync import orders

    return run_flow(app, orders, job_options(since, order_ids))


def job_options(since: datetime | None, order_ids: tuple[str, ...]) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"since": since.replace(tzinfo=UTC) if since else None, "orders": list(order_ids)}
