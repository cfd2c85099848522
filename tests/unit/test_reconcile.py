"""The pure reconciliation: periods, matching, variances, Decimal sums (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from magsit.config import ReconcileSettings
from magsit.errors import ConfigError
from magsit.sync.reconcile.compute import reconcile
from magsit.sync.reconcile.money import money_sum
from magsit.sync.reconcile.period import period_for
from magsit.sync.reconcile.render import render_html, write_csv
from magsit.sync.reconcile.snapshot import Snapshot

SETTINGS = ReconcileSettings(timezone="Europe/Stockholm", tolerance=Decimal("0.01"), grace_days=3, top_drift=2)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def period():
    return period_for(SETTINGS, month="2026-10")


def mag(n, gross, tax="0", created="2026-10-05 10:00:00", state="processing", method="checkmo", **extra):
    return {"entity_id": n, "increment_id": f"{n:09d}", "created_at": created, "state": state, "status": state,
            "base_grand_total": gross, "base_tax_amount": tax, "base_shipping_incl_tax": 0, "base_discount_amount": 0,
            "payment": {"method": method}, **extra}  # fmt: skip


def sit(orderid, inc, gross, vat="0", when=datetime(2026, 10, 5, 10, tzinfo=UTC), **extra):
    return {"orderid": orderid, "externalid": inc, "orderdate": int(when.timestamp()), "orderstateid": 0,
            "moneytotal_gross_all": gross, "moneyfinal_vat": vat, "moneyfinal_net": "0", "warehouseid": 1,
            "additionaldata": {"weborder": "true"}, "orderitems": [], "payments": [], **extra}  # fmt: skip


def snap(m, s, **kw):
    return Snapshot(period=period(), now=NOW, magento_orders=m, sitoo_orders=s, warehouses={1: "Store"}, **kw)


def test_month_bounds_are_local_midnight_in_utc():
    p = period()
    assert (p.magento_from, p.magento_to) == ("2026-09-30 22:00:00", "2026-10-31 23:00:00")  # CEST -> CET inside October
    assert p.sitoo_from == int(datetime(2026, 9, 30, 22, tzinfo=UTC).timestamp())
    assert p.describe(3, NOW)["final"] is True
    assert p.describe(3, datetime(2026, 11, 3, tzinfo=UTC))["final"] is False


def test_from_to_inclusive_and_default_previous_month():
    p = period_for(SETTINGS, date_from="2026-10-01", date_to="2026-10-01")
    assert p.magento_to == "2026-10-01 22:00:00"
    assert period_for(SETTINGS, today=date(2026, 1, 5)).label == "2025-12"
    for bad in ({"month": "2026-13"}, {"date_from": "2026-10-02"}, {"date_from": "2026-10-02", "date_to": "2026-10-01"}):
        with pytest.raises(ConfigError):
            period_for(SETTINGS, **bad)
    with pytest.raises(ConfigError):
        period_for(ReconcileSettings(timezone="Mars/Base"), month="2026-10")


def test_ten_thousand_orders_sum_exactly():
    # JSON floats 0.1 on the Magento side, "0.10" strings on Sitoo's: float sums would drift.
    n = 10_000
    m = [mag(i, 0.1, tax=0.02) for i in range(1, n + 1)]
    s = [sit(100000 + i, f"{i:09d}", "0.10", vat="0.02") for i in range(1, n + 1)]
    assert sum(0.1 for _ in range(n)) != 1000.0  # the trap this guards against
    assert money_sum(o["base_grand_total"] for o in m) == Decimal("1000.0")  # exact, before any rounding
    assert money_sum(o["moneytotal_gross_all"] for o in s) == Decimal("1000.00")
    report = reconcile(snap(m, s), SETTINGS)
    assert report.variances == [] and report.matched == n
    gross = next(r for r in report.summary if r["figure"] == "web orders" and r["basis"].startswith("gross"))
    assert (gross["magento"], gross["sitoo"], gross["difference"]) == (Decimal("1000.00"), Decimal("1000.00"), Decimal("0.00"))
    assert str(gross["magento"]) == "1000.00"
    vat = next(r for r in report.summary if r["figure"] == "web orders VAT")
    assert vat["magento"] == Decimal("200.00")


def test_tolerance_is_inclusive_and_each_field_reported_once():
    m = [mag(1, 100, tax="20.00"), mag(2, 100, tax="20.00")]
    s = [sit(1, "000000001", "100.01", vat="20.00"), sit(2, "000000002", "100.02", vat="20.00")]
    report = reconcile(snap(m, s), SETTINGS)
    assert [(v["kind"], v["order"], v["difference"]) for v in report.variances] == [("grand_total", "000000002", Decimal("0.02"))]


def test_refunds_status_and_missing_sides():
    m = [
        mag(1, 100),
        mag(2, 100),
        mag(3, 100, state="canceled"),  # cancelled, never pushed: not a variance
        mag(4, 100),  # shipped in Sitoo, not in Magento
        mag(5, 100, state="canceled"),  # cancelled in Magento only
    ]
    s = [
        sit(1, "000000001", "100"),
        sit(2, "000000002", "100"),
        sit(4, "000000004", "100", orderstateid=10),
        sit(5, "000000005", "100"),
        sit(9, "000000009", "50"),  # no Magento order anywhere
        sit(20, None, "-40", creditorderid=1, registerid="R1", additionaldata={}),  # store return of web order 1
    ]
    memos = [{"entity_id": 1, "increment_id": "CM1", "order_id": 1, "base_grand_total": 50},
             {"entity_id": 2, "increment_id": "CM2", "order_id": 2, "base_grand_total": 30}]  # fmt: skip
    report = reconcile(snap(m, s, magento_creditmemos=memos), SETTINGS)
    got = sorted((v["kind"], v["order"], v["magento"], v["sitoo"]) for v in report.variances)
    assert got == [
        ("missing_in_magento", "000000009", None, Decimal("50.00")),
        ("refund_amount", "000000001", Decimal("50.00"), Decimal("40.00")),
        ("refund_only_magento", "000000002", Decimal("30.00"), None),
        ("status_cancelled", "000000005", None, None),
        ("status_shipped", "000000004", None, None),
    ]
    assert any("cancelled/unpaid" in n for n in report.notes)
    store = report.stores[0]
    assert store["pos_sales"] == 0 and store["web_refunds_gross"] == Decimal("40.00")


def test_mapping_wins_over_externalid_and_prefix_is_stripped():
    m = [mag(1, 100)]
    s = [sit(555, "WEB-000000001", "100")]
    mappings = {"000000001": {"other_id": "555", "status": "pushed", "data": {"externalid": "WEB-000000001"}}}
    report = reconcile(snap(m, s, mappings=mappings, externalid_prefix="WEB-"), SETTINGS)
    assert report.variances == [] and report.matched == 1
    report = reconcile(snap(m, s, externalid_prefix="WEB-"), SETTINGS)  # no mapping: prefix + increment id
    assert report.variances == [] and report.matched == 1


def test_shipping_in_fields_counts_as_paid_and_pos_sales_are_not_variances():
    m = [mag(1, "162.50", tax="32.50", base_shipping_incl_tax="62.50")]
    s = [
        sit(1, "000000001", "100.00", vat="20.00", additionaldata={"weborder": "true", "delivery-moneygross": "62.50", "delivery-vatvalue": "25"}),
        sit(2, None, "250.00", vat="50.00", registerid="R1", additionaldata={}, payments=[{"name": "Card", "moneyamount": "250.00"}]),
    ]
    report = reconcile(snap(m, s), SETTINGS)
    assert report.variances == []
    assert report.stores[0]["pos_sales_gross"] == Decimal("250.00")
    assert {(p["channel"], p["method"]): p["sitoo"] for p in report.payments}[("pos", "Card")] == Decimal("250.00")


def test_stock_drift_top_n_by_size_summed_per_source():
    stock = [
        {"warehouseid": 1, "sku": "A", "decimalavailable": "3.000"},
        {"warehouseid": 2, "sku": "A", "decimalavailable": "2.000"},  # same source: summed
        {"warehouseid": 1, "sku": "B", "decimalavailable": "1.000"},
        {"warehouseid": 1, "sku": "C", "decimalavailable": "9.000"},
    ]
    mstock = [{"sku": "A", "source_code": "main", "quantity": 5}, {"sku": "B", "source_code": "main", "quantity": 4},
              {"sku": "C", "source_code": "main", "quantity": 0}]  # fmt: skip
    report = reconcile(snap([], [], sitoo_stock=stock, magento_stock=mstock, stock_sources={"1": "main", "2": "main"}), SETTINGS)
    assert [(r["sku"], r["drift"]) for r in report.stock_drift] == [("C", Decimal("-9.000")), ("B", Decimal("3.000"))]


def test_late_arrivals_listed_not_counted():
    late = [sit(7, None, "80.00", when=datetime(2026, 9, 20, tzinfo=UTC), registerid="R1", additionaldata={})]
    report = reconcile(snap([], [], sitoo_late=late), SETTINGS)
    assert report.late_arrivals[0]["orderdate"] == "2026-09-20" and report.late_arrivals[0]["kind"] == "POS sale"
    assert report.variances == [] and report.stores == []


def test_csv_and_html_exports(tmp_path):
    report = reconcile(snap([mag(1, "10.10")], []), SETTINGS)
    files = write_csv(report, tmp_path)
    assert {f.name for f in files} >= {"variances.csv", "summary.csv", "daily.csv", "period.csv"}
    lines = (tmp_path / "variances.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("missing_in_sitoo,000000001,,grand_total,10.10,,,")
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page and "<link" not in page
