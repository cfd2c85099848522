"""`magsit sync-fulfilment`: Sitoo deliveries and cancellations -> Magento shipments / cancels (thin)."""

from __future__ import annotations

from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-fulfilment", short_help="Sitoo deliveries/cancels -> Magento shipments/cancel.")
@click.option("--order", "order_ids", multiple=True, metavar="INCREMENT_ID", help="Only this pushed order (repeatable).")
@pass_app
def command(app: App, order_ids: tuple[str, ...]) -> int:
    """Sitoo deliveries -> notified Magento shipments with tracking; Sitoo cancellations -> Magento cancel."""
    from magsit.sync import fulfilment

    return run_flow(app, fulfilment, job_options(order_ids))


def job_options(order_ids: tuple[str, ...]) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"orders": list(order_ids)}
