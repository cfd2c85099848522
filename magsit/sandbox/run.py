"""Start both emulators with the demo retailer and write a config that points magsit at them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magsit.sandbox.demo_data import DemoShop, demo_config, seed
from magsit.sandbox.magento import MagentoSandbox
from magsit.sandbox.schemacheck import magento_checker, sitoo_checker
from magsit.sandbox.sitoo import SitooSandbox


@dataclass
class RunningSandbox:
    magento: MagentoSandbox
    sitoo: SitooSandbox
    shop: DemoShop

    def stop(self) -> None:
        self.sitoo.state.stop_events()
        self.magento.stop()
        self.sitoo.stop()

    def violations(self) -> list[dict[str, Any]]:
        return self.magento.control.violations() + self.sitoo.control.violations()

    def config_sections(self, state_path: Path) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {
            "magento": {"base_url": self.magento.url, "token": self.magento.state.token, "store_code": "default"},
            "sitoo": {
                "base_url": self.sitoo.base_url,
                "api_id": self.sitoo.state.api_id,
                "password": self.sitoo.state.password,
                "site_id": 1,
            },
            "http": {"max_retries": 3, "backoff_base": 0.1, "max_wait": 5},
            "state": {"path": str(state_path)},
        }
        for name, values in demo_config(self.shop).items():
            sections.setdefault(name, {}).update(values)
        return sections


def start(magento_port: int = 0, sitoo_port: int = 0, check_schemas: bool = True) -> RunningSandbox:
    magento = MagentoSandbox(port=magento_port)
    sitoo = SitooSandbox(port=sitoo_port)
    shop = seed(magento.state, sitoo.state)
    if check_schemas:
        # Counts requests that the official schemas would reject (only when ../shared/schemas is present).
        magento.control.checker = magento_checker()
        sitoo.control.checker = sitoo_checker()
    magento.start()
    sitoo.start()
    return RunningSandbox(magento, sitoo, shop)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = ["# magsit config for the local sandbox (generated)."]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path
