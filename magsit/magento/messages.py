"""Magento error bodies -> one readable line (magento-api.md §4, §1.3, §5.1).

Magento sends the *raw* message with ``%1``/``%name`` placeholders and the values beside it:
``{"message": "...", "parameters": [..] | {..}, "errors": [{"message", "parameters"}], "trace"}``.
The client substitutes them. ``trace`` (developer mode only) is never copied into messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

UNAUTHORIZED = "isn't authorized to access"
BEARER_HINT = (
    "ACL missing or the Bearer flag off (oauth/consumer/enable_integration_as_bearer); resources needed: {resources}"
)
_REPORT_ID = re.compile(r"(Report ID: ?\S+|report api/\S+)", re.IGNORECASE)
_PAGE_SIZE_LIMIT = re.compile(r"Maximum SearchCriteria pageSize is (\d+)", re.IGNORECASE)
_LIST_LIMIT = re.compile(r"Maximum items of type \"?([^\"]*?)\"? is (\d+)", re.IGNORECASE)


def substitute(message: str, parameters: Any) -> str:
    """Fill ``%1..%n`` from a list, ``%key`` from an object (longest key first, so ``%fieldName``
    is not eaten by ``%field``). Positional ``%10`` goes before ``%1`` for the same reason."""
    if isinstance(parameters, Mapping):
        for key in sorted(parameters, key=lambda k: len(str(k)), reverse=True):
            message = message.replace(f"%{key}", _text(parameters[key]))
    elif isinstance(parameters, list | tuple):
        for index in range(len(parameters), 0, -1):
            message = message.replace(f"%{index}", _text(parameters[index - 1]))
    return message


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def format_body(body: Any) -> str:
    """The message of an error body (or of one per-row result), placeholders filled, sub-errors appended."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(format_body(entry) for entry in body)
    if not isinstance(body, Mapping):
        return str(body)
    text = substitute(str(body.get("message") or ""), body.get("parameters"))
    subs: list[str] = []
    for entry in body.get("errors") or []:
        sub = format_body(entry) if isinstance(entry, Mapping) else str(entry)
        if sub and sub != text and sub not in subs and sub not in text:
            subs.append(sub)
    if subs:
        text = f"{text} ({'; '.join(subs)})" if text else "; ".join(subs)
    return text or "no message"


def describe_error(status: int, body: Any) -> str:
    """The ``error_parser`` hook for ``HttpSession``: status + body -> operator-facing detail."""
    text = format_body(body)
    raw = str(body.get("message") or "") if isinstance(body, Mapping) else ""
    if status == 401 and UNAUTHORIZED in raw:
        params = body.get("parameters") if isinstance(body, Mapping) else None
        resources = _text(params.get("resources")) if isinstance(params, Mapping) else ""
        if not resources and isinstance(params, list) and params:
            resources = _text(params)
        return f"HTTP 401 {text} — {BEARER_HINT.format(resources=resources or 'not named by the shop')}"
    if status >= 500 and _REPORT_ID.search(text):
        # Production mode masks the cause; the report id is the only handle on it in the shop's logs.
        report = _REPORT_ID.search(text)
        assert report is not None
        return (
            f"HTTP {status} {text} — masked server error; {report.group(1)} is in the shop's var/report "
            "or exception.log (an unknown key in the request body is a common cause)"
        )
    return f"HTTP {status} {text}"


def page_size_limit(body: Any) -> int | None:
    """N from ``Maximum SearchCriteria pageSize is N`` (input limits on, §5.1)."""
    match = _PAGE_SIZE_LIMIT.search(format_body(body)) if body is not None else None
    return int(match.group(1)) if match else None


def list_limit(body: Any) -> int | None:
    """N from ``Maximum items of type "…" is N`` (input limits on, §5.1)."""
    match = _LIST_LIMIT.search(format_body(body)) if body is not None else None
    return int(match.group(2)) if match else None
