import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magsit.config import OrderSettings
from magsit.errors import RecordError
from magsit.sync.orderpayload import build_order, normalise_email, sanitise_externalid

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ADDRESS = {
    "firstname": "Anna",
    "lastname": "Berg",
    "street": ["Storgatan 1", "lgh 1102"],
    "postcode": "11122",
    "city": "Stockholm",
    "country_id": "SE",
    "telephone": "0701234567",
}


def simple(item_id, sku, price_incl, qty=1, rate=25, **extra):
    gross = Decimal(str(price_incl)) * qty
    net = (gross / (1 + Decimal(rate) / 100)).quantize(Decimal("0.01"))
    item = {
        "item_id": item_id,
        "sku": sku,
        "name": f"Product {sku}",
        "product_type": "simple",
        "qty_ordered": qty,
        "base_price_incl_tax": str(price_incl),
        "base_row_total_incl_tax": str(gross),
        "base_row_total": str(net),
        "base_tax_amount": str(gross - net),
        "tax_percent": rate,
    }
    item.update(extra)
    return item


def order(items, **extra):
    data = {
        "entity_id": 7,
        "increment_id": "000000007",
        "customer_email": "  Anna.Berg@Example.COM ",
        "customer_firstname": "Anna",
        "customer_lastname": "Berg",
        "customer_id": 3,
        "created_at": "2024-05-01 10:00:00",
        "base_currency_code": "SEK",
        "base_grand_total": "100.00",
        "base_total_paid": "100.00",
        "billing_address": dict(ADDRESS),
        "payment": {"method": "checkmo"},
        "items": items,
        "extension_attributes": {
            "shipping_assignments": [{"shipping": {"address": dict(ADDRESS), "method": "flatrate_flatrate"}}]
        },
    }
    data.update(extra)
    return data


def test_configurable_merges_into_one_line_with_child_sku_and_parent_price():
    parent = simple(10, "TSHIRT-M", 199, product_type="configurable")
    child = {"item_id": 11, "parent_item_id": 10, "sku": "TSHIRT-RED-M", "product_type": "simple", "qty_ordered": 1, "base_price": 0}
    plan = build_order(order([parent, child]), OrderSettings(), now=NOW)
    assert len(plan.payload["orderitems"]) == 1
    line = plan.payload["orderitems"][0]
    assert line["sku"] == "TSHIRT-RED-M"
    assert line["moneyrowprice"] == "199.00" and line["vatvalue"] == 25 and line["quantity"] == 1
    assert line["additionaldata"] == {"web-itemid": "10"}
    assert plan.mapping_data()["lines"][0]["item_id"] == 10


def test_bundle_keeps_children_with_their_dynamic_prices():
    bundle = simple(20, "KIT", 0, qty=2, product_type="bundle")
    bundle.update({"base_row_total_incl_tax": "0", "base_row_total": "0", "base_tax_amount": "0"})
    kids = [
        simple(21, "KIT-A", 50, qty=2, parent_item_id=20),
        simple(22, "KIT-B", 25, qty=4, parent_item_id=20),
    ]
    plan = build_order(order([bundle, *kids]), OrderSettings(shipping_as="fields"), now=NOW)
    skus = [(i["sku"], i["quantity"], i["moneyrowprice"]) for i in plan.payload["orderitems"]]
    assert skus == [("KIT-A", 2, "100.00"), ("KIT-B", 4, "100.00")]
    lines = plan.mapping_data()["lines"]
    assert [(line["ship_item_id"], line["per_parent"]) for line in lines] == [(20, 1), (20, 2)]
    assert plan.payload["orderitems"][1]["additionaldata"] == {"web-itemid": "22", "web-parent-itemid": "20"}


