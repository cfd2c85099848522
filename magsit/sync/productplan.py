"""sync-products planning: Sitoo product master data -> the Magento changes needed. Pure, no I/O.

Sitoo is the master for sku, name (title), base price, status, barcode and tax class. Only
fields that differ from what Magento has are written; products missing in Magento are reported
(or created when ``create_missing``). Bad data from either side becomes a Problem, never a crash.

Prices: Sitoo's ``moneyprice`` is gross (VAT included). Magento's catalogue prices exclude tax by
default, so unless ``[products].magento_prices_include_tax`` the base price is
gross / (1 + vatvalue/100), rounded half-up to cents (``magento_price``), and Magento's current
price is compared with it at cent precision (no endless re-writes from rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from magsit.config import ProductSettings
from magsit.sync.stockplan import Problem, printable, sku_problem

MONEY = Decimal("0.01")
MAX_PRICE = Decimal("999999999999.99")  # catalog price columns are DECIMAL(20,6); be conservative


@dataclass
class ProductChange:
    sku: str
    action: str  # "update" | "create"
    product: dict[str, Any]  # body of {"product": …} without price (prices go through base-prices)
    price: Decimal | None  # new base price (store 0), None = unchanged
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {"from", "to"} for people

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "action": self.action,
            "changes": {k: {"from": _show(v["from"]), "to": _show(v["to"])} for k, v in self.changes.items()},
        }


@dataclass
class ProductPlan:
    changes: list[ProductChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # SKUs already right in Magento
    seen: list[str] = field(default_factory=list)  # SKUs planned without a record-level problem
    clean_tax: list[str] = field(default_factory=list)  # SKUs whose vatid is mapped (resolves old tax exceptions)
    clean_price: list[str] = field(default_factory=list)  # SKUs whose Magento price is already right (resolves price exceptions)


def _show(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def price_key(sku: str) -> str:
    return f"{sku} (price)"


def tax_key(sku: str) -> str:
    return f"{sku} (tax class)"


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def desired_status(product: Mapping[str, Any], status_from: str) -> int:
    """Magento status: 1 enabled, 2 disabled."""
    if status_from == "active":
        enabled = _flag(product.get("active"))
    elif status_from == "both":
        enabled = _flag(product.get("activepos")) and _flag(product.get("active"))
    else:
        enabled = _flag(product.get("activepos"))
    return 1 if enabled else 2


def parse_money(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(str(raw))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not value.is_finite() or value < 0 or value > MAX_PRICE:
        return None
    return value.quantize(MONEY, rounding=ROUND_HALF_UP)


def vat_rate(raw: Any) -> Decimal | None:
    """Sitoo's read-only ``vatvalue`` (percent, e.g. 25) -> Decimal; None when missing or unusable."""
    if raw is None or isinstance(raw, bool) or raw == "":
        return None
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(str(raw))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return value if value.is_finite() and 0 <= value <= 100 else None


def magento_price(gross: Decimal, vat_percent: Decimal | None, includes_tax: bool) -> Decimal | None:
    """The Magento base price for Sitoo's gross price: as is when Magento's prices include tax,
    else net = gross / (1 + VAT %) rounded half-up to cents. None when the VAT rate is unknown
    (guessing one would publish a wrong price)."""
    if includes_tax:
        return gross.quantize(MONEY, rounding=ROUND_HALF_UP)
    if vat_percent is None:
        return None
    return (gross / (1 + vat_percent / 100)).quantize(MONEY, rounding=ROUND_HALF_UP)


def custom_attribute(product: Mapping[str, Any], code: str) -> Any:
    for attr in product.get("custom_attributes") or []:
        if isinstance(attr, Mapping) and attr.get("attribute_code") == code:
            return attr.get("value")
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def plan(
    sitoo_products: list[Mapping[str, Any]],
    magento_products: Mapping[str, Mapping[str, Any]],
    settings: ProductSettings,
    website_id: int = 1,
) -> ProductPlan:
    """``magento_products`` is keyed by lower-cased SKU (Magento matches SKUs case-insensitively)."""
    result = ProductPlan()
    seen: set[str] = set()
    for product in sitoo_products:
        try:
            _plan_one(product, magento_products, settings, website_id, result, seen)
        except Exception as exc:  # one record's data must never crash the plan
            sku = product.get("sku") if isinstance(product, Mapping) else None
            result.problems.append(
                Problem(
                    "bad_product_data",
                    "ecommerce",
                    printable(sku),
                    f"product {printable(sku)} from Sitoo could not be read ({type(exc).__name__}); nothing written for it",
                )
            )
    return result


