"""sync-returns planning (pure): store return -> credit memo, credit memo -> Sitoo refund order."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from magsit.errors import RecordError
from magsit.sync.returnplan import (
    EXPORT_MARKER,
    CreditMemoPlan,
    creditmemo_externalid,
    is_magsit_memo,
    is_store_return,
    memo_matches,
    original_orderid,
    plan_creditmemo,
    plan_sitoo_refund,
)

ORDER = {
    "entity_id": 5,
    "externalid": "000000005",
    "warehouse_id": 2,
    "email": "anna@example.com",
    "lines": [
        {"item_id": 11, "ship_item_id": 11, "per_parent": 1, "sku": "A", "qty": 2, "sitoo_orderitemid": 0},
        {"item_id": 12, "ship_item_id": 12, "per_parent": 1, "sku": "B", "qty": 1, "sitoo_orderitemid": 1},
    ],
}


def refund(*items: dict, **extra: object) -> dict:
    return {"orderid": 10050, "creditorderid": 10001, "additionaldata": {}, "orderitems": list(items), **extra}


def line(sku: str, qty: int, source: int | None) -> dict:
    data = {} if source is None else {"pos-originalsales-orderitemid": str(source)}
    return {"sku": sku, "quantity": qty, "productname": sku, "additionaldata": data}


def test_original_order_from_creditorderid_or_additionaldata() -> None:
    assert original_orderid({"creditorderid": 10001}) == 10001
    assert original_orderid({"creditorderid": None, "additionaldata": {"pos-originalsales-orderid": "10002"}}) == 10002
    assert original_orderid({"additionaldata": {}}) is None
    assert is_store_return(refund(line("A", -1, 0)))
    assert not is_store_return(refund(line("A", 1, 0)))  # a sale
    assert not is_store_return(refund(line("A", -1, 0), additionaldata={EXPORT_MARKER: "3"}))  # our own export


def test_one_of_two_lines_refunds_exactly_that_line_with_zero_shipping() -> None:
    plan = plan_creditmemo(refund(line("B", -1, 1)), "000000005", ORDER)
    assert isinstance(plan, CreditMemoPlan)
    assert plan.items == {12: 1}
    assert plan.shipping_amount == Decimal(0)
    assert plan.entity_id == 5
    assert "10050" in plan.comment


def test_manual_return_matched_by_sku_and_shipping_only_when_enabled() -> None:
    plan = plan_creditmemo(refund(line("A", -2, None), line("SHIPPING", -1, None)), "000000005", ORDER,
                           shipping_left=Decimal("49"))  # fmt: skip
    assert isinstance(plan, CreditMemoPlan)
    assert plan.items == {11: 2} and plan.shipping_amount == Decimal("49")


def test_unknown_line_is_a_finance_exception() -> None:
    error = plan_creditmemo(refund(line("Z", -1, 9)), "000000005", ORDER)
    assert isinstance(error, RecordError)
    assert (error.kind, error.owner) == ("refund_unmapped_item", "finance")


def test_bundle_parts_refund_the_parent_once() -> None:
    order = {"entity_id": 6, "lines": [
        {"item_id": 21, "ship_item_id": 20, "per_parent": 2, "sku": "P1", "sitoo_orderitemid": 0},
        {"item_id": 22, "ship_item_id": 20, "per_parent": 1, "sku": "P2", "sitoo_orderitemid": 1},
    ]}  # fmt: skip
    plan = plan_creditmemo(refund(line("P1", -2, 0), line("P2", -1, 1)), "6", order)
    assert isinstance(plan, CreditMemoPlan) and plan.items == {20: 1}
    assert isinstance(plan_creditmemo(refund(line("P1", -1, 0)), "6", order), RecordError)


def test_memo_matching_by_marker_then_quantities() -> None:
    plan = plan_creditmemo(refund(line("B", -1, 1)), "000000005", ORDER)
    assert isinstance(plan, CreditMemoPlan)
    ours = {"comments": [{"comment": plan.comment}], "items": [{"order_item_id": 12, "qty": 1}]}
    other = {"comments": [{"comment": "Returned in store. magsit: Sitoo refund order 999"}], "items": [{"order_item_id": 12, "qty": 1}]}
    bare = {"items": [{"order_item_id": 12, "qty": 1}, {"order_item_id": 11, "qty": 0}]}
    assert memo_matches(ours, plan) and not memo_matches(other, plan) and memo_matches(bare, plan)
    assert is_magsit_memo(ours) and not is_magsit_memo(bare)


@given(st.text(min_size=1, max_size=60), st.text(max_size=10))
def test_creditmemo_externalid_always_valid_for_sitoo(increment: str, prefix: str) -> None:
    value = creditmemo_externalid(prefix, increment)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value)
    assert value != creditmemo_externalid(prefix, increment + "x") or len(increment) > 40


def test_creditmemo_becomes_negative_sitoo_refund_order() -> None:
    memo = {"entity_id": 3, "increment_id": "000000003", "order_id": 5, "shipping_amount": 0, "adjustment_positive": 0,
            "adjustment_negative": 0, "items": [{"order_item_id": 11, "qty": 1, "sku": "A", "name": "Shirt",
            "row_total": 100, "tax_amount": 25, "row_total_incl_tax": 125}]}  # fmt: skip
    plan = plan_sitoo_refund(memo, "000000005", 10001, ORDER)
    assert not isinstance(plan, RecordError)
    p = plan.payload
    assert p["externalid"] == "CM-000000003" and p["creditorderid"] == 10001 and p["warehouseid"] == 2
    assert p["additionaldata"]["delivery-ignore-stock"] == "true" and p["additionaldata"][EXPORT_MARKER] == "3"
    assert p["orderstateid"] == 10 and plan.deliver == []
    [item] = p["orderitems"]
    assert item["quantity"] == -1 and item["moneyrowprice"] == "-125.00" and item["vatvalue"] == 25
    assert item["additionaldata"]["pos-originalsales-orderitemid"] == "0"
    stocked = plan_sitoo_refund(memo, "000000005", 10001, ORDER, return_to_stock=True)
    assert not isinstance(stocked, RecordError)
    assert stocked.deliver == [(0, -1)] and stocked.payload["orderstateid"] == 0
    assert "delivery-ignore-stock" not in stocked.payload["additionaldata"]


def test_creditmemo_with_shipping_and_adjustment_lines() -> None:
    memo = {"entity_id": 4, "increment_id": "4", "shipping_amount": 40, "shipping_tax_amount": 10, "shipping_incl_tax": 50,
            "adjustment_positive": 5, "adjustment_negative": 0, "items": []}  # fmt: skip
    plan = plan_sitoo_refund(memo, "000000005", 10001, ORDER)
    assert not isinstance(plan, RecordError)
    prices = [(i["productname"], i["quantity"], i["moneyrowprice"]) for i in plan.payload["orderitems"]]
    assert prices == [("Shipping refund", -1, "-50.00"), ("Refund adjustment", -1, "-5.00")]


def test_creditmemo_of_unknown_line_is_an_exception() -> None:
    memo = {"entity_id": 4, "increment_id": "4", "items": [{"order_item_id": 99, "qty": 1, "sku": "Q", "row_total": 10}]}
    error = plan_sitoo_refund(memo, "000000005", 10001, ORDER)
    assert isinstance(error, RecordError) and error.kind == "creditmemo_unmapped_item"


def test_a_return_over_the_input_limit_is_refunded_in_parts_that_add_up():
    from decimal import Decimal

    from magsit.sync.returnplan import CreditMemoPlan, next_memo_part

    plan = CreditMemoPlan(7, "000000009", 3, {n: 1 for n in range(1, 6)}, Decimal("40"), "Returned. magsit: Sitoo refund order 7")
    done: list[dict] = []
    while (part := next_memo_part(plan, done, 2)) is not None:
        done.append({"memo_id": len(done) + 1, "items": {str(k): v for k, v in part.items.items()}, "shipping": str(part.shipping_amount)})
        assert part.comment.endswith(f"(part {part.part})")
    assert [sorted(map(int, p["items"])) for p in done] == [[1, 2], [3, 4], [5]]
    assert [p["shipping"] for p in done] == ["40", "0", "0"]  # shipping once
    whole = next_memo_part(plan, [], 20)
    assert whole is not None and whole.part == 0 and whole.items == plan.items and whole.comment == plan.comment
    # a part Magento took with fewer items than planned (another limit): the rest follows
    assert next_memo_part(plan, [{"items": {"1": 1}, "shipping": "40"}], 20).items == {2: 1, 3: 1, 4: 1, 5: 1}
