"""What happens to an order after the push when Magento takes part of it back (brief "refunds"):
a partial refund of units not delivered yet reaches ops as one specific task, and resolves itself
once the Sitoo order shows the change. The real CLI against both emulators over HTTP."""

from __future__ import annotations

import pytest

from magsit.state import StateStore
from tests.e2e.test_cancellations import mapping, sitoo_writes
from tests.e2e.test_fulfilment import flight, pushed, shipments
from tests.e2e.test_orders import by_externalid, old

pytestmark = pytest.mark.e2e

KIND = "refunded_units_open_in_sitoo"


def item_id(order, sku):
    return next(i["item_id"] for i in order["items"] if i["sku"] == sku and not i.get("parent_item_id"))


def open_rows(sandbox, kind=KIND):
    state = StateStore(sandbox.state_path)
    try:
        return state.exceptions(status="open", kind=kind)
    finally:
        state.close()


def test_partial_refund_before_delivery_is_one_ops_task_and_settles_when_sitoo_shows_it(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3), ("SOCK/42", 1)])  # invoiced at checkout
    orderid, inc = sitoo["orderid"], order["increment_id"]
    tent_line = next(i["orderitemid"] for i in sitoo["orderitems"] if i["sku"] == "TENT-1")
    sandbox.magento.state.refund_order(order["entity_id"], items=[{"order_item_id": item_id(order, "TENT-1"), "qty": 1}],
                                       shipping_amount=0)  # fmt: skip
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "processing"
    before = mapping(sandbox, inc)
    sandbox.sitoo.control.clear_log()

    # A dry run names the task and records nothing.
    dry = sandbox.run_json("sync-fulfilment", "--dry-run", check_code=3)
    assert [(f["kind"], f["key"]) for f in dry["failures"]] == [(KIND, f"{inc}/refunded-units")]
    assert open_rows(sandbox) == [] and mapping(sandbox, inc) == before

    out = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in out["failures"]] == [(KIND, "ops", f"{inc}/refunded-units")]
    message = out["failures"][0]["message"]
    assert f"Sitoo order {orderid}" in message and "TENT-1 x 1" in message and "3 -> 2" in message
    assert "SOCK/42" not in message and "Backoffice" in message
    assert sitoo_writes(sandbox) == []  # no line edit is sent: Sitoo documents none
    assert flight(sandbox)[("TENT-1", "default")] == 3  # Sitoo still holds the 3 units

    # Once per refund, not once per run: the next run is quiet and the row stays open.
    again = sandbox.run_json("sync-fulfilment", check_code=0)
    assert again["failures"] == [] and len(open_rows(sandbox)) == 1

    # Ops lower the line in Backoffice: the row resolves itself and the unit leaves the in-flight count.
    sandbox.sitoo.state.lower_lines(orderid, {tent_line: 2})
    sandbox.run("sync-fulfilment", check_code=0)
    assert open_rows(sandbox) == []
    assert flight(sandbox)[("TENT-1", "default")] == 2
    tent = next(line for line in mapping(sandbox, inc)["data"]["lines"] if line["sku"] == "TENT-1")
    assert (tent["qty"], tent["canceled"]) == (3, 1)

    # The store delivers what is left; Magento ships exactly that and the order is finished.
    sandbox.sitoo.state.deliver(orderid, ref="PN-42")
    sandbox.run("sync-fulfilment", check_code=0)
    (shipment,) = shipments(sandbox, order)
    assert sorted((i["sku"], i["qty"]) for i in shipment["items"]) == [("SOCK/42", 1), ("TENT-1", 2)]
    assert mapping(sandbox, inc)["status"] == "closed" and flight(sandbox) == {}
    assert sitoo_writes(sandbox) == []


def test_a_second_refund_is_a_new_task_and_a_cancelled_sitoo_order_resolves_it(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3)])
    tent = item_id(order, "TENT-1")
    sandbox.magento.state.refund_order(order["entity_id"], items=[{"order_item_id": tent, "qty": 1}], shipping_amount=0)
    sandbox.run("sync-fulfilment", check_code=3)
    sandbox.magento.state.refund_order(order["entity_id"], items=[{"order_item_id": tent, "qty": 1}], shipping_amount=0)
    out = sandbox.run_json("sync-fulfilment", check_code=3)
    assert "TENT-1 x 2" in out["failures"][0]["message"] and "3 -> 1" in out["failures"][0]["message"]
    assert len(open_rows(sandbox)) == 1  # the same row, refreshed
    sandbox.sitoo.state.cancel_order(sitoo["orderid"])  # ops cancel the whole order instead
    sandbox.run("sync-fulfilment")
    assert open_rows(sandbox) == []


def delivered_one_of_three_and_returned_it_in_a_store(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 3)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="PN-1")
    sandbox.run("sync-fulfilment", check_code=0)
    store = sandbox.sitoo.state.add_store("Returns desk")
    sandbox.sitoo.state.add_register(store, sitoo["warehouseid"], "Till 1")
    sandbox.sitoo.state.store_return(sitoo["orderid"], [{"orderitemid": 0, "quantity": 1}])
    sandbox.run("sync-returns", check_code=0)
    return order, sitoo


