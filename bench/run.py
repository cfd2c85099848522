"""magsit benchmark: API calls vs the minimum, wall, CPU and memory, against a naive baseline.

    python -m bench                      # every scenario at full size (~ a few minutes)
    python -m bench --skus 2000 --orders 200 --naive-sample 50   # a quick run
    python -m bench --scenario push-orders --json

The emulators are seeded directly in Python in *this* process, then each is served from its own
forked process (so they compete neither with each other nor with the bench for one GIL); magsit
(and the naive baseline) run in a child process (``bench.worker``), so the CPU time and peak RSS reported are magsit's
own, not the emulators'. Each request gets ``--latency`` seconds of injected latency.

Minimum calls per scenario are computed from the data sizes and the APIs' page/batch limits
(see ``minimum_*`` below). The naive baseline (one GET + one PUT per SKU on the legacy
stockItems endpoint; one round trip per order and step) runs on ``--naive-sample`` records and is
extrapolated linearly to the full size (marked ``~`` in the table).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import seed as seeding
from magsit.config import MagentoSettings, OrderSettings, SitooSettings
from magsit.sandbox.magento import MagentoSandbox, MagentoState
from magsit.sandbox.run import write_config
from magsit.sandbox.sitoo import SitooSandbox, SitooState

# API limits the minimum is computed from.
MAGENTO_PAGE = 300  # searchCriteria pageSize maximum (input limits, P24)
MAGENTO_BATCH = 20  # objects per body array (input limits, P24)
SITOO_PAGE = 1000  # num for list reads (reference: ALNAV/examples use 1000 for warehouseitems)
SITOO_FILTER = 100  # values per comma-list filter (externalid, orderid, sku) keeping URLs short
SITOO_BATCH = 100  # elements per batch POST (users)
# The config defaults the bench runs with (it sets neither page sizes nor concurrency).
MAGENTO_CONCURRENCY = MagentoSettings.model_fields["concurrency"].default
SITOO_CONCURRENCY = SitooSettings.model_fields["concurrency"].default

SCENARIOS = ("sync-stock-full", "sync-stock-incremental", "push-orders", "reconcile")


def pages(count: int, size: int) -> int:
    """Calls to read ``count`` rows (an empty read still costs one call)."""
    return max(1, math.ceil(count / size))


def batches(count: int, size: int) -> int:
    return math.ceil(count / size) if count else 0


# -- the minimum each job could need --------------------------------------------------------------
def minimum_stock_full(s: dict[str, int]) -> dict[str, int]:
    per_wh = s["warehouse_items"] // s["warehouses"]
    return {
        "magento sources (config check)": 1,
        "sitoo warehouse item pages": s["warehouses"] * pages(per_wh, SITOO_PAGE),
        "magento source item pages": pages(s["source_items"], MAGENTO_PAGE),
        "magento SKU existence (sku in)": batches(s["changed_skus"], MAGENTO_PAGE),
        "magento source item writes": batches(s["changed_rows"], MAGENTO_BATCH),
    }


def minimum_stock_incremental(s: dict[str, int]) -> dict[str, int]:
    return {"sitoo changed-items page per warehouse": s["warehouses"]}


def minimum_push_orders(s: dict[str, int]) -> dict[str, int]:
    n = s["orders"]
    known = s["emails"] - s["new_emails"]
    return {
        "magento order pages": pages(n, MAGENTO_PAGE),
        # The reference: list rows lack extension attributes (shipping address, pickup) -> detail GET.
        "magento order details": n,
        "sitoo externalid check": batches(n, SITOO_FILTER),
        "sitoo product check": batches(s["order_skus"] + 1, SITOO_FILTER),
        "sitoo customer lookup": min(s["emails"], pages(s["sitoo_users"], SITOO_PAGE)) if known or s["new_emails"] else 0,
        "sitoo customer creates": batches(s["new_emails"], SITOO_BATCH),
        "sitoo order creates": n,
        "sitoo order item read-back": batches(n, SITOO_FILTER),
    }


def minimum_reconcile(s: dict[str, int]) -> dict[str, int]:
    return {
        "magento order pages": pages(s["orders"], MAGENTO_PAGE),
        "magento invoice pages": pages(s["invoices"], MAGENTO_PAGE),
        "magento credit memo pages": pages(s["creditmemos"], MAGENTO_PAGE),
        "sitoo order pages (period)": pages(s["sitoo_orders"], SITOO_PAGE),
        "sitoo late-arrival sweep": 1,
        "sitoo warehouses": 1,
        "sitoo stock pages": s["warehouses"] * pages(s["stock_items"], SITOO_PAGE),
        "magento source item pages": pages(s["stock_items"], MAGENTO_PAGE),
    }


# -- running --------------------------------------------------------------------------------------
def _serve(sandbox: MagentoSandbox | SitooSandbox, conn: Any) -> None:
    """The body of a forked emulator process: serve ``sandbox`` and answer the parent's pipe."""
    sandbox.start()
    conn.send(sandbox.url)
    try:
        while True:
            try:
                op, arg = conn.recv()
            except (EOFError, OSError):
                break
            if op == "latency":
                sandbox.control.latency = arg
                conn.send(None)
            elif op == "served":
                conn.send(len(sandbox.control.requests))
            elif op == "cpu":
                conn.send(time.process_time())
            elif op == "span":
                # (first, last) arrival time (epoch s) of the requests matching (method, path regex)
                times = [r.at for r in sandbox.control.calls(*arg)]
                conn.send((min(times), max(times)) if times else None)
            elif op == "clear_log":
                sandbox.control.clear_log()
                conn.send(None)
            elif op == "stop":
                break
    finally:
        sandbox.stop()
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)
        conn.close()


