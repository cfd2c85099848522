"""Money for the reconciliation: every API number as an exact ``Decimal``, summed unrounded."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)


def dec(value: Any) -> Decimal:
    """Any API number (Magento JSON floats, Sitoo "123.50" strings) as an exact Decimal.

    ``str()`` first: ``Decimal(0.1)`` would carry the float's binary error into the sums.
    """
    if value is None or value == "" or isinstance(value, bool):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return ZERO


def money_sum(values: Iterable[Any]) -> Decimal:
    """Exact sum of API numbers (floats go through ``str``); never quantized on the way."""
    return sum((dec(v) for v in values), ZERO)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
