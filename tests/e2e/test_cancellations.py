"""Order lifecycle after the push (issue 16 §2, §3): Magento cancellations reach Sitoo, Sitoo
reservations are renewed before they lapse and never counted when Sitoo does not hold them.
The real CLI against both emulators over HTTP."""

from __future__ import annotations

import time

import pytest

from magsit.state import StateStore
from tests.e2e.test_fulfilment import flight, pushed
from tests.e2e.test_orders import by_externalid, old, seed

pytestmark = pytest.mark.e2e


def mapping(sandbox, increment_id):
    state = StateStore(sandbox.state_path)
    try:
        return state.get_mapping("order", "magento", increment_id)
    finally:
        state.close()


def sitoo_writes(sandbox):
    return [(r.method, r.path, r.body) for r in sandbox.sitoo.control.writes()]


def order_searches(sandbox):
    """GET /V1/orders searches by entity_id (the batched state read)."""
    return [r for r in sandbox.magento.control.calls("GET", r"/V1/orders$") if any("entity_id" in v for _, v in r.query)]


def test_order_cancelled_in_magento_is_cancelled_in_sitoo_once_and_its_units_drop_out_of_stock(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 2)], invoice=False)
    other = sandbox.magento.state.place_order([("SOCK/42", 1)], customer_email="y@example.com", created_at=old())
    sandbox.run("push-orders", check_code=0)
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 2
    sandbox.magento.state.cancel_order(order["entity_id"])
    sandbox.magento.control.clear_log()
    out = sandbox.run_json("sync-fulfilment", check_code=0)
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 20  # cancelled, off the pick list
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 0  # which released the reservation
    assert len(order_searches(sandbox)) == 1  # both open orders' Magento states in one batched read
    assert {"action": "magento_cancel_cancel", "increment_id": order["increment_id"]}.items() <= out["plan"][0].items()
    assert mapping(sandbox, order["increment_id"])["status"] == "canceled"
    assert ("TENT-1", "default") not in flight(sandbox)  # in-flight units gone at once
    assert flight(sandbox) == {("SOCK/42", "default"): 1}
    status = sandbox.run_json("status")
    assert {"job": "sync-fulfilment", "duty": "sends Magento cancellations (and full refunds before shipping) to Sitoo",
            "last_run": {"cancelled_in_sitoo": 1, "cancelled_after_delivery": 0}} in status["duties"]
    assert "sync-fulfilment also sends Magento cancellations" in sandbox.run("status").stdout
    # Stock: Sitoo's 2 × 50 on hand are all sellable again; Magento released its own reservation at
    # the cancel, so nothing is subtracted (no undersell) and nothing is added back twice.
    sandbox.run("sync-stock", "--full", check_code=0)
    assert sandbox.magento.state.salable_qty("TENT-1") == 100
    # Idempotent: another round of every job sends Sitoo no further writes for the order.
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.run("push-orders", check_code=0)
    assert sitoo_writes(sandbox) == []
    assert by_externalid(sandbox, other["increment_id"])["orderstateid"] == 0  # the other order is untouched


def test_killed_after_the_sitoo_cancel_the_rerun_records_it_without_another_write(sandbox, monkeypatch):
    order, sitoo = pushed(sandbox, [("TENT-1", 2)], invoice=False)
    sandbox.magento.state.cancel_order(order["entity_id"])
    monkeypatch.setenv("MAGSIT_CRASH_AT", "cancellations.after_cancel")
    assert sandbox.run("sync-fulfilment").returncode == -9  # SIGKILL after the PUT, before the state commit
    monkeypatch.delenv("MAGSIT_CRASH_AT")
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 20
    assert mapping(sandbox, order["increment_id"])["status"] == "pushed"
    sandbox.sitoo.control.clear_log()
    sandbox.magento.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    assert sitoo_writes(sandbox) == []  # Sitoo already says cancelled: recorded, not sent again
    assert sandbox.magento.control.writes() == []
    assert mapping(sandbox, order["increment_id"])["status"] == "canceled"
    assert flight(sandbox) == {}


def test_full_refund_before_shipping_cancels_the_sitoo_order(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])  # invoiced at checkout
    sandbox.magento.state.refund_order(order["entity_id"])
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "closed"
    sandbox.run("sync-fulfilment", check_code=0)
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 20
    assert flight(sandbox) == {}


def test_cancelled_after_the_store_delivered_part_is_an_ops_exception_and_nothing_is_cancelled(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3)], invoice=False)
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="PN-777")
    sandbox.magento.state.cancel_order(order["entity_id"])
    sandbox.sitoo.control.clear_log()
    result = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in result["failures"]] == [
        ("cancelled_after_delivery", "ops", order["increment_id"])
    ]
    message = result["failures"][0]["message"]
    assert "1 of 3" in message and "PN-777" in message and "Stop the parcel" in message
    assert sitoo_writes(sandbox) == []  # nothing cancelled in Sitoo
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 0
    assert sandbox.magento.state.shipments == {}  # and no shipment of a cancelled order attempted
    assert flight(sandbox) == {}  # Magento no longer holds the order's units
    again = sandbox.run_json("sync-fulfilment", check_code=0)  # no repeat, no writes
    assert again["failures"] == [] and sitoo_writes(sandbox) == []
    listed = sandbox.run_json("exceptions", "list")
    assert [row["kind"] for row in listed] == ["cancelled_after_delivery"]  # open until a person resolves it


