from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magsit.config import ProductSettings
from magsit.sync.productplan import plan

S = ProductSettings(tax_classes={"2": 2}, barcode_attribute="ean")


def sitoo(sku="A", **kw):
    base = {"productid": 1, "sku": sku, "title": "Shirt", "moneyprice": "100.00", "activepos": True, "vatid": 2, "barcode": "123"}
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
    result = plan([sitoo(title="Shirt blue", moneyprice="120.00", activepos=False)], {"a": magento()}, S)
    (change,) = result.changes
    assert change.product == {"sku": "A", "name": "Shirt blue", "status": 2}
    assert change.price == Decimal("120.00")
    assert set(change.changes) == {"name", "status", "price"}


def test_missing_product_reported_or_created():
    result = plan([sitoo()], {}, S)
    assert [(p.kind, p.owner) for p in result.problems] == [("product_missing_in_magento", "ecommerce")]
    created = plan([sitoo()], {}, S.model_copy(update={"create_missing": True}), website_id=1)
    (change,) = created.changes
    assert change.action == "create" and change.product["price"] == 100.0
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
             "activepos": garbage, "vatid": garbage, "barcode": garbage}
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
