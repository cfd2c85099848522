"""The per-store section: POS sales and refunds, and the web orders each Sitoo warehouse fulfils."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.figures import SITOO_GONE, sitoo_figures
from magsit.sync.reconcile.matching import SitooBooks
from magsit.sync.reconcile.money import ZERO, cents, dec
from magsit.sync.reconcile.snapshot import Snapshot


class _Stores(dict[int, dict[str, Any]]):
    def __init__(self, names: dict[int, str]) -> None:
        super().__init__()
        self.names = names

    def of(self, wid: Any) -> dict[str, Any]:
        key = int(wid or 0)
        if key not in self:
            self[key] = {
                "warehouse_id": key or None,
                "store": self.names.get(key, "(no warehouse)" if not key else f"warehouse {key}"),
                "pos_sales": 0, "pos_sales_gross": ZERO, "pos_sales_net": ZERO, "pos_refunds": 0,
                "pos_refunds_gross": ZERO, "web_orders": 0, "web_orders_gross": ZERO, "web_refunds_gross": ZERO,
                "total_gross": ZERO,
            }  # fmt: skip
        return self[key]


def store_rows(snapshot: Snapshot, books: SitooBooks) -> list[dict[str, Any]]:
    stores = _Stores(snapshot.warehouses)
    for order in books.pos_sales:
        st = stores.of(order.get("warehouseid"))
        st["pos_sales"] += 1
        st["pos_sales_gross"] += dec(order.get("moneytotal_gross_all"))
        st["pos_sales_net"] += dec(order.get("moneyfinal_net"))
    for order in books.pos_refunds:
        st = stores.of(order.get("warehouseid"))
        st["pos_refunds"] += 1
        st["pos_refunds_gross"] += -dec(order.get("moneytotal_gross_all"))
    for order in books.web:
        if order.get("orderstateid") in SITOO_GONE:
            continue
        st = stores.of(order.get("warehouseid"))
        st["web_orders"] += 1
        st["web_orders_gross"] += sitoo_figures(order).grand_total
    for refunds in books.web_refunds.values():
        for order in refunds:
            stores.of(order.get("warehouseid"))["web_refunds_gross"] += -dec(order.get("moneytotal_gross_all"))
    for st in stores.values():
        st["total_gross"] = st["pos_sales_gross"] - st["pos_refunds_gross"] + st["web_orders_gross"] - st["web_refunds_gross"]
        for k, v in st.items():
            if isinstance(v, Decimal):
                st[k] = cents(v)
    return [stores[k] for k in sorted(stores)]
