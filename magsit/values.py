"""Lenient conversions of values the APIs sent (they may be null, text, floats or Infinity)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

T = TypeVar("T")


def plain(value: Decimal) -> str:
    """A Decimal as people write it: ``20``, not ``2E+1`` (what str() gives after some arithmetic)."""
    text = str(value)
    return format(value, "f") if "E" in text else text


def as_int(value: Any) -> int | None:
    """An id, epoch or count as int; None for anything that is not one (None, "abc", True,
    Decimal('Infinity'), NaN) instead of an exception that would stop a whole run."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def additional_data(record: dict[str, Any]) -> dict[str, Any]:
    """A Sitoo record's ``additionaldata`` map; {} when it is missing or not a map."""
    data = record.get("additionaldata")
    return data if isinstance(data, dict) else {}


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (the last may be shorter)."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]
