"""How the audit compares values across the two systems (pure): SKU and e-mail spellings, prices,
dates, what counts as active/sellable on each side."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
SELLABLE_TYPES = frozenset({"simple", "virtual"})  # configurable/bundle/grouped parents are not stock items
MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"

_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def sku_key(sku: str) -> str:
    """The spelling-insensitive form of a SKU: no whitespace, case-folded, ``_`` as ``-``, no
    leading zeros in any digit run (``" ab_007 "`` and ``"AB-7"`` meet)."""
    text = "".join(str(sku).split()).casefold().replace("_", "-")
    return _LEADING_ZEROS.sub("", text)


def email_key(email: str) -> str:
    return str(email).strip().casefold()


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def plain(number: Decimal) -> Decimal:
    """``20.000`` / ``2E+1`` -> ``20``: quantities as people write them (no exponent, no zeros)."""
    return Decimal(format(number.normalize(), "f"))


def gross(net: Decimal, vat_percent: Decimal) -> Decimal:
    return (net * (1 + vat_percent / 100)).quantize(CENT, rounding=ROUND_HALF_UP)


def custom_attribute(product: Mapping[str, Any], code: str) -> Any:
    for attribute in product.get("custom_attributes") or []:
        if isinstance(attribute, Mapping) and attribute.get("attribute_code") == code:
            return attribute.get("value")
    return None


def parse_magento_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text.strip():
        return None
    raw = text.strip()
    for fmt in (MAGENTO_TIME, "%Y-%m-%d"):
        try:
            return datetime.strptime(raw[: len("2000-01-01 00:00:00")] if fmt == MAGENTO_TIME else raw[:10], fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def active_special_price(product: Mapping[str, Any], now: datetime) -> Decimal | None:
    """The special price Magento applies now: ``special_from_date <= now``, and ``special_to_date``
    counts as the whole day (Magento compares dates, not times)."""
    price = decimal_or_none(custom_attribute(product, "special_price"))
    if price is None:
        return None
    start = parse_magento_time(custom_attribute(product, "special_from_date"))
    end = parse_magento_time(custom_attribute(product, "special_to_date"))
    if start is not None and now < start:
        return None
    if end is not None and now >= end.replace(hour=0, minute=0, second=0) + timedelta(days=1):
        return None
    return price


def sitoo_is_active(product: Mapping[str, Any], status_from: str) -> bool:
    pos, web = product.get("activepos") is not False, product.get("active") is not False
    if status_from == "active":
        return web
    if status_from == "both":
        return pos and web
    return pos


def _website_ids(product: Mapping[str, Any]) -> list[int]:
    ids = (product.get("extension_attributes") or {}).get("website_ids") or []
    out = []
    for value in ids:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


def magento_is_sellable(product: Mapping[str, Any], website_id: int) -> bool:
    try:
        enabled = int(product.get("status") or 0) == 1
    except (TypeError, ValueError):
        enabled = False
    return enabled and product.get("type_id") in SELLABLE_TYPES and website_id in _website_ids(product)


def sku_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
