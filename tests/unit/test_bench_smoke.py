"""The benchmark harness on a tiny scenario, so it cannot rot (a few seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))


def test_minimum_formulas() -> None:
    from bench.run import minimum_stock_full, minimum_stock_incremental

    sizes = {"warehouses": 4, "warehouse_items": 200_000, "source_items": 200_000, "changed_rows": 2000, "changed_skus": 1969}
    full = minimum_stock_full(sizes)
    assert full["sitoo warehouse item pages"] == 200
    assert full["magento source item pages"] == 667
    assert full["magento source item writes"] == 100
    assert full["magento SKU existence (sku in)"] == 7
    assert sum(minimum_stock_incremental(sizes).values()) == 4


def test_tiny_stock_run_reports_calls_against_the_minimum(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.run import main

    if "bench" in sys.modules and not hasattr(sys.modules["bench"], "__path__"):  # pragma: no cover
        pytest.skip("another module named bench shadows the harness")
    code = main(["--scenario", "sync-stock-full", "--skus", "60", "--warehouses", "2", "--changed", "0.1",
                 "--latency", "0", "--naive-sample", "5", "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    (scenario,) = report["scenarios"]
    assert scenario["exit_code"] == 0
    assert scenario["minimum_calls"] == 1 + 2 + 1 + 1 + 1  # sources, 2 warehouses, 1 page, 1 check, 1 batch of 12
    assert scenario["calls"] == scenario["server_calls"]  # the clients' counters agree with the emulators' logs
    assert scenario["ratio"] <= 1.1
    assert scenario["naive"]["calls"] == 2 * 60  # one GET + one PUT per SKU, scaled from the sample
    assert scenario["cpu_s"] > 0 and scenario["peak_mb"] > 0
