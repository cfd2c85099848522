"""Seed the emulator states directly in Python (fast, no HTTP): one function per scenario.

The seeders write the emulators' in-memory state the way their own helpers do, but skip the
per-record bookkeeping that is irrelevant here (Sitoo stock transactions, events) so that 200,000
warehouse items take seconds, not minutes. Each returns the data sizes the minimum-call
arithmetic needs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from magsit.sandbox.magento import MagentoState
from magsit.sandbox.sitoo import SitooState

DAY = 86400


@dataclass
class Seeded:
    """What a scenario holds: sizes for the minimum-call formulas, config sections for magsit."""

    sizes: dict[str, int] = field(default_factory=dict)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    skus: list[str] = field(default_factory=list)  # SKUs a naive baseline walks
    orders: list[dict[str, Any]] = field(default_factory=list)  # {entity_id, increment_id}


def sku_name(n: int) -> str:
    return f"BK{n:06d}"


def _warehouses(magento: MagentoState, sitoo: SitooState, count: int) -> dict[str, str]:
    sources: dict[str, str] = {}
    for n in range(1, count + 1):
        code = f"store{n}"
        store = sitoo.add_store(f"Store {n}", externalid=code)
        wid = sitoo.add_warehouse(f"Store {n} stock", warehousetype=10, storeid=store, externalid=code)
        magento.add_source(code, f"Store {n}")
        sources[str(wid)] = code
    return sources


def _set_item(sitoo: SitooState, warehouseid: int, sku: str, total: int, modified: int) -> None:
    item = sitoo._item(warehouseid, sku)  # the emulator's own constructor of a warehouse item
    item["decimaltotal"] = Decimal(total)
    item["datelastmodified"] = modified


def seed_stock(
    magento: MagentoState, sitoo: SitooState, skus: int, warehouses: int, changed: float, seed: int = 1, negative: int = 0
) -> Seeded:
    """``skus`` products in Magento, stocked in ``warehouses`` Sitoo warehouses (one MSI source each).

    Magento's source items equal what magsit would write, except for ``changed`` (a fraction) of
    the (sku, warehouse) pairs. Every Sitoo item was last modified a day ago, so an incremental
    run right after a full one finds nothing new. ``negative`` pairs show a negative level in Sitoo
    (a ``negative_stock`` exception each, Magento shows 0 there already).
    """
    rng = random.Random(seed)
    sources = _warehouses(magento, sitoo, warehouses)
    old = int(time.time()) - DAY
    names = [sku_name(n) for n in range(1, skus + 1)]
    for sku in names:
        magento.add_product(sku, f"Product {sku}", 100.0)
    pairs = [(wid, sku) for wid in sources for sku in names]
    n_changed = int(round(len(pairs) * changed))
    drift = set(rng.sample(range(len(pairs)), n_changed)) if n_changed else set()
    below = set(rng.sample(sorted(set(range(len(pairs))) - drift), negative)) if negative else set()
    changed_skus: set[str] = set()
    for index, (wid, sku) in enumerate(pairs):
        qty = -rng.randrange(1, 4) if index in below else rng.randrange(0, 25)
        # Spread over the previous day, like real edits: an incremental read finds only the last second.
        _set_item(sitoo, int(wid), sku, qty, old + rng.randrange(0, DAY - 3600))
        shown = max(qty, 0)
        if index in drift:
            shown = qty + 1 + rng.randrange(0, 3)
            changed_skus.add(sku)
        magento.set_source_item(sku, sources[wid], shown)
    result = Seeded(skus=names)
    result.sizes = {
        "skus": skus,
        "warehouses": warehouses,
        "warehouse_items": len(pairs),
        "source_items": len(pairs),
        "changed_rows": n_changed,
        "changed_skus": len(changed_skus),
        "negative_items": len(below),
    }
    result.config = {"stock": {"sources": sources, "buffer": 0, "floor": 0}}
    return result


_ADDRESS = {
    "firstname": "Bench", "lastname": "Shopper", "street": ["Storgatan 1"], "city": "Stockholm",
    "postcode": "11122", "country_id": "SE", "telephone": "+46700000000",
}  # fmt: skip


def seed_orders(
    magento: MagentoState, sitoo: SitooState, orders: int, *, products: int = 300, members: int = 3000, seed: int = 2,
    created_at: str | None = None,
) -> Seeded:
    """``orders`` paid web orders in Magento (status processing), 1-3 lines each, from a pool of
    customers of whom about a third are already Sitoo members; the products exist on both sides."""
    rng = random.Random(seed)
    sources = _warehouses(magento, sitoo, 1)
    wid = int(next(iter(sources)))
    names = [f"WEB{n:05d}" for n in range(1, products + 1)]
    for sku in names:
        magento.add_product(sku, f"Web product {sku}", 80.0)
        sitoo.add_product(sku, f"Web product {sku}", "100.00")
        _set_item(sitoo, wid, sku, 10_000, int(time.time()) - DAY)
        magento.set_source_item(sku, sources[str(wid)], 10_000)
    customers = [f"customer{n}@example.se" for n in range(max(1, int(orders * 0.75)))]
    for n in range(members):
        sitoo.add_user(f"member{n}@example.se", "Member", str(n))
    for email in customers[::3]:
        sitoo.add_user(email, "Known", "Customer")
    result = Seeded()
    for _ in range(orders):
        lines = [(sku, rng.randrange(1, 3)) for sku in rng.sample(names, rng.randrange(1, 4))]
        placed = magento.place_order(
            items=lines, customer_email=rng.choice(customers), guest=True, shipping_amount=49,
            address=dict(_ADDRESS), created_at=created_at,
        )
        result.orders.append({"entity_id": placed["entity_id"], "increment_id": placed["increment_id"]})
    used = {o["customer_email"] for o in magento.orders.values()}
    known = {u["email"] for u in sitoo.users.values()}
    result.sizes = {
        "orders": orders,
        "new_emails": len(used - known),
        "order_skus": len({i["sku"] for o in magento.orders.values() for i in o["items"]}),
        "emails": len({o["customer_email"] for o in magento.orders.values()}),
        "sitoo_users": len(sitoo.users),
        "products": products,
    }
    result.config = {
        "stock": {"sources": sources},
        "orders": {"warehouse_id": wid, "statuses": ["processing"]},
    }
    return result


def seed_month(magento: MagentoState, sitoo: SitooState, orders: int, *, stock_skus: int = 1000, seed: int = 3) -> Seeded:
    """A closed month: ``orders`` web orders created in Magento during it and pushed to Sitoo
    (same figures, externalid = increment id), plus stock of ``stock_skus`` SKUs in one warehouse."""
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    today = datetime.now(UTC).date().replace(day=1)
    start = (today - timedelta(days=1)).replace(day=1)  # first day of last month
    month = start.strftime("%Y-%m")
    begin = datetime(start.year, start.month, 1, tzinfo=UTC)
    span = int((datetime(today.year, today.month, 1, tzinfo=UTC) - begin).total_seconds()) - 7200
    names = [f"MON{n:05d}" for n in range(1, 201)]
    seeded = seed_orders(magento, sitoo, 0, products=0, members=0, seed=seed)
    wid = int(seeded.config["orders"]["warehouse_id"])
    code = seeded.config["stock"]["sources"][str(wid)]
    for sku in names:
        magento.add_product(sku, f"Month product {sku}", 80.0)
        sitoo.add_product(sku, f"Month product {sku}", "100.00")
    for n in range(1, stock_skus + 1):
        sku = sku_name(n)
        qty = rng.randrange(0, 25)
        _set_item(sitoo, wid, sku, qty, int(begin.timestamp()))
        magento.set_source_item(sku, code, qty)
    magento.allow_backorders = True
    for _ in range(orders):
        at = begin + timedelta(seconds=3600 + rng.randrange(span))
        lines = [(sku, 1) for sku in rng.sample(names, rng.randrange(1, 3))]
        placed = magento.place_order(
            items=lines, customer_email=f"c{rng.randrange(5000)}@example.se", guest=True, shipping_amount=49,
            address=dict(_ADDRESS), created_at=at,
        )
        order = magento.orders[placed["entity_id"]]
        body = {
            "ordertypeid": 10,
            "orderdate": int(at.timestamp()),
            "orderstateid": 10,
            "paymentstateid": 30,
            "warehouseid": wid,
            "currencycode": "SEK",
            "email": order["customer_email"],
            "additionaldata": {"magento-increment-id": str(order["increment_id"])},
            "orderitems": [
                {"sku": i["sku"], "productname": i["name"], "quantity": int(i["qty_ordered"]), "moneyrowprice": f"{i['row_total_incl_tax']:.2f}",
                 "moneyitemprice": f"{i['price_incl_tax']:.2f}", "vatvalue": 25}
                for i in order["items"] if "parent_item_id" not in i
            ] + [{"sku": None, "productname": "Shipping", "quantity": 1, "moneyrowprice": f"{order['shipping_incl_tax']:.2f}",
                  "moneyitemprice": f"{order['shipping_incl_tax']:.2f}", "vatvalue": 25}],
        }  # fmt: skip
        sitoo.create_order({**body, "externalid": str(order["increment_id"])}, emit=False)
    def in_month(doc: dict[str, Any]) -> bool:
        return str(doc.get("created_at", "")).startswith(month)

    result = Seeded()
    result.sizes = {
        "orders": orders,
        "invoices": sum(1 for d in magento.invoices.values() if in_month(d)),
        "creditmemos": sum(1 for d in magento.creditmemos.values() if in_month(d)),
        "sitoo_orders": len(sitoo.orders),
        "stock_items": stock_skus,
        "warehouses": 1,
        "month": 0,
    }
    result.config = {
        "stock": {"sources": {str(wid): code}},
        "orders": {"warehouse_id": wid, "statuses": ["processing"]},
        "reconcile": {"timezone": "UTC"},
    }
    result.sizes["month"] = int(start.strftime("%Y%m"))
    result.config["_month"] = {"month": month}
    return result
