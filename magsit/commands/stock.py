"""`magsit sync-stock`: Sitoo stock -> Magento MSI source items (thin: parse, call, render)."""

from __future__ import annotations

from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-stock")
@click.option("--full", is_flag=True, help="Read every warehouse item and Magento's source items; heals drift.")
@click.option("--sku", "skus", multiple=True, help="Re-sync this SKU now (repeatable).")
@pass_app
def command(app: App, full: bool, skus: tuple[str, ...]) -> int:
    """Sitoo stock -> Magento MSI source items."""
    from magsit.sync import stock

    stock.check_settings(app.config)  # a bad overrides CSV is a config error (exit 2) before any call
    return run_flow(app, stock, job_options(full, skus))


def job_options(full: bool, skus: tuple[str, ...]) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"full": full, "skus": list(skus)}
