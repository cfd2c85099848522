"""Logging setup: rich human logs by default, one JSON object per line for log shippers."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rich.logging import RichHandler
from rich.text import Text

CONTEXT_KEYS = ("job", "entry", "run_id", "record_key", "kind", "owner")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("magsit_log_context", default=None)


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Adds job/run context to every record logged inside the block (this thread/task only)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current log_context onto each record, unless the call passed its own ``extra=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        # The traceback of a record logged with exc_info (magsit does that at DEBUG, i.e. -vv, for
        # unexpected errors): one field, so the line stays one JSON object.
        if record.exc_info and record.exc_info[0] is not None:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _iso_utc(moment: datetime) -> Text:
    # ISO 8601 in UTC like the JSON logs and the state file (rich's default is a locale date).
    return Text(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def setup_logging(verbose: int = 0, quiet: bool = False, fmt: str = "rich") -> None:
    level = logging.ERROR if quiet else logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("magsit")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.console import Console

        handler = RichHandler(
            console=Console(stderr=True, emoji=False), show_path=False, rich_tracebacks=False, markup=False,
            log_time_format=_iso_utc,
        )
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # urllib3 logs full URLs at DEBUG; ours are redacted, theirs are not.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
