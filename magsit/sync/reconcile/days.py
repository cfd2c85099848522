"""The dated sections: late arrivals (offline tills, pitfalls P11) and the daily totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.figures import is_web_order, sitoo_figures
from magsit.sync.reconcile.matching import SitooBooks
from magsit.sync.reconcile.money import ZERO, cents, dec
from magsit.sync.reconcile.snapshot import Snapshot


def late_arrivals(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Sitoo orders created during the period but dated before it: listed, never added to its totals."""
    out = []
    for order in sorted(snapshot.sitoo_late, key=lambda o: int(o["orderid"])):
        day = snapshot.period.local_date_of_epoch(order.get("orderdate"))
        kind = "web order" if is_web_order(order) else ("refund" if order.get("creditorderid") else "POS sale")
        out.append(
            {
                "orderid": order.get("orderid"),
                "orderdate": day.isoformat() if day else None,
                "store": snapshot.warehouses.get(int(order.get("warehouseid") or 0), str(order.get("warehouseid") or "")),
                "kind": kind,
                "gross": cents(dec(order.get("moneytotal_gross_all"))),
            }
        )
    return out


def daily_totals(snapshot: Snapshot, books: SitooBooks) -> list[dict[str, Any]]:
    """Gross per local day and side: Magento web orders, Sitoo web orders, Sitoo POS (net of refunds)."""
    period = snapshot.period
    daily = {d: {"date": d.isoformat(), "magento_web": ZERO, "sitoo_web": ZERO, "sitoo_pos": ZERO} for d in period.days()}
    for order in snapshot.magento_orders:
        d = period.local_date_of_magento(order.get("created_at"))
        if d in daily:
            daily[d]["magento_web"] += dec(order.get("base_grand_total"))
    for order in books.web:
        d = period.local_date_of_epoch(order.get("orderdate"))
        if d in daily:
            daily[d]["sitoo_web"] += sitoo_figures(order).grand_total
    for order in [*books.pos_sales, *books.pos_refunds]:
        d = period.local_date_of_epoch(order.get("orderdate"))
        if d in daily:
            daily[d]["sitoo_pos"] += dec(order.get("moneytotal_gross_all"))
    return [{k: cents(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in daily.values()]
