"""Sitoo's error answer: an ``ApiError`` anywhere becomes ``{"statuscode": N, "errortext": "..."}``."""

from __future__ import annotations

import json


class ApiError(Exception):
    """Answered as Sitoo's error body ``{"statuscode": N, "errortext": "..."}``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def error_body(status: int, text: str) -> bytes:
    return json.dumps({"statuscode": status, "errortext": text}).encode()
