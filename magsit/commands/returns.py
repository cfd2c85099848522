"""`magsit sync-returns`: store returns -> Magento credit memos; Magento credit memos -> Sitoo (thin)."""

from __future__ import annotations

import click

from magsit.cli import App, pass_app
from magsit.commands.common import run_flow


@click.command("sync-returns")
@pass_app
def command(app: App) -> int:
    """Store returns of web orders -> offline Magento credit memos; Magento credit memos -> Sitoo refund orders."""
    from magsit.sync import returns

    return run_flow(app, returns.JOB, returns.run, {})
