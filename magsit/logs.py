"""Logging setup: rich human logs by default, one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from rich.logging import RichHandler


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job", "record_key", "kind", "owner", "run_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


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

        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # urllib3 logs full URLs at DEBUG; ours are redacted, theirs are not.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
