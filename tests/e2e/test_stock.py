"""sync-stock end to end: the real CLI against both emulators over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from magsit.state import StateStore

pytestmark = pytest.mark.e2e


def seed(env, stock: dict[str, int], magento_skus=None, warehouses=1):
    """Sitoo warehouses 1..n (+ a store and till on warehouse 1), products with stock in warehouse 1;
    the same SKUs as Magento products unless ``magento_skus`` says otherwise."""
    sitoo, magento = env.sitoo.state, env.magento.state
    for n in range(warehouses):
        sitoo.add_warehouse(f"Warehouse {n + 1}")
    store = sitoo.add_store("Store 1")
    register = sitoo.add_register(store, 1, "Till 1")
    for sku, qty in stock.items():
        sitoo.add_product(sku, f"Product {sku}", "100.00")
        sitoo.set_stock(1, sku, qty)
    for sku in stock if magento_skus is None else magento_skus:
        magento.add_product(sku, f"Product {sku}", 100)
    return register


def source_item(env, sku, source="default"):
    item = env.magento.state.source_items.get((source, sku.lower()))
    return None if item is None else (float(item["quantity"]), item["status"])


def posts(env):
    return env.magento.control.calls("POST")


def test_pos_sale_of_last_unit_reaches_magento_as_out_of_stock(sandbox):
    register = seed(sandbox, {"LAST-1": 1, "OTHER": 4})
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "LAST-1") == (1.0, 1)
    sandbox.sitoo.state.pos_sale(register, [("LAST-1", 1)])
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "LAST-1") == (0.0, 0)
    assert source_item(sandbox, "OTHER") == (4.0, 1)


def test_second_run_without_sitoo_change_writes_nothing(sandbox):
    seed(sandbox, {"A": 3, "B": 0})
    sandbox.run("sync-stock", check_code=0)
    assert len(posts(sandbox)) == 1
    sandbox.magento.control.clear_log()
    sandbox.run("sync-stock", check_code=0)
    assert posts(sandbox) == []  # zero POSTs: only values differing from the baseline are written


def test_pushed_but_unshipped_web_order_is_not_subtracted_twice(sandbox):
    seed(sandbox, {"WEB-1": 5})
    # A web order pushed by magsit itself (its order mapping is push-orders' own, not hand-written):
    # Sitoo reserves 2 units, Magento still holds its own reservation until it ships.
    order = sandbox.magento.state.place_order([{"sku": "WEB-1", "qty": 2, "price": 80}], customer_email="web@example.com",
                                              created_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    sandbox.run("push-orders", check_code=0)
    assert [o["externalid"] for o in sandbox.sitoo.state.orders.values()] == [order["increment_id"]]
    assert sandbox.sitoo.state.item(1, "WEB-1")["decimalavailable"] == 3
    sandbox.run("sync-stock", check_code=0)
    # 3 available + 2 in flight: Magento's own reservation takes the 2 off salable exactly once.
    assert source_item(sandbox, "WEB-1") == (5.0, 1)


def test_buffer_and_floor_apply_per_sku(sandbox):
    seed(sandbox, {"BUF": 5, "FLOOR": 3, "PLAIN": 5, "SRC": 5})
    csv = sandbox.tmp / "overrides.csv"
    csv.write_text("sku,source_code,buffer,floor\nBUF,,2,\nFLOOR,default,,3\nPLAIN,other-source,4,4\n")
    sandbox.configure(stock={"overrides_csv": str(csv), "buffer": 1})
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "BUF") == (3.0, 1)  # 5 - 2 (per-SKU buffer)
    assert source_item(sandbox, "FLOOR") == (0.0, 0)  # 3 - 1 = 2 <= floor 3
    assert source_item(sandbox, "PLAIN") == (4.0, 1)  # global buffer 1; the other-source row does not apply
    assert source_item(sandbox, "SRC") == (4.0, 1)


def test_bad_override_csv_is_a_config_error_naming_the_line(sandbox):
    seed(sandbox, {"A": 1})
    csv = sandbox.tmp / "overrides.csv"
    csv.write_text("sku,source_code,buffer,floor\nA,,1,\nB,,lots,\n")
    sandbox.configure(stock={"overrides_csv": str(csv)})
    result = sandbox.run("sync-stock", check_code=2)
    assert "line 3" in result.stderr
    assert posts(sandbox) == []


def test_unknown_sku_is_an_exception_while_the_rest_lands_and_no_orphan(sandbox):
    seed(sandbox, {"KNOWN-1": 2, "GHOST": 7, "KNOWN-2": 1}, magento_skus=["KNOWN-1", "KNOWN-2"])
    sandbox.run("sync-stock", check_code=3)
    assert source_item(sandbox, "KNOWN-1") == (2.0, 1) and source_item(sandbox, "KNOWN-2") == (1.0, 1)
    assert source_item(sandbox, "GHOST") is None
    assert sandbox.magento.state.orphan_source_items() == []
    listed = sandbox.run_json("exceptions", "list")
    rows = listed if isinstance(listed, list) else listed.get("exceptions", listed.get("items", []))
    assert [(r["kind"], r["owner"], r["record_key"]) for r in rows] == [("unknown_sku", "ecommerce", "GHOST")]
    # once the product exists in Magento, the next run writes it and resolves the exception
    sandbox.magento.state.add_product("GHOST", "Ghost", 10)
    StateStore(sandbox.state_path).retry_exception(rows[0]["id"])
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "GHOST") == (7.0, 1)


def test_full_heals_a_quantity_changed_by_hand_in_magento(sandbox):
    seed(sandbox, {"DRIFT": 5, "STEADY": 2})
    sandbox.run("sync-stock", check_code=0)
    sandbox.magento.state.set_source_item("DRIFT", "default", 40)
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "DRIFT") == (40.0, 1)  # Magento has no stock timestamps: incremental can't see it
    sandbox.magento.control.clear_log()
    sandbox.run("sync-stock", "--full", check_code=0)
    assert source_item(sandbox, "DRIFT") == (5.0, 1)
    (post,) = posts(sandbox)
    assert post.body == {"sourceItems": [{"sku": "DRIFT", "source_code": "default", "quantity": 5, "status": 1}]}


def test_sku_option_resyncs_chosen_skus(sandbox):
    seed(sandbox, {"ONE": 5, "TWO": 2})
    sandbox.run("sync-stock", check_code=0)
    sandbox.magento.state.set_source_item("ONE", "default", 0)
    sandbox.magento.state.set_source_item("TWO", "default", 0)
    sandbox.run("sync-stock", "--sku", "ONE", check_code=0)
    assert source_item(sandbox, "ONE") == (5.0, 1) and source_item(sandbox, "TWO") == (0.0, 0)


def test_dry_run_json_prints_the_plan_and_writes_nothing(sandbox):
    seed(sandbox, {"DRY": 4})
    out = sandbox.run_json("--dry-run", "sync-stock", check_code=0)
    (row,) = out["plan"]
    assert row == {
        "sku": "DRY", "source": "default", "sitoo_available": "4.000", "in_flight": "0", "buffer": "0", "floor": "0",
        "qty": "4", "status": 1, "baseline": None, "write": True,
    }
    assert posts(sandbox) == []
    assert source_item(sandbox, "DRY") is None
    assert StateStore(sandbox.state_path).pushed_stock() == {}


def test_skus_with_slash_space_and_plus(sandbox):
    seed(sandbox, {"A/B": 1, "A B": 2, "A+B": 3})
    sandbox.run("sync-stock", check_code=0)
    assert [source_item(sandbox, s) for s in ("A/B", "A B", "A+B")] == [(1.0, 1), (2.0, 1), (3.0, 1)]
    sandbox.magento.control.clear_log()
    sandbox.run("sync-stock", "--sku", "A+B", "--sku", "A/B", check_code=0)
    assert posts(sandbox) == []


def test_several_warehouses_add_up_into_one_source(sandbox):
    seed(sandbox, {"MULTI": 2}, warehouses=2)
    sandbox.sitoo.state.set_stock(2, "MULTI", 3)
    sandbox.configure(stock={"sources": {"1": "default", "2": "default"}})
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "MULTI") == (5.0, 1)


def test_negative_sitoo_stock_writes_zero_and_is_reported(sandbox):
    register = seed(sandbox, {"NEG": 1})
    sandbox.run("sync-stock", check_code=0)
    sandbox.sitoo.state.pos_sale(register, [("NEG", 3)])  # the till sells what it has
    out = sandbox.run_json("sync-stock", check_code=3)
    assert source_item(sandbox, "NEG") == (0.0, 0)
    assert [(f["kind"], f["owner"]) for f in out["failures"]] == [("negative_stock", "ops")]


def test_unknown_source_code_fails_the_run(sandbox):
    seed(sandbox, {"A": 1})
    sandbox.configure(stock={"sources": {"1": "no-such-source"}})
    result = sandbox.run("sync-stock", check_code=1)
    assert "no-such-source" in result.stderr + result.stdout
    assert posts(sandbox) == []


def test_real_push_orders_flow_then_stock_counts_the_order_once(sandbox):
    """The same guarantee through the real push-orders flow (its mapping feeds in_flight)."""
    seed(sandbox, {"FLOW-1": 5})
    sandbox.sitoo.state.product_by_sku("FLOW-1")["moneyprice"] = "125.00"  # gross = Magento's 100 + 25 % tax
    sandbox.magento.state.place_order([("FLOW-1", 2)], customer_email="web@example.com", guest=True)
    pushed = sandbox.run("push-orders")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert sandbox.sitoo.state.item(1, "FLOW-1")["decimalavailable"] == 3  # Sitoo reserved the 2 units
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "FLOW-1") == (5.0, 1)
    assert sandbox.magento.state.salable_qty("FLOW-1") == 3  # Magento's reservation: subtracted exactly once


def test_click_and_collect_reserved_in_a_store_with_nothing_on_hand_keeps_only_the_sold_unit_there(sandbox):
    """Sitoo's available already excludes an in-flight order's reservation: the store shows -1 for
    a unit reserved with 0 on hand. Magento gets the sold unit at that source (Magento's own
    reservation keeps it off sale; its shipment deducts it there) and nothing for sale."""
    seed(sandbox, {"CC-1": 3}, warehouses=2)  # 3 in the web warehouse 1, nothing in store 2
    sandbox.sitoo.state.product_by_sku("CC-1")["moneyprice"] = "125.00"  # gross = Magento's 100 + 25 % tax
    sandbox.magento.state.add_source("store-2", "Store 2")
    sandbox.configure(
        stock={"sources": {"1": "default", "2": "store-2"}},
        orders={"warehouse_id": 1, "pickup_location_warehouses": {"store-2-pickup": 2}},
    )
    sandbox.magento.state.place_order(
        [("CC-1", 1)], customer_email="cc@example.com", guest=True,
        shipping_method="instore_pickup", pickup_location_code="store-2-pickup",
    )
    pushed = sandbox.run("push-orders")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert sandbox.sitoo.state.item(2, "CC-1")["decimalavailable"] == -1  # reserved in store 2, 0 on hand
    out = sandbox.run_json("sync-stock", check_code=0)
    assert out["failures"] == []  # a reservation of a pushed order is not negative stock
    assert source_item(sandbox, "CC-1", "store-2") == (1.0, 1)
    assert source_item(sandbox, "CC-1", "default") == (3.0, 1)
    assert sandbox.magento.state.salable_qty("CC-1") == 3  # the sold unit is not for sale twice
    # once the store has the unit (moved there for the pickup): available 0, still 1 in flight
    sandbox.sitoo.state.set_stock(2, "CC-1", 1)
    assert sandbox.sitoo.state.item(2, "CC-1")["decimalavailable"] == 0
    sandbox.run("sync-stock", "--full", check_code=0)
    assert source_item(sandbox, "CC-1", "store-2") == (1.0, 1)
    assert sandbox.magento.state.salable_qty("CC-1") == 3


def test_full_zeroes_magento_stock_of_sitoo_products_never_stocked_in_the_warehouse(sandbox):
    """Sitoo keeps no warehouse item for a SKU never stocked there; Magento may still show units
    (seeded, typed in by hand). --full sets those to 0 - only for SKUs Sitoo knows as products."""
    seed(sandbox, {"STOCKED": 2})
    sandbox.sitoo.state.add_product("NEVER", "Never stocked", "100.00")  # a Sitoo product, no warehouse item
    sandbox.magento.state.add_product("NEVER", "Never stocked", 80)
    sandbox.magento.state.add_product("WEB-ONLY", "Gift card", 40)  # not in Sitoo: not Sitoo's to correct
    for sku, qty in (("NEVER", 6), ("WEB-ONLY", 5), ("STOCKED", 2)):
        sandbox.magento.state.set_source_item(sku, "default", qty)
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "NEVER") == (6.0, 1)  # incremental runs only see Sitoo's items
    before = sandbox.run_json("audit", check_code=None)
    assert [f["key"] for f in before["findings"] if f["kind"] == "stock_drift"] == ["NEVER@default"]
    sandbox.magento.control.clear_log()
    sandbox.run("sync-stock", "--full", check_code=0)
    assert source_item(sandbox, "NEVER") == (0.0, 0)
    assert source_item(sandbox, "WEB-ONLY") == (5.0, 1)
    assert source_item(sandbox, "STOCKED") == (2.0, 1)
    (post,) = posts(sandbox)
    assert post.body == {"sourceItems": [{"sku": "NEVER", "source_code": "default", "quantity": 0, "status": 0}]}
    after = sandbox.run_json("audit", check_code=None)
    assert [f for f in after["findings"] if f["kind"] == "stock_drift"] == []
    sandbox.magento.control.clear_log()
    sandbox.run("sync-stock", "--full", check_code=0)
    assert posts(sandbox) == []  # healed once, then left alone


def test_sitoo_short_pages_do_not_end_the_read(sandbox):
    # Sitoo's largest page is undocumented (sitoo-api.md §2.2): the sandbox serves 2 of the 5 asked,
    # so only totalcount says the collection goes on.
    seed(sandbox, {f"PAGE-{n}": n + 1 for n in range(7)})
    sandbox.sitoo.state.max_num = 2
    sandbox.configure(sitoo={"page_size": 5})
    sandbox.run("sync-stock", check_code=0)
    assert [source_item(sandbox, f"PAGE-{n}") for n in range(7)] == [(float(n + 1), 1) for n in range(7)]


def test_full_misses_nothing_when_both_shops_page_below_the_defaults(sandbox):
    """Magento refuses a pageSize above the shop's maximum (400 "Maximum SearchCriteria pageSize is
    %max", magento-api.md §5.1; set below the default 300 here) and Sitoo serves fewer items than
    num asks while totalcount says more (it documents no cap, sitoo-api.md §2.2). magsit adapts to
    both: one refused Magento call, and no Sitoo item is lost (a lost item would be zeroed by --full)."""
    stock = {f"CAP-{n:03d}": n % 7 for n in range(130)}
    seed(sandbox, stock)
    magento = sandbox.magento.state
    for sku, qty in stock.items():
        magento.set_source_item(sku, "default", qty + 1)  # every row differs: all 130 are written
    magento.input_limits, magento.max_page_size = True, 50
    sandbox.sitoo.state.max_num = 40
    sandbox.run("sync-stock", "--full", check_code=0)
    assert {sku: source_item(sandbox, sku) for sku in stock} == {
        sku: (float(qty), 1 if qty else 0) for sku, qty in stock.items()
    }
    refused = [c for c in sandbox.magento.control.calls("GET") if c.status == 400]
    assert len(refused) == 1
    pages = sandbox.sitoo.control.calls("GET", r"/warehouseitems\.json$")
    assert len(pages) == 4  # 40 + 40 + 40 + 10, stopped by totalcount


def _aged(env, seconds: int):
    """Sitoo's clock set back: items touched now look ``seconds`` old to the delta read."""
    now = env.sitoo.state.clock
    env.sitoo.state.clock = lambda: now() - seconds
    return now


