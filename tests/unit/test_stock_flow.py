"""sync-stock pull/push logic against in-memory fakes of the two clients (no HTTP)."""

from decimal import Decimal

from magsit.config import parse_config
from magsit.errors import ApiError
from magsit.runner import run_job
from magsit.state import StateStore
from magsit.state.cursor import SitooEpoch
from magsit.sync import stock


class FakeSitoo:
    def __init__(self, items, products=()):
        self.items = items  # warehouse -> sku -> (available, datelastmodified)
        self.products = set(products)  # SKUs of Sitoo products (with or without warehouse items)
        self.calls = []
        self.product_lookups = []

    def iter_products(self, skus=None, include_inactive=False, fields=None):
        self.product_lookups.append(list(skus))
        return ({"sku": s} for s in skus if s in self.products)

    def warehouse_items(self, warehouse_id, modified_from=None, skus=None, fields=None):
        self.calls.append((warehouse_id, modified_from, tuple(skus) if skus else None))
        for sku, (avail, ts) in sorted(self.items.get(str(warehouse_id), {}).items()):
            if modified_from is not None and ts < modified_from:
                continue
            if skus is not None and sku not in skus:
                continue
            yield {"sku": sku, "decimalavailable": avail, "datelastmodified": ts}


class FakeMagento:
    def __init__(self, products, sources=("default", "store-2"), bad_skus=()):
        self.products = set(products)
        self.sources = sources
        self.bad_skus = set(bad_skus)
        self.saved = {}
        self.posts = []
        self.lookups = []

    def list_sources(self):
        return [{"source_code": s} for s in self.sources]

    def existing_skus(self, skus):
        self.lookups.append(list(skus))
        return [s for s in skus if s in self.products]

    def sku_lookup_chunks(self, skus):
        skus = list(dict.fromkeys(skus))
        return [skus[i : i + 3] for i in range(0, len(skus), 3)]  # small: several lookups per run

    def source_items(self, source_codes, skus=None):
        return [
            {"sku": k[0], "source_code": k[1], "quantity": v[0], "status": v[1]}
            for k, v in self.saved.items()
            if k[1] in source_codes and (skus is None or k[0] in skus)
        ]

    def save_source_items(self, items):
        self.posts.append(items)
        if any(i["sku"] in self.bad_skus for i in items):
            raise ApiError("Validation Failed", system="magento", status=400)
        for i in items:
            self.saved[(i["sku"], i["source_code"])] = (i["quantity"], i["status"])
        return []


class FailsAfterFirstPost(FakeMagento):
    """The first batch lands, every later one gets a 503 (after retries: the run fails)."""

    def save_source_items(self, items):
        if len(self.posts) >= 1:
            self.posts.append(items)
            raise ApiError("magento: 503", system="magento", status=503, retryable=True)
        return super().save_source_items(items)


def config(tmp_path, **stock):
    return parse_config(
        {
            "magento": {"base_url": "http://127.0.0.1:9", "token": "t", "input_list_limit": 4},
            "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
            "stock": {"sources": {"1": "default", "2": "default", "3": "store-2"}, "lookback_seconds": 0, **stock},
            "state": {"path": str(tmp_path / "s.db")},
        }
    )


def run(cfg, magento, sitoo, **options):
    return run_job(cfg, "sync-stock", stock, options=options, magento=magento, sitoo=sitoo)


def test_multi_warehouse_sum_sibling_reread_and_no_rewrite(tmp_path):
    cfg = config(tmp_path)
    sitoo = FakeSitoo(
        {"1": {"A": ("2.000", 100), "Z": ("1", 200)}, "2": {"A": ("3.000", 100)}, "3": {"A": ("1.000", 100)}}
    )
    magento = FakeMagento({"A", "Z"})
    assert run(cfg, magento, sitoo).exit_code == 0
    assert magento.saved == {("A", "default"): (5, 1), ("A", "store-2"): (1, 1), ("Z", "default"): (1, 1)}
    # only warehouse 2 changes; the sum needs warehouse 1 re-read by SKU
    sitoo.items["2"]["A"] = ("0.000", 10**10)
    sitoo.calls.clear()
    assert run(cfg, magento, sitoo).exit_code == 0
    assert magento.saved[("A", "default")] == (2, 1)
    assert (1, None, ("A",)) in sitoo.calls
    magento.posts.clear()
    sitoo.calls.clear()
    assert run(cfg, magento, sitoo).exit_code == 0
    assert magento.posts == []  # nothing changed: nothing written


