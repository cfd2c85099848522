"""A small, realistic retailer for the demo and the sandbox: "Nordlys Outdoor".

Three stores (Stockholm, Göteborg, Malmö), each with its own Sitoo warehouse and till and a
Magento MSI source; about 200 SKUs, configurable jackets with sizes, SKUs with ``/`` and ``+``;
customers on both sides (some the same person with differently written e-mails); web orders
(a configurable line, a guest, click & collect, one with a web-only SKU) and POS sales, one of them
the last unit of a SKU the web shop still shows in stock.

Prices: Sitoo holds gross prices (VAT included, the Nordic norm); the Magento catalogue holds net
prices (Magento's default "catalog prices exclude tax") at 25 % VAT: gross = net × 1.25.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from magsit.sandbox.magento import MagentoState
from magsit.sandbox.sitoo import SitooState

STORES = [
    # (name, Magento source code, in-store pickup location code)
    ("Nordlys Stockholm", "sthlm", "sthlm-store"),
    ("Nordlys Göteborg", "gbg", "gbg-store"),
    ("Nordlys Malmö", "malmo", "malmo-store"),
]
VAT = Decimal("1.25")

CATEGORIES = [
    ("TEE", "Merino T-shirt", 345),
    ("SOCK", "Hiking socks", 145),
    ("CAP", "Wool cap", 245),
    ("BOTL", "Steel bottle", 295),
    ("LAMP", "Head lamp", 495),
    ("PANT", "Trekking pants", 995),
]
JACKETS = ["Fjäll", "Storm", "Kust", "Ljung", "Myr", "Tall", "Vind", "Sjö", "Berg", "Dal"]
SIZES = ["S", "M", "L", "XL"]
SPECIAL_SKUS = [("NL-GLOVE-A/B", "Glove pair A/B", 295), ("NL-MAP+1", "Map + compass", 195), ("NL-SOCK-3/PK", "Socks 3-pack", 345)]
FIRST = ["Anna", "Erik", "Maja", "Lars", "Sara", "Johan", "Elin", "Karl", "Ida", "Nils", "Frida", "Oskar"]
LAST = ["Berg", "Lind", "Holm", "Sjöberg", "Ek", "Dahl", "Strand", "Nyström"]


@dataclass
class DemoShop:
    """What was seeded, for the demo's narration and for scenario steps."""

    warehouses: dict[str, int] = field(default_factory=dict)  # source code -> Sitoo warehouse id
    registers: dict[str, str] = field(default_factory=dict)  # source code -> Sitoo register id
    pickup_locations: dict[str, int] = field(default_factory=dict)  # pickup location code -> warehouse id
    skus: list[str] = field(default_factory=list)
    jacket_parents: list[str] = field(default_factory=list)
    web_only_sku: str = "NL-GIFTCARD-WEB"
    last_unit_sku: str = ""
    web_orders: list[dict[str, Any]] = field(default_factory=list)
    pos_orders: list[int] = field(default_factory=list)
    customers_magento: int = 0
    customers_sitoo: int = 0

    @property
    def stock_sources(self) -> dict[str, str]:
        return {str(wid): code for code, wid in self.warehouses.items()}


def _net(gross: int | Decimal) -> float:
    return float((Decimal(gross) / VAT).quantize(Decimal("0.01")))


