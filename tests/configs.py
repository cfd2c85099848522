"""The smallest valid magsit config, for tests that only need the CLI or the runner to start
(both APIs point at a closed loopback port: nothing is ever reached)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from magsit.config import Config, parse_config


def minimal_settings(state_path: Path) -> dict[str, Any]:
    return {
        "magento": {"base_url": "http://127.0.0.1:9", "token": "t"},
        "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
        "state": {"path": str(state_path)},
    }


def minimal_config(tmp_path: Path) -> Config:
    return parse_config(minimal_settings(tmp_path / "s.db"))


def write_minimal_config(tmp_path: Path, extra: str = "", *, state_path: Path | None = None) -> Path:
    """``magsit.toml`` in ``tmp_path`` (mode 0600), with ``extra`` TOML (e.g. a [schedule] table) appended."""
    path = tmp_path / "magsit.toml"
    body = f"""
        [magento]
        base_url = "http://127.0.0.1:9"
        token = "t"
        [sitoo]
        base_url = "http://127.0.0.1:9/v2/accounts/1"
        api_id = "1-1"
        password = "p"
        [state]
        path = "{state_path or tmp_path / 's.db'}"
        """
    path.write_text(textwrap.dedent(body) + textwrap.dedent(extra))
    path.chmod(0o600)
    return path
