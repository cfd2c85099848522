"""sync-fulfilment end to end: Sitoo deliveries/cancellations of pushed orders -> Magento, real CLI over HTTP."""

from __future__ import annotations

import pytest

from magsit.state import StateStore
from magsit.sync.inflight import in_flight_units
from tests.e2e.test_orders import by_externalid, old, seed

pytestmark = pytest.mark.e2e
SOURCES = {"1": "default", "2": "default"}


def pushed(sandbox, items, **kwargs):
    seed(sandbox)
    order = sandbox.magento.state.place_order(items, customer_email="x@example.com", created_at=old(), **kwargs)
    sandbox.run("push-orders", check_code=0)
    return order, by_externalid(sandbox, order["increment_id"])


def flight(sandbox):
    state = StateStore(sandbox.state_path)
    try:
        return in_flight_units(state.mappings("order"), SOURCES)
    finally:
        state.close()


def shipments(sandbox, order):
    return [s for s in sandbox.magento.state.shipments.values() if s["order_id"] == order["entity_id"]]


def test_store_delivery_gives_one_notified_shipment_with_tracking_even_run_twice(sandbox):
    order, sitoo = pushed(sandbox, [{"sku": "JACKET-RED-M", "qty": 1, "parent_sku": "JACKET"}, ("TENT-1", 2)])
    assert flight(sandbox) == {("JACKET-RED-M", "default"): 1, ("TENT-1", "default"): 2}
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-123456789SE")
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.run("sync-fulfilment", check_code=0)
    found = shipments(sandbox, order)
    assert len(found) == 1
    shipment = found[0]
    parent_item = order["items"][0]["item_id"]  # the configurable parent, not its child
    assert sorted((i["order_item_id"], i["qty"]) for i in shipment["items"]) == sorted(
        [(parent_item, 1), (order["items"][2]["item_id"], 2)]
    )
    assert [(t["track_number"], t["title"], t["carrier_code"]) for t in shipment["tracks"]] == [
        ("PN-123456789SE", "Store delivery", "custom")
    ]
    assert shipment["extension_attributes"]["source_code"] == "default"
    emails = [e for e in sandbox.magento.state.emails_sent if e["type"] == "shipment"]
    assert len(emails) == 1  # notified
    assert len(sandbox.magento.control.calls("POST", r"/ship$")) == 1
    state = StateStore(sandbox.state_path)
    assert state.get_mapping("order", "magento", order["increment_id"])["status"] == "shipped"
    (delivery_id,) = sandbox.sitoo.state.deliveries
    assert state.get_mapping("shipment", "sitoo", str(delivery_id))["status"] == "done"
    assert flight(sandbox) == {}


def test_partial_delivery_gives_partial_shipment_then_the_rest(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="T1")
    sandbox.run("sync-fulfilment", check_code=0)
    assert [s["total_qty"] for s in shipments(sandbox, order)] == [1]
    assert flight(sandbox) == {("TENT-1", "default"): 2}
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 2)], ref="T2")
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.run("sync-fulfilment", check_code=0)
    assert sorted(s["total_qty"] for s in shipments(sandbox, order)) == [1, 2]
    assert flight(sandbox) == {}


def test_lost_answer_to_the_ship_post_does_not_ship_twice(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="T1")
    fault = sandbox.magento.control.add_fault("500_after", method="POST", path=r"/ship$")
    sandbox.run("sync-fulfilment", check_code=3)
    assert fault.fired == 1 and len(shipments(sandbox, order)) == 1
    sandbox.run("sync-fulfilment", check_code=0)
    assert len(shipments(sandbox, order)) == 1
    state = StateStore(sandbox.state_path)
    assert state.get_mapping("order", "magento", order["increment_id"])["status"] == "shipped"
    assert state.exceptions() == []


def test_click_and_collect_pickup_ships_without_tracking(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)], shipping_method="instore_pickup", pickup_location_code="sthlm")
    assert sitoo["warehouseid"] == 2
    sandbox.sitoo.state.deliver(sitoo["orderid"])  # handed over in store
    sandbox.run("sync-fulfilment", check_code=0)
    found = shipments(sandbox, order)
    assert len(found) == 1 and found[0]["tracks"] == []


def test_cancellation_in_sitoo_cancels_the_magento_order(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 2)], invoice=False)
    assert flight(sandbox) == {("TENT-1", "default"): 2}
    sandbox.sitoo.state.cancel_order(sitoo["orderid"])
    sandbox.run("sync-fulfilment", check_code=0)
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "canceled"
    state = StateStore(sandbox.state_path)
    assert state.get_mapping("order", "magento", order["increment_id"])["status"] == "canceled"
    assert flight(sandbox) == {}
    sandbox.magento.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    assert sandbox.magento.control.writes() == []


