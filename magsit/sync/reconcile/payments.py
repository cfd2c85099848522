"""The per-payment-method section: web orders per method on both sides, POS payments per method."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from magsit.sync.reconcile.figures import SITOO_GONE, additional, payment_names, sitoo_figures
from magsit.sync.reconcile.matching import Pair, SitooBooks
from magsit.sync.reconcile.money import ZERO, cents, dec


def payment_rows(pairs: list[Pair], books: SitooBooks) -> list[dict[str, Any]]:
    web_by_method: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO, ZERO])
    for _inc, m, s in pairs:
        if m is not None:
            method = str((m.get("payment") or {}).get("method") or "(none)")
            web_by_method[method][0] += 1
            web_by_method[method][1] += dec(m.get("base_grand_total"))
        if s is not None and s.get("orderstateid") not in SITOO_GONE:
            names = payment_names(s)
            if names:
                for name, amount in names:
                    web_by_method[name][2] += amount
            else:
                # push-orders sends no payments[] (the money was taken by the web shop); it tags the method.
                method = str(additional(s).get("payment-method") or "(none)")
                web_by_method[method][2] += sitoo_figures(s).grand_total
    pos_by_method: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO])
    for order in [*books.pos_sales, *books.pos_refunds]:
        for name, amount in payment_names(order):
            pos_by_method[name][0] += 1
            pos_by_method[name][1] += amount
    return [
        {"channel": "web", "method": k, "orders": v[0], "magento": cents(v[1]), "sitoo": cents(v[2]), "difference": cents(v[2] - v[1])}
        for k, v in sorted(web_by_method.items())
    ] + [
        {"channel": "pos", "method": k, "orders": v[0], "magento": None, "sitoo": cents(v[1]), "difference": None}
        for k, v in sorted(pos_by_method.items())
    ]
