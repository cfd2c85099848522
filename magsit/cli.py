"""The `magsit` command line: a Click group, the global options, and the one error boundary.

Commands stay thin: parse options, call the core, render. Exit codes (the interface contract):
0 done; 1 the run failed; 2 usage or config error; 3 done, but some records failed;
4 skipped, another run holds the lock; 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from magsit import __version__, alerts
from magsit.app import App
from magsit.commands import (
    audit,
    check,
    customers,
    daemon,
    demo,
    events,
    exceptions,
    fulfilment,
    orders,
    products,
    reconcile,
    returns,
    sandbox,
    status,
    stock,
)
from magsit.errors import ExitCode, MagsitError
from magsit.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "config_path",
    envvar="MAGSIT_CONFIG",
    type=click.Path(dir_okay=False),
    help="Config file (default magsit.toml; env MAGSIT_CONFIG).",
)
@click.option("--dry-run", is_flag=True, help="Pull and plan, print the plan, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: every HTTP call, credentials redacted).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-format", type=click.Choice(["rich", "json"]), default="rich", show_default=True, help="Log format on stderr.")
@click.option(
    "--wait-lock",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="If another run of the job holds its lock, wait up to SECONDS for it instead of skipping (exit 4).",
)
@click.version_option(__version__, prog_name="magsit")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    dry_run: bool,
    as_json: bool,
    verbose: int,
    quiet: bool,
    log_format: str,
    wait_lock: float,
) -> None:
    """magsit keeps a Magento 2 web shop and a Sitoo POS estate in sync.

    Each sync command runs one pull -> diff -> push cycle and records what it did in the state file.
    """
    setup_logging(verbose, quiet, log_format)
    ctx.obj = App(config_path, dry_run, as_json, verbose, quiet, log_format, wait_lock)


COMMANDS = (
    stock,
    products,
    orders,
    fulfilment,
    customers,
    returns,
    reconcile,
    audit,
    status,
    exceptions,
    daemon,
    events,
    check,
    sandbox,
    demo,
)
for _module in COMMANDS:
    cli.add_command(_module.command)


def _set_global(name: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value in (None, False, 0):
            return
        app = ctx.find_object(App)
        if app is None:
            return
        if name == "verbose":
            app.verbose += int(value)
        else:
            setattr(app, name, value)
        if name in ("verbose", "quiet", "log_format"):
            setup_logging(app.verbose, app.quiet, app.log_format)

    return callback


# The global options are also accepted after the subcommand (`magsit sync-stock --dry-run`,
# `magsit exceptions list --json`): people type them there, and cron lines read better that way.
GLOBAL_AFTER_SUBCOMMAND = (
    (("--config", "config_path"), {"type": click.Path(dir_okay=False), "help": "Config file (as before the subcommand)."}),
    (("--dry-run", "dry_run"), {"is_flag": True, "help": "Pull and plan, print the plan, write nothing."}),
    (("--json", "json"), {"is_flag": True, "help": "Machine-readable output on stdout."}),
    (("-v", "--verbose", "verbose"), {"count": True, "help": "More log output (-vv: every HTTP call)."}),
    (("-q", "--quiet", "quiet"), {"is_flag": True, "help": "Only errors."}),
    (("--log-format", "log_format"), {"type": click.Choice(["rich", "json"]), "help": "Log format on stderr."}),
    (("--wait-lock", "wait_lock"), {"type": click.FloatRange(min=0), "metavar": "SECONDS", "help": "Wait for a held lock."}),
)


def _accept_global_options(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_global_options(sub)
        return
    taken = {opt for param in command.params for opt in param.opts}
    for decls, attrs in GLOBAL_AFTER_SUBCOMMAND:
        *flags, name = decls
        if taken.intersection(flags):
            continue  # the command has its own (e.g. reconcile --json)
        command.params.append(
            click.Option(flags, expose_value=False, callback=_set_global(name), **attrs)  # type: ignore[arg-type]
        )


for _command in cli.commands.values():
    _accept_global_options(_command)

# Route new exceptions, failed runs and stale jobs to their owners after every run (see alerts.py).
alerts.install()


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place errors become exit codes and one-line messages."""
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    try:
        result: Any = cli.main(args=argv, prog_name="magsit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        err.print("magsit: interrupted")
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except KeyboardInterrupt:
        err.print("magsit: interrupted")
        return ExitCode.INTERRUPTED
    except MagsitError as exc:
        err.print(f"magsit: error: {exc.message}", markup=False)
        return exc.exit_code
    except Exception as exc:  # never a traceback for the operator; -vv logs it
        import logging

        logging.getLogger("magsit").debug("unexpected error", exc_info=True)
        err.print(f"magsit: internal error: {type(exc).__name__}: {exc}", markup=False)
        return ExitCode.FAILED
    return int(result) if isinstance(result, int) else ExitCode.OK

