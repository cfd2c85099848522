"""End-to-end fixtures: both emulators on loopback, a config pointing at them, the real CLI.

Every request magsit sends is checked against the official schemas by the emulators; a test
fails at teardown if any request did not conform. Without the schema files (``../shared/schemas``
or ``MAGSIT_SCHEMAS_DIR``) every e2e test fails at setup, so a green run always means "every
request was checked"; ``MAGSIT_E2E_WITHOUT_SCHEMAS=1`` runs them unchecked on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from magsit.sandbox.magento import MagentoSandbox
from magsit.sandbox.run import write_config as write_sandbox_config
from magsit.sandbox.schemacheck import magento_checker, sitoo_checker
from magsit.sandbox.sitoo import SitooSandbox

REPO = Path(__file__).resolve().parents[2]
SKIP_SCHEMAS_ENV = "MAGSIT_E2E_WITHOUT_SCHEMAS"


def schema_checkers() -> tuple[Any, Any]:
    """The two request checkers; fails the test (never skips the checks quietly) without schema files."""
    magento, sitoo = magento_checker(), sitoo_checker()
    if (magento is None or sitoo is None) and os.environ.get(SKIP_SCHEMAS_ENV) != "1":
        missing = [name for name, checker in (("magento", magento), ("sitoo", sitoo)) if checker is None]
        pytest.fail(
            f"schema files for {', '.join(missing)} not found (looked for shared/schemas beside the clone and "
            f"MAGSIT_SCHEMAS_DIR): e2e tests check every request against them. Put shared/ beside the clone, "
            f"or set {SKIP_SCHEMAS_ENV}=1 to run without the checks on purpose.",
            pytrace=False,
        )
    return magento, sitoo


@dataclass
class Env:
    magento: MagentoSandbox
    sitoo: SitooSandbox
    tmp: Path
    config_path: Path
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def state_path(self) -> Path:
        return self.tmp / "magsit.db"

    def configure(self, **sections: dict[str, Any]) -> None:
        """Merge keys into config sections, e.g. env.configure(stock={"buffer": 1})."""
        for name, values in sections.items():
            self.extra.setdefault(name, {}).update(values)
        write_config(self)

    def run(self, *args: str, check_code: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `magsit --config <cfg> <args>` as a subprocess, like cron would."""
        env = dict(os.environ)
        env.pop("MAGSIT_CONFIG", None)
        result = subprocess.run(
            [sys.executable, "-m", "magsit", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
            env=env,
        )
        if check_code is not None:
            assert result.returncode == check_code, (
                f"exit {result.returncode} != {check_code}\nSTDOUT:\n{result.stdout}\nSTDERR:\n{result.stderr}"
            )
        return result

    def run_json(self, *args: str, check_code: int | None = None) -> dict[str, Any]:
        result = self.run("--json", *args, check_code=check_code)
        return json.loads(result.stdout)


def write_config(env: Env) -> None:
    sections: dict[str, dict[str, Any]] = {
        "magento": {"base_url": env.magento.url, "token": env.magento.state.token, "store_code": "default"},
        "sitoo": {
            "base_url": env.sitoo.base_url,
            "api_id": env.sitoo.state.api_id,
            "password": env.sitoo.state.password,
            "site_id": 1,
        },
        "stock": {"sources": {"1": "default"}},
        "orders": {"warehouse_id": 1},
        "http": {"max_retries": 3, "backoff_base": 0.05, "max_wait": 2, "read_timeout": 10},
        "state": {"path": str(env.state_path)},
    }
    for name, values in env.extra.items():
        sections.setdefault(name, {}).update(values)
        sections[name] = {k: v for k, v in sections[name].items() if v is not None}  # None drops a key (token -> OAuth)
    write_sandbox_config(env.config_path, sections)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Env]:
    magento_check, sitoo_check = schema_checkers()
    magento = MagentoSandbox().start()
    sitoo = SitooSandbox().start()
    magento.control.checker = magento_check
    sitoo.control.checker = sitoo_check
    env = Env(magento, sitoo, tmp_path, tmp_path / "magsit.toml")
    write_config(env)
    try:
        yield env
        violations = magento.control.violations() + sitoo.control.violations()
        assert not violations, "requests that do not conform to the API schemas:\n" + "\n".join(
            f"{v['method']} {v['path']}: {v['violations']}" for v in violations[:10]
        )
    finally:
        magento.stop()
        sitoo.stop()
