"""Small flows (magsit.flow.SyncFlow) for tests of the machinery around them: runner, alerts,
status, daemon. A real flow lives in magsit/sync/."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from magsit.flow import Preview
from magsit.runner import JobContext, JobResult


class _Nothing:
    def preview(self) -> Preview:
        return Preview([])


def push_only(work: Callable[[JobContext], JobResult], job: str = "test") -> Any:
    """A flow whose whole work is its push (pull reads nothing, the plan is empty): a real run calls
    ``work(ctx)``, a dry run does not."""
    return SimpleNamespace(JOB=job, pull=lambda ctx: None, plan=lambda pulled, config, now: _Nothing(),
                           push=lambda ctx, plan: work(ctx))  # fmt: skip


def pull_only(read: Callable[[JobContext], Any], job: str = "test") -> Any:
    """A flow whose pull does ``read(ctx)`` (e.g. raises) and then has nothing to do."""
    return SimpleNamespace(JOB=job, pull=read, plan=lambda pulled, config, now: _Nothing(),
                           push=lambda ctx, plan: JobResult())  # fmt: skip