def _plan_one(
    product: Mapping[str, Any],
    magento_products: Mapping[str, Mapping[str, Any]],
    settings: ProductSettings,
    website_id: int,
    result: ProductPlan,
    seen: set[str],
) -> None:
    sku = product.get("sku")
    why = sku_problem(sku)
    if why:
        result.problems.append(
            Problem(
                "invalid_sku",
                "ecommerce",
                printable(sku),
                f"Sitoo product {product.get('productid')} has SKU {printable(sku)!r} that Magento cannot take: {why}. "
                "Fix the SKU in Sitoo.",
                {"sku": printable(sku), "productid": str(product.get("productid"))},
            )
        )
        return
    assert isinstance(sku, str)
    if sku.lower() in seen:  # a variant listed twice, or two SKUs differing only in case (P17)
        result.problems.append(
            Problem(
                "duplicate_sku",
                "ecommerce",
                sku,
                f"SKU {sku} appears more than once in Sitoo (Magento compares SKUs without case); only the first was used.",
                {"sku": sku},
            )
        )
        return
    seen.add(sku.lower())
    price = None
    no_rate = False  # a gross price Magento's price cannot be derived from
    if product.get("moneyprice") not in (None, ""):
        price = parse_money(product.get("moneyprice"))
        if price is None:
            result.problems.append(
                Problem(
                    "bad_product_data",
                    "ecommerce",
                    sku,
                    f"Sitoo price {str(product.get('moneyprice'))[:30]!r} of SKU {sku} is not a usable price; "
                    "nothing written for this product. Fix the price in Sitoo.",
                    {"sku": sku, "moneyprice": str(product.get("moneyprice"))[:30]},
                )
            )
            return
    if price is not None:
        gross = price
        price = magento_price(gross, vat_rate(product.get("vatvalue")), settings.magento_prices_include_tax)
        if price is None:
            no_rate = True
            # Sitoo's VAT groups (vatid) have no fixed rate we could rely on: ask, do not guess.
            # The price stays as it is in Magento; the other fields still sync.
            result.problems.append(
                Problem(
                    "missing_vat_rate",
                    "ecommerce",
                    price_key(sku),
                    f"SKU {sku}: Sitoo sent no usable VAT rate (vatvalue {str(product.get('vatvalue'))[:20]!r}, VAT group "
                    f"{str(product.get('vatid'))[:20]!r}), so its gross price {gross} cannot be turned into Magento's net "
                    "price; the Magento price was left as it is. Check the product's VAT group in Sitoo.",
                    {"sku": sku, "moneyprice": str(gross), "vatid": _text(product.get("vatid"))[:20]},
                )
            )
    name = _text(product.get("title")).strip()
    status = desired_status(product, settings.status_from)
    attrs: dict[str, str] = {}
    if settings.barcode_attribute:
        attrs[settings.barcode_attribute] = _text(product.get("barcode")).strip()
    if settings.tax_classes:  # no mapping configured = tax classes are not synced at all
        vatid = product.get("vatid")
        tax_class = settings.tax_classes.get(_text(vatid))
        if tax_class is None:
            result.problems.append(
                Problem(
                    "unmapped_tax_class",
                    "ecommerce",
                    tax_key(sku),
                    f"SKU {sku} has Sitoo VAT group (vatid) {vatid!r}, which [products].tax_classes does not map to a "
                    "Magento tax class; the tax class was left as it is. Add the vatid to [products].tax_classes.",
                    {"sku": sku, "vatid": _text(vatid)},
                )
            )
        else:
            attrs["tax_class_id"] = str(tax_class)
            result.clean_tax.append(sku)

    current = magento_products.get(sku.lower())
    if current is None:
        if not settings.create_missing:
            result.problems.append(
                Problem(
                    "product_missing_in_magento",
                    "ecommerce",
                    sku,
                    f"SKU {sku} ({name or 'no title'}) exists in Sitoo but not in Magento. Create it in Magento "
                    "(or set [products].create_missing = true to let magsit create it).",
                    {"sku": sku, "title": name},
                )
            )
            return
        if no_rate:
            return  # never create a product at price 0: missing_vat_rate is reported, a later run creates it
        body: dict[str, Any] = {
            "sku": sku,
            "name": name or sku,
            "attribute_set_id": settings.attribute_set_id,
            "status": status,
            "type_id": "simple",
            "visibility": 4,
            "price": float(price) if price is not None else 0,
            "extension_attributes": {"website_ids": [website_id]},
        }
        if attrs:
            body["custom_attributes"] = [{"attribute_code": k, "value": v} for k, v in attrs.items()]
        changes = {"product": {"from": None, "to": name or sku}}
        result.changes.append(ProductChange(sku, "create", body, None, changes))
        result.seen.append(sku)
        return

    magento_sku = str(current.get("sku") or sku)
    body = {"sku": magento_sku}
    changes: dict[str, dict[str, Any]] = {}
    if name and name != _text(current.get("name")):
        body["name"] = name
        changes["name"] = {"from": current.get("name"), "to": name}
    try:
        current_status = int(current.get("status"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        current_status = None
    if current_status != status:
        body["status"] = status
        changes["status"] = {"from": current.get("status"), "to": status}
    changed_attrs = []
    for code, value in attrs.items():
        have = _text(custom_attribute(current, code))
        if have != value and not (code == "tax_class_id" and _same_number(have, value)):
            changed_attrs.append({"attribute_code": code, "value": value})
            changes[code] = {"from": have or None, "to": value}
    if changed_attrs:
        body["custom_attributes"] = changed_attrs
    new_price = None
    if price is not None:
        have_price = parse_money(current.get("price"))  # at cent precision, like the target
        if have_price != price:
            new_price = price
            changes["price"] = {"from": have_price, "to": price}
        else:
            result.clean_price.append(sku)
    result.seen.append(sku)
    if not changes:
        result.unchanged.append(sku)
        return
    result.changes.append(ProductChange(magento_sku, "update", body if len(body) > 1 else {}, new_price, changes))


def _same_number(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except (InvalidOperation, ValueError):
        return False
