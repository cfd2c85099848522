"""The sandbox request checker against the published Magento and Sitoo schemas (shared/schemas)."""

from __future__ import annotations

from pathlib import Path

import pytest

from magsit.sandbox.common import RequestChecker
from magsit.sandbox.schemacheck import (
    MagentoSchema,
    SitooSchema,
    find_schemas_dir,
    magento_checker,
    sitoo_checker,
)

SCHEMAS = find_schemas_dir()
pytestmark = pytest.mark.skipif(
    SCHEMAS is None,
    reason="shared/schemas not found (set MAGSIT_SCHEMAS_DIR or put shared/ beside the clone)",
)

M = "/rest/default/V1"
S = "/v2/accounts/90001"


@pytest.fixture(scope="module")
def magento() -> RequestChecker:
    checker = magento_checker()
    assert checker is not None
    return checker


@pytest.fixture(scope="module")
def sitoo() -> RequestChecker:
    checker = sitoo_checker()
    assert checker is not None
    return checker


# --- locating the schemas -------------------------------------------------------------------------


def test_find_schemas_dir_from_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGSIT_SCHEMAS_DIR", raising=False)
    repo = Path(__file__).resolve().parents[2]
    found = find_schemas_dir(repo)
    assert found is not None
    assert found.name == "schemas" and found.parent.name == "shared"
    assert (found / "magento" / "admin-schema-2.4.7.json").is_file()
    if Path("/work/main").is_dir() and Path("/work/shared/schemas").is_dir():
        assert find_schemas_dir(Path("/work/main")) == Path("/work/shared/schemas")


def test_find_schemas_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "magento").mkdir()
    monkeypatch.setenv("MAGSIT_SCHEMAS_DIR", str(tmp_path))
    assert find_schemas_dir(Path("/")) == tmp_path.resolve()
    # No Magento file there: the factory reports "no checker" rather than failing.
    assert magento_checker(tmp_path) is None


def test_load_is_cached() -> None:
    assert SCHEMAS is not None
    path = SCHEMAS / "magento" / "admin-schema-2.4.7.json"
    assert MagentoSchema.load(path) is MagentoSchema.load(path)
    sitoo_path = SCHEMAS / "sitoo" / "sitoo-v2-openapi.json"
    assert SitooSchema.load(sitoo_path) is SitooSchema.load(sitoo_path)


# --- Magento bodies -------------------------------------------------------------------------------


def test_source_items_valid(magento: RequestChecker) -> None:
    body = {"sourceItems": [{"sku": "A", "source_code": "default", "quantity": 3, "status": 1}]}
    assert magento("POST", f"{M}/inventory/source-items", [], body) == []


def test_source_items_misspelled_key(magento: RequestChecker) -> None:
    body = {"sourceItems": [{"sku": "A", "source_code": "default", "qty": 3, "status": 1}]}
    violations = magento("POST", f"{M}/inventory/source-items", [], body)
    assert len(violations) == 1
    assert "'qty' was unexpected" in violations[0]
    assert violations[0].startswith("POST /V1/inventory/source-items")


def test_ship_track_without_title(magento: RequestChecker) -> None:
    body = {
        "items": [{"order_item_id": 7, "qty": 1}],
        "tracks": [{"track_number": "1Z999", "carrier_code": "ups"}],
    }
    violations = magento("POST", f"{M}/order/12/ship", [], body)
    assert any("'title' is a required property" in v for v in violations), violations
    body["tracks"][0]["title"] = "UPS"
    assert magento("POST", f"{M}/order/12/ship", [], body) == []


def test_missing_required_body(magento: RequestChecker) -> None:
    assert magento("POST", f"{M}/inventory/source-items", [], None) == [
        "POST /V1/inventory/source-items: missing JSON body"
    ]


def test_custom_attribute_value_may_be_array(magento: RequestChecker) -> None:
    # framework-attribute-interface.value is PHP mixed, rendered "string" in the schema.
    body = {
        "product": {"sku": "A", "custom_attributes": [{"attribute_code": "category_ids", "value": ["3"]}]}
    }
    assert magento("PUT", "/rest/all/V1/products/A", [], body) == []


# --- Magento paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"{M}/products/A%2FB",
        "/rest/V1/products/A%2FB",  # no store code = default store view
        "/rest/all/V1/products/A%2FB",
    ],
)
def test_encoded_slash_is_one_segment(magento: RequestChecker, path: str) -> None:
    assert magento("GET", path, [], None) == []


def test_decoded_slash_is_not_a_sku(magento: RequestChecker) -> None:
    assert magento("GET", f"{M}/products/A/B", [], None) != []


def test_literal_template_preferred(magento: RequestChecker) -> None:
    # /V1/orders/items takes searchCriteria; /V1/orders/{id} takes no query at all.
    assert magento("GET", f"{M}/orders/items", [("searchCriteria[pageSize]", "5")], None) == []
    assert magento("GET", f"{M}/orders/12", [("searchCriteria[pageSize]", "5")], None) != []


def test_unknown_path(magento: RequestChecker) -> None:
    violations = magento("GET", f"{M}/no-such-thing", [], None)
    assert violations and "no such path" in violations[0]
    assert magento("GET", "/V1/products/A", [], None) != []  # not under /rest


