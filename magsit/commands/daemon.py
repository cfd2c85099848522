"""`magsit daemon`: run the jobs of ``[schedule]`` until SIGTERM/SIGINT (then exit 0)."""

from __future__ import annotations

import click

from magsit.app import App, pass_app
from magsit.errors import ExitCode


@click.command("daemon", short_help="Run the jobs of [schedule] until stopped.")
@click.option(
    "--heartbeat-seconds",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="How often the daemon writes its heartbeat to the state file.",
)
@click.option("--check", is_flag=True, help="Validate [schedule] (every job built, every expression valid) and exit.")
@pass_app
def command(app: App, heartbeat_seconds: float, check: bool) -> int:
    """Run the jobs on the [schedule] of the config (intervals like "every 5m" or cron lines, UTC).

    Each run takes the same per-job lock as a cron or manual run; a run skipped because another
    process holds the lock is logged, not an error. SIGTERM lets running jobs finish the record
    in hand, then exits 0.
    """
    from magsit import alerts
    from magsit.daemon import Daemon, build_jobs

    alerts.install()
    if check:
        for scheduled, _trigger, period in build_jobs(app.config):
            app.echo(f"{scheduled.entry} = {app.config.schedule[scheduled.entry]!r} (about every {period:g}s)")
        return ExitCode.OK
    return Daemon(app.config, heartbeat_seconds=heartbeat_seconds).run()