def seed(magento: MagentoState, sitoo: SitooState, *, seed_value: int = 7) -> DemoShop:
    rng = random.Random(seed_value)
    shop = DemoShop()

    for name, code, pickup in STORES:
        store_id = sitoo.add_store(name, externalid=code)
        warehouse = sitoo.add_warehouse(f"{name} lager", warehousetype=10, storeid=store_id, externalid=code)
        shop.warehouses[code] = warehouse
        shop.registers[code] = sitoo.add_register(store_id, warehouse, f"{name} kassa 1")
        shop.pickup_locations[pickup] = warehouse
        magento.add_source(code, name)

    def product(sku: str, title: str, gross: int, *, parent: int | None = None, magento_too: bool = True) -> int:
        pid = sitoo.add_product(sku, title, f"{gross}.00", vatid=2, barcode=f"73{rng.randrange(10**10, 10**11)}", variantparentid=parent)
        if magento_too:
            magento.add_product(sku, title, _net(gross), custom_attributes={"ean": ""})
        shop.skus.append(sku)
        return pid

    for code, title, gross in CATEGORIES:
        for n in range(1, 26):
            product(f"NL-{code}-{n:03d}", f"{title} {n:02d}", gross + 10 * (n % 5))
    for sku, title, gross in SPECIAL_SKUS:
        product(sku, title, gross)
    for n, name in enumerate(JACKETS, start=1):
        parent_sku = f"NL-JKT-{n:02d}"
        gross = 1995 + 200 * (n % 4)
        children = [f"{parent_sku}-{size}" for size in SIZES]
        parent_id = None
        for child in children:
            pid = product(child, f"{name} jacket {child[-1:] if child[-2] == '-' else child[-2:]}", gross, parent=parent_id)
            parent_id = parent_id or pid
        magento.add_product(parent_sku, f"{name} jacket", _net(gross), type_id="configurable", children=children)
        shop.jacket_parents.append(parent_sku)
    # A web-only product: exists in Magento, not in Sitoo (push-orders will raise it to e-commerce).
    magento.add_product(shop.web_only_sku, "Gift card (web only)", _net(500))

    # Stock: Sitoo is the truth. Magento's source items are yesterday's numbers, so the first
    # sync-stock has something to correct.
    for sku in shop.skus:
        for code, warehouse in shop.warehouses.items():
            total = rng.choice([0, 1, 2, 3, 5, 8, 12, 20])
            if total:
                sitoo.set_stock(warehouse, sku, total)
            stale = max(0, total + rng.choice([-2, -1, 0, 0, 0, 1]))
            magento.set_source_item(sku, code, stale)
    shop.last_unit_sku = "NL-LAMP-003"
    sitoo.set_stock(shop.warehouses["sthlm"], shop.last_unit_sku, 1)
    magento.set_source_item(shop.last_unit_sku, "sthlm", 1)

    # Customers: 24 web accounts; 12 POS members, 6 of whom are the same people (e-mail written differently).
    people = [(FIRST[i % len(FIRST)], LAST[i % len(LAST)]) for i in range(24)]
    for i, (first, last) in enumerate(people):
        magento.add_customer(f"{first}.{last}{i}@example.se".lower(), first, last)
    shop.customers_magento = len(people)
    for i, (first, last) in enumerate(people[:6]):
        sitoo.add_user(f"  {first}.{last}{i}@Example.SE ", first, last)
    for i in range(6):
        sitoo.add_user(f"member{i}@nordlys.example", FIRST[(i + 5) % len(FIRST)], "Medlem")
    shop.customers_sitoo = 12

    # Web orders (Magento), all paid (invoiced) and ready to push.
    emails = [f"{first}.{last}{i}@example.se".lower() for i, (first, last) in enumerate(people)]
    order_specs: list[dict[str, Any]] = [
        {"items": [("NL-TEE-001", 2), ("NL-SOCK-004", 1)], "customer_email": emails[0], "shipping_amount": 49},
        {"items": [{"sku": "NL-JKT-02-M", "qty": 1, "parent_sku": "NL-JKT-02"}], "customer_email": emails[1], "shipping_amount": 0},
        {"items": [("NL-GLOVE-A/B", 1), ("NL-MAP+1", 1)], "customer_email": emails[2], "shipping_amount": 49},
        {"items": [("NL-BOTL-010", 1)], "guest": True, "customer_email": "guest.shopper@example.net", "shipping_amount": 49},
        {"items": [("NL-CAP-007", 1), ("NL-TEE-012", 1)], "customer_email": emails[3], "pickup_location_code": "gbg-store",
         "shipping_method": "instore_pickup"},
        {"items": [("NL-PANT-005", 1), ("NL-SOCK-3/PK", 2)], "customer_email": emails[4], "shipping_amount": 0},
        {"items": [(shop.web_only_sku, 1), ("NL-TEE-003", 1)], "customer_email": emails[5], "shipping_amount": 49},
        {"items": [("NL-LAMP-010", 1)], "customer_email": emails[6], "shipping_amount": 49},
    ]
    address = {
        "firstname": "", "lastname": "", "street": ["Storgatan 1"], "city": "Stockholm", "postcode": "11122",
        "country_id": "SE", "telephone": "+46700000000",
    }
    for spec in order_specs:
        spec.setdefault("address", dict(address))
        shop.web_orders.append(magento.place_order(**spec))

    # POS sales in the stores today, including the last unit of a lamp the web shop still shows.
    for code, register in shop.registers.items():
        for _ in range(4):
            sku = rng.choice(shop.skus[:150])
            if sitoo.item(shop.warehouses[code], sku)["decimalavailable"] > 0:
                shop.pos_orders.append(sitoo.pos_sale(register, [(sku, 1)]))
    shop.pos_orders.append(sitoo.pos_sale(shop.registers["sthlm"], [(shop.last_unit_sku, 1)], payment="Swish"))
    return shop


def demo_config(shop: DemoShop) -> dict[str, dict[str, Any]]:
    """Config sections (besides credentials and URLs) that fit the seeded shop."""
    return {
        "stock": {"sources": shop.stock_sources, "buffer": 0, "floor": 0},
        "orders": {
            "warehouse_id": shop.warehouses["sthlm"],
            "pickup_location_warehouses": dict(shop.pickup_locations),
            "statuses": ["processing"],
        },
        "products": {"tax_classes": {"2": 2}},
        "customers": {"create_in_magento": True},
        "reconcile": {"timezone": "Europe/Stockholm"},
    }
