"""Small typed pieces of Magento payloads and the number conversions at the JSON boundary.

Request bodies are built from these so only keys the schema declares are ever sent (an unknown key
is a masked HTTP 500 on Magento, P44). Money read from Magento is parsed to Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Number = int | float | Decimal


def to_number(value: Number | str) -> int | float:
    """JSON number for a quantity/amount: integral values as int (``3`` not ``3.0``), else float."""
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    if not dec.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return int(dec) if dec == dec.to_integral_value() else float(dec)


def to_decimal(value: Any) -> Decimal | None:
    """Magento money/qty (number or numeric string) -> Decimal; None for null/absent/garbage."""
    if value is None or isinstance(value, bool):
        return None
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return dec if dec.is_finite() else None


@dataclass(frozen=True)
class Track:
    """A shipment track: all three keys are required by ``sales-data-shipment-track-creation-interface``."""

    track_number: str
    title: str
    carrier_code: str = "custom"

    def to_json(self) -> dict[str, str]:
        if not self.track_number:
            raise ValueError("a track needs a track_number (Magento: 'Please enter a tracking number.')")
        return {"track_number": self.track_number, "title": self.title or self.carrier_code, "carrier_code": self.carrier_code}

    @classmethod
    def coerce(cls, value: Track | Mapping[str, Any]) -> Track:
        if isinstance(value, Track):
            return value
        unknown = set(value) - {"track_number", "title", "carrier_code"}
        if unknown:
            raise ValueError(f"unknown track keys {sorted(unknown)} (Magento answers unknown keys with HTTP 500)")
        return cls(str(value["track_number"]), str(value.get("title") or ""), str(value.get("carrier_code") or "custom"))


ItemQuantities = Mapping[int, Number] | Iterable[tuple[int, Number]] | Iterable[Mapping[str, Any]]


def item_lines(items: ItemQuantities) -> list[dict[str, int | float]]:
    """``{order_item_id: qty}``, ``[(id, qty)]`` or ``[{"order_item_id", "qty"}]`` -> creation items.

    Zero quantities are dropped (Magento rejects them); ids are the *parent* order_item_id (P18).
    """
    pairs: list[tuple[Any, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for entry in items:
            if isinstance(entry, Mapping):
                unknown = set(entry) - {"order_item_id", "qty"}
                if unknown:
                    raise ValueError(f"unknown item keys {sorted(unknown)} (only order_item_id and qty)")
                pairs.append((entry["order_item_id"], entry["qty"]))
            else:
                order_item_id, qty = entry
                pairs.append((order_item_id, qty))
    lines = []
    for order_item_id, qty in pairs:
        number = to_number(qty)
        if number < 0:
            raise ValueError(f"negative quantity {qty} for order item {order_item_id}")
        if number:
            lines.append({"order_item_id": int(order_item_id), "qty": number})
    return lines


# Keys declared by customer-data-customer-interface (admin schema 2.4.7).
CUSTOMER_KEYS = frozenset(
    {
        "id", "group_id", "default_billing", "default_shipping", "confirmation", "created_at", "updated_at",
        "created_in", "dob", "email", "firstname", "lastname", "middlename", "prefix", "suffix", "gender",
        "store_id", "taxvat", "website_id", "addresses", "disable_auto_group_change", "extension_attributes",
        "custom_attributes",
    }
)  # fmt: skip

# Keys declared by catalog-data-product-interface.
PRODUCT_KEYS = frozenset(
    {
        "id", "sku", "name", "attribute_set_id", "price", "status", "visibility", "type_id", "created_at",
        "updated_at", "weight", "extension_attributes", "product_links", "options", "media_gallery_entries",
        "tier_prices", "custom_attributes",
    }
)  # fmt: skip

SOURCE_ITEM_KEYS = frozenset({"sku", "source_code", "quantity", "status"})
PRICE_KEYS = frozenset({"price", "store_id", "sku"})


def check_keys(what: str, row: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(row) - allowed
    if unknown:
        raise ValueError(f"{what}: keys {sorted(unknown)} are not in the Magento API (it answers them with HTTP 500)")


def jsonable(value: Any) -> Any:
    """Decimals anywhere in a body -> JSON numbers (requests' json encoder refuses Decimal)."""
    if isinstance(value, Decimal):
        return to_number(value)
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
