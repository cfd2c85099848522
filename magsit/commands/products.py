"""`magsit sync-products`: Sitoo product master data -> Magento, one way (thin: parse, call, render)."""

from __future__ import annotations

from typing import Any

import click

from magsit.app import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-products")
@click.option("--full", is_flag=True, help="Read every Sitoo product, not only those changed since the last run.")
@click.option("--sku", "skus", multiple=True, help="Re-sync this SKU now (repeatable).")
@pass_app
def command(app: App, full: bool, skus: tuple[str, ...]) -> int:
    """Sitoo product master data -> Magento, one way."""
    from magsit.sync import products

    return run_flow(app, products, job_options(full, skus))


def job_options(full: bool, skus: tuple[str, ...]) -> dict[str, Any]:
    """The flow's options from this command's parameters (the CLI and a [schedule] line alike)."""
    return {"full": full, "skus": list(skus)}