def test_incremental_with_nothing_changed_reads_one_page_per_warehouse_despite_open_sitoo_side_exceptions(sandbox):
    """A negative Sitoo level is an exception only a Sitoo change can clear: the delta read sees
    that change, so runs in between re-read nothing (no per-SKU lookup every 5 minutes)."""
    now = _aged(sandbox, 7200)
    register = seed(sandbox, {"NEG-1": 1, "NEG-2": 1})
    sandbox.sitoo.state.pos_sale(register, [("NEG-1", 3), ("NEG-2", 2)])
    sandbox.sitoo.state.clock = lambda: now() - 3600
    seed(sandbox, {"FINE": 4})  # the newest item: the cursor stops at it, past the negative ones
    sandbox.sitoo.state.clock = now
    first = sandbox.run_json("sync-stock", check_code=3)
    assert sorted(f["kind"] for f in first["failures"]) == ["negative_stock", "negative_stock"]
    for control in (sandbox.sitoo.control, sandbox.magento.control):
        control.clear_log()
    sandbox.run("sync-stock", check_code=0)
    assert [c.path.rsplit("/", 1)[-1] for c in sandbox.sitoo.control.calls()] == ["warehouseitems.json"]
    assert sandbox.magento.control.calls() == []
    state = StateStore(sandbox.state_path)
    assert len(state.exceptions(status="open", job="sync-stock")) == 2  # still open, still true
    state.close()
    # the shelf is counted in Sitoo: the delta read sees it and the exception resolves itself
    sandbox.sitoo.state.set_stock(1, "NEG-1", 2)
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "NEG-1") == (2.0, 1)
    state = StateStore(sandbox.state_path)
    assert [e["record_key"] for e in state.exceptions(status="open", job="sync-stock")] == ["NEG-2@warehouse 1"]
    state.close()


