from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magsit.config import ProductSettings
from magsit.sync.productplan import magento_price, plan

S = ProductSettings(tax_classes={"2": 2}, barcode_attribute="ean")


def sitoo(sku="A", **kw):
    base = {"productid": 1, "sku": sku, "title": "Shirt", "moneyprice": "125.00", "activepos": True, "vatid": 2, "vatvalue": 25, "barcode": "123"}
    base.update(kw)
    return base


def magento(sku="A", **kw):
    base = {
        "sku": sku,
        "name": "Shirt",
        "price": 100,
        "status": 1,
        "custom_attributes": [{"attribute_code": "ean", "value": "123"}, {"attribute_code": "tax_class_id", "value": "2"}],
    }
    base.update(kw)
    return base


def test_unchanged_product_writes_nothing():
    result = plan([sitoo()], {"a": magento()}, S)
    assert result.changes == [] and result.problems == [] and result.unchanged == ["A"]


def test_only_changed_fields_are_written_price_separately():
    result = plan([sitoo(title="Shirt blue", moneyprice="150.00", activepos=False)], {"a": magento()}, S)
    (change,) = result.changes
    assert change.product == {"sku": "A", "name": "Shirt blue", "status": 2}
    assert change.price == Decimal("120.00")  # Sitoo's gross 150.00 at 25 % VAT
    assert set(change.changes) == {"name", "status", "price"}


def test_missing_product_reported_or_created():
    result = plan([sitoo()], {}, S)
    assert [(p.kind, p.owner) for p in result.problems] == [("product_missing_in_magento", "ecommerce")]
    created = plan([sitoo()], {}, S.model_copy(update={"create_missing": True}), website_id=1)
    (change,) = created.changes
    assert change.action == "create" and change.product["price"] == 100.0  # net of Sitoo's gross 125.00
    assert change.product["extension_attributes"] == {"website_ids": [1]}


def test_unmapped_vatid_is_an_exception_but_other_fields_still_sync():
    result = plan([sitoo(vatid=9, title="New")], {"a": magento()}, S)
    assert [p.kind for p in result.problems] == ["unmapped_tax_class"]
    assert result.changes[0].product["name"] == "New"


def test_status_from_modes():
    both = S.model_copy(update={"status_from": "both"})
    assert plan([sitoo(activepos=True, active=False)], {"a": magento()}, both).changes[0].product["status"] == 2
    active = S.model_copy(update={"status_from": "active"})
    assert plan([sitoo(activepos=False, active=True)], {"a": magento()}, active).changes == []


garbage = st.one_of(st.none(), st.text(max_size=6), st.integers(min_value=-(10**30), max_value=10**30), st.floats(), st.booleans())


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"sku": st.one_of(garbage, st.sampled_from(["A/B", "A B", "A+B", "ÅÄÖ"])), "title": garbage, "moneyprice": garbage,
             "activepos": garbage, "vatid": garbage, "vatvalue": garbage, "barcode": garbage}
        ),
        max_size=6,
    ),
    st.dictionaries(st.sampled_from(["a/b", "a b", "a+b", "åäö"]), st.fixed_dictionaries({"sku": garbage, "name": garbage, "price": garbage, "status": garbage}), max_size=3),
)
def test_garbage_never_crashes_and_changes_are_real(products, current):
    result = plan(products, current, S)
    for change in result.changes:
        assert change.changes  # never an empty write
        assert change.price is None or change.price >= 0
        if change.action == "update":
            assert change.product == {} or change.product["sku"]


# -- gross (Sitoo) vs net (Magento) prices ----------------------------------------------------------
def test_gross_sitoo_price_becomes_net_magento_price_by_the_products_own_vat():
    assert plan([sitoo()], {"a": magento(price=100)}, S).changes == []  # 125.00 gross = 100 net: nothing to write
    (change,) = plan([sitoo()], {"a": magento(price=125)}, S).changes  # the gross price copied before: corrected
    assert change.price == Decimal("100.00") and change.changes["price"] == {"from": Decimal("125.00"), "to": Decimal("100.00")}
    (change,) = plan([sitoo(moneyprice="106.00", vatid=4, vatvalue=6)], {"a": magento(price=1)}, S.model_copy(update={"tax_classes": {}})).changes
    assert change.price == Decimal("100.00")
    (change,) = plan([sitoo(vatvalue=0)], {"a": magento()}, S).changes
    assert change.price == Decimal("125.00")


def test_net_price_rounds_half_up_to_cents_and_is_compared_at_cent_precision():
    assert magento_price(Decimal("10.01"), Decimal(25), False) == Decimal("8.01")  # 8.008
    assert magento_price(Decimal("0.05"), Decimal(25), False) == Decimal("0.04")  # 0.04 exactly
    assert magento_price(Decimal("0.625"), Decimal(25), False) == Decimal("0.50")
    assert magento_price(Decimal("1.25"), Decimal(150), False) == Decimal("0.50")
    assert magento_price(Decimal("0.10"), Decimal(12), False) == Decimal("0.09")  # 0.0893
    assert magento_price(Decimal("99.99"), Decimal(12), False) == Decimal("89.28")  # 89.2768
    assert magento_price(Decimal("99.99"), None, False) is None
    assert magento_price(Decimal("99.99"), None, True) == Decimal("99.99")
    # Magento stores the price with more decimals (DECIMAL(20,6)): no endless rewrite of 89.28
    for have in (89.28, "89.280000", "89.2800001", 89.279999):
        assert plan([sitoo(moneyprice="99.99", vatvalue=12)], {"a": magento(price=have)}, S).changes == []


def test_prices_including_tax_are_copied_as_they_are():
    gross = S.model_copy(update={"magento_prices_include_tax": True})
    assert plan([sitoo()], {"a": magento(price=125)}, gross).changes == []
    (change,) = plan([sitoo()], {"a": magento(price=100)}, gross).changes
    assert change.price == Decimal("125.00")
    assert plan([sitoo(vatvalue=None)], {"a": magento(price=125)}, gross).problems == []  # no VAT rate needed


def test_missing_vat_rate_is_an_exception_not_a_guess():
    for bad in (None, "", "x", -5, 250, True):
        result = plan([sitoo(vatvalue=bad, title="New")], {"a": magento(price=125)}, S)
        assert [(p.kind, p.owner, p.key) for p in result.problems] == [("missing_vat_rate", "ecommerce", "A (price)")]
        (change,) = result.changes  # the other fields still sync, the price is left alone
        assert change.price is None and change.product["name"] == "New" and "price" not in change.changes
    created = plan([sitoo(vatvalue=None)], {}, S.model_copy(update={"create_missing": True}))
    assert created.changes == [] and [p.kind for p in created.problems] == ["missing_vat_rate"]  # never created at price 0
