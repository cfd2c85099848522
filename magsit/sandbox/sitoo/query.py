"""Query strings and pages: integer and comma-list arguments, range filters (from <= x < to),
``fields`` projection, ``sort``, and ``start``/``num`` paging with Sitoo's envelope (sitoo-api.md §2.2)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from flask import Response, request

from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.http import json_response
from magsit.sandbox.sitoo.state import SitooState


def int_arg(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def multi(name: str) -> list[str] | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def multi_int(name: str) -> list[int] | None:
    values = multi(name)
    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ApiError(400, f"{name} must be a comma-separated list of integers") from None


def in_range(value: Any, low: int | None, high: int | None) -> bool:
    """``*from`` is inclusive, ``*to`` exclusive: the reference documents this for
    warehousetransactionidfrom/to ("from ≥, to <"); the emulator applies it to every range filter."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


def project(rows: list[dict[str, Any]], default: Sequence[str] | None = None) -> list[dict[str, Any]]:
    fields = multi("fields") or (list(default) if default else None)
    if not fields:
        return rows
    return [{f: row[f] for f in fields if f in row} for row in rows]


def collection(
    state: SitooState,
    rows: list[dict[str, Any]],
    default_fields: Sequence[str] | None = None,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """One page of ``rows``; ``render`` (if given) turns the rows of that page into read models."""
    start = int_arg("start", 0) or 0
    num = int_arg("num", 10)
    if start < 0 or num is None or num < 0:
        raise ApiError(400, "start and num must be non-negative integers")
    cap = state.max_num
    if cap is not None:
        num = min(num, cap)
    page = rows[start : start + num]
    # Rendered rows are fresh objects already; stored rows are copied so the answer never aliases state.
    page = [render(row) for row in page] if render is not None else copy.deepcopy(page)
    return json_response({"totalcount": len(rows), "items": project(page, default_fields)})


def single(row: dict[str, Any]) -> Response:
    return json_response(project([copy.deepcopy(row)])[0])


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    sort = request.args.get("sort") or f"-{key}"
    if sort not in (key, f"-{key}"):
        raise ApiError(400, f"sort must be {key} or -{key}")
    return sorted(rows, key=lambda r: r[key], reverse=sort.startswith("-"))
