"""What every flow command shares: load config, run the job under its lock, render, exit code."""

from __future__ import annotations

from typing import Any

import click

from magsit.app import App
from magsit.errors import EXIT_FAILED
from magsit.report import print_json, render_outcome
from magsit.runner import Flow, run_job


def run_flow(app: App, module: Flow, options: dict[str, Any] | None = None) -> int:
    """Run the flow module (``magsit.flow.SyncFlow``; its job name is ``module.JOB``) and render it."""
    job: str = module.JOB  # type: ignore[union-attr]
    outcome = run_job(app.config, job, module, dry_run=app.dry_run, options=options or {}, lock_wait=app.wait_lock)
    if app.json:
        print_json(outcome.as_dict())
    elif not app.quiet or outcome.exit_code:
        render_outcome(outcome, app.err if app.quiet else app.out, dry_run=app.dry_run)
    return outcome.exit_code


def not_built(name: str, help_text: str) -> click.Command:
    """A contract command whose flow is not built yet: says so plainly and exits 1 (no fake success)."""

    @click.command(name, help=f"{help_text} (not built yet)")
    @click.pass_obj
    def command(app: App) -> int:
        app.err.print(f"magsit {name}: not built yet in this version; nothing was done.", markup=False)
        return EXIT_FAILED

    return command
