"""How the emulator writes numbers: money rounded like Magento, integral quantities as ints."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def money(value: Any) -> float:
    return float(Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def num(value: Any) -> int | float:
    """Integral numbers as ints so that JSON reads like Magento's (``"quantity": 1000``)."""
    f = float(value)
    return int(f) if f.is_integer() else f
