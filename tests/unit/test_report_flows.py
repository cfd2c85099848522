"""reconcile and audit on the flow protocol: their plan is the report, so a dry run returns what the
real run does (details, findings, exit 3) and writes nothing; the real run writes the files."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from magsit.flow import Preview, is_sync_flow
from magsit.runner import JobResult, run_job
from magsit.sync import audit, reconcile
from magsit.sync.audit.kinds import finding
from magsit.sync.reconcile import ReconcilePlan
from magsit.sync.reconcile.compute import reconcile as compute_report
from magsit.sync.reconcile.period import period_for
from magsit.sync.reconcile.snapshot import Snapshot
from tests.unit.test_reconcile import SETTINGS, mag, sit
from tests.unit.test_runner import make_config

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_both_are_protocol_flows_without_a_legacy_run():
    assert is_sync_flow(reconcile) and is_sync_flow(audit)
    assert not hasattr(reconcile, "run") and not hasattr(audit, "run")


def report_plan(tmp_path) -> ReconcilePlan:
    period = period_for(SETTINGS, month="2026-10")
    snapshot = Snapshot(period=period, now=NOW, magento_orders=[mag(100, 50)], sitoo_orders=[sit(1, "000000100", "40.00")])
    return ReconcilePlan(compute_report(snapshot, SETTINGS), csv_dir=str(tmp_path / "csv"), html_path=str(tmp_path / "r.html"))


def test_reconcile_preview_is_the_report_and_names_the_files_it_would_write(tmp_path):
    preview = report_plan(tmp_path).preview()
    assert preview.findings == 1 and preview.counts == {"variances": 1, "matched": 1}
    assert preview.details["report"]["variances"][0]["kind"] == "grand_total"
    assert f"would write CSV files into {tmp_path / 'csv'}" in preview.summary
    assert f"would write {tmp_path / 'r.html'}" in preview.summary
    assert not (tmp_path / "csv").exists() and not (tmp_path / "r.html").exists()


def test_reconcile_push_writes_the_files_and_says_so(tmp_path):
    plan = report_plan(tmp_path)
    result = reconcile.push(SimpleNamespace(), plan)
    assert (tmp_path / "r.html").is_file() and (tmp_path / "csv" / "variances.csv").is_file()
    assert f"wrote {tmp_path / 'r.html'}" in result.summary and result.findings == 1
    # the dry run's report is the real run's, line for line apart from would write / wrote
    assert [s for s in plan.preview().summary if "write" not in s] == [s for s in result.summary if "wrote" not in s]


def test_audit_preview_is_the_findings():
    found = [finding("sku_missing_in_sitoo", "A", "m"), finding("price_mismatch", "B", "m", magento={"price": Decimal(1)})]
    plan = audit.AuditPlan(found, {"magento_products": 2, "sitoo_products": 1})
    preview, result = plan.preview(), audit.push(SimpleNamespace(), plan)
    assert (preview.details, preview.findings, preview.summary) == (result.details, result.findings, result.summary)
    assert preview.counts == result.counts == {"findings": 2, "magento_products": 2, "sitoo_products": 1}


def test_dry_run_of_a_report_flow_keeps_details_and_exits_3(tmp_path):
    config = make_config(tmp_path)
    pushed = []
    preview = Preview(rows={}, summary=["1 finding"], details={"findings": [{"key": "A"}]}, findings=1)
    flow = SimpleNamespace(
        JOB="audit",
        pull=lambda ctx: None,
        plan=lambda pulled, config, now: SimpleNamespace(preview=lambda: preview),
        push=lambda ctx, plan: pushed.append(plan) or JobResult(),
    )
    outcome = run_job(config, "audit", flow, dry_run=True)
    assert pushed == [] and outcome.exit_code == 3 and outcome.status == "ok"
    assert outcome.result.details == {"findings": [{"key": "A"}]} and outcome.result.summary == ["1 finding"]