class Forked:
    """One emulator served from its own forked process (own GIL); the parent keeps the URL and a pipe.

    Forked after seeding, so the child starts with the seeded state and no copying; the parent's
    copy of the state is only read for the config (token, ids) and the naive baselines' inputs.
    """

    def __init__(self, sandbox: MagentoSandbox | SitooSandbox) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(sandbox, child), daemon=True)
        self.process.start()
        child.close()
        self.url: str = self.conn.recv()

    def ask(self, op: str, arg: Any = None) -> Any:
        self.conn.send((op, arg))
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(EOFError, OSError):
                self.ask("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():  # pragma: no cover - a stuck emulator
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


@dataclass
class Emulators:
    magento: MagentoSandbox
    sitoo: SitooSandbox
    served_by: dict[str, Forked] = field(default_factory=dict)
    cpu_at_clear: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fresh(cls) -> Emulators:
        magento = MagentoSandbox(MagentoState())
        sitoo = SitooSandbox(SitooState())
        for control in (magento.control, sitoo.control):
            control.keep_bodies = False
        return cls(magento, sitoo)

    def start(self, latency: float) -> None:
        """Fork one serving process per emulator (after seeding): neither competes for the bench's GIL."""
        self.served_by["magento"] = Forked(self.magento)
        # The Magento listening socket was bound in this process; only the child accepts on it.
        self.magento.server.server.server_close()
        self.served_by["sitoo"] = Forked(self.sitoo)
        self.set_latency(latency)

    @property
    def magento_url(self) -> str:
        return self.served_by["magento"].url

    @property
    def sitoo_base_url(self) -> str:
        return f"{self.served_by['sitoo'].url}/v2/accounts/{self.sitoo.state.account_id}"

    def set_latency(self, latency: float) -> None:
        for forked in self.served_by.values():
            forked.ask("latency", latency)

    def span(self, system: str, method: str, path: str) -> tuple[float, float] | None:
        return self.served_by[system].ask("span", (method, path))

    def served(self) -> int:
        return sum(forked.ask("served") for forked in self.served_by.values())

    def cpu_used(self) -> dict[str, float]:
        """CPU seconds each emulator process used since the last ``clear_log`` (all its threads):
        on 2 cores, magsit and the emulators share the machine, so this explains the wall time."""
        return {name: round(forked.ask("cpu") - self.cpu_at_clear.get(name, 0.0), 2) for name, forked in self.served_by.items()}

    def clear_log(self) -> None:
        for forked in self.served_by.values():
            forked.ask("clear_log")
        self.cpu_at_clear = {name: forked.ask("cpu") for name, forked in self.served_by.items()}

    def stop(self) -> None:
        for forked in self.served_by.values():
            forked.stop()
        self.served_by.clear()

    def config(self, workdir: Path, extra: dict[str, dict[str, Any]], name: str = "magsit.toml") -> Path:
        sections: dict[str, dict[str, Any]] = {
            # Page sizes and concurrency are left at the config defaults: the figures are what a
            # user who copies config.example.toml gets.
            "magento": {"base_url": self.magento_url, "token": self.magento.state.token, "store_code": "default"},
            "sitoo": {
                "base_url": self.sitoo_base_url, "api_id": self.sitoo.state.api_id, "password": self.sitoo.state.password,
                "site_id": 1,
            },
            "http": {"max_retries": 2, "backoff_base": 0.05, "max_wait": 2},
            "state": {"path": str(workdir / "state.db")},
        }  # fmt: skip
        for key, values in extra.items():
            if not key.startswith("_"):
                sections.setdefault(key, {}).update(values)
        return write_config(workdir / name, sections)


def run_worker(spec: dict[str, Any], profile: bool = False) -> dict[str, Any]:
    """Run bench.worker in a child process; its JSON result plus the wall time of the whole process."""
    spec = dict(spec, profile=profile)
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps(spec)], capture_output=True, text=True, env=env, cwd=root, check=False
    )
    process_wall = time.perf_counter() - started
    if profile and done.stderr:
        sys.stderr.write(done.stderr)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"bench worker failed (exit {done.returncode}): {done.stderr[-3000:]}")
    result = json.loads(line[len("BENCH-RESULT ") :])
    result["process_wall"] = process_wall
    return result


