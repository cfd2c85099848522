"""The magsit side of one benchmark run, in its own process (so its CPU and memory are its own).

``python -m bench.worker '<json spec>'`` runs either a real magsit job (through ``runner.run_job``,
exactly what the CLI runs) or a naive baseline, then prints one JSON line: calls per endpoint
(the clients' own counters), wall time of the job, CPU time and peak RSS of this process.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from typing import Any

FLOWS = {
    "sync-stock": "magsit.sync.stock",
    "push-orders": "magsit.sync.orders",
    "reconcile": "magsit.sync.reconcile",
}


def _calls(*clients: Any) -> dict[str, dict[str, int]]:
    return {client.__class__.__name__.replace("Client", "").lower(): dict(client.calls) for client in clients}


def run_magsit(spec: dict[str, Any]) -> dict[str, Any]:
    from magsit.config import load_config
    from magsit.magento.client import MagentoClient
    from magsit.runner import run_job
    from magsit.sitoo.client import SitooClient

    config = load_config(spec["config"], environ={})
    magento = MagentoClient(config.magento, config.http)
    sitoo = SitooClient(config.sitoo, config.http)
    flow = importlib.import_module(FLOWS[spec["job"]])  # the flow module (magsit.flow.SyncFlow)
    started = time.perf_counter()
    outcome = run_job(config, spec["job"], flow, options=spec.get("options") or {}, magento=magento, sitoo=sitoo)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "calls": _calls(magento, sitoo),
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "counts": outcome.result.counts,
        "failures": len(outcome.failures),
    }


def run_naive(spec: dict[str, Any]) -> dict[str, Any]:
    """The baseline a first integration typically is: one round trip per record, no batching."""
    from magsit.config import load_config
    from magsit.magento.client import MagentoClient
    from magsit.sitoo.client import SitooClient

    config = load_config(spec["config"], environ={})
    magento = MagentoClient(config.magento, config.http)
    sitoo = SitooClient(config.sitoo, config.http)
    started = time.perf_counter()
    kind = spec["naive"]
    if kind == "stock":
        # Legacy CatalogInventory: read the stock item of each SKU, write its quantity back.
        levels = spec["levels"]
        for sku in spec["skus"]:
            item = magento.get_stock_item(sku)
            qty = levels.get(sku, 0)
            magento.update_stock_item(sku, int(item["item_id"]), qty, qty > 0)
    elif kind == "orders":
        # Per order: its detail, an existence check in Sitoo, the create (no customer link).
        for row in spec["orders"]:
            order = magento.get_order(int(row["entity_id"]))
            if sitoo.find_orders_by_externalid([str(order["increment_id"])], fields=("orderid",)):
                continue
            items = [i for i in order["items"] if "parent_item_id" not in i]
            sitoo.create_order(
                {
                    "ordertypeid": 10,
                    "externalid": str(order["increment_id"]),
                    "warehouseid": spec["warehouse_id"],
                    "email": order.get("customer_email"),
                    "orderitems": [
                        {"sku": i["sku"], "productname": i.get("name") or i["sku"], "quantity": int(i["qty_ordered"]),
                         "moneyrowprice": f"{i.get('row_total_incl_tax') or 0:.2f}"}
                        for i in items
                    ],
                }
            )  # fmt: skip
    elif kind == "reconcile":
        # Per order: its detail in Magento, its counterpart in Sitoo by externalid.
        for row in spec["orders"]:
            order = magento.get_order(int(row["entity_id"]))
            sitoo.find_orders_by_externalid([str(order["increment_id"])], fields=("orderid", "moneytotal_gross_all"))
    else:
        raise SystemExit(f"unknown naive baseline {kind!r}")
    return {"wall": time.perf_counter() - started, "calls": _calls(magento, sitoo), "exit_code": 0}


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    if spec.get("profile"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    cpu_before = time.process_time()
    result = run_naive(spec) if spec.get("naive") else run_magsit(spec)
    result["job_cpu"] = time.process_time() - cpu_before
    if spec.get("profile"):
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu"] = usage.ru_utime + usage.ru_stime  # the whole process: imports, job, exit
    # ru_maxrss survives fork+exec on Linux, so a child of the (big) emulator process would report
    # the parent's size; VmHWM is this program's own high-water mark. Both are kept.
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["peak_mb"] = _vm_hwm_mb() or result["ru_maxrss_mb"]
    print("BENCH-RESULT " + json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