def test_refused_writes_wait_for_their_retry_time_then_are_re_read_in_one_batch(sandbox):
    now = _aged(sandbox, 7200)
    seed(sandbox, {"GHOST-1": 1, "GHOST-2": 2, "GHOST-3": 3}, magento_skus=[])
    sandbox.sitoo.state.clock = lambda: now() - 3600
    seed(sandbox, {"REAL": 4})  # the newest item: the cursor stops at it
    sandbox.sitoo.state.clock = now
    sandbox.run("sync-stock", check_code=3)
    for control in (sandbox.sitoo.control, sandbox.magento.control):
        control.clear_log()
    sandbox.run("sync-stock", check_code=0)  # not due yet: nothing but the delta read
    assert len(sandbox.sitoo.control.calls()) == 1 and sandbox.magento.control.calls() == []
    for sku in ("GHOST-1", "GHOST-2", "GHOST-3"):
        sandbox.magento.state.add_product(sku, sku, 10)
    state = StateStore(sandbox.state_path)
    for row in state.exceptions(status="open", job="sync-stock"):
        state.retry_exception(row["id"])
    state.close()
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-stock", check_code=0)
    by_sku = [c for c in sandbox.sitoo.control.calls() if any(key == "sku" for key, _ in c.query)]
    assert len(by_sku) == 1  # the three due SKUs in one `sku` filter
    assert [source_item(sandbox, f"GHOST-{n}") for n in (1, 2, 3)] == [(1.0, 1), (2.0, 1), (3.0, 1)]
    assert len(posts(sandbox)) == 1


