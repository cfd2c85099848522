"""`magsit sandbox`: serve both emulators on loopback with the demo retailer, until Ctrl-C."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from magsit.app import App, pass_app
from magsit.errors import ExitCode


@click.command("sandbox", short_help="Serve the Magento and Sitoo emulators on 127.0.0.1.")
@click.option("--magento-port", type=int, default=0, help="Port for the Magento emulator (default: any free port).")
@click.option("--sitoo-port", type=int, default=0, help="Port for the Sitoo emulator (default: any free port).")
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("magsit-sandbox.toml"),
    show_default=True,
    help="Write a ready config pointing at the emulators here.",
)
@click.option("--latency", type=float, default=0.0, help="Seconds added to every API call (for benchmarks).")
@pass_app
def command(app: App, magento_port: int, sitoo_port: int, write_config: Path, latency: float) -> int:
    """Serve the Magento and Sitoo emulators on 127.0.0.1 with demo data."""
    from magsit.sandbox.run import start
    from magsit.sandbox.run import write_config as write

    sandbox = start(magento_port, sitoo_port)
    sandbox.magento.control.latency = latency
    sandbox.sitoo.control.latency = latency
    state_path = write_config.resolve().parent / "magsit-sandbox.db"
    write(write_config, sandbox.config_sections(state_path))
    out = app.out
    out.print(f"Magento emulator: {sandbox.magento.url}/rest/default/V1/  (Bearer {sandbox.magento.state.token})")
    out.print(f"Sitoo emulator:   {sandbox.sitoo.base_url}/  (Basic {sandbox.sitoo.state.api_id})")
    out.print(f"Config written to {write_config}; try:  magsit --config {write_config} sync-stock --full")
    out.print("Scenario API: POST /_sandbox/pos-sale, /_sandbox/deliver, /_sandbox/store-return (Sitoo); "
              "POST /_sandbox/orders (Magento); faults: POST /_sandbox/faults. Ctrl-C stops.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return ExitCode.OK
