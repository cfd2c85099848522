"""audit: a read-only health check of both catalogues, the orders between them and the state file.

The most common reason web orders fail to reach the stores is product data that does not match
between Magento and Sitoo. ``magsit audit`` finds those gaps before they break an order.

The flow (pull -> plan -> push, see ``magsit.flow``):

pull  — ``fetch``: reads everything it compares, read-only (products, sources/warehouses and
        their stock, recent orders on both sides, customers, the state file's mappings).
plan  — ``compute.audit(snapshot, config) -> list[Finding]``: pure, property-tested; one module
        per check area: ``catalogue`` (missing SKUs, near-miss spellings), ``prices`` (prices,
        tax classes), ``sources``, ``stock``, ``orders``, ``customers``, ``refunds`` (shipping of
        credit memos).
push  — findings are the result (``JobResult.findings`` -> exit 3), not exception rows: an audit
        is a report, it does not open or resolve anyone's exceptions. The command writes the
        CSV/HTML files.

Every finding carries its kind, owner, record key, both sides' values and the fix in words. Kinds,
owners and fixes live in ``kinds.KINDS`` and are documented in docs/runbook.md ("audit findings").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from magsit.config import Config
from magsit.flow import Preview
from magsit.runner import JobContext, JobResult
from magsit.sync.audit.compute import audit, summarise
from magsit.sync.audit.fetch import fetch
from magsit.sync.audit.kinds import Finding
from magsit.sync.audit.snapshot import AuditSnapshot

JOB = "audit"

__all__ = ["JOB", "AuditPlan", "plan", "pull", "push"]


@dataclass
class AuditPlan:
    """The audit's findings (the plan of a report flow is the report)."""

    findings: list[Finding]
    counts: dict[str, int] = field(default_factory=dict)

    def result(self) -> JobResult:
        summary = summarise(self.findings)
        found = len(self.findings)
        kinds = ", ".join(f"{r['kind']} {r['count']}" for r in summary["by_kind"])
        lines = [f"{found} finding(s)" + (f": {kinds}" if found else "; both sides agree")]
        return JobResult(
            counts={"findings": found, **self.counts},
            summary=lines,
            details={"summary": summary, "findings": [f.as_row() for f in self.findings]},
            findings=found,
        )

    def preview(self) -> Preview:
        """A dry run shows every finding, as a real run does (an audit writes nothing either way)."""
        result = self.result()
        return Preview(rows={}, summary=result.summary, counts=result.counts, details=result.details, findings=result.findings)


def pull(ctx: JobContext) -> AuditSnapshot:
    return fetch(ctx)


def plan(pulled: AuditSnapshot, config: Config, now: datetime) -> AuditPlan:
    findings = audit(dataclasses.replace(pulled, now=now), config)
    counts = {"magento_products": len(pulled.magento_products), "sitoo_products": len(pulled.sitoo_products)}
    return AuditPlan(findings, counts)


def push(ctx: JobContext, plan: AuditPlan) -> JobResult:
    return plan.result()


