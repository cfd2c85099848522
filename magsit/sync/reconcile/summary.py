"""The summary section: the period's totals per side (web orders, VAT, refunds, POS)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.figures import sitoo_figures
from magsit.sync.reconcile.matching import SitooBooks
from magsit.sync.reconcile.money import cents, dec, money_sum
from magsit.sync.reconcile.snapshot import Snapshot


def _total(rows: Iterable[Any], pick: Callable[[Any], Decimal]) -> Decimal:
    return money_sum(pick(r) for r in rows)


def _row(figure: str, basis: str, m: Decimal | int | None, s: Decimal | int | None) -> dict[str, Any]:
    diff = None if m is None or s is None else s - m
    if isinstance(m, Decimal) or isinstance(s, Decimal):
        m = None if m is None else cents(Decimal(m))
        s = None if s is None else cents(Decimal(s))
        diff = None if diff is None else cents(Decimal(diff))
    return {"figure": figure, "basis": basis, "magento": m, "sitoo": s, "difference": diff}


def summary_rows(snapshot: Snapshot, books: SitooBooks, matched: int) -> list[dict[str, Any]]:
    mag_period = snapshot.magento_orders
    mag_web_gross = _total(mag_period, lambda o: dec(o.get("base_grand_total")))
    sitoo_web_gross = _total(books.web, lambda o: sitoo_figures(o).grand_total)
    mag_tax = _total(mag_period, lambda o: dec(o.get("base_tax_amount")))
    sitoo_tax = _total(books.web, lambda o: sitoo_figures(o).tax)
    mag_ref = _total(snapshot.magento_creditmemos, lambda r: dec(r.get("base_grand_total")))
    sitoo_ref = _total((r for rs in books.web_refunds.values() for r in rs), lambda r: -dec(r.get("moneytotal_gross_all")))
    invoiced = _total(snapshot.magento_invoices, lambda r: dec(r.get("base_grand_total")))
    pos_gross = _total(books.pos_sales, lambda o: dec(o.get("moneytotal_gross_all")))
    pos_net = _total(books.pos_sales, lambda o: dec(o.get("moneyfinal_net")))
    pos_ref = _total(books.pos_refunds, lambda o: -dec(o.get("moneytotal_gross_all")))
    return [
        _row("web orders (count)", "orders", len(mag_period), len(books.web)),
        _row("web orders matched", "orders", matched, matched),
        _row("web orders", "gross incl. VAT and shipping", mag_web_gross, sitoo_web_gross),
        _row("web orders VAT", "VAT", mag_tax, sitoo_tax),
        _row("web orders", "net excl. VAT", mag_web_gross - mag_tax, sitoo_web_gross - sitoo_tax),
        _row("refunds of web orders", "gross", mag_ref, sitoo_ref),
        _row("invoiced in Magento", "gross", invoiced, None),
        _row("POS sales", "gross", None, pos_gross),
        _row("POS sales", "net excl. VAT", None, pos_net),
        _row("POS refunds", "gross", None, pos_ref),
    ]
