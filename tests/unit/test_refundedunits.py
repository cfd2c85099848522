"""The pure part of "Magento refunded units the Sitoo order still lists" (sync/refundedunits.py)."""

from magsit.sync.refundedunits import plan, record_key, returned_units

INC = "000000007"
KEY = record_key(INC)


def line(item_id, qty, sku="A", orderitemid=0, ship_item_id=None, per_parent=1, shipped=0, canceled=0):
    return {"item_id": item_id, "ship_item_id": ship_item_id or item_id, "per_parent": per_parent, "sku": sku, "qty": qty,
            "sitoo_orderitemid": orderitemid, "shipped": shipped, "canceled": canceled}  # fmt: skip


def order(lines, **data):
    return {"external_id": INC, "other_id": "10007", "status": "pushed", "data": {"entity_id": 7, "lines": lines, **data}}


def sitoo(*quantities, state=0):
    """Sitoo lines as pushed (web-itemid = Magento item 100 + index); None leaves a line out."""
    items = [{"orderitemid": i, "quantity": q, "additionaldata": {"web-itemid": str(100 + i)}}
             for i, q in enumerate(quantities) if q is not None]  # fmt: skip
    return {"orderstateid": state, "orderitems": items}


def delivered(*per_line):
    return [{"orderdeliveryid": 1, "datecancelled": None,
             "orderdeliveryitems": [{"orderitemid": i, "quantity": q} for i, q in enumerate(per_line) if q]}]  # fmt: skip


def magento(*items, state="processing"):
    return {7: {"entity_id": 7, "state": state,
                "items": [{"item_id": i, "qty_ordered": o, "qty_refunded": r, "qty_canceled": c} for i, o, r, c in items]}}  # fmt: skip


def run(mapping, sitoo_order, deliveries, magento_orders, returned=None, open_keys=(), waiting=()):
    return plan([(mapping, sitoo_order, deliveries)], magento_orders, {INC: returned or {}}, open_keys, waiting)


def take_offs(decisions):
    return [(d.report, {line.sku: line.take_off for line in d.lines if line.take_off}) for d in decisions]


def test_refund_of_undelivered_units_is_reported_with_the_units_to_take_off():
    got = run(order([line(100, 3)]), sitoo(3), [], magento((100, 3, 1, 0)))
    assert take_offs(got) == [(True, {"A": 1})]
    problem = got[0].problem()
    assert (problem.kind, problem.owner, problem.key) == ("refunded_units_open_in_sitoo", "ops", KEY)
    assert "Sitoo order 10007" in problem.message and "A x 1 (Sitoo line 0: 3 -> 2)" in problem.message


def test_only_undelivered_units_are_taken_off_and_a_delivered_order_is_no_task():
    assert take_offs(run(order([line(100, 3)]), sitoo(3), delivered(1), magento((100, 3, 2, 0)))) == [(True, {"A": 2})]
    assert run(order([line(100, 3)]), sitoo(3), delivered(3), magento((100, 3, 1, 0))) == []


def test_store_returns_magsit_refunded_are_no_task():
    assert run(order([line(100, 3)]), sitoo(3), delivered(1), magento((100, 3, 1, 0)), returned={100: 1}) == []


def test_a_magento_cancel_of_uninvoiced_units_counts_like_a_refund():
    assert take_offs(run(order([line(100, 3)]), sitoo(3), [], magento((100, 3, 0, 2)))) == [(True, {"A": 2})]


def test_bundle_children_take_off_their_units_per_bundle():
    lines = [line(101, 2, "KID-A", 0, ship_item_id=100, per_parent=1), line(102, 4, "KID-B", 1, ship_item_id=100, per_parent=2)]
    mapping = order(lines)
    items = [{"orderitemid": 0, "quantity": 2, "additionaldata": {"web-itemid": "101"}},
             {"orderitemid": 1, "quantity": 4, "additionaldata": {"web-itemid": "102"}}]  # fmt: skip
    got = run(mapping, {"orderstateid": 0, "orderitems": items}, [], magento((100, 2, 1, 0), (101, 2, 1, 0), (102, 4, 1, 0)))
    assert take_offs(got) == [(True, {"KID-A": 1, "KID-B": 2})]


def test_reported_once_per_refund():
    reported = order([line(100, 3)], refund_reported={"0": 1})
    assert run(reported, sitoo(3), [], magento((100, 3, 1, 0))) == []  # nothing new: quiet
    assert take_offs(run(reported, sitoo(3), [], magento((100, 3, 2, 0)))) == [(True, {"A": 2})]  # refunded more
    assert run(order([line(100, 3)]), sitoo(3), [], magento((100, 3, 1, 0)), waiting={KEY}) == []  # ignored by a person


def test_sitoo_showing_the_change_settles_the_units_and_resolves_the_row():
    got = run(order([line(100, 3)]), sitoo(2), [], magento((100, 3, 1, 0)), open_keys={KEY})
    assert [(d.report, d.resolve, d.settled) for d in got] == [(False, True, {0: 1})]
    removed = run(order([line(100, 3), line(101, 1, "B", 1)]), sitoo(None, 1), [], magento((100, 3, 3, 0)), open_keys={KEY})
    assert [(d.resolve, d.settled) for d in removed] == [(True, {0: 3})]  # the line was removed in Sitoo
    # settled already and no row open: nothing to do
    assert run(order([line(100, 3, canceled=1)]), sitoo(2), [], magento((100, 3, 1, 0))) == []


def test_units_the_store_delivered_anyway_keep_the_row_open():
    got = run(order([line(100, 3)], refund_reported={"0": 1}), sitoo(3), delivered(3), magento((100, 3, 1, 0)), open_keys={KEY})
    assert got == []


def test_cancelled_orders_belong_elsewhere():
    assert run(order([line(100, 3)]), sitoo(3), [], magento((100, 3, 3, 0), state="closed")) == []  # cancellations step
    edited = magento((100, 3, 1, 0))
    edited[7]["relation_child_real_id"] = f"{INC}-1"
    assert run(order([line(100, 3)]), sitoo(3), [], edited) == []  # replaced by its edit: cancellations step too
    got = run(order([line(100, 3)]), sitoo(3, state=20), [], magento((100, 3, 1, 0)), open_keys={KEY})
    assert [(d.report, d.resolve) for d in got] == [(False, True)]  # cancelled in Sitoo: nothing left to pick


def test_returned_units_come_from_store_return_refund_mappings_only():
    mappings = [
        {"status": "done", "data": {"action": "creditmemo", "increment_id": INC, "items": {"100": 1}}},
        {"status": "pending", "data": {"action": "creditmemo", "increment_id": INC, "items": {"100": 1, "101": 2}}},
        {"status": "retry", "data": {"action": "creditmemo", "increment_id": INC, "items": {"100": 5}}},  # refused
        {"status": "done", "data": {"origin": "magento"}},  # a Magento memo exported to Sitoo
    ]
    assert returned_units(mappings) == {INC: {100: 2, 101: 2}}