def test_unknown_sku_and_bisected_bad_row_leave_the_rest_written(tmp_path):
    cfg = config(tmp_path)
    items = {f"S{i}": ("1.000", 100) for i in range(9)}
    sitoo = FakeSitoo({"1": items})
    magento = FakeMagento({f"S{i}" for i in range(9)} - {"S0"}, bad_skus={"S5"})
    outcome = run(cfg, magento, sitoo)
    assert outcome.exit_code == 3
    assert sorted((f.kind, f.key) for f in outcome.failures) == [
        ("source_item_rejected", "S5@default"),
        ("unknown_sku", "S0"),
    ]
    assert set(magento.saved) == {(f"S{i}", "default") for i in range(1, 9) if i != 5}
    assert all(len(p) <= 4 for p in magento.posts)
    state = StateStore(cfg.state.path)
    assert ("S5", "default") not in state.pushed_stock() and ("S0", "default") not in state.pushed_stock()
    assert state.pushed_stock()[("S1", "default")] == (Decimal(1), 1)


def test_unknown_source_code_fails_the_run_before_any_write(tmp_path):
    cfg = config(tmp_path)
    magento = FakeMagento({"A"}, sources=("default",))
    outcome = run(cfg, magento, FakeSitoo({"1": {"A": ("1", 1)}}))
    assert outcome.exit_code == 1 and "store-2" in outcome.error and magento.posts == []


def test_run_level_error_keeps_cursor_but_records_accepted_rows(tmp_path):
    cfg = config(tmp_path)
    sitoo = FakeSitoo({"1": {f"S{i}": ("1", 100) for i in range(6)}})

    magento = FailsAfterFirstPost({f"S{i}" for i in range(6)})
    outcome = run(cfg, magento, sitoo)
    assert outcome.exit_code == 1
    state = StateStore(cfg.state.path)
    assert len(state.pushed_stock()) == 4 and state.get_cursor("sync-stock", "warehouse:1", SitooEpoch) is None


def test_full_heals_drift_and_sku_option(tmp_path):
    cfg = config(tmp_path)
    sitoo = FakeSitoo({"1": {"A": ("4", 100), "B": ("1", 100)}})
    magento = FakeMagento({"A", "B"})
    run(cfg, magento, sitoo)
    magento.saved[("A", "default")] = (99, 1)  # by hand in Magento
    magento.posts.clear()
    run(cfg, magento, sitoo)
    assert magento.posts == []  # incremental cannot see it (P10)
    run(cfg, magento, sitoo, full=True)
    assert magento.saved[("A", "default")] == (4, 1) and len(magento.posts[0]) == 1
    magento.saved[("B", "default")] = (7, 1)
    run(cfg, magento, sitoo, skus=["B"])
    assert magento.saved[("B", "default")] == (1, 1)


def test_in_flight_from_order_mappings(tmp_path):
    cfg = config(tmp_path)
    state = StateStore(cfg.state.path)
    state.put_mapping(
        "order", "magento", "000000001", "55",
        data={"warehouse_id": 1, "lines": [{"sku": "A", "qty": 1, "shipped": 0, "canceled": 0}], "open": True},
        status="pushed",
    )
    magento = FakeMagento({"A"})
    run(cfg, magento, FakeSitoo({"1": {"A": ("2", 100)}}))  # Sitoo reserved 1 of 3
    assert magento.saved[("A", "default")] == (3, 1)


def test_in_flight_reserved_in_a_store_with_nothing_on_hand_keeps_the_sold_unit_there(tmp_path):
    cfg = config(tmp_path)
    state = StateStore(cfg.state.path)
    state.put_mapping(  # click & collect in store (warehouse 3): 0 on hand, Sitoo reserved 1 -> available -1
        "order", "magento", "000000002", "56",
        data={"warehouse_id": 3, "lines": [{"sku": "A", "qty": 1, "shipped": 0, "canceled": 0}], "open": True},
        status="pushed",
    )
    magento = FakeMagento({"A"})
    outcome = run(cfg, magento, FakeSitoo({"1": {"A": ("4", 100)}, "3": {"A": ("-1", 100)}}))
    assert outcome.exit_code == 0 and outcome.failures == []  # the reservation itself is no negative stock
    # the sold unit stays on the source its shipment deducts from; nothing there is for sale
    assert magento.saved == {("A", "default"): (4, 1), ("A", "store-2"): (1, 1)}


