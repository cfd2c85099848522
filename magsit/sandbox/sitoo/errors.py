"""Sitoo's error answer: an ``ApiError`` anywhere becomes ``{"statuscode": N, "errortext": "..."}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ApiError(Exception):
    """Answered as Sitoo's error body ``{"statuscode": N, "errortext": "..."}``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def found(rows: Mapping[K, V], key: K, what: str, status: int = 404) -> V:
    """``rows[key]``, or Sitoo's "<what> <key> not found": 404 for the resource a path names, 400 for
    an id inside a request body."""
    if key not in rows:
        raise ApiError(status, f"{what} {key} not found")
    return rows[key]


def error_body(status: int, text: str) -> bytes:
    return json.dumps({"statuscode": status, "errortext": text}).encode()
