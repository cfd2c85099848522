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
