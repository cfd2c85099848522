"""The emulated shop in memory: catalog, inventory, customers; orders and documents come from mixins."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from magsit.sandbox.magento.documents import DocumentsMixin
from magsit.sandbox.magento.sales import OrdersMixin
from magsit.sandbox.magento.values import num


class TrackedDict(dict):  # type: ignore[type-arg]
    """A dict whose ``version`` changes whenever a key is added or removed (values may change in place)."""

    version = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self:
            self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.version += 1
        return super().pop(key, *default)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.version += 1
        return super().setdefault(key, default)





def utc_now() -> datetime:
    return datetime.now(UTC)


class MagentoState(OrdersMixin, DocumentsMixin):
    """All data of one emulated shop, in memory. Every access goes through ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Config knobs (tests change them directly).
        self.token = "sandbox-token"
        self.oauth = {
            "consumer_key": "sandbox-consumer-key",
            "consumer_secret": "sandbox-consumer-secret",
            "access_token": "sandbox-access-token",
            "access_token_secret": "sandbox-access-token-secret",
        }
        self.bearer_enabled = True
        # A default Apache refuses any path holding %2F (SKUs with "/" in /V1/products/{sku}); True =
        # a web server set to AllowEncodedSlashes NoDecode (magento-api.md §13).
        self.allow_encoded_slashes = False
        # Web API input limits (magento-api.md §5.1): always on in 2.4.3/2.3.7-p1, a store setting
        # since (off by default there). On here: pageSize > 300 refused, > 20 objects per body array
        # refused, pageSize omitted = 20 — the strictest shop magsit must work with.
        self.input_limits = True
        self.list_limit = 20
        self.max_page_size = 300
        self.default_page_size = 20
        self.store_codes: set[str] = {"default"}
        self.websites: dict[int, str] = {1: "base"}
        self.currency = "SEK"
        # Stores > Configuration > Sales > Tax > Orders, Invoices, Credit Memos Display Settings >
        # Display Shipping Amount: Magento's default is "Excluding Tax"; "Including Tax"/"Both" make
        # a credit memo's arguments.shipping_amount gross (Creditmemo/Total/Shipping.php, §11).
        self.shipping_display_incl_tax = False
        self.allow_backorders = False  # source deduction may not go below 0 (MSI SourceDeductionService)
        self.clock: Callable[[], datetime] = utc_now
        # Data.
        self.sources: dict[str, dict[str, Any]] = {}
        self.stock_sources: dict[int, list[str]] = {1: []}
        self.products: dict[str, dict[str, Any]] = {}  # sku -> stored (global) product
        self.store_overrides: dict[str, dict[str, dict[str, Any]]] = {}  # store code -> sku -> attr -> value
        self.source_items: dict[tuple[str, str], dict[str, Any]] = TrackedDict()  # (source_code, sku.lower()) -> item
        # Order of source-item keys for the last search on sku/source_code only (big catalogues are
        # paged hundreds of times with the same criteria): (signature, keys).
        self.source_item_order: tuple[Any, list[tuple[str, str]]] | None = None
        self.reservations: list[dict[str, Any]] = []
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        self.emails_sent: list[dict[str, Any]] = []
        self.nonces: set[str] = set()
        self._ids: dict[str, int] = {}
        # Per order item: how much of a refund was taken from the unshipped part, and where shipped.
        self._item_meta: dict[int, dict[str, Any]] = {}
        self.add_source("default", "Default Source")

    # -- helpers ------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    def now(self) -> str:
        """UTC ``YYYY-MM-DD HH:MM:SS`` like every Magento timestamp (§8)."""
        moment = self.clock()
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def store_ids(self) -> dict[str, int]:
        codes = ["default"] + sorted(c for c in self.store_codes if c != "default")
        return {code: i + 1 for i, code in enumerate(codes)}

    def find_product(self, sku: str) -> dict[str, Any] | None:
        """SKU lookups are case-insensitive (MySQL collation, §6.3)."""
        with self.lock:
            if sku in self.products:
                return self.products[sku]
            low = sku.lower()
            return next((p for s, p in self.products.items() if s.lower() == low), None)

    def product_by_id(self, product_id: int) -> dict[str, Any] | None:
        return next((p for p in self.products.values() if p["id"] == product_id), None)

    # -- catalog ------------------------------------------------------------------------------
    def add_source(self, code: str, name: str | None = None, enabled: bool = True, stock_id: int = 1) -> dict[str, Any]:
        with self.lock:
            src = {
                "source_code": code,
                "name": name or code,
                "enabled": bool(enabled),
                "country_id": "SE",
                "postcode": "11122",
                "use_default_carrier_config": True,
            }
            self.sources[code] = src
            links = self.stock_sources.setdefault(stock_id, [])
            if code not in links:
                links.append(code)
            return src

    def add_product(
        self,
        sku: str,
        name: str,
        price: float,
        type_id: str = "simple",
        status: int = 1,
        tax_class_id: int = 2,
        website_ids: Iterable[int] = (1,),
        custom_attributes: dict[str, Any] | None = None,
        children: Iterable[str] | None = None,
        visibility: int = 4,
    ) -> int:
        with self.lock:
            attrs = {"tax_class_id": str(tax_class_id)}
            attrs.update({k: v for k, v in (custom_attributes or {}).items()})
            product = self.new_product(sku, {"name": name, "price": price, "type_id": type_id, "status": status, "visibility": visibility})
            product["extension_attributes"]["website_ids"] = [int(w) for w in website_ids]
            product["custom_attributes"] = [{"attribute_code": k, "value": v} for k, v in attrs.items()]
            if children:
                ids = []
                for child in children:
                    kid = self.find_product(child)
                    if kid is None:
                        raise KeyError(f"child sku {child!r} does not exist")
                    ids.append(kid["id"])
                product["extension_attributes"]["configurable_product_links"] = ids
            return int(product["id"])

    def new_product(self, sku: str, data: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        product: dict[str, Any] = {
            "id": self.next_id("product"),
            "sku": sku,
            "name": data.get("name") or sku,
            "attribute_set_id": int(data.get("attribute_set_id") or 4),
            "price": num(data.get("price") or 0),
            "status": int(data.get("status") or 1),
            "visibility": int(data.get("visibility") or 4),
            "type_id": data.get("type_id") or "simple",
            "created_at": now,
            "updated_at": now,
            "extension_attributes": {"website_ids": [1], "category_links": []},
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            "custom_attributes": [],
        }
        if data.get("weight") is not None:
            product["weight"] = num(data["weight"])
        self.products[sku] = product
        return product

    def render_product(self, product: dict[str, Any], store: str) -> dict[str, Any]:
        out = copy.deepcopy(product)
        for key, value in self.store_overrides.get(store, {}).get(product["sku"], {}).items():
            if key in out or key in ("name", "status", "visibility"):
                out[key] = value
            else:
                set_custom_attribute(out, key, value)
        ext = out["extension_attributes"]
        if out["type_id"] == "configurable":
            ext.setdefault("configurable_product_links", [])
        else:
            ext.pop("configurable_product_links", None)
            item = self.source_items.get(("default", product["sku"].lower()))
            ext["stock_item"] = self.stock_item(product, item)
        return out

    def stock_item(self, product: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        qty = item["quantity"] if item else 0
        return {
            "item_id": product["id"], "product_id": product["id"], "stock_id": 1, "qty": num(qty),
            "is_in_stock": bool(item and item["status"] == 1), "is_qty_decimal": False,
            "show_default_notification_message": False, "use_config_min_qty": True, "min_qty": 0,
            "use_config_min_sale_qty": 1, "min_sale_qty": 1, "use_config_max_sale_qty": True, "max_sale_qty": 10000,
            "use_config_backorders": True, "backorders": 0, "use_config_notify_stock_qty": True, "notify_stock_qty": 1,
            "use_config_qty_increments": True, "qty_increments": 0, "use_config_enable_qty_inc": True,
            "enable_qty_increments": False, "use_config_manage_stock": True, "manage_stock": True, "low_stock_date": None,
            "is_decimal_divided": False, "stock_status_changed_auto": 0,
        }  # fmt: skip

    # -- inventory ----------------------------------------------------------------------------
    def set_source_item(self, sku: str, source_code: str, quantity: float, status: int | None = None) -> dict[str, Any]:
        """Hand edit on the Magento side (admin grid): no validation, unknown SKUs become orphans."""
        with self.lock:
            if source_code not in self.sources:
                raise KeyError(f"unknown source {source_code!r}")
            if status is None:
                status = 1 if float(quantity) > 0 else 0
            key = (source_code, sku.lower())
            existing = self.source_items.get(key)
            item = {"sku": existing["sku"] if existing else sku, "source_code": source_code, "quantity": num(quantity), "status": int(status)}
            self.source_items[key] = item
            return item

    def source_quantity(self, sku: str, source_code: str) -> float:
        with self.lock:
            item = self.source_items.get((source_code, sku.lower()))
            return float(item["quantity"]) if item else 0.0

    def orphan_source_items(self) -> list[dict[str, Any]]:
        """Source items whose SKU is no product (saved silently by MSI, §6.3)."""
        with self.lock:
            return [dict(i) for i in self.source_items.values() if self.find_product(i["sku"]) is None]

    def salable_qty(self, sku: str, stock_id: int = 1) -> float:
        """Sum of in-stock quantities of the stock's enabled sources + reservations (§6.4)."""
        with self.lock:
            codes = [c for c in self.stock_sources.get(stock_id, []) if self.sources.get(c, {}).get("enabled")]
            low = sku.lower()
            qty = sum(
                float(i["quantity"])
                for (code, s), i in self.source_items.items()
                if s == low and code in codes and i["status"] == 1
            )
            if qty <= 0:
                # The stock index marks the SKU not salable: the answer is 0, whatever is reserved.
                return 0.0
            qty += sum(float(r["quantity"]) for r in self.reservations if r["sku"].lower() == low and r["stock_id"] == stock_id)
            return qty

    def reserve(self, sku: str, quantity: float, event: str, order_id: int) -> None:
        self.reservations.append(
            {
                "reservation_id": self.next_id("reservation"),
                "stock_id": 1,
                "sku": sku,
                "quantity": num(quantity),
                "metadata": {"event_type": event, "object_type": "order", "object_id": str(order_id)},
            }
        )

    # -- customers ----------------------------------------------------------------------------
    def find_customer(self, email: str, website_id: int | None = None) -> dict[str, Any] | None:
        low = email.strip().lower()
        for c in self.customers.values():
            if c["email"].lower() == low and (website_id is None or int(c["website_id"]) == int(website_id)):
                return c
        return None

    def add_customer(self, email: str, firstname: str, lastname: str, website_id: int = 1, **extra: Any) -> int:
        with self.lock:
            now = self.now()
            cid = self.next_id("customer")
            customer: dict[str, Any] = {
                "id": cid,
                "group_id": 1,
                "created_at": now,
                "updated_at": now,
                "created_in": "Default Store View",
                "email": email,
                "firstname": firstname,
                "lastname": lastname,
                "store_id": 1,
                "website_id": int(website_id),
                "addresses": [],
                "disable_auto_group_change": 0,
                "extension_attributes": {"is_subscribed": False},
            }
            addresses = extra.pop("addresses", None)
            customer.update(extra)
            self.customers[cid] = customer
            if addresses:
                self.set_addresses(customer, addresses)
            return cid

    def set_addresses(self, customer: dict[str, Any], addresses: list[dict[str, Any]]) -> None:
        """Replace the address set (unlisted addresses are deleted, §12)."""
        out = []
        customer.pop("default_billing", None)
        customer.pop("default_shipping", None)
        for address in addresses:
            a = dict(address)
            a["id"] = int(a.get("id") or self.next_id("address"))
            a["customer_id"] = customer["id"]
            if a.get("default_billing"):
                customer["default_billing"] = str(a["id"])
            if a.get("default_shipping"):
                customer["default_shipping"] = str(a["id"])
            out.append(a)
        customer["addresses"] = out



    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "products": len(self.products),
                "sources": len(self.sources),
                "source_items": len(self.source_items),
                "orphan_source_items": len(self.orphan_source_items()),
                "reservations": len(self.reservations),
                "customers": len(self.customers),
                "orders": len(self.orders),
                "invoices": len(self.invoices),
                "shipments": len(self.shipments),
                "creditmemos": len(self.creditmemos),
                "emails_sent": len(self.emails_sent),
                "store_overrides": {code: sorted(skus) for code, skus in self.store_overrides.items()},
            }


def set_custom_attribute(product: dict[str, Any], code: str, value: Any) -> None:
    for attr in product["custom_attributes"]:
        if attr["attribute_code"] == code:
            attr["value"] = value
            return
    product["custom_attributes"].append({"attribute_code": code, "value": value})


def custom_attribute(product: dict[str, Any], code: str) -> Any:
    return next((a["value"] for a in product.get("custom_attributes", []) if a["attribute_code"] == code), None)
