"""The flow protocol: every sync flow is pull -> plan -> push, and the runner owns the seams.

A flow is a module with ``JOB`` and three functions (see docs/ENGINEERING.md, "The flow protocol"):

- ``pull(ctx)`` reads only: API GETs and state reads, everything ``plan`` needs (held keys, due
  exception keys, mappings, cursors, the command's options) goes into the pulled object;
- ``plan(pulled, config, now)`` is pure: no I/O, no clock (``now`` is the run's start), no state;
  it returns the flow's own plan object, which can ``preview()`` itself;
- ``push(ctx, plan)`` is the only writer: API writes, state writes, exception rows.

Optionally ``verify(ctx, plan)``: reads only, for what the plan depends on but ``pull`` cannot know
is needed before planning (sync-stock reads Magento's source codes only when it has rows to write).
It raises ``MagsitError`` when the real run could not carry the plan out (a config that points
nowhere), so a dry run fails the same way the real run would, and both spend no call on it when
there is nothing to write.

The runner calls pull, plan and verify, and in ``--dry-run`` stops there and renders ``plan.preview()``.
In a dry run the flow's state store is opened read-only and its HTTP sessions refuse anything but
GET, so a dry run that writes fails loudly instead of writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from magsit.errors import RecordError

if TYPE_CHECKING:
    from magsit.config import Config
    from magsit.runner import JobContext, JobResult


@dataclass
class Preview:
    """What a dry run prints: the plan rows (list of dicts, or one dict for report-like flows),
    summary lines, and the records that WOULD fail (listed, never recorded)."""

    rows: list[dict[str, Any]] | dict[str, Any]
    summary: list[str] = field(default_factory=list)
    problems: list[RecordError] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # e.g. read / to_write, shown like a real run's
    # Report-like flows (reconcile, audit): their plan is the report, so the dry run returns what a
    # real run does, without the writes: the details their commands render, and the findings (exit 3).
    details: dict[str, Any] = field(default_factory=dict)
    findings: int = 0


# What a dry run says the real run would write: (count key, how many, verb, noun in the singular),
# e.g. ("to_push", 12, "push", "order"). Keys are ``to_<verb>``, beside the keys a real run counts.
Doing = tuple[str, int, str, str]


def plural(count: int, noun: str) -> str:
    """'1 order', '12 orders', '4 deliveries', '2 credit memos' (the last word takes the plural)."""
    if count != 1:
        noun = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{count} {noun}"


def would(*doings: Doing, notes: dict[str, str] | None = None) -> str:
    """The line every dry run prints to say what the real run would write, in one style and in
    numbers an on-call engineer can check: ``would push 12 orders (...), ship 4 deliveries``.
    Doings of 0 are left out; ``notes`` (by count key) adds a parenthesis to one part."""
    said = []
    for key, count, verb, noun in doings:
        if count:
            note = (notes or {}).get(key)
            said.append(f"{verb} {plural(count, noun)}" + (f" ({note})" if note else ""))
    return "would " + ", ".join(said) if said else "would write nothing"


def would_counts(*doings: Doing) -> dict[str, int]:
    """The same doings as counts (JSON and the counts line), zeros left out as a real run's counts
    leave them out."""
    return {key: count for key, count, _, _ in doings if count}


class Plan(Protocol):
    def preview(self) -> Preview: ...


class SyncFlow(Protocol):
    """A flow module satisfies this structurally (module-level ``JOB``, ``pull``, ``plan``, ``push``;
    ``verify(ctx, plan)`` is optional, see the module docstring)."""

    JOB: str

    def pull(self, ctx: JobContext) -> Any: ...

    def plan(self, pulled: Any, config: Config, now: datetime) -> Plan: ...

    def push(self, ctx: JobContext, plan: Plan) -> JobResult: ...


def is_sync_flow(flow: object) -> bool:
    """True for an object (normally a module) with the three protocol steps."""
    return all(callable(getattr(flow, step, None)) for step in ("pull", "plan", "push"))
