"""`magsit events serve|process`: receive Sitoo events and apply them (thin: parse, call, render)."""

from __future__ import annotations

import click

from magsit.app import App, pass_app
from magsit.errors import ExitCode
from magsit.report import print_json


@click.group("events", help="Receive Sitoo events (serve) and apply them (process).")
def command() -> None:
    pass


@command.command("serve", short_help="Receive Sitoo events at POST /events and apply them.")
@click.option("--host", default=None, help="Address to listen on (default [events] host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default [events] port, 8080; 0 = any free port).")
@click.option("--threads", type=int, default=4, show_default=True, help="HTTP worker threads.")
@pass_app
def serve(app: App, host: str | None, port: int | None, threads: int) -> int:
    """Receive Sitoo events at POST /events and apply them in a background worker."""
    from magsit.events.receiver import serve

    def ready(bound_host: str, bound_port: int) -> None:
        # One line on stderr even with -q: scripts and tests read the bound port from it (--port 0).
        app.err.print(f"magsit events: listening on http://{bound_host}:{bound_port}/events", markup=False)

    return serve(app.config, host, port, threads=threads, ready=ready)


@command.command("process", short_help="Apply the queued events now (cron, or without serve).")
@pass_app
def process(app: App) -> int:
    """Apply the stored events now (for cron, or while `serve` is not running). --dry-run shows the runs."""
    from magsit.events.drain import drain_all
    from magsit.events.queue import EventStore

    store = EventStore(app.config.state.path)
    try:
        report = drain_all(app.config, store, dry_run=app.dry_run)  # LockedError: exit 4 at the boundary
    finally:
        store.close()
    failed = any(run.get("status") in ("failed", "error") for run in report.runs)
    if app.json:
        print_json(report.as_dict())
    elif not app.quiet:
        if app.dry_run:
            app.out.print(f"{report.read} event(s) due; plan: {report.plan}", markup=False)
        else:
            app.out.print(
                f"{report.read} event(s): {report.processed} applied, {report.ignored} needed nothing, "
                f"{report.deferred} left queued, {report.given_up} given up",
                markup=False,
            )
            for run in report.runs:
                app.out.print(f"  {run['job']} for {run['events']} event(s): {run.get('status')}", markup=False)
    if failed:
        return ExitCode.FAILED
    return ExitCode.OK if report.deferred == 0 and report.given_up == 0 else ExitCode.PARTIAL