def total_calls(result: dict[str, Any]) -> int:
    return sum(sum(per.values()) for per in result["calls"].values())


def flat_calls(result: dict[str, Any]) -> dict[str, int]:
    return {f"{system} {endpoint}": n for system, per in result["calls"].items() for endpoint, n in sorted(per.items())}


@dataclass
class Outcome:
    scenario: str
    sizes: dict[str, int]
    minimum: dict[str, int]
    magsit: dict[str, Any]
    naive: dict[str, Any] | None = None
    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    served: int = 0
    emulator_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def min_calls(self) -> int:
        return sum(self.minimum.values())

    def summary(self) -> dict[str, Any]:
        calls = total_calls(self.magsit)
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "sizes": self.sizes,
            "calls": calls,
            "calls_by_endpoint": flat_calls(self.magsit),
            "minimum_calls": self.min_calls,
            "minimum_breakdown": self.minimum,
            "ratio": round(calls / self.min_calls, 3) if self.min_calls else None,
            "wall_s": round(self.magsit["wall"], 3),
            "process_wall_s": round(self.magsit["process_wall"], 3),
            "cpu_s": round(self.magsit["cpu"], 3),
            "peak_mb": round(self.magsit["peak_mb"], 1),
            "exit_code": self.magsit["exit_code"],
            "server_calls": self.served,
            "emulator_cpu_s": self.emulator_cpu,
            "targets": [{"target": t, "met": ok, "figure": fig} for t, ok, fig in self.targets],
        }
        if self.naive is not None:
            out["naive"] = {
                "calls": self.naive["total_calls"],
                "ratio": round(self.naive["total_calls"] / self.min_calls, 3) if self.min_calls else None,
                "wall_s": round(self.naive["wall"], 2),
                "cpu_s": round(self.naive["cpu"], 2),
                "peak_mb": round(self.naive["peak_mb"], 1),
                "extrapolated_from": self.naive.get("sample"),
                "calls_by_endpoint": self.naive["calls_flat"],
            }
        return out


