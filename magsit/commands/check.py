"""`magsit check`: config valid, both APIs reachable read-only, credentials accepted, mapped ids exist."""

from __future__ import annotations

from typing import Any

import click

from magsit.app import App, pass_app
from magsit.errors import ExitCode, MagsitError
from magsit.report import line, print_json


def run_checks(app: App) -> list[dict[str, Any]]:
    from magsit.magento.client import MagentoClient
    from magsit.sitoo.client import SitooClient

    config = app.config
    results: list[dict[str, Any]] = [{"check": "config", "ok": True, "detail": f"{config.source} is valid"}]
    results.append(_check_state(config.state.path))
    results.append(_check_timezone(config.reconcile.timezone))
    magento = MagentoClient(config.magento, config.http)
    sitoo = SitooClient(config.sitoo, config.http)

    def attempt(name: str, fn: Any) -> Any:
        try:
            value = fn()
        except MagsitError as exc:
            results.append({"check": name, "ok": False, "detail": exc.message})
            return None
        return value

    sources = attempt("magento: reach API and list sources", magento.list_sources)
    if sources is not None:
        codes = {s["source_code"] for s in sources}
        results.append({"check": "magento: reach API and list sources", "ok": True, "detail": f"{len(codes)} sources"})
        unknown = sorted(set(config.stock.sources.values()) - codes)
        results.append(
            {
                "check": "magento: mapped sources exist",
                "ok": not unknown,
                "detail": f"unknown source codes in [stock].sources: {', '.join(unknown)}" if unknown else "all mapped sources exist",
            }
        )
    warehouses = attempt("sitoo: reach API and list warehouses", sitoo.list_warehouses)
    if warehouses is not None:
        ids = {str(w["warehouseid"]) for w in warehouses}
        results.append({"check": "sitoo: reach API and list warehouses", "ok": True, "detail": f"{len(ids)} warehouses"})
        wanted = set(config.stock.sources) | {str(config.orders.warehouse_id)}
        wanted |= {str(w) for w in config.orders.shipping_method_warehouses.values()}
        wanted |= {str(w) for w in config.orders.pickup_location_warehouses.values()}
        unknown = sorted(wanted - ids)
        results.append(
            {
                "check": "sitoo: mapped warehouses exist",
                "ok": not unknown,
                "detail": f"unknown Sitoo warehouse ids in the config: {', '.join(unknown)}" if unknown else "all mapped warehouses exist",
            }
        )
    if config.returns.refund_shipping:
        # The REST API exposes no tax display settings: say what magsit assumes and who verifies it.
        incl = config.returns.shipping_amount_includes_tax
        results.append({
            "check": "returns: shipping refunds",
            "ok": True,
            "detail": (f"credit memo shipping_amount is sent {'including' if incl else 'excluding'} tax "
                       f"([returns].shipping_amount_includes_tax = {str(incl).lower()}); Magento must show "
                       f"'Display Shipping Amount' = {'Including Tax or Both' if incl else 'Excluding Tax'} "
                       "(Stores > Configuration > Sales > Tax > Orders, Invoices, Credit Memos Display Settings); "
                       "`magsit audit` checks it on the credit memos magsit made"),
        })  # fmt: skip
    return results


def _check_state(path: Any) -> dict[str, Any]:
    """The state file opens for writing (created if new, as the first run would) and is sound."""
    from magsit.state.store import StateError, StateStore

    try:
        store = StateStore(path)
    except StateError as exc:
        return {"check": "state: file writable", "ok": False, "detail": exc.message}
    try:
        verdict = store.integrity_check()
    finally:
        store.close()
    ok = verdict == "ok"
    return {"check": "state: file writable", "ok": ok, "detail": f"{path} can be written" if ok else f"{path}: {verdict}"}


def _check_timezone(name: str) -> dict[str, Any]:
    from magsit.sync.reconcile.period import zone as _zone

    try:
        _zone(name)
    except MagsitError as exc:
        return {"check": "reconcile: timezone", "ok": False, "detail": exc.message}
    return {"check": "reconcile: timezone", "ok": True, "detail": f"{name} is a known timezone"}


@click.command("check")
@pass_app
def command(app: App) -> int:
    """Validate the config and reach both APIs read-only."""
    results = run_checks(app)
    ok = all(r["ok"] for r in results)
    if app.json:
        print_json({"ok": ok, "checks": results})
    else:
        for r in results:
            mark = ("ok  ", "green") if r["ok"] else ("FAIL", "red")
            app.out.print(line(mark, f" {r['check']}: {r['detail']}"))
    return ExitCode.OK if ok else ExitCode.FAILED
