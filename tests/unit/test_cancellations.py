"""The pure parts of the order lifecycle after the push (issue 16 §2, §3)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from magsit.sync.cancellations import delivered_units, plan
from magsit.sync.reservations import DAY, not_reserving, renewals

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def mapping(inc="000000001", entity_id=1, lines=((("A", 2)),), other_id="10001", created=NOW - timedelta(hours=1), **data):
    return {"external_id": inc, "other_id": other_id, "status": "pushed", "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"entity_id": entity_id, "warehouse_id": 1, "lines": [{"sku": s, "qty": q, "shipped": 0, "canceled": 0} for s, q in lines],
                     **data}}  # fmt: skip


def delivery(qty, ref="T1", cancelled=None):
    return {"orderdeliveryid": 1, "datecancelled": cancelled, "orderdeliveryref": ref,
            "orderdeliveryitems": [{"orderitemid": 0, "quantity": qty}]}  # fmt: skip


def test_plan_per_magento_state_and_sitoo_deliveries():
    open_order = {"orderstateid": 0}
    orders = [
        (mapping("1", 1), open_order, []),  # cancelled in Magento, nothing delivered -> cancel
        (mapping("2", 2), open_order, [delivery(1, "PN-1")]),  # delivered part -> exception
        (mapping("3", 3), {"orderstateid": 20}, []),  # cancelled on both sides -> fulfilment's cancel path
        (mapping("4", 4), open_order, []),  # still processing -> nothing
        (mapping("5", 5), {"orderstateid": 10}, []),  # closed in Sitoo (collected) -> delivered
        (mapping("6", 6), open_order, [delivery(2, cancelled=1)]),  # only a cancelled delivery -> cancel
        (mapping("7", 7), open_order, []),  # fully refunded before shipping -> cancel
        (mapping("8", None), open_order, []),  # no entity id: skipped, never guessed
    ]
    states = {1: "canceled", 2: "canceled", 3: "canceled", 4: "processing", 5: "canceled", 6: "canceled", 7: "closed"}
    got = [(d.action, d.increment_id, d.delivered) for d in plan(orders, {k: {"state": v} for k, v in states.items()})]
    assert got == [("cancel", "1", 0), ("delivered", "2", 1), ("delivered", "5", 2),
                   ("cancel", "6", 0), ("cancel", "7", 0)]  # fmt: skip


def test_delivered_units_skip_cancelled_deliveries():
    assert delivered_units([delivery(2, "A"), delivery(1, "B", cancelled=5), delivery(0, "C")]) == (2, ["A"])


def test_renewals_when_less_than_half_is_left_and_only_for_open_reserved_orders():
    now = int(NOW.timestamp())
    pairs = [
        (mapping("1"), {"orderstateid": 0, "datereserved": now + 8 * DAY}),  # more than half of 14 left
        (mapping("2"), {"orderstateid": 0, "datereserved": now + 6 * DAY}),  # renew
        (mapping("3"), {"orderstateid": 0, "datereserved": now - 60}),  # lapsed: renew
        (mapping("4"), {"orderstateid": 0, "datereserved": None}),  # no reservation asked for
        (mapping("5"), {"orderstateid": 20, "datereserved": now}),  # cancelled
        (mapping("6"), {"orderstateid": 0, "datereserved": "garbage"}),
        ({**mapping("7"), "status": "shipped"}, {"orderstateid": 0, "datereserved": now}),  # magsit is done with it
    ]
    assert [(r.increment_id, r.until) for r in renewals(pairs, now, 14)] == [("2", now + 14 * DAY), ("3", now + 14 * DAY)]
    assert renewals(pairs, now, 0) == []


def test_not_reserving_needs_conclusive_evidence():
    pushed_at = NOW - timedelta(hours=1)
    before = int((pushed_at - timedelta(hours=1)).timestamp())
    after = int((pushed_at + timedelta(minutes=10)).timestamp())
    maps = [mapping("1", lines=(("A", 2), ("B", 1)), created=pushed_at), mapping("2", lines=(("A", 1),), created=pushed_at)]
    # A: 3 units of orders pushed after the last stock movement, only 1 reserved -> evidence
    observed = {("A", "1"): (Decimal(1), before), ("B", "1"): (Decimal(1), before)}
    shortfalls, conclusive = not_reserving(maps, observed, NOW, 14)
    assert [(s.sku, s.warehouse, s.expected, s.reserved) for s in shortfalls] == [("A", "1", Decimal(3), Decimal(1))]
    assert conclusive == 2
    # a stock movement after the push (maybe the delivery): inconclusive, no alert
    assert not_reserving(maps, {("A", "1"): (Decimal(0), after)}, NOW, 14) == ([], 0)
    # an order older than half the reservation time may have lapsed legitimately; adopted orders are older than their mapping
    old = [mapping("3", created=NOW - timedelta(days=8)), mapping("4", created=pushed_at, adopted=True)]
    assert not_reserving(old, {("A", "1"): (Decimal(0), before)}, NOW, 14) == ([], 0)
    # finished orders and shipped units hold nothing
    done = [dict(mapping("5", created=pushed_at), status="shipped")]
    assert not_reserving(done, {("A", "1"): (Decimal(0), before)}, NOW, 14) == ([], 0)


def test_an_original_replaced_by_an_edit_magento_kept_open_is_cancelled_in_sitoo():
    open_order = {"orderstateid": 0}
    orders = [(mapping("1", 1), open_order, []), (mapping("2", 2), open_order, [delivery(1, "PN-1")]),
              (mapping("3", 3), open_order, []), (mapping("4", 4), {"orderstateid": 20}, [])]  # fmt: skip
    rows = {1: {"state": "processing", "relation_child_real_id": "1-1"},  # invoiced: Magento could not cancel it
            2: {"state": "processing", "relation_child_real_id": "2-1"},
            3: {"state": "processing", "relation_child_real_id": None},
            4: {"state": "processing", "relation_child_real_id": "4-1"}}  # already cancelled in Sitoo  # fmt: skip
    got = plan(orders, rows)
    assert [(d.action, d.increment_id, d.magento_state, d.replaced_by) for d in got] == [
        ("cancel", "1", "edited", "1-1"), ("delivered", "2", "edited", "2-1"), ("recorded", "4", "edited", "4-1")]  # fmt: skip
    finance = got[0].still_open()
    assert (finance.kind, finance.owner, finance.key) == ("edited_original_still_open", "finance", "1")
    assert "1-1" in finance.message and "Refund 1" in finance.message
    assert "replaced by its edit 2-1" in got[1].problem().message