def naive_run(emulators: Emulators, config: Path, spec: dict[str, Any], records: list[Any], key: str, sample: int) -> dict[str, Any]:
    """Run a naive baseline on ``sample`` records and scale calls/wall/job CPU to all of them."""
    chosen = records[: max(1, min(sample, len(records)))] if records else []
    result = run_worker({**spec, "config": str(config), key: chosen})
    scale = len(records) / len(chosen) if chosen else 1.0
    calls = {k: round(v * scale) for k, v in flat_calls(result).items()}
    job_cpu = result.get("job_cpu", 0.0)
    return {
        "calls_flat": calls,
        "total_calls": sum(calls.values()),
        "wall": result["wall"] * scale,
        "cpu": result["cpu"] - job_cpu + job_cpu * scale,
        "peak_mb": result["peak_mb"],
        "sample": len(chosen) if scale != 1.0 else None,
    }


def scenario_stock(args: argparse.Namespace, workdir: Path, incremental: bool) -> Outcome:
    emulators = Emulators.fresh()
    changed = 0.0 if incremental else args.changed
    # The incremental run has hundreds of open exceptions (negative Sitoo levels) to ignore: they
    # cost no call until Sitoo changes the item.
    negative = min(args.open_exceptions, args.skus * args.warehouses) if incremental else 0
    seeded = seeding.seed_stock(
        emulators.magento.state, emulators.sitoo.state, args.skus, args.warehouses, changed, negative=negative
    )
    emulators.start(args.latency)
    try:
        config = emulators.config(workdir, seeded.config)
        name = "sync-stock-incremental" if incremental else "sync-stock-full"
        if incremental:
            # A full run first (not measured, no latency) sets the cursors and the baseline.
            emulators.set_latency(0)
            prep = run_worker({"config": str(config), "job": "sync-stock", "options": {"full": True}})
            if prep["exit_code"] not in (0, 3):
                raise RuntimeError(f"preparing full sync-stock failed: {prep.get('error')}")
            emulators.set_latency(args.latency)
        emulators.clear_log()
        result = run_worker(
            {"config": str(config), "job": "sync-stock", "options": {"full": not incremental}}, profile=args.profile
        )
        served = emulators.served()
        minimum = minimum_stock_incremental(seeded.sizes) if incremental else minimum_stock_full(seeded.sizes)
        outcome = Outcome(name, seeded.sizes, minimum, result, served=served, emulator_cpu=emulators.cpu_used())
        if not args.no_naive:
            states = emulators.sitoo.state
            levels: dict[str, int] = {}
            for wid in seeded.config["stock"]["sources"]:
                for item in states.items_of(int(wid)):
                    levels[item["sku"]] = levels.get(item["sku"], 0) + int(item["decimaltotal"] - item["decimalreserved"])
            skus = seeded.skus
            sample = skus[: args.naive_sample]
            outcome.naive = naive_run(
                emulators, config, {"naive": "stock", "levels": {s: levels.get(s, 0) for s in sample}}, skus, "skus", args.naive_sample
            )
        calls = total_calls(result)
        ratio = calls / outcome.min_calls
        outcome.targets.append(("API calls <= 1.1 x minimum", ratio <= 1.1, f"{ratio:.3f} x"))
        if incremental:
            per_wh = calls / seeded.sizes["warehouses"]
            outcome.targets.append(("<= 1 call per mapped warehouse", per_wh <= 1.0, f"{per_wh:.2f}"))
            outcome.targets.append(("whole process <= 2 s", result["process_wall"] <= 2.0, f"{result['process_wall']:.2f} s"))
        else:
            budget = 1.5 * (outcome.min_calls * args.latency / MAGENTO_CONCURRENCY) + 5
            outcome.targets.append(("wall <= 1.5 x (min x latency / concurrency) + 5 s", result["wall"] <= budget,
                                    f"{result['wall']:.2f} s (budget {budget:.2f} s)"))  # fmt: skip
            outcome.targets.append(("magsit CPU <= 10 s", result["cpu"] <= 10, f"{result['cpu']:.2f} s"))
            outcome.targets.append(("peak memory <= 300 MB", result["peak_mb"] <= 300, f"{result['peak_mb']:.0f} MB"))
        return outcome
    finally:
        emulators.stop()


