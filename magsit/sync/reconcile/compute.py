"""``reconcile(snapshot, settings) -> Report``: the whole report from one snapshot, pure.

No I/O and no clock (the snapshot carries ``now``); every figure is a ``Decimal`` summed exactly.
Each section is computed by its own module; this one puts them together and writes the notes.
"""

from __future__ import annotations

from magsit.config import ReconcileSettings
from magsit.sync.reconcile.days import daily_totals, late_arrivals
from magsit.sync.reconcile.matching import Index, pair_web_orders, sitoo_books
from magsit.sync.reconcile.model import Report
from magsit.sync.reconcile.payments import payment_rows
from magsit.sync.reconcile.snapshot import Snapshot
from magsit.sync.reconcile.stock import stock_drift
from magsit.sync.reconcile.stores import store_rows
from magsit.sync.reconcile.summary import summary_rows
from magsit.sync.reconcile.variances import compare_orders, compare_refunds


def _header(snapshot: Snapshot, settings: ReconcileSettings) -> Report:
    report = Report(period=snapshot.period.describe(settings.grace_days, snapshot.now), tolerance=settings.tolerance)
    # The accounting currency the figures are in (Magento base_*, Sitoo's order currency): named on
    # the report, since finance may run several shops.
    currencies = {str(o.get("base_currency_code")) for o in snapshot.magento_orders if o.get("base_currency_code")}
    currencies |= {str(o.get("currencycode")) for o in snapshot.sitoo_orders if o.get("currencycode")}
    report.period["currency"] = ", ".join(sorted(currencies)) or None
    if not report.period["final"]:
        report.notes.append(
            f"Not final yet: offline tills may still upload sales of this period until "
            f"{report.period['final_after']} ({settings.grace_days} days grace). Run again after that to sign off."
        )
    return report


def reconcile(snapshot: Snapshot, settings: ReconcileSettings) -> Report:
    report = _header(snapshot, settings)
    index = Index.build(snapshot)
    pairs = pair_web_orders(index)
    books = sitoo_books(index)

    orders = compare_orders(pairs, snapshot.mappings, settings.tolerance)
    report.matched = orders.matched
    report.variances = sorted(
        orders.variances + compare_refunds(index, books, settings.tolerance), key=lambda v: (v["kind"], v["order"])
    )
    report.summary = summary_rows(snapshot, books, report.matched)
    if orders.not_for_sitoo:
        report.notes.append(
            f"{orders.not_for_sitoo} Magento order(s) in the period are cancelled/unpaid and were never sent to Sitoo; not variances."
        )
    report.stores = store_rows(snapshot, books)
    report.payments = payment_rows(pairs, books)
    if snapshot.stock_read:
        drift = stock_drift(snapshot)
        report.stock_drift = drift[: settings.top_drift]
        if len(drift) > settings.top_drift:
            report.notes.append(f"stock drift: {len(drift)} SKU/source pairs differ; the largest {settings.top_drift} are shown")
    report.late_arrivals = late_arrivals(snapshot)
    if report.late_arrivals:
        report.notes.append(
            f"{len(report.late_arrivals)} Sitoo order(s) dated before this period reached Sitoo during it "
            "(offline tills); they belong to the earlier period — re-run that period if it was signed off before."
        )
    report.daily = daily_totals(snapshot, books)
    return report
