"""Variances: order by order, what the two sides booked differently beyond the tolerance.

Every row is built by ``variance(kind, …)``; its kinds are finance's, documented in
docs/finance.md (tests/unit/test_docs.py reads them from these calls).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.figures import (
    MAGENTO_DONE,
    NOT_FOR_SITOO,
    SITOO_CANCELLED,
    SITOO_CLOSED,
    magento_figures,
    sitoo_figures,
    state_name,
)
from magsit.sync.reconcile.matching import Index, Order, Pair, SitooBooks
from magsit.sync.reconcile.money import ZERO, cents, dec, money_sum


def variance(kind: str, inc: str, m: Order | None, s: Order | None, fld: str,
             mv: Decimal | None, sv: Decimal | None, note: str) -> dict[str, Any]:  # fmt: skip
    return {
        "kind": kind,
        "order": inc,
        "sitoo_orderid": None if s is None else s.get("orderid"),
        "field": fld,
        "magento": None if mv is None else cents(mv),
        "sitoo": None if sv is None else cents(sv),
        "difference": None if mv is None or sv is None else cents(sv - mv),
        "magento_status": None if m is None else m.get("status") or m.get("state"),
        "sitoo_state": None if s is None else state_name(s.get("orderstateid")),
        "note": note,
    }


@dataclass
class OrderComparison:
    variances: list[dict[str, Any]] = field(default_factory=list)
    matched: int = 0  # web orders found on both sides
    not_for_sitoo: int = 0  # cancelled/unpaid Magento orders never sent to Sitoo: no variance


def _missing(inc: str, m: Order | None, s: Order | None, mappings: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if m is not None and s is None:
        mapping = mappings.get(inc)
        note = "the web order never reached Sitoo: operations can see why in magsit's exception list"
        if mapping:
            note = (f"magsit recorded the order as {mapping.get('status')} but Sitoo has no such order: "
                    "operations can see why in magsit's exception list")  # fmt: skip
        return variance("missing_in_sitoo", inc, m, None, "grand_total", magento_figures(m).grand_total, None, note)
    if m is None and s is not None:
        return variance("missing_in_magento", inc, None, s, "grand_total", None, sitoo_figures(s).grand_total,
                        "Sitoo has a web order whose Magento order does not exist (wrong externalid prefix, deleted or test order)")  # fmt: skip
    return None


def _matched(inc: str, m: Order, s: Order, tolerance: Decimal) -> list[dict[str, Any]]:
    """The figures and the states of an order both sides have."""
    out = []
    mf, sf = magento_figures(m), sitoo_figures(s)
    for fld, hint in (
        ("grand_total", "what the customer paid differs"),
        ("tax", "VAT differs: rounding per line vs per order, or a different VAT rate on the product in Sitoo"),
        ("shipping", "shipping booked differently (line vs delivery fields) or not sent"),
        ("discount", "discount differs: a web promotion not carried to Sitoo"),
    ):
        mv, sv = getattr(mf, fld), getattr(sf, fld)
        if abs(sv - mv) > tolerance:
            out.append(variance(fld, inc, m, s, fld, mv, sv, hint))
    state, sstate = str(m.get("state")), s.get("orderstateid")
    if sstate == SITOO_CLOSED and state not in MAGENTO_DONE and state != "canceled":
        out.append(variance("status_shipped", inc, m, s, "status", None, None,
                   "closed (delivered/collected) in Sitoo but not complete in Magento: the shipment has not reached the web shop yet, or it failed"))  # fmt: skip
    if (sstate == SITOO_CANCELLED) != (state == "canceled"):
        side = "Sitoo" if sstate == SITOO_CANCELLED else "Magento"
        out.append(variance("status_cancelled", inc, m, s, "status", None, None,
                   f"cancelled in {side} only: the money may be kept on one side and refunded on the other"))  # fmt: skip
    return out


def compare_orders(pairs: list[Pair], mappings: dict[str, dict[str, Any]], tolerance: Decimal) -> OrderComparison:
    result = OrderComparison()
    for inc, m, s in pairs:
        if m is not None and s is None and str(m.get("state")) in NOT_FOR_SITOO:
            result.not_for_sitoo += 1
        elif m is None or s is None:
            row = _missing(inc, m, s, mappings)
            if row is not None:
                result.variances.append(row)
        else:
            result.matched += 1
            result.variances += _matched(inc, m, s, tolerance)
    return result


def magento_refunds(index: Index) -> dict[str, list[Order]]:
    """The period's credit memos by the increment id of their order."""
    out: dict[str, list[Order]] = defaultdict(list)
    for memo in index.snapshot.magento_creditmemos:
        order = index.mag_by_id.get(int(memo.get("order_id") or 0))
        inc = str(order.get("increment_id")) if order else f"order_id {memo.get('order_id')}"
        out[inc].append(memo)
    return dict(out)


def compare_refunds(index: Index, books: SitooBooks, tolerance: Decimal) -> list[dict[str, Any]]:
    """Refunds of web orders (Magento credit memos vs Sitoo refund orders), per original order."""
    mag_refunds, sitoo_refunds = magento_refunds(index), books.web_refunds
    out = []
    for inc in sorted(set(mag_refunds) | set(sitoo_refunds)):
        m_sum = money_sum(r.get("base_grand_total") for r in mag_refunds.get(inc, []))
        s_sum = sum((-dec(r.get("moneytotal_gross_all")) for r in sitoo_refunds.get(inc, [])), ZERO)
        m, s = index.mag_by_inc.get(inc), index.counterpart(inc)
        memos = ", ".join(str(r.get("increment_id")) for r in mag_refunds.get(inc, []))
        refs = ", ".join(str(r.get("orderid")) for r in sitoo_refunds.get(inc, []))
        if inc in mag_refunds and inc not in sitoo_refunds:
            out.append(variance("refund_only_magento", inc, m, s, "refund", m_sum, None,
                       f"credit memo {memos} has no Sitoo refund order: refunded online only, or the refund has not been passed to Sitoo yet"))  # fmt: skip
        elif inc in sitoo_refunds and inc not in mag_refunds:
            out.append(variance("refund_only_sitoo", inc, m, s, "refund", None, s_sum,
                       f"Sitoo refund order {refs} (return in store) has no Magento credit memo yet"))  # fmt: skip
        elif abs(s_sum - m_sum) > tolerance:
            out.append(variance("refund_amount", inc, m, s, "refund", m_sum, s_sum,
                       f"credit memo {memos} vs Sitoo refund {refs}: shipping or an adjustment refunded on one side only"))  # fmt: skip
    return out