def test_incremental_without_a_baseline_compares_with_magento_instead_of_writing_everything(sandbox):
    stock = {f"KEPT-{n}": n + 1 for n in range(6)}
    seed(sandbox, stock)
    for sku, qty in stock.items():
        sandbox.magento.state.set_source_item(sku, "default", qty)
    sandbox.magento.state.set_source_item("KEPT-2", "default", 40)  # the one Magento has wrong
    first = sandbox.run_json("sync-stock", check_code=0)  # a new state file: no baseline yet
    assert any("no stock baseline" in line for line in first["summary"])
    (post,) = posts(sandbox)
    assert post.body == {"sourceItems": [{"sku": "KEPT-2", "source_code": "default", "quantity": 3, "status": 1}]}
    sandbox.state_path.unlink()  # the state file is lost
    sandbox.magento.control.clear_log()
    again = sandbox.run_json("sync-stock", check_code=0)
    assert any("no stock baseline" in line for line in again["summary"])
    assert posts(sandbox) == []
    sandbox.magento.control.clear_log()
    assert not any("no stock baseline" in line for line in sandbox.run_json("sync-stock", check_code=0)["summary"])
    assert sandbox.magento.control.calls() == []  # the baseline is back: a plain delta run


def test_buffer_never_takes_back_a_unit_already_sold_so_the_shipment_lands(sandbox):
    """Issue 16 §1: Sitoo has 2, buffer 1; a web order takes 1 and is pushed; a POS sale takes the
    other. The sold unit must stay on the Magento source: the sandbox's ship deducts from the source
    and refuses when it holds fewer units, as MSI's SourceDeductionService does (magento-api.md §6.4)."""
    register = seed(sandbox, {"LAST-2": 2})
    sandbox.sitoo.state.product_by_sku("LAST-2")["moneyprice"] = "125.00"  # gross = Magento's 100 + 25 % tax
    sandbox.configure(stock={"buffer": 1})
    order = sandbox.magento.state.place_order([("LAST-2", 1)], customer_email="web@example.com", guest=True)
    sandbox.run("push-orders", check_code=0)
    sandbox.sitoo.state.pos_sale(register, [("LAST-2", 1)])
    assert sandbox.sitoo.state.item(1, "LAST-2")["decimalavailable"] == 0  # 1 on hand, reserved for the web order
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "LAST-2") == (1.0, 1)  # the sold unit, nothing for sale
    assert sandbox.magento.state.salable_qty("LAST-2") == 0
    audit = sandbox.run_json("audit")
    assert "findings" in audit and [f for f in audit["findings"] if f["kind"] == "stock_drift"] == []
    (sitoo_order,) = [o for o in sandbox.sitoo.state.orders.values() if o["externalid"] == order["increment_id"]]
    sandbox.sitoo.state.deliver(sitoo_order["orderid"], ref="PN-1")
    sandbox.run("sync-fulfilment", check_code=0)
    assert [s["order_id"] for s in sandbox.magento.state.shipments.values()] == [order["entity_id"]]
    assert source_item(sandbox, "LAST-2") == (0.0, 1)  # the shipment deducted it from the source
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "LAST-2") == (0.0, 0)
