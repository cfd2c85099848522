"""The job registry: job name -> the flow callable and a parser for the job's schedule arguments.

The daemon runs a job through the same core as the CLI command (``runner.run_job`` with the flow's
``run``), so a scheduled run and a cron/CLI run behave identically and share one lock.

Flow modules are imported lazily, by name, when a job is resolved (at daemon start), so that a
``[schedule]`` entry for a flow that is not built yet is a config error at start-up, not a crash
at 3 a.m. Flow engineers extend this table (or call ``register``) when a flow grows options that
make sense on a schedule.
"""

from __future__ import annotations

import importlib
import importlib.util
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from magsit.errors import ConfigError
from magsit.flow import is_sync_flow
from magsit.runner import Flow


def parse_since(text: str) -> datetime:
    """``2024-05-01`` or ``2024-05-01T10:00:00[Z|+hh:mm]`` -> an aware UTC datetime."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date (YYYY-MM-DD) or an ISO timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class JobSpec:
    """How to find a job's flow and which arguments it accepts on a schedule line."""

    name: str
    module: str | None = None  # dotted flow module (pull/plan/push); imported lazily
    flow: Flow | None = None  # or the callable itself (tests, plugins)
    flags: Mapping[str, str] = field(default_factory=dict)  # "--full" -> option key (True when given)
    values: Mapping[str, tuple[str, Callable[[str], Any]]] = field(default_factory=dict)  # "--since" -> (key, parse)
    lists: Mapping[str, str] = field(default_factory=dict)  # "--sku" -> option key (repeatable)

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
        if not is_sync_flow(module) and not callable(getattr(module, "run", None)):
            raise ConfigError(f"job {self.name}: not built in this version ({self.module} has no pull/plan/push)")
        return module  # type: ignore[return-value]  # a module satisfies SyncFlow structurally

    def parse_args(self, args: list[str]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        index = 0
        while index < len(args):
            arg = args[index]
            name, eq, inline = arg.partition("=")
            if name in self.flags and not eq:
                options[self.flags[name]] = True
            elif name in self.values or name in self.lists:
                if eq:
                    value = inline
                else:
                    index += 1
                    if index >= len(args):
                        raise ValueError(f"{name} needs a value")
                    value = args[index]
                if name in self.values:
                    key, parse = self.values[name]
                    options[key] = parse(value)
                else:
                    options.setdefault(self.lists[name], []).append(value)
            else:
                accepted = sorted([*self.flags, *self.values, *self.lists])
                hint = f"; {self.name} accepts {', '.join(accepted)}" if accepted else f"; {self.name} takes no arguments"
                raise ValueError(f"unknown argument {arg!r}{hint}")
            index += 1
        return options


_SINCE = {"--since": ("since", parse_since)}

REGISTRY: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("sync-stock", "magsit.sync.stock", flags={"--full": "full"}, lists={"--sku": "skus"}),
        JobSpec("sync-products", "magsit.sync.products", flags={"--full": "full"}, lists={"--sku": "skus"}),
        JobSpec("push-orders", "magsit.sync.orders", values=_SINCE, lists={"--order": "orders"}),
        JobSpec("sync-fulfilment", "magsit.sync.fulfilment", values=_SINCE),
        JobSpec("sync-customers", "magsit.sync.customers", flags={"--full": "full"}, values=_SINCE),
        JobSpec("sync-returns", "magsit.sync.returns", values=_SINCE),
        JobSpec(
            "reconcile",
            "magsit.sync.reconcile",
            flags={"--no-stock": "no_stock"},
            values={"--month": ("month", str), "--from": ("from", str), "--to": ("to", str),
                    "--csv": ("csv", str), "--html": ("html", str)},
        ),
        JobSpec("audit", "magsit.sync.audit"),
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
