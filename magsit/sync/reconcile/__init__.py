"""reconcile: the month-end report, Sitoo transactions vs Magento orders, record by record.

The flow (pull -> plan -> push, see ``magsit.flow``):

pull  — ``fetch``: read-only, everything the report compares (both sides' orders of the period and
        their counterparts outside it, the late-arrival sweep, stock of the mapped warehouses).
plan  — ``compute.reconcile(snapshot, settings) -> Report``: pure; the plan of a report flow is
        the report itself. Each section has its module (below).
push  — writes the requested exports (``render``: CSV per section, HTML); ``JobResult.findings`` =
        number of variance rows, so the runner exits 3 when anything disagrees beyond ``tolerance``.

Modules: ``period`` (the local period and its UTC/epoch bounds), ``money``, ``snapshot``,
``figures`` (one order's figures per side, kinds of Sitoo orders), ``matching`` (Sitoo
transactions to Magento orders; the Sitoo books), ``variances`` (order and refund variances),
``summary``, ``stores``, ``payments``, ``stock`` (drift), ``days`` (late arrivals, daily totals),
``model`` (the Report and its sections), ``render`` (terminal, CSV, HTML).

Offline tills (pitfalls P11, sitoo-api §9): a till that was offline uploads its sales later but
keeps the transaction ``orderdate``. Decision: a sale is booked in the period of its ``orderdate``
(what the receipt, the Z-report and the customer see) — it is never moved into the month it
arrived in. Because the query is on ``orderdate``, a late upload *is* picked up by any run after it
arrived; the grace period (``grace_days``) says when a month is considered final. To make late
arrivals visible instead of silent, the report also sweeps by id (``orderidfrom`` = the first
Sitoo order id of the period, ``orderdateto`` = period start): orders created in Sitoo during the
period but dated before it are listed under "late arrivals" — sales of an earlier month that a
report of that month run before they arrived did not contain. They are not added to this period's
totals.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from magsit.config import Config
from magsit.flow import Preview
from magsit.runner import JobContext, JobResult
from magsit.sync.reconcile.compute import reconcile
from magsit.sync.reconcile.fetch import fetch
from magsit.sync.reconcile.model import Report
from magsit.sync.reconcile.period import period_from_options
from magsit.sync.reconcile.render import report_notes, write_exports
from magsit.sync.reconcile.snapshot import Snapshot

JOB = "reconcile"

__all__ = ["JOB", "ReconcilePlan", "period_from_options", "plan", "pull", "push"]


@dataclass
class ReconcilePlan:
    """The computed report and where the command asked for it to be written."""

    report: Report
    csv_dir: str | None = None
    html_path: str | None = None

    def result(self, exports: list[str]) -> JobResult:
        report = self.report
        period = report.period
        summary = [
            f"period {period['label']} ({period['from']} .. {period['to']}, {period['timezone']})"
            + ("" if period["final"] else f" — not final until {period['final_after'][:10]}"),
            f"{report.matched} web orders matched, {len(report.variances)} variance(s) beyond {report.tolerance}",
            *report_notes(report.as_dict()),  # the "not final" note is the line above
            *exports,
        ]
        counts = {"variances": len(report.variances), "matched": report.matched}
        return JobResult(counts=counts, summary=summary, details={"report": report.as_dict()}, findings=len(report.variances))

    def preview(self) -> Preview:
        """A dry run shows the whole report, as a real run does; it writes no file."""
        targets = [f"would write {where}" for where in (self.csv_dir and f"CSV files into {self.csv_dir}", self.html_path) if where]
        result = self.result(targets)
        return Preview(rows={}, summary=result.summary, counts=result.counts, details=result.details, findings=result.findings)


@dataclass
class Pulled:
    snapshot: Snapshot
    options: dict[str, Any]


def pull(ctx: JobContext) -> Pulled:
    period = period_from_options(ctx.config, ctx.options, ctx.started_at)
    return Pulled(fetch(ctx, period), dict(ctx.options))


def plan(pulled: Pulled, config: Config, now: datetime) -> ReconcilePlan:
    report = reconcile(dataclasses.replace(pulled.snapshot, now=now), config.reconcile)
    return ReconcilePlan(report, csv_dir=pulled.options.get("csv"), html_path=pulled.options.get("html"))


def push(ctx: JobContext, plan: ReconcilePlan) -> JobResult:
    written = write_exports(plan.report, csv_dir=plan.csv_dir, html_path=plan.html_path)
    return plan.result([f"wrote {path}" for path in written])