def test_wrong_method(magento: RequestChecker) -> None:
    violations = magento("PATCH", f"{M}/products/A", [], None)
    assert len(violations) == 1
    assert "method PATCH not allowed on /V1/products/{sku}" in violations[0]


# --- Magento query --------------------------------------------------------------------------------


def test_search_criteria_snake_and_camel(magento: RequestChecker) -> None:
    snake = [
        ("searchCriteria[filter_groups][0][filters][0][field]", "updated_at"),
        ("searchCriteria[filter_groups][0][filters][0][value]", "2024-05-01 00:00:00"),
        ("searchCriteria[filter_groups][0][filters][0][condition_type]", "gteq"),
        ("searchCriteria[filter_groups][1][filters][2][field]", "status"),
        ("searchCriteria[sort_orders][0][field]", "entity_id"),
        ("searchCriteria[sort_orders][0][direction]", "ASC"),
        ("searchCriteria[page_size]", "100"),
        ("searchCriteria[current_page]", "2"),
        ("fields", "items[entity_id],total_count"),
    ]
    camel = [
        ("searchCriteria[filterGroups][0][filters][0][field]", "updated_at"),
        ("searchCriteria[filterGroups][0][filters][0][conditionType]", "gteq"),
        ("searchCriteria[sortOrders][0][direction]", "ASC"),
        ("searchCriteria[pageSize]", "100"),
        ("searchCriteria[currentPage]", "2"),
    ]
    assert magento("GET", f"{M}/orders", snake, None) == []
    assert magento("GET", f"{M}/orders", camel, None) == []


def test_unknown_query_key(magento: RequestChecker) -> None:
    violations = magento("GET", f"{M}/orders", [("searchCriteria[pageSize]", "10"), ("limit", "10")], None)
    assert violations == ["GET /V1/orders: unknown query parameter 'limit'"]
    assert magento("GET", f"{M}/orders", [("searchCriteria[filterGroup][0][filters][0][field]", "x")], None)


def test_non_integer_page_size(magento: RequestChecker) -> None:
    assert magento("GET", f"{M}/orders", [("searchCriteria[pageSize]", "ten")], None)


# --- Sitoo ----------------------------------------------------------------------------------------


def test_sitoo_order_post(sitoo: RequestChecker) -> None:
    body = {
        "ordertypeid": 10,
        "paymentstateid": 20,
        "warehouseid": 43,
        "externalid": "000000123",
        "additionaldata": {"weborder": "true", "weborder-bopis": "true"},
        "orderitems": [
            {
                "productname": "Shirt blue",
                "sku": "14785-5",
                "quantity": 1,
                "moneyrowprice": "399.00",
                "vatvalue": 25,
                "additionaldata": {"web-itemid": "10"},
            }
        ],
    }
    assert sitoo("POST", f"{S}/sites/1/orders.json", [], body) == []


def test_sitoo_order_post_type_and_required(sitoo: RequestChecker) -> None:
    violations = sitoo(
        "POST", f"{S}/sites/1/orders.json", [], {"orderitems": [{"productname": "x", "quantity": "1"}]}
    )
    assert any("'ordertypeid' is a required property" in v for v in violations), violations
    assert any("is not of type 'integer'" in v for v in violations), violations


def test_sitoo_orders_documented_extra_filters(sitoo: RequestChecker) -> None:
    query = [("externalid", "A"), ("creditorderid", "3")]
    assert sitoo("GET", f"{S}/orders.json", query, None) == []
    assert sitoo("GET", f"{S}/orders.json", [("receiptid", "7"), ("warehouseid", "2,3")], None) == []
    assert sitoo("GET", f"{S}/sites/1/users.json", [("userid", "{432586AA-1}")], None) == []


def test_sitoo_unknown_query(sitoo: RequestChecker) -> None:
    violations = sitoo("GET", f"{S}/sites/1/products.json", [("modifiedsince", "1")], None)
    assert violations == ["GET /sites/{siteid}/products.json: unknown query parameter 'modifiedsince'"]


def test_sitoo_unknown_path_and_method(sitoo: RequestChecker) -> None:
    assert "no such path" in sitoo("GET", f"{S}/sites/1/transactions.json", [], None)[0]
    assert "not a Sitoo v2 path" in sitoo("GET", "/v2/sites.json", [], None)[0]  # no account prefix
    assert "method DELETE not allowed" in sitoo("DELETE", f"{S}/sites/1/orders/5.json", [], None)[0]


def test_sitoo_partial_put_and_nulls(sitoo: RequestChecker) -> None:
    # PUT is partial (sitoo-api.md §2.3) although the spec reuses the POST required list.
    assert sitoo("PUT", f"{S}/sites/1/orders/5.json", [], {"orderstateid": 20}) == []
    batch = [
        {
            "warehouseid": 2,
            "transactiontype": 20,
            "reasoncode": None,  # official example sends null; the spec has no nullable
            "items": [{"sku": "Q100", "decimalquantity": "-13.000"}],
        }
    ]
    assert sitoo("POST", f"{S}/sites/1/warehousetransactions.json", [], batch) == []


def test_sitoo_batch_endpoint_takes_single_item(sitoo: RequestChecker) -> None:
    assert sitoo("POST", f"{S}/sites/1/products.json", [], {"sku": "A", "title": "A"}) == []
    assert sitoo("POST", f"{S}/sites/1/products.json", [], [{"title": "A"}]) != []