def test_fixed_price_bundle_spreads_parent_money_exactly():
    bundle = simple(20, "KIT", "100.01", qty=1, product_type="bundle")
    kids = [
        {"item_id": 21, "parent_item_id": 20, "sku": "A", "qty_ordered": 1, "base_price": 0},
        {"item_id": 22, "parent_item_id": 20, "sku": "B", "qty_ordered": 1, "base_price": 0},
        {"item_id": 23, "parent_item_id": 20, "sku": "C", "qty_ordered": 1, "base_price": 0},
    ]
    plan = build_order(order([bundle, *kids]), OrderSettings(shipping_as="fields"), now=NOW)
    total = sum(Decimal(i["moneyrowprice"]) for i in plan.payload["orderitems"])
    assert total == Decimal("100.01")


def test_gross_row_price_and_gross_discount_with_decimal():
    # 3 x 33.33 incl. 12 % VAT, 10.00 discount applied on prices incl. tax
    item = {
        "item_id": 1,
        "sku": "FOOD",
        "name": "Food",
        "product_type": "simple",
        "qty_ordered": "3.0000",
        "base_price_incl_tax": "33.33",
        "base_row_total_incl_tax": "99.99",
        "base_row_total": "89.28",
        "base_tax_amount": "9.64",
        "base_discount_tax_compensation_amount": "1.07",
        "base_discount_amount": "10.00",
        "tax_percent": "12.0000",
    }
    line = build_order(order([item]), OrderSettings(), now=NOW).payload["orderitems"][0]
    assert line["moneyrowprice"] == "99.99"
    assert line["moneyrowdiscount"] == "10.00"
    assert line["vatvalue"] == 12 and isinstance(line["vatvalue"], int)
    assert line["quantity"] == 3


def test_fractional_vat_is_a_number_not_float_noise():
    item = simple(1, "X", 10, rate=Decimal("6.5"))
    line = build_order(order([item]), OrderSettings(), now=NOW).payload["orderitems"][0]
    assert line["vatvalue"] == 6.5


def test_shipping_as_service_line_or_fields():
    o = order([simple(1, "X", 100)], base_shipping_incl_tax="49.00", base_shipping_amount="39.20",
              base_shipping_tax_amount="9.80", shipping_description="Flat Rate")
    as_line = build_order(o, OrderSettings(shipping_as="line", shipping_sku="FRAKT"), now=NOW)
    ship = as_line.payload["orderitems"][-1]
    assert (ship["sku"], ship["moneyrowprice"], ship["vatvalue"], ship["productname"]) == ("FRAKT", "49.00", 25, "Flat Rate")
    assert [line["sku"] for line in as_line.mapping_data()["lines"]] == ["X"]  # not stock, not in flight
    as_fields = build_order(o, OrderSettings(shipping_as="fields"), now=NOW)
    assert [i["sku"] for i in as_fields.payload["orderitems"]] == ["X"]
    assert as_fields.payload["additionaldata"]["delivery-moneygross"] == "49.00"


def test_ship_from_store_has_delivery_address_and_tags():
    plan = build_order(order([simple(1, "X", 100)]), OrderSettings(warehouse_id=4), now=NOW)
    body = plan.payload
    assert body["warehouseid"] == 4 and not plan.bopis
    assert body["delivery_address"] == "Storgatan 1" and body["delivery_address2"] == "lgh 1102"
    assert body["delivery_countryid"] == "SE" and body["delivery_zip"] == "11122"
    assert body["additionaldata"]["weborder"] == "true"
    assert body["additionaldata"]["magento-order-id"] == "7"
    assert body["email"] == "anna.berg@example.com"
    assert body["datereserved"] > int(NOW.timestamp())
    assert body["paymentstateid"] == 20 and body["ordertypeid"] == 10


