"""push-orders end to end: the real CLI against both emulators over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from magsit.state import StateStore
from magsit.sync.inflight import in_flight_units

pytestmark = pytest.mark.e2e


def seed(env, skus=("TENT-1", "SOCK/42", "JACKET-RED-M"), magento_only=()):
    """Sitoo: warehouse 1 (webshop/central) and 2 (store), products with stock; Magento the same
    products (+ a configurable parent JACKET) and source items so shipments can deduct."""
    sitoo, magento = env.sitoo.state, env.magento.state
    sitoo.add_warehouse("Central")
    store = sitoo.add_store("Store Sthlm", externalid="sthlm")
    sitoo.add_warehouse("Store Sthlm", storeid=store)
    for sku in skus:
        sitoo.add_product(sku, f"Product {sku}", "125.00")
        sitoo.set_stock(1, sku, 50)
        sitoo.set_stock(2, sku, 50)
    for sku in (*skus, *magento_only):
        magento.add_product(sku, f"Product {sku}", 100)
        magento.set_source_item(sku, "default", 50)
    magento.add_product("JACKET", "Jacket", 100, type_id="configurable")
    env.configure(orders={"retry_backoff_minutes": 0, "pickup_location_warehouses": {"sthlm": 2}},
                  stock={"sources": {"1": "default", "2": "default"}})


def old(minutes=10):
    return datetime.now(UTC) - timedelta(minutes=minutes)


def sitoo_orders(env):
    return list(env.sitoo.state.orders.values())


def by_externalid(env, externalid):
    matches = [o for o in sitoo_orders(env) if o["externalid"] == externalid]
    assert len(matches) == 1, f"{len(matches)} Sitoo orders with externalid {externalid}"
    return matches[0]


def test_configurable_slash_sku_guest_and_click_and_collect_land_correctly(sandbox):
    seed(sandbox)
    m = sandbox.magento.state
    m.add_customer("Anna.Berg@Example.com", "Anna", "Berg")
    conf = m.place_order([{"sku": "JACKET-RED-M", "qty": 1, "parent_sku": "JACKET"}, ("SOCK/42", 2)],
                         customer_email="Anna.Berg@Example.com", created_at=old())
    guest = m.place_order([("TENT-1", 1)], guest=True, customer_email="  Guest.Person@Example.COM ", created_at=old())
    cc = m.place_order([("TENT-1", 1)], guest=True, customer_email="cc@example.com", shipping_method="instore_pickup",
                       pickup_location_code="sthlm", created_at=old(), shipping_amount=0)
    sandbox.run("push-orders", check_code=0)

    o = by_externalid(sandbox, conf["increment_id"])
    lines = [(i["sku"], i["quantity"], Decimal(i["moneyitemtotal_net"]) + Decimal(i["moneyitemtotal_vat"]), i["vatvalue"])
             for i in o["orderitems"]]
    # Magento 100.00 excl. 25 % VAT -> Sitoo gross row price 125.00 per unit
    assert lines == [("JACKET-RED-M", 1, Decimal("125.00"), 25), ("SOCK/42", 2, Decimal("250.00"), 25)]
    assert o["orderitems"][0]["additionaldata"]["web-itemid"] == str(conf["items"][0]["item_id"])
    assert o["additionaldata"]["weborder"] == "true" and o["additionaldata"]["magento-order-id"] == str(conf["entity_id"])
    assert o["warehouseid"] == 1 and o["datereserved"] and o["delivery_city"] == "Stockholm"
    assert o["email"] == "anna.berg@example.com"
    user = sandbox.sitoo.state.user_by_email("anna.berg@example.com")
    assert user and o["additionaldata"]["sitoo-userid"] == user["userid"]

    g = by_externalid(sandbox, guest["increment_id"])
    assert g["email"] == "guest.person@example.com"
    assert sandbox.sitoo.state.user_by_email("guest.person@example.com") is not None

    c = by_externalid(sandbox, cc["increment_id"])
    assert c["warehouseid"] == 2
    assert c["delivery_address"] == "" and c["delivery_zip"] == "" and c["delivery_countryid"] == ""
    assert c["additionaldata"]["weborder-bopis"] == "true"
    # Sitoo reserved the units in the fulfilling warehouse
    assert sandbox.sitoo.state.item(2, "TENT-1")["decimalreserved"] == 1

    state = StateStore(sandbox.state_path)
    flight = in_flight_units(state.mappings("order"), {"1": "central", "2": "store"})
    assert flight == {("JACKET-RED-M", "central"): 1, ("SOCK/42", "central"): 2, ("TENT-1", "central"): 1,
                      ("TENT-1", "store"): 1}
    # Idempotent: a second run (our own later writes bump updated_at too) sends no order.
    sandbox.sitoo.control.clear_log()
    sandbox.run("push-orders", check_code=0)
    assert sandbox.sitoo.control.calls("POST", r"/orders\.json") == []
    assert len(sitoo_orders(sandbox)) == 3


def test_500_after_sitoo_stored_the_order_then_rerun_leaves_one(sandbox):
    seed(sandbox)
    order = sandbox.magento.state.place_order([("TENT-1", 1)], customer_email="a@example.com", created_at=old())
    fault = sandbox.sitoo.control.add_fault("500_after", method="POST", path=r"/sites/1/orders\.json$", times=5)
    sandbox.run("push-orders")
    assert fault.fired == 1  # Sitoo stored the order and answered 500
    sandbox.run("push-orders")
    sandbox.sitoo.control.clear_faults()
    sandbox.run("push-orders", check_code=0)
    by_externalid(sandbox, order["increment_id"])
    assert len(sitoo_orders(sandbox)) == 1
    state = StateStore(sandbox.state_path)
    mapping = state.get_mapping("order", "magento", order["increment_id"])
    assert mapping["status"] == "pushed" and mapping["other_id"]
    assert state.exceptions() == []


def test_250_orders_sharing_one_updated_at_all_pushed_once(sandbox):
    seed(sandbox)
    sandbox.configure(magento={"page_size": 40})
    stamp = old(30).replace(microsecond=0)
    for n in range(250):
        sandbox.magento.state.place_order([("TENT-1", 1)], guest=True, customer_email=f"g{n % 7}@example.com",
                                          created_at=stamp)
    sandbox.run("push-orders", check_code=0)
    externalids = [o["externalid"] for o in sitoo_orders(sandbox)]
    assert len(externalids) == 250 == len(set(externalids))
    sandbox.run("push-orders", check_code=0)
    assert len(sitoo_orders(sandbox)) == 250
    # the keyset read never paged by offset past a cluster: every search was currentPage 1
    searches = sandbox.magento.control.calls("GET", r"/V1/orders$")
    assert len(searches) >= 250 // 40
    pages = {dict(r.query).get("searchCriteria[currentPage]", dict(r.query).get("searchCriteria[current_page]"))
             for r in sandbox.magento.control.calls("GET", r"/V1/orders$")}
    assert pages <= {"1", None}


def test_unknown_sku_is_an_exception_others_go_through_and_it_lands_later(sandbox):
    seed(sandbox, magento_only=("NEW-SKU",))
    m = sandbox.magento.state
    bad = m.place_order([("NEW-SKU", 1), ("TENT-1", 1)], customer_email="x@example.com", created_at=old())
    good = m.place_order([("TENT-1", 2)], customer_email="y@example.com", created_at=old())
    result = sandbox.run_json("push-orders", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in result["failures"]] == [("unknown_sku", "ecommerce", bad["increment_id"])]
    by_externalid(sandbox, good["increment_id"])
    assert not [o for o in sitoo_orders(sandbox) if o["externalid"] == bad["increment_id"]]
    listed = sandbox.run_json("exceptions", "list")
    assert [(e["record_key"], e["kind"], e["owner"]) for e in listed] == [(bad["increment_id"], "unknown_sku", "ecommerce")]
    assert "NEW-SKU" in listed[0]["message"]

    # The product appears in Sitoo; the cursor has moved past the order, the retry queue brings it back.
    sandbox.sitoo.state.add_product("NEW-SKU", "New", "125.00")
    sandbox.run("push-orders", check_code=0)
    by_externalid(sandbox, bad["increment_id"])
    assert sandbox.run_json("exceptions", "list") == []


def test_unknown_sku_waits_for_backoff_until_exceptions_retry(sandbox):
    seed(sandbox, magento_only=("NEW-SKU",))
    sandbox.configure(orders={"retry_backoff_minutes": 60})
    bad = sandbox.magento.state.place_order([("NEW-SKU", 1)], customer_email="x@example.com", created_at=old())
    sandbox.run("push-orders", check_code=3)
    sandbox.sitoo.state.add_product("NEW-SKU", "New", "125.00")
    sandbox.run("push-orders", check_code=0)
    assert sitoo_orders(sandbox) == []  # still backing off
    exception_id = sandbox.run_json("exceptions", "list")[0]["id"]
    sandbox.run("exceptions", "retry", str(exception_id), check_code=0)
    sandbox.run("push-orders", check_code=0)
    by_externalid(sandbox, bad["increment_id"])


def test_order_option_pushes_one_order_now(sandbox):
    seed(sandbox)
    first = sandbox.magento.state.place_order([("TENT-1", 1)], customer_email="x@example.com",
                                             created_at=datetime.now(UTC) - timedelta(days=30))
    sandbox.run("push-orders", check_code=0)
    assert sitoo_orders(sandbox) == []  # outside the first-run window (24 h)
    sandbox.run("push-orders", "--order", first["increment_id"], check_code=0)
    by_externalid(sandbox, first["increment_id"])


def test_missing_address_for_ship_from_store_is_an_ops_exception(sandbox):
    seed(sandbox)
    order = sandbox.magento.state.place_order([("TENT-1", 1)], customer_email="x@example.com", created_at=old())
    address = order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    address["street"] = []
    address["postcode"] = ""
    result = sandbox.run_json("push-orders", check_code=3)
    assert [(f["kind"], f["owner"]) for f in result["failures"]] == [("missing_address", "ops")]
    assert sitoo_orders(sandbox) == []


def test_dry_run_sends_nothing(sandbox):
    seed(sandbox)
    sandbox.magento.state.place_order([("TENT-1", 1)], customer_email="x@example.com", created_at=old())
    result = sandbox.run_json("--dry-run", "push-orders", check_code=0)
    assert [p["action"] for p in result["plan"]] == ["create"]
    assert sitoo_orders(sandbox) == [] and sandbox.sitoo.control.writes() == []


def _posts_of_orders(env):
    return sorted(env.sitoo.control.calls("POST", r"/sites/1/orders\.json$"), key=lambda r: r.at)


def test_creates_of_different_orders_are_in_flight_together_each_once(sandbox):
    seed(sandbox)
    placed = [sandbox.magento.state.place_order([("TENT-1", 1)], guest=True, customer_email=f"p{n}@example.com",
                                                created_at=old()) for n in range(8)]  # fmt: skip
    # Each create takes half a second in Sitoo: one at a time, the 4th would start 1.5 s after the 1st.
    sandbox.sitoo.control.add_fault("slow", method="POST", path=r"/sites/1/orders\.json$", times=8, delay=0.5)
    sandbox.run("push-orders", check_code=0)
    posts = _posts_of_orders(sandbox)
    assert len(posts) == 8
    assert posts[3].at - posts[0].at < 0.45  # [orders].concurrency = 4: sent before the 1st answered
    assert posts[4].at - posts[0].at >= 0.45  # the 5th waited for a free slot
    assert sorted(o["externalid"] for o in sitoo_orders(sandbox)) == sorted(str(p["increment_id"]) for p in placed)


def test_a_429_holds_back_every_create_for_its_retry_after_and_each_order_lands_once(sandbox):
    seed(sandbox)
    for n in range(8):
        sandbox.magento.state.place_order([("TENT-1", 1)], guest=True, customer_email=f"r{n}@example.com", created_at=old())
    control = sandbox.sitoo.control
    control.add_fault("429", method="POST", path=r"/sites/1/orders\.json$", times=1, retry_after="1")
    control.add_fault("slow", method="POST", path=r"/sites/1/orders\.json$", times=20, delay=0.3)
    sandbox.run("push-orders", check_code=0)
    posts = _posts_of_orders(sandbox)
    (throttled,) = [p for p in posts if p.status == 429]
    later = [p for p in posts if p.at > throttled.at + 0.2]  # sent after the 429 was answered
    assert len(later) >= 5  # the 429'd one again, the 4 that had no slot yet (and any not sent before it)
    assert all(p.at >= throttled.at + 0.95 for p in later)  # nobody hammered Sitoo meanwhile
    assert len(sitoo_orders(sandbox)) == 8 == len({o["externalid"] for o in sitoo_orders(sandbox)})


def test_pickup_order_names_the_sitoo_warehouse_externalid_not_the_magento_location(sandbox):
    # delivery-pickup-externalid: "External ID for the Warehouse where the pickup should be made" (sitoo-api.md §6)
    seed(sandbox)
    sandbox.sitoo.state.warehouses[2]["externalid"] = "WH-STHLM"
    cc = sandbox.magento.state.place_order([("TENT-1", 1)], guest=True, customer_email="cc@example.com",
                                           shipping_method="instore_pickup", pickup_location_code="sthlm",
                                           created_at=old(), shipping_amount=0)  # fmt: skip
    sandbox.run("push-orders", check_code=0)
    extra = by_externalid(sandbox, cc["increment_id"])["additionaldata"]
    assert extra["delivery-pickup-warehouseid"] == "2"
    assert extra["delivery-pickup-externalid"] == "WH-STHLM"