def test_edit_order_cancels_the_original_in_sitoo_and_pushes_the_new_one(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)], invoice=False)
    new = sandbox.magento.state.edit_order(order["entity_id"], [("TENT-1", 2)], invoice=False, created_at=old())
    assert new["increment_id"] == f"{order['increment_id']}-1"
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "canceled"
    sandbox.run("push-orders", check_code=0)
    sandbox.run("sync-fulfilment", check_code=0)
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 20
    replacement = by_externalid(sandbox, new["increment_id"])
    assert replacement["orderstateid"] == 0 and [i["quantity"] for i in replacement["orderitems"]] == [2]
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 2  # only the new order holds units
    assert flight(sandbox) == {("TENT-1", "default"): 2}


def test_lapsed_reservation_is_not_counted_and_is_renewed_once(sandbox):
    seed(sandbox)
    order = sandbox.magento.state.place_order([("TENT-1", 2)], customer_email="x@example.com", created_at=old())
    sandbox.run("push-orders", check_code=0)
    sitoo = by_externalid(sandbox, order["increment_id"])
    assert sitoo["datereserved"] > time.time() + 13 * 86400  # now + [orders].reservation_days (14)
    # As if pushed 14 days ago: Sitoo released the units at datereserved (the sandbox does, §5).
    sitoo["datereserved"] = int(time.time()) - 1
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 0
    sandbox.run("sync-stock", "--full", check_code=0)
    # 2 × 50 on hand, 2 of them sold: Magento gets 100 (2 in flight + 98), not 102 (a double count)
    assert sandbox.magento.state.source_items[("default", "tent-1")]["quantity"] == 100
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    (put,) = sandbox.sitoo.control.writes()
    assert put.method == "PUT" and set(put.body) == {"datereserved"} and put.body["datereserved"] > time.time() + 13 * 86400
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 2  # Sitoo holds them again
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    assert sitoo_writes(sandbox) == []  # renewed once, not every run
    sandbox.run("sync-stock", "--full", check_code=0)
    assert sandbox.magento.state.source_items[("default", "tent-1")]["quantity"] == 100
    assert sandbox.magento.state.salable_qty("TENT-1") == 98


def test_reservation_renewed_before_it_lapses(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)], invoice=False)
    sitoo_state = sandbox.sitoo.state.orders[sitoo["orderid"]]
    sitoo_state["datereserved"] = int(time.time()) + 86400  # one day left of 14
    sandbox.sitoo.control.clear_log()
    sandbox.run("sync-fulfilment", check_code=0)
    assert sitoo_state["datereserved"] > time.time() + 13 * 86400
    assert [w[0] for w in sitoo_writes(sandbox)] == ["PUT"]


def test_sitoo_that_does_not_reserve_raises_an_ops_alert_and_units_are_not_counted_twice(sandbox):
    seed(sandbox)
    sandbox.sitoo.state.reserves_orders = False  # no public source says Sitoo reserves for API orders
    # the item's last stock movement lies well before the push (a delivery would be a newer one)
    item = sandbox.sitoo.state._items[(1, "TENT-1")]
    item["datelastmodified"] = int(time.time()) - 3600
    order = sandbox.magento.state.place_order([("TENT-1", 2)], customer_email="x@example.com", created_at=old())
    sandbox.run("push-orders", check_code=0)
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalavailable"] == 50  # nothing reserved
    out = sandbox.run_json("sync-stock", "--full", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in out["failures"]] == [("sitoo_not_reserving", "ops", "sitoo-reservations")]
    assert "TENT-1" in out["failures"][0]["message"]
    # 2 × 50 on hand including the 2 sold: Magento gets 100 (salable 98 after its own reservation), not 102
    assert sandbox.magento.state.source_items[("default", "tent-1")]["quantity"] == 100
    assert sandbox.magento.state.salable_qty("TENT-1") == 98
    # Sitoo starts reserving: the alert resolves itself
    sandbox.sitoo.state.reserves_orders = True
    sitoo = by_externalid(sandbox, order["increment_id"])
    sandbox.sitoo.state.update_order(sitoo["orderid"], {"datereserved": sitoo["datereserved"]})
    sandbox.run("sync-stock", "--full", check_code=0)
    listed = StateStore(sandbox.state_path).exceptions(status="open")
    assert [e for e in listed if e["kind"] == "sitoo_not_reserving"] == []
    assert sandbox.magento.state.source_items[("default", "tent-1")]["quantity"] == 100


def test_refund_after_the_order_shipped_is_no_cancellation(sandbox):
    # sync-fulfilment still watches shipped orders for a while (cancelled deliveries); a credit memo
    # after the shipment closes the Magento order, which is a return, not a cancellation.
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-9")
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.magento.state.refund_order(order["entity_id"])
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "closed"
    sandbox.sitoo.control.clear_log()
    out = sandbox.run_json("sync-fulfilment", check_code=0)
    assert out["failures"] == [] and sitoo_writes(sandbox) == []
    assert mapping(sandbox, order["increment_id"])["status"] == "shipped"
