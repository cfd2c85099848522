"""The job registry: job name -> the flow and the Click command that parses its schedule arguments.

The daemon runs a job through the same core as the CLI command (``runner.run_job`` with the flow
module), so a scheduled run and a cron/CLI run behave identically and share one lock.

Flow modules are imported lazily, by name, when a job is resolved (at daemon start), so that a
``[schedule]`` entry for a flow that is not built yet is a config error at start-up, not a crash
at 3 a.m. A schedule line (`"sync-stock --full"`) is read by the job's own Click command
(``make_context``) and turned into the flow's options by that command module's ``job_options``:
one parser, so a line accepts exactly what the CLI accepts and means the same.
"""

from __future__ import annotations

import importlib
import importlib.util
import shlex
from dataclasses import dataclass
from typing import Any

import click

from magsit.errors import ConfigError
from magsit.flow import is_sync_flow
from magsit.runner import Flow


@dataclass(frozen=True)
class JobSpec:
    """How to find a job's flow and which arguments it accepts on a schedule line."""

    name: str
    module: str | None = None  # dotted flow module (pull/plan/push); imported lazily
    flow: Flow | None = None  # or the callable itself (tests, plugins)
    # The Click command whose parser reads the job's arguments: the dotted module of a command
    # (its ``command`` and ``job_options``, imported lazily like the flow), or a click.Command whose
    # parameters are the options as they are (tests, plugins). None: the job takes no arguments.
    command: str | click.Command | None = None

    def resolve(self) -> Flow:
        """The flow module (``magsit.flow.SyncFlow``), or ConfigError("not built") if it does not exist."""
        if self.flow is not None:
            return self.flow
        if self.module is None:
            raise ConfigError(f"job {self.name}: no flow registered")
        try:
            found = importlib.util.find_spec(self.module)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise ConfigError(f"job {self.name}: not built in this version (module {self.module} is missing)")
        module = importlib.import_module(self.module)
        if not is_sync_flow(module):
            raise ConfigError(f"job {self.name}: not built in this version ({self.module} has no pull/plan/push)")
        return module  # type: ignore[return-value]  # a module satisfies SyncFlow structurally

    def parse_args(self, args: list[str]) -> dict[str, Any]:
        """A schedule line's arguments -> the flow's options, by the job's own CLI parser, so a line
        accepts exactly what `magsit <job>` accepts and means the same. ValueError says what is wrong."""
        if self.command is None:
            if args:
                raise ValueError(f"unknown argument {args[0]!r}; {self.name} takes no arguments")
            return {}
        if isinstance(self.command, click.Command):
            return dict(_parse_line(self.command, self.name, args))
        module = importlib.import_module(self.command)
        params = _parse_line(module.command, self.name, args)
        for name in getattr(module, "NOT_ON_SCHEDULE", ()):
            if params.pop(name):
                flag = next(p.opts[-1] for p in module.command.params if p.name == name)
                raise ValueError(f"{flag} is for a run by hand, not for a schedule")
        return module.job_options(**params)  # type: ignore[no-any-return]


def _parse_line(command: click.Command, name: str, args: list[str]) -> dict[str, Any]:
    # The global options (--dry-run, --config, -v ...) that the CLI also accepts after a command are
    # the daemon's own, not a job's: a scheduled `sync-stock --dry-run` would run for real. So the
    # line is parsed with the job's own options only (and no --help, which would print and exit).
    own = [param for param in command.params if param.expose_value]
    global_flags = {flag for param in command.params if not param.expose_value for flag in param.opts}
    parser = click.Command(name, params=own, add_help_option=False)
    try:
        return parser.make_context(name, list(args)).params
    except click.NoSuchOption as exc:
        if exc.option_name in global_flags:
            raise ValueError(f"{exc.option_name} is a global option of magsit, not an option of the job {name}") from None
        raise ValueError(exc.format_message()) from None
    except click.ClickException as exc:
        raise ValueError(exc.format_message()) from None


REGISTRY: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("sync-stock", "magsit.sync.stock", command="magsit.commands.stock"),
        JobSpec("sync-products", "magsit.sync.products", command="magsit.commands.products"),
        JobSpec("push-orders", "magsit.sync.orders", command="magsit.commands.orders"),
        JobSpec("sync-fulfilment", "magsit.sync.fulfilment", command="magsit.commands.fulfilment"),
        JobSpec("sync-customers", "magsit.sync.customers", command="magsit.commands.customers"),
        JobSpec("sync-returns", "magsit.sync.returns", command="magsit.commands.returns"),
        JobSpec("reconcile", "magsit.sync.reconcile", command="magsit.commands.reconcile"),
        JobSpec("audit", "magsit.sync.audit"),  # its --csv/--html are written by the command, not the flow
    )
}


def register(spec: JobSpec) -> None:
    """Add or replace a job (plugins, tests)."""
    REGISTRY[spec.name] = spec


@dataclass(frozen=True)
class ScheduledJob:
    entry: str  # the [schedule] key as written, e.g. "sync-stock --full"; also the APScheduler job id
    job: str  # the job name, which is also the lock name
    flow: Flow
    options: dict[str, Any]


def resolve_entry(entry: str) -> ScheduledJob:
    """``"sync-stock --full"`` -> the flow and its options. ConfigError names the key."""
    try:
        words = shlex.split(entry)
    except ValueError as exc:
        raise ConfigError(f"[schedule] key {entry!r}: {exc}") from None
    if not words:
        raise ConfigError("[schedule] has an empty key")
    name, args = words[0], words[1:]
    spec = REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"[schedule] key {entry!r}: unknown job {name!r}; jobs: {', '.join(sorted(REGISTRY))}")
    try:
        options = spec.parse_args(args)
    except ValueError as exc:
        raise ConfigError(f"[schedule] key {entry!r}: {exc}") from None
    try:
        flow = spec.resolve()
    except ConfigError as exc:
        raise ConfigError(f"[schedule] key {entry!r}: {exc.message}") from None
    return ScheduledJob(entry, name, flow, options)