def test_click_and_collect_has_no_delivery_address():
    o = order([simple(1, "X", 100)])
    o["extension_attributes"] = {
        "pickup_location_code": "store-sthlm",
        "shipping_assignments": [{"shipping": {"address": dict(ADDRESS), "method": "instore_pickup"}}],
    }
    plan = build_order(o, OrderSettings(pickup_location_warehouses={"store-sthlm": 43}), now=NOW)
    assert plan.bopis and plan.warehouse_id == 43
    assert not [key for key in plan.payload if key.startswith("delivery_")]
    assert plan.payload["additionaldata"]["weborder-bopis"] == "true"
    assert plan.payload["additionaldata"]["delivery-pickup-warehouseid"] == "43"
    assert "delivery-pickup-externalid" not in plan.payload["additionaldata"]  # never the Magento location code
    with_ext = build_order(o, OrderSettings(pickup_location_warehouses={"store-sthlm": 43}), now=NOW,
                           warehouse_externalids={43: "WH-STHLM", 1: "WH-CENTRAL"})
    assert with_ext.payload["additionaldata"]["delivery-pickup-externalid"] == "WH-STHLM"


def test_unmapped_pickup_location_is_an_ops_exception():
    o = order([simple(1, "X", 100)])
    o["extension_attributes"] = {"pickup_location_code": "nowhere", "shipping_assignments": []}
    with pytest.raises(RecordError) as info:
        build_order(o, OrderSettings(), now=NOW)
    assert (info.value.kind, info.value.owner) == ("unknown_pickup_location", "ops")


def test_shipping_method_picks_the_warehouse():
    plan = build_order(order([simple(1, "X", 100)]), OrderSettings(shipping_method_warehouses={"flatrate_flatrate": 9}), now=NOW)
    assert plan.warehouse_id == 9


def test_missing_address_for_ship_from_store():
    o = order([simple(1, "X", 100)])
    o["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"] = {"street": [], "country_id": "SE"}
    with pytest.raises(RecordError) as info:
        build_order(o, OrderSettings(), now=NOW)
    assert (info.value.kind, info.value.owner) == ("missing_address", "ops")
    assert "street" in info.value.message and "postcode" in info.value.message


def test_guest_order_keeps_email_and_names():
    o = order([simple(1, "X", 100)], customer_id=None, customer_is_guest=1, customer_firstname=None, customer_lastname=None)
    body = build_order(o, OrderSettings(), now=NOW).payload
    assert body["namefirst"] == "Anna" and body["email"] == "anna.berg@example.com"
    assert "magento-customer-id" not in body["additionaldata"]


def test_unpaid_order_is_payment_pending():
    body = build_order(order([simple(1, "X", 100)], base_total_paid="0"), OrderSettings(), now=NOW).payload
    assert body["paymentstateid"] == 10


def test_price_mismatch_warn_pushes_block_raises():
    o = order([simple(1, "X", 80)])
    warn = build_order(o, OrderSettings(price_policy="warn"), now=NOW, sitoo_prices={"X": Decimal("100.00")})
    assert warn.warnings and warn.warnings[0].kind == "price_mismatch" and warn.warnings[0].owner == "finance"
    with pytest.raises(RecordError) as info:
        build_order(o, OrderSettings(price_policy="block"), now=NOW, sitoo_prices={"X": Decimal("100.00")})
    assert info.value.kind == "price_mismatch"
    ok = build_order(o, OrderSettings(), now=NOW, sitoo_prices={"X": Decimal("80.005")})
    assert ok.warnings == []


def test_externalid_examples():
    assert sanitise_externalid("", "000000123") == "000000123"
    assert sanitise_externalid("web-", "000000123") == "web-000000123"
    assert sanitise_externalid("M2:", "100000201-1") == "M2-100000201-1"
    long = sanitise_externalid("a-very-long-prefix-for-this-shop-", "000000000123")
    assert len(long) == 40 and long != sanitise_externalid("a-very-long-prefix-for-this-shop-", "000000000124")


@given(st.text(max_size=30), st.text(min_size=1, max_size=60))
def test_externalid_always_valid_and_stable(prefix, increment_id):
    value = sanitise_externalid(prefix, increment_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value)
    assert value == sanitise_externalid(prefix, increment_id)
    raw = prefix + increment_id
    if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", raw):
        assert value == raw


def test_normalise_email():
    assert normalise_email("  Foo.Bar@EXAMPLE.com\n") == "foo.bar@example.com"
    assert normalise_email(None) == ""