def scenario_push_orders(args: argparse.Namespace, workdir: Path) -> Outcome:
    emulators = Emulators.fresh()
    seeded = seeding.seed_orders(emulators.magento.state, emulators.sitoo.state, args.orders)
    emulators.start(args.latency)
    try:
        config = emulators.config(workdir, seeded.config)
        result = run_worker({"config": str(config), "job": "push-orders", "options": {}}, profile=args.profile)
        served, emulator_cpu = emulators.served(), emulators.cpu_used()
        creates_span = emulators.span("sitoo", "POST", r"/orders\.json$")
    finally:
        emulators.stop()
    outcome = Outcome("push-orders", seeded.sizes, minimum_push_orders(seeded.sizes), result, served=served, emulator_cpu=emulator_cpu)
    if not args.no_naive:
        # A fresh shop with the same orders: the naive run must create them too.
        fresh = Emulators.fresh()
        again = seeding.seed_orders(fresh.magento.state, fresh.sitoo.state, min(args.orders, args.naive_sample))
        fresh.start(args.latency)
        try:
            config = fresh.config(workdir, again.config, "naive.toml")
            outcome.naive = naive_run(
                fresh, config, {"naive": "orders", "warehouse_id": again.config["orders"]["warehouse_id"]},
                again.orders, "orders", args.naive_sample,
            )  # fmt: skip
            if args.orders > len(again.orders):  # scale the sample's figures to the full order count
                factor = args.orders / len(again.orders)
                naive = outcome.naive
                naive["calls_flat"] = {k: round(v * factor) for k, v in naive["calls_flat"].items()}
                naive["total_calls"] = sum(naive["calls_flat"].values())
                naive["wall"] *= factor
                naive["sample"] = len(again.orders)
        finally:
            fresh.stop()
    calls = total_calls(result)
    creates = result["calls"].get("sitoo", {}).get("POST /sites/{id}/orders.json", 0)
    ratio = calls / outcome.min_calls
    per_order = (calls - creates) / max(1, args.orders)
    outcome.targets.append(("API calls <= 1.1 x minimum", ratio <= 1.1, f"{ratio:.3f} x"))
    outcome.targets.append(("<= 1.2 calls per order besides the creates", per_order <= 1.2, f"{per_order:.3f}"))
    if creates_span is not None and creates:
        # The creates' share of the wall: first create sent .. last create answered (its latency);
        # the rest of the wall is the reads (and the read-back after the creates).
        concurrency = OrderSettings.model_fields["concurrency"].default
        creating = creates_span[1] - creates_span[0] + args.latency
        budget = 1.5 * (creates * args.latency / concurrency)
        reads = result["wall"] - creating
        outcome.targets.append((
            "wall <= 1.5 x (creates x latency / [orders].concurrency) + the reads", creating <= budget,
            f"{result['wall']:.2f} s = creates {creating:.2f} s (budget {budget:.2f} s) + reads {reads:.2f} s",
        ))  # fmt: skip
    return outcome


def scenario_reconcile(args: argparse.Namespace, workdir: Path) -> Outcome:
    emulators = Emulators.fresh()
    orders = args.reconcile_orders or args.orders * 10
    seeded = seeding.seed_month(emulators.magento.state, emulators.sitoo.state, orders)
    emulators.start(args.latency)
    try:
        config = emulators.config(workdir, seeded.config)
        options = {"month": seeded.config["_month"]["month"]}
        result = run_worker({"config": str(config), "job": "reconcile", "options": options}, profile=args.profile)
        served = emulators.served()
        outcome = Outcome("reconcile", seeded.sizes, minimum_reconcile(seeded.sizes), result, served=served, emulator_cpu=emulators.cpu_used())
        if not args.no_naive:
            rows = [{"entity_id": eid} for eid in sorted(emulators.magento.state.orders)]
            outcome.naive = naive_run(emulators, config, {"naive": "reconcile"}, rows, "orders", args.naive_sample)
    finally:
        emulators.stop()
    ratio = total_calls(result) / outcome.min_calls
    outcome.targets.append(("API calls <= 1.1 x minimum", ratio <= 1.1, f"{ratio:.3f} x"))
    return outcome


def _reconcile_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("magsit.sync.reconcile") is not None


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], Outcome]] = {
    "sync-stock-full": lambda a, w: scenario_stock(a, w, incremental=False),
    "sync-stock-incremental": lambda a, w: scenario_stock(a, w, incremental=True),
    "push-orders": scenario_push_orders,
    "reconcile": scenario_reconcile,
}