def test_cancel_refused_for_an_invoiced_order_is_an_ops_exception_with_one_comment(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])  # invoiced at checkout: Magento answers false
    sandbox.sitoo.state.cancel_order(sitoo["orderid"])
    result = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"]) for f in result["failures"]] == [("cancel_refused", "ops")]
    sandbox.run("sync-fulfilment")
    comments = [h for h in sandbox.magento.state.orders[order["entity_id"]]["status_histories"] if "Sitoo cancelled" in h["comment"]]
    assert len(comments) == 1
    assert flight(sandbox) == {}


def test_partial_delivery_then_cancel_closes_the_mapping(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3)], invoice=False)
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="T1")
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.sitoo.state.cancel_order(sitoo["orderid"])
    sandbox.run("sync-fulfilment", check_code=0)
    state = StateStore(sandbox.state_path)
    mapping = state.get_mapping("order", "magento", order["increment_id"])
    assert mapping["status"] == "closed"
    assert [(line["shipped"], line["canceled"]) for line in mapping["data"]["lines"]] == [(1, 2)]
    assert flight(sandbox) == {}


def test_lost_answer_on_a_partial_delivery_does_not_ship_it_again(sandbox):
    # Magento's own "does not allow a shipment" guard cannot help here: units remain to ship.
    order, sitoo = pushed(sandbox, [("TENT-1", 3)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="T1")
    sandbox.magento.control.add_fault("500_after", method="POST", path=r"/ship$")
    sandbox.run("sync-fulfilment", check_code=3)
    sandbox.run("sync-fulfilment", check_code=0)
    assert [s["total_qty"] for s in shipments(sandbox, order)] == [1]
    assert flight(sandbox) == {("TENT-1", "default"): 2}


def big_order(sandbox, lines=24):
    skus = tuple(f"LINE-{n:02d}" for n in range(lines))
    seed(sandbox, skus=skus)
    order = sandbox.magento.state.place_order([(sku, 1) for sku in skus], customer_email="x@example.com", created_at=old())
    sandbox.run("push-orders", check_code=0)
    return order, by_externalid(sandbox, order["increment_id"])


def test_delivery_of_24_lines_ships_in_parts_within_the_shops_input_limit(sandbox):
    # Input limits on (the sandbox default): more than 20 ship items are refused (magento-api.md §5.1).
    order, sitoo = big_order(sandbox)
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-24")
    assert sandbox.run_json("sync-fulfilment", check_code=0)["counts"]["shipments"] == 2  # Magento shipments made
    sandbox.run("sync-fulfilment", check_code=0)
    found = shipments(sandbox, order)
    assert sorted(len(s["items"]) for s in found) == [4, 20]
    assert sorted(i["order_item_id"] for s in found for i in s["items"]) == sorted(i["item_id"] for i in order["items"])
    assert all([t["track_number"] for t in s["tracks"]] == ["PN-24"] for s in found)
    assert len([e for e in sandbox.magento.state.emails_sent if e["type"] == "shipment"]) == 2  # notify on each part
    assert len(sandbox.magento.control.calls("POST", r"/ship$")) == 2
    state = StateStore(sandbox.state_path)
    assert state.get_mapping("order", "magento", order["increment_id"])["status"] == "shipped"
    assert flight(sandbox) == {}


def test_a_shop_with_a_lower_input_limit_gets_parts_of_its_size(sandbox):
    order, sitoo = big_order(sandbox, lines=12)
    sandbox.magento.state.list_limit = 5
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-12")
    sandbox.run("sync-fulfilment", check_code=0)
    assert sorted(len(s["items"]) for s in shipments(sandbox, order)) == [2, 5, 5]
    ships = sandbox.magento.control.calls("POST", r"/ship$")
    assert len(ships) == 4  # the 12-item POST refused as a whole, then three parts
    sandbox.run("sync-fulfilment", check_code=0)
    assert len(sandbox.magento.control.calls("POST", r"/ship$")) == 4


def test_delivery_cancelled_in_sitoo_after_magento_shipped_it_is_one_ops_exception(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    delivery = sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-9")
    sandbox.run("sync-fulfilment", check_code=0)
    assert len(shipments(sandbox, order)) == 1  # order shipped in full: magsit keeps watching it a while
    sandbox.sitoo.state.cancel_delivery(delivery)
    result = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in result["failures"]] == [
        ("delivery_cancelled_after_shipment", "ops", f"{order['increment_id']}/delivery-{delivery}")
    ]
    sandbox.magento.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)  # raised once, left to a person
    assert sandbox.magento.control.writes() == [] and len(shipments(sandbox, order)) == 1
    state = StateStore(sandbox.state_path)
    assert [e["kind"] for e in state.exceptions()] == ["delivery_cancelled_after_shipment"]


def test_watch_of_shipped_orders_can_be_turned_off(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    delivery = sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-9")
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.configure(orders={"watch_shipped_hours": 0})
    sandbox.sitoo.state.cancel_delivery(delivery)
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    assert sandbox.sitoo.control.calls("GET", r"/orderdeliveries\.json$") == []
