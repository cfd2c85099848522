"""`magsit demo`: both emulators in-process, a small retailer seeded, every job run, a summary."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from magsit.app import App, pass_app
from magsit.errors import ExitCode
from magsit.report import line, status_label


@dataclass
class Step:
    title: str
    job: str | None = None  # a [schedule]-style entry such as "sync-stock --full"
    action: Callable[[], str] | None = None  # a business event in the sandbox; returns what happened
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    title: str
    job: str
    status: str
    exit_code: int | None
    counts: dict[str, Any]
    failures: list[dict[str, Any]]
    note: str = ""
    seconds: float = 0.0


def _scenario_steps(sandbox: Any) -> tuple[Callable[[], str], Callable[[], str]]:
    sitoo = sandbox.sitoo.state
    shop = sandbox.shop

    def web_orders() -> list[dict[str, Any]]:
        return [o for o in sitoo.orders.values() if o.get("externalid") and not o.get("registerid") and not o.get("creditorderid")]

    def fulfil() -> str:
        orders = sorted(web_orders(), key=lambda o: o["orderid"])
        if not orders:
            return "no web orders reached Sitoo, nothing to deliver"
        done = []
        for order in orders[:2]:
            sitoo.deliver(order["orderid"], ref=f"PN{order['orderid']}SE")
            done.append(order["externalid"])
        pickups = [o for o in orders if o.get("warehouseid") in shop.pickup_locations.values() and o["externalid"] not in done]
        for order in pickups[:1]:
            sitoo.deliver(order["orderid"], ref=None)
            done.append(f"{order['externalid']} (collected)")
        cancelled = [o for o in orders if o["externalid"] not in " ".join(done)][-1:]
        for order in cancelled:
            sitoo.cancel_order(order["orderid"])
        text = f"stores delivered {', '.join(done)}"
        if cancelled:
            text += f"; order {cancelled[0]['externalid']} cancelled in Sitoo (out of stock in store)"
        return text

    def store_return() -> str:
        delivered = [o for o in web_orders() if o.get("orderstateid") == 10]
        if not delivered:
            return "no delivered web order to return"
        order = sorted(delivered, key=lambda o: o["orderid"])[0]
        sitoo.store_return(order["orderid"], [{"orderitemid": 0, "quantity": 1}], registerid=shop.registers["sthlm"])
        return f"a customer returned one item of web order {order['externalid']} in the Stockholm store"

    return fulfil, store_return


def _steps(sandbox: Any) -> list[Step]:
    fulfil, store_return = _scenario_steps(sandbox)
    month = datetime.now(UTC).strftime("%Y-%m")
    return [
        Step("Product master data, Sitoo -> Magento", "sync-products --full"),
        Step("Customers merged by e-mail", "sync-customers"),
        Step("Stock, full read (heals yesterday's numbers)", "sync-stock --full"),
        Step("Web orders -> stores", "push-orders"),
        Step("In the stores", action=fulfil),
        Step("Deliveries and cancellations -> Magento", "sync-fulfilment"),
        Step("At the till", action=store_return),
        Step("Returns and refunds", "sync-returns"),
        Step("Stock, incremental (the POS sales and the return)", "sync-stock"),
        Step("Month-end reconciliation", "reconcile", options={"month": month}),
        Step("Catalogue audit", "audit"),
    ]


def run_demo(app: App, workdir: Path) -> tuple[list[StepResult], Any]:
    from magsit.config import load_config
    from magsit.jobs import resolve_entry
    from magsit.runner import run_job
    from magsit.sandbox.run import start, write_config

    sandbox = start()
    results: list[StepResult] = []
    try:
        config_path = write_config(workdir / "magsit.toml", sandbox.config_sections(workdir / "magsit.db"))
        config = load_config(config_path)
        for step in _steps(sandbox):
            started = time.monotonic()
            if step.action is not None:
                note = step.action()
                results.append(StepResult(step.title, "(scenario)", "event", None, {}, [], note, time.monotonic() - started))
                continue
            assert step.job is not None
            scheduled = resolve_entry(step.job)
            outcome = run_job(config, scheduled.job, scheduled.flow, options={**scheduled.options, **step.options})
            results.append(
                StepResult(
                    step.title,
                    step.job,
                    outcome.status,
                    outcome.exit_code,
                    outcome.result.counts,
                    [f.__dict__ for f in outcome.failures],
                    "; ".join(outcome.result.summary[:3]) or (outcome.error or ""),
                    time.monotonic() - started,
                )
            )
        return results, sandbox
    finally:
        sandbox.stop()


STYLE = {"ok": "green", "partial": "yellow", "failed": "red", "event": "cyan"}


@click.command("demo", short_help="Run every job against the built-in sandbox.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), help="Keep the state file and config in this folder.")
@pass_app
def command(app: App, keep: Path | None) -> int:
    """Run every job against the built-in sandbox (a small retailer) and show what happened."""
    started = time.monotonic()
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        results, sandbox = run_demo(app, keep)
    else:
        with tempfile.TemporaryDirectory(prefix="magsit-demo-") as tmp:
            results, sandbox = run_demo(app, Path(tmp))
    elapsed = time.monotonic() - started
    violations = sandbox.violations()
    failed = [r for r in results if r.exit_code == ExitCode.FAILED]
    if app.json:
        from magsit.report import print_json

        print_json({"steps": [r.__dict__ for r in results], "schema_violations": len(violations), "seconds": round(elapsed, 1)})
        return ExitCode.FAILED if failed else ExitCode.OK
    out = app.out
    shop = sandbox.shop
    out.print(
        f"[bold]magsit demo[/bold] — Nordlys Outdoor: {len(shop.warehouses)} stores, {len(shop.skus)} SKUs, "
        f"{len(shop.web_orders)} web orders, {len(shop.pos_orders)} POS sales, "
        f"{shop.customers_magento} web customers, {shop.customers_sitoo} POS members"
    )
    table = Table(header_style="bold", show_lines=False)
    for column in ("step", "job", "result", "what moved", "notes"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = STYLE.get(r.status, "")
        moved = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(r.counts.items()) if v) if r.counts else ""
        result = Text(status_label(r.status, r.exit_code), style=style) + (f" (exit {r.exit_code})" if r.exit_code is not None else "")
        table.add_row(Text(r.title), Text(r.job), result, Text(moved), Text(r.note))
    out.print(table)
    failures = [(r.job, f) for r in results for f in r.failures]
    if failures:
        rows = Table(title="records that need a person (magsit exceptions list)", header_style="bold")
        for column in ("job", "record", "kind", "owner", "message"):
            rows.add_column(column, overflow="fold")
        for job, f in failures[:15]:
            rows.add_row(*(Text(str(v)) for v in (job, f["key"], f["kind"], f["owner"], f["message"])))
        out.print(rows)
    for v in violations[:5]:
        detail = f"{v['method']} {v['path']}: {'; '.join(v['violations'])[:300]}"
        out.print(line(("schema violation:", "red"), " ", detail))
    out.print(
        f"Every request was checked against the official API schemas: {len(violations)} violation(s). "
        f"Done in {elapsed:.1f}s. Run `magsit sandbox` to keep the emulators up and try commands yourself."
    )
    return ExitCode.FAILED if failed else ExitCode.OK
