"""What every flow command shares: load config, run the job under its lock, render, exit code."""

from __future__ import annotations

from typing import Any

from magsit.app import App
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