# -- output ---------------------------------------------------------------------------------------
def table(summaries: list[dict[str, Any]]) -> str:
    head = ("scenario", "calls", "min", "ratio", "wall s", "cpu s", "peak MB", "naive calls", "naive ratio", "naive wall s", "naive cpu s")
    rows = [head]
    for s in summaries:
        n = s.get("naive")
        mark = "~" if n and n.get("extrapolated_from") else ""
        rows.append((
            s["scenario"], str(s["calls"]), str(s["minimum_calls"]), f"{s['ratio']:.2f}", f"{s['wall_s']:.2f}",
            f"{s['cpu_s']:.2f}", f"{s['peak_mb']:.0f}",
            f"{mark}{n['calls']}" if n else "-", f"{n['ratio']:.1f}" if n else "-",
            f"{mark}{n['wall_s']:.1f}" if n else "-", f"{mark}{n['cpu_s']:.1f}" if n else "-",
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def details(summary: dict[str, Any]) -> str:
    out = [f"\n## {summary['scenario']}  (sizes: {summary['sizes']})"]
    out.append(f"exit code {summary['exit_code']}; process wall {summary['process_wall_s']:.2f} s; "
               f"requests served by the emulators: {summary['server_calls']}; "
               f"emulator CPU s: {summary['emulator_cpu_s']}")  # fmt: skip
    out.append("calls by endpoint:")
    out.extend(f"  {n:>7}  {k}" for k, n in summary["calls_by_endpoint"].items())
    out.append("minimum:")
    out.extend(f"  {n:>7}  {k}" for k, n in summary["minimum_breakdown"].items())
    for t in summary["targets"]:
        out.append(f"  [{'met' if t['met'] else 'NOT MET'}] {t['target']}: {t['figure']}")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    p.add_argument("--skus", type=int, default=50_000, help="SKUs for the stock scenarios (default 50000)")
    p.add_argument("--warehouses", type=int, default=4, help="Sitoo warehouses, one MSI source each (default 4)")
    p.add_argument("--changed", type=float, default=0.01, help="fraction of warehouse items changed for --full (0.01)")
    p.add_argument("--open-exceptions", type=int, default=300,
                   help="negative Sitoo items (open negative_stock exceptions) in the incremental stock scenario (300)")
    p.add_argument("--orders", type=int, default=2000, help="orders for push-orders (default 2000)")
    p.add_argument("--reconcile-orders", type=int, default=None, help="orders in the reconciled month (default 10 x --orders)")
    p.add_argument("--latency", type=float, default=0.02, help="injected latency per request, seconds (default 0.02)")
    p.add_argument("--naive-sample", type=int, default=300, help="records the naive baseline really runs (then scaled)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baselines")
    p.add_argument("--profile", action="store_true", help="cProfile magsit's process (printed to stderr)")
    p.add_argument("--json", action="store_true", help="print a JSON summary per scenario instead of the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = args.scenario or list(SCENARIOS)
    summaries: list[dict[str, Any]] = []
    skipped: list[str] = []
    for name in chosen:
        if name == "reconcile" and not _reconcile_available():
            skipped.append("reconcile: not built yet (magsit.sync.reconcile is missing)")
            continue
        with tempfile.TemporaryDirectory(prefix=f"magsit-bench-{name}-") as tmp:
            summaries.append(RUNNERS[name](args, Path(tmp)).summary())
        if not args.json:
            print(f"... {name} done", file=sys.stderr)
    if args.json:
        print(json.dumps({"scenarios": summaries, "skipped": skipped, "latency_s": args.latency}, indent=2))
    else:
        print(f"latency {args.latency * 1000:.0f} ms per request; magento concurrency {MAGENTO_CONCURRENCY}, "
              f"sitoo concurrency {SITOO_CONCURRENCY}; '~' = naive figures extrapolated from a sample\n")  # fmt: skip
        print(table(summaries))
        for s in summaries:
            print(details(s))
        for line in skipped:
            print(f"\nskipped {line}")
    return 0
