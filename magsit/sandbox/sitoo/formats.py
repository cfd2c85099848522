"""Sitoo's string formats (money with two decimals, decimals with three) and the warehouse-item
read model built from the stored Decimal values."""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from magsit.sandbox.sitoo.constants import CENT, MILLI


def money(value: Any) -> str:
    """Sitoo money: a string with two decimals."""
    return _quantized(value, CENT) if type(value) in _CACHEABLE else _quantize(value, CENT)


def dec3(value: Any) -> str:
    """Sitoo decimal: a string with three decimals."""
    return _quantized(value, MILLI) if type(value) in _CACHEABLE else _quantize(value, MILLI)


# Warehouse item fields as GET warehouseitems renders them (render_item), one function each.
_ITEM_VIEW: dict[str, Callable[[dict[str, Any]], Any]] = {
    "warehouseitemid": lambda it: it["warehouseitemid"],
    "warehouseid": lambda it: it["warehouseid"],
    "sku": lambda it: it["sku"],
    "binlocation": lambda it: it["binlocation"],
    "decimalthreshold": lambda it: dec3(it["decimalthreshold"]),
    "decimaltotal": lambda it: dec3(it["decimaltotal"]),
    "moneytotal": lambda it: money(it["moneytotal"]),
    "datelastmodified": lambda it: it["datelastmodified"],
    "datelaststocktaking": lambda it: it["datelaststocktaking"],
    "decimalreserved": lambda it: dec3(it["decimalreserved"]),
    "decimalavailable": lambda it: dec3(it["decimaltotal"] - it["decimalreserved"]),
}


def item_renderer(fields: Collection[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """render_item for a fields= read: only those fields are computed (only the page is rendered,
    but a --full stock read renders 1000-item pages 200 times)."""
    views = [(name, _ITEM_VIEW[name]) for name in fields if name in _ITEM_VIEW]
    return lambda it: {name: view(it) for name, view in views}


def render_item(it: dict[str, Any]) -> dict[str, Any]:
    """A warehouse item as GET warehouseitems answers it, every field."""
    return {name: view(it) for name, view in _ITEM_VIEW.items()}


def _quantize(value: Any, exp: Decimal) -> str:
    return str(Decimal(str(value)).quantize(exp, rounding=ROUND_HALF_UP))


# A page of 1,000 warehouse items renders 5,000 amounts with few distinct values: each is formatted
# once. typed=True keeps 1, 1.0 and Decimal("1") apart (equal keys of one type format alike).
_CACHEABLE = {Decimal, int, str}
_quantized = lru_cache(maxsize=16384, typed=True)(_quantize)