def test_a_store_return_of_a_delivered_unit_is_no_task(sandbox):
    # The credit memo magsit books for a store return refunds a unit the customer had: nothing to
    # take off the Sitoo order for it.
    order, _ = delivered_one_of_three_and_returned_it_in_a_store(sandbox)
    assert sandbox.magento.state.orders[order["entity_id"]]["items"][0]["qty_refunded"] == 1
    out = sandbox.run_json("sync-fulfilment", check_code=0)
    assert out["failures"] == [] and open_rows(sandbox) == []


def test_edit_of_an_invoiced_order_cancels_the_sitoo_original_and_tells_finance(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])  # invoiced at checkout: Magento cannot cancel it
    new = sandbox.magento.state.edit_order(order["entity_id"], [("TENT-1", 2)], created_at=old())
    assert sandbox.magento.state.orders[order["entity_id"]]["state"] == "processing"
    sandbox.run("push-orders", check_code=0)
    replacement = by_externalid(sandbox, new["increment_id"])
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 3  # both orders would be picked
    sandbox.sitoo.control.clear_log()
    out = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in out["failures"]] == [
        ("edited_original_still_open", "finance", order["increment_id"])
    ]
    message = out["failures"][0]["message"]
    assert new["increment_id"] in message and str(sitoo["orderid"]) in message and "Refund" in message
    assert sandbox.sitoo.state.orders[sitoo["orderid"]]["orderstateid"] == 20  # the original leaves the pick list
    assert replacement["orderstateid"] == 0
    assert sandbox.sitoo.state.item(1, "TENT-1")["decimalreserved"] == 2  # only the edit holds units
    assert flight(sandbox) == {("TENT-1", "default"): 2}
    assert mapping(sandbox, order["increment_id"])["status"] == "canceled"
    assert sandbox.magento.state.shipments == {}
    # Once: the next run writes nothing and raises nothing; the row waits for finance.
    sandbox.sitoo.control.clear_log()
    again = sandbox.run_json("sync-fulfilment", check_code=0)
    assert again["failures"] == [] and sitoo_writes(sandbox) == []
    assert [r["kind"] for r in open_rows(sandbox, "edited_original_still_open")] == ["edited_original_still_open"]


def test_edit_of_an_invoiced_order_the_store_delivered_in_part_is_an_ops_exception(sandbox):
    order, sitoo = pushed(sandbox, [("TENT-1", 2)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 1)], ref="PN-5")
    new = sandbox.magento.state.edit_order(order["entity_id"], [("TENT-1", 1)], created_at=old())
    sandbox.run("push-orders", check_code=0)
    sandbox.sitoo.control.clear_log()
    out = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["key"]) for f in out["failures"]] == [("cancelled_after_delivery", order["increment_id"])]
    message = out["failures"][0]["message"]
    assert f"replaced by its edit {new['increment_id']}" in message and "1 of 2" in message and "PN-5" in message
    assert sitoo_writes(sandbox) == []  # nothing cancelled: a person decides


def test_killed_after_cancelling_an_edited_original_the_rerun_records_it_for_finance(sandbox, monkeypatch):
    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    sandbox.magento.state.edit_order(order["entity_id"], [("TENT-1", 2)], created_at=old())
    sandbox.run("push-orders", check_code=0)
    monkeypatch.setenv("MAGSIT_CRASH_AT", "cancellations.after_cancel")
    assert sandbox.run("sync-fulfilment").returncode == -9  # SIGKILL after the PUT, before the state commit
    monkeypatch.delenv("MAGSIT_CRASH_AT")
    sandbox.sitoo.control.clear_log()
    sandbox.magento.control.clear_log()
    out = sandbox.run_json("sync-fulfilment", check_code=3)
    assert [(f["kind"], f["owner"]) for f in out["failures"]] == [("edited_original_still_open", "finance")]
    assert sitoo_writes(sandbox) == [] and sandbox.magento.control.writes() == []  # no cancel, no comment
    assert mapping(sandbox, order["increment_id"])["status"] == "canceled"


def test_the_rest_of_an_order_is_shipped_after_a_store_return_of_a_delivered_unit(sandbox):
    # Magento counts refunded units against what is left to ship (Order\Item::getSimpleQtyToShip():
    # ordered - shipped - refunded - canceled). After a store return of a delivered unit, the store
    # delivering the rest must still reach Magento as far as Magento lets it (with the tracking), not
    # fail the whole delivery over a unit Magento holds as refunded.
    order, sitoo = delivered_one_of_three_and_returned_it_in_a_store(sandbox)
    sandbox.sitoo.state.deliver(sitoo["orderid"], items=[(0, 2)], ref="PN-2")
    out = sandbox.run_json("sync-fulfilment", check_code=0)
    assert out["failures"] == []
    item = sandbox.magento.state.orders[order["entity_id"]]["items"][0]
    assert (item["qty_shipped"], item["qty_refunded"]) == (2, 1)  # all Magento can still ship: 3 - 1 - 1
    assert [t["track_number"] for s in shipments(sandbox, order) for t in s.get("tracks", [])] == ["PN-1", "PN-2"]
    assert sandbox.run_json("sync-fulfilment", check_code=0)["failures"] == []  # settled, nothing retried