def test_full_sets_sitoo_products_without_any_warehouse_item_to_zero(tmp_path):
    cfg = config(tmp_path)
    # A is stocked in warehouse 1 only; B is a Sitoo product never stocked anywhere (no items);
    # WEB is a web-only product Sitoo does not know.
    sitoo = FakeSitoo({"1": {"A": ("4", 100)}}, products={"A", "B"})
    magento = FakeMagento({"A", "B", "WEB"})
    magento.saved = {
        ("A", "default"): (4, 1), ("A", "store-2"): (3, 1),  # store-2 = warehouse 3: no item for A there
        ("B", "default"): (2, 1), ("B", "store-2"): (0, 0),  # store-2 already 0: not even looked up
        ("WEB", "default"): (9, 1),
    }  # fmt: skip
    assert run(cfg, magento, sitoo).exit_code == 0
    # incremental without a baseline: Sitoo's items compared with Magento (A is right already);
    # the SKUs without an item are left to --full
    assert magento.posts == []
    assert sitoo.product_lookups == []
    magento.posts.clear()
    outcome = run(cfg, magento, sitoo, full=True)
    assert outcome.exit_code == 0
    assert magento.saved == {
        ("A", "default"): (4, 1), ("A", "store-2"): (0, 0), ("B", "default"): (0, 0), ("B", "store-2"): (0, 0),
        ("WEB", "default"): (9, 1),
    }  # fmt: skip
    assert sitoo.product_lookups == [["A", "B", "WEB"]]  # one batched lookup of the candidates
    magento.posts.clear()
    sitoo.product_lookups.clear()
    assert run(cfg, magento, sitoo, full=True).exit_code == 0
    assert magento.posts == [] and sitoo.product_lookups == [["WEB"]]  # healed rows are 0 now: not candidates again


def test_full_run_records_agreed_rows_beside_the_writes_even_when_a_write_fails(tmp_path):
    """--full: rows where Magento already shows the target get their baseline (recorded while the
    writes are in flight); a write that fails is not recorded, nor is the cursor moved."""
    cfg = config(tmp_path)
    sitoo = FakeSitoo({"1": {f"S{i}": ("1", 100) for i in range(10)}})

    magento = FailsAfterFirstPost({f"S{i}" for i in range(10)})
    magento.saved = {(f"S{i}", "default"): (1, 1) for i in range(4)}  # S0-S3 already right in Magento
    outcome = run(cfg, magento, sitoo, full=True)
    assert outcome.exit_code == 1
    state = StateStore(cfg.state.path)
    recorded = state.pushed_stock()
    agreed = {(f"S{i}", "default") for i in range(4)}
    # the agreed four + what landed before the 503, nothing that did not land
    assert agreed <= set(recorded) and set(recorded) == set(magento.saved) and len(recorded) < 10
    assert state.get_cursor("sync-stock", "warehouse:1", SitooEpoch) is None


def test_existence_lookups_release_full_batches_as_they_answer(tmp_path):
    cfg = config(tmp_path)  # 4 rows per write
    magento = FakeMagento({f"S{i}" for i in range(10)} - {"S4"})
    outcome = run(cfg, magento, FakeSitoo({"1": {f"S{i}": ("1.000", 100) for i in range(10)}}))
    assert outcome.exit_code == 3 and [(f.kind, f.key) for f in outcome.failures] == [("unknown_sku", "S4")]
    assert len(magento.lookups) == 4  # 10 SKUs, 3 per lookup
    assert sorted(len(p) for p in magento.posts) == [1, 4, 4]  # 9 rows: the fewest batches
    assert set(magento.saved) == {(f"S{i}", "default") for i in range(10) if i != 4}


def test_a_failing_lookup_stops_the_writes_and_records_what_landed(tmp_path):
    cfg = config(tmp_path)

    class LookupFails(FakeMagento):
        def existing_skus(self, skus):
            if len(self.lookups) >= 2:
                self.lookups.append(list(skus))
                raise ApiError("magento: 503", system="magento", status=503, retryable=True)
            return super().existing_skus(skus)

    magento = LookupFails({f"S{i}" for i in range(12)})
    outcome = run(cfg, magento, FakeSitoo({"1": {f"S{i}": ("1.000", 100) for i in range(12)}}))
    assert outcome.exit_code == 1 and "503" in outcome.error
    state = StateStore(cfg.state.path)
    assert set(state.pushed_stock()) == set(magento.saved)  # whatever landed is recorded, nothing else
    assert len(magento.saved) < 12 and state.get_cursor("sync-stock", "warehouse:1", SitooEpoch) is None
