"""The Magento emulator over real HTTP: the behaviours of magento-api.md the clients rely on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from magsit.sandbox.magento import MagentoSandbox, MagentoState

AUTH = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture
def mg() -> Iterator[MagentoSandbox]:
    state = MagentoState()
    state.clock = lambda: datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    state.add_source("store1", "Store 1")
    state.add_product("A1", "Alpha", 100)
    state.add_product("B2", "Beta", 50)
    state.add_product("TEE-S", "Tee S", 20)
    state.add_product("TEE", "Tee", 20, type_id="configurable", children=["TEE-S"])
    state.set_source_item("A1", "default", 10)
    state.set_source_item("B2", "default", 5)
    state.set_source_item("TEE-S", "default", 8)
    with MagentoSandbox(state) as sandbox:
        yield sandbox


def call(mg: MagentoSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", AUTH)
    return requests.request(method, f"{mg.url}/rest/V1/{path}", headers=headers, timeout=5, **kwargs)


def crit(*filters: tuple[str, Any, str], group: bool = False, **extra: Any) -> dict[str, Any]:
    """searchCriteria query params; each filter its own group (AND) unless group=True (OR)."""
    params: dict[str, Any] = {}
    for n, (field, value, cond) in enumerate(filters):
        g, f = (0, n) if group else (n, 0)
        base = f"searchCriteria[filter_groups][{g}][filters][{f}]"
        params[f"{base}[field]"] = field
        params[f"{base}[value]"] = value
        params[f"{base}[condition_type]"] = cond
    for key, value in extra.items():
        params[f"searchCriteria[{key}]"] = value
    return params


# -- routing, auth ------------------------------------------------------------------------------
def test_unknown_route_and_store_prefixes(mg: MagentoSandbox) -> None:
    r = call(mg, "GET", "nothing/here")
    assert r.status_code == 404 and r.json() == {"message": "Request does not match any route."}
    for prefix in ("rest/default/V1", "rest/all/V1", "rest/V1"):
        assert requests.get(f"{mg.url}/{prefix}/products/A1", headers=AUTH, timeout=5).json()["sku"] == "A1"
    assert requests.get(f"{mg.url}/rest/nostore/V1/products/A1", headers=AUTH, timeout=5).status_code == 404


def test_bearer_flag_off_gives_acl_looking_401(mg: MagentoSandbox) -> None:
    mg.state.bearer_enabled = False
    r = call(mg, "GET", "products/A1")
    assert r.status_code == 401
    body = r.json()
    assert body["message"] == "The consumer isn't authorized to access %resources."
    assert body["parameters"] == {"resources": "Magento_Catalog::products"}
    mg.state.bearer_enabled = True
    assert call(mg, "GET", "products/A1", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert call(mg, "GET", "products/A1", headers={}).status_code == 401
    assert call(mg, "GET", "products/A1", headers={"Authorization": "bearer sandbox-token"}).status_code == 200


def _oauth(state: MagentoState, secret: str | None = None) -> OAuth1:
    keys = state.oauth
    return OAuth1(
        keys["consumer_key"],
        client_secret=secret or keys["consumer_secret"],
        resource_owner_key=keys["access_token"],
        resource_owner_secret=keys["access_token_secret"],
        signature_method=SIGNATURE_HMAC_SHA256,
    )


def test_oauth_signature_accepted_and_rejected(mg: MagentoSandbox) -> None:
    mg.state.bearer_enabled = False  # OAuth works without the Bearer flag
    params = crit(("sku", "A%", "like"), pageSize=5, currentPage=1)
    r = requests.get(f"{mg.url}/rest/V1/products", params=params, auth=_oauth(mg.state), timeout=5)
    assert r.status_code == 200, r.text
    assert [p["sku"] for p in r.json()["items"]] == ["A1"]
    # JSON body is not signed; a write works too.
    body = {"sourceItems": [{"sku": "A1", "source_code": "default", "quantity": 3, "status": 1}]}
    r = requests.post(f"{mg.url}/rest/V1/inventory/source-items", json=body, auth=_oauth(mg.state), timeout=5)
    assert r.status_code == 200 and r.json() == []
    r = requests.get(f"{mg.url}/rest/V1/products", params=params, auth=_oauth(mg.state, "wrong-secret"), timeout=5)
    assert r.status_code == 401
    assert r.json() == {"message": "The signature is invalid. Verify and try again."}


def test_sku_path_segments_are_urldecoded(mg: MagentoSandbox) -> None:
    mg.state.add_product("A/B", "Slash", 1)
    mg.state.add_product("A B", "Space", 2)
    mg.state.add_product("A+B", "Plus", 3)
    r = call(mg, "GET", "products/A%2FB")  # a default Apache refuses %2F before Magento runs (§13)
    assert r.status_code == 404 and "Not Found" in r.text
    mg.state.allow_encoded_slashes = True  # AllowEncodedSlashes NoDecode
    assert call(mg, "GET", "products/A%2FB").json()["name"] == "Slash"
    assert call(mg, "GET", "products/A%2BB").json()["name"] == "Plus"
    # A raw "+" is urldecode()d to a space.
    assert call(mg, "GET", "products/A+B").json()["name"] == "Space"
    r = call(mg, "GET", "products/NOPE")
    assert r.status_code == 404
    assert r.json()["message"] == "The product that was requested doesn't exist. Verify the product and try again."


# -- searchCriteria -----------------------------------------------------------------------------
def test_paging_repeats_last_page_and_counts_unpaged(mg: MagentoSandbox) -> None:
    for n in range(5):
        mg.state.add_product(f"P{n}", f"P {n}", 1)
    params = crit(("sku", "P%", "like"), pageSize=2, currentPage=3)
    params["searchCriteria[sortOrders][0][field]"] = "sku"
    params["searchCriteria[sortOrders][0][direction]"] = "ASC"
    page3 = call(mg, "GET", "products", params=params).json()
    assert page3["total_count"] == 5 and [p["sku"] for p in page3["items"]] == ["P4"]
    params["searchCriteria[currentPage]"] = 100
    assert call(mg, "GET", "products", params=params).json()["items"] == page3["items"]
    params["searchCriteria[currentPage]"] = 0
    assert [p["sku"] for p in call(mg, "GET", "products", params=params).json()["items"]] == ["P0", "P1"]
    echoed = page3["search_criteria"]
    assert echoed["page_size"] == 2 and echoed["filter_groups"][0]["filters"][0]["condition_type"] == "like"


def test_camel_and_snake_keys_or_groups_and_default_sort(mg: MagentoSandbox) -> None:
    camel = {
        "searchCriteria[filterGroups][0][filters][0][field]": "sku",
        "searchCriteria[filterGroups][0][filters][0][value]": "A1",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "eq",
        "searchCriteria[filterGroups][0][filters][1][field]": "sku",
        "searchCriteria[filterGroups][0][filters][1][value]": "B2",
        "searchCriteria[pageSize]": 10,
    }
    r = call(mg, "GET", "products", params=camel).json()
    # OR within a group; no sortOrders -> DESC by id.
    assert [p["sku"] for p in r["items"]] == ["B2", "A1"]
    snake = crit(("sku", "A1,B2,TEE", "in"), ("price", "60", "lt"), page_size=10)
    assert [p["sku"] for p in call(mg, "GET", "products", params=snake).json()["items"]] == ["TEE", "B2"]
    nin = crit(("sku", "A1,B2", "nin"), ("type_id", "simple", "eq"))
    assert [p["sku"] for p in call(mg, "GET", "products", params=nin).json()["items"]] == ["TEE-S"]
    assert call(mg, "GET", "products", params=crit(("price", "50", "from"), ("price", "100", "to"))).json()["total_count"] == 2
    assert call(mg, "GET", "products", params=crit(("weight", "", "null"))).json()["total_count"] == 4
    assert call(mg, "GET", "products", params=crit(("sku", "x", "bogus"))).status_code == 500


def test_fields_projection(mg: MagentoSandbox) -> None:
    r = call(mg, "GET", "products", params={**crit(("sku", "A1", "eq")), "fields": "items[sku,extension_attributes[website_ids]],total_count"})
    assert r.json() == {"items": [{"sku": "A1", "extension_attributes": {"website_ids": [1]}}], "total_count": 1}


def test_input_limits(mg: MagentoSandbox) -> None:
    for n in range(25):
        mg.state.add_product(f"L{n}", "L", 1)
    assert mg.state.input_limits  # on by default: the strictest shop (magento-api.md §5.1)
    assert len(call(mg, "GET", "products").json()["items"]) == 20
    mg.state.input_limits = False
    assert len(call(mg, "GET", "products").json()["items"]) == 29  # limits off: everything
    mg.state.input_limits = True
    r = call(mg, "GET", "products", params={"searchCriteria[pageSize]": 301})
    assert r.status_code == 400
    assert r.json() == {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}
    items = [{"sku": f"L{n}", "source_code": "default", "quantity": 1, "status": 1} for n in range(21)]
    r = call(mg, "POST", "inventory/source-items", json={"sourceItems": items})
    assert r.status_code == 400
    assert r.json()["message"] == 'Maximum items of type "%type" is %max'
    assert r.json()["parameters"] == {"type": "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface", "max": 20}
    assert call(mg, "POST", "inventory/source-items", json={"sourceItems": items[:20]}).status_code == 200


# -- body validation ----------------------------------------------------------------------------
def test_unknown_body_key_is_masked_500_and_bad_type_400(mg: MagentoSandbox) -> None:
    r = call(mg, "POST", "inventory/source-items", json={"sourceItems": [{"sku": "A1", "source_code": "default", "qty": 3, "status": 1}]})
    assert r.status_code == 500
    assert r.json()["message"].startswith("Internal Error. Details are available in Magento log file. Report ID: webapi-")
    assert call(mg, "PUT", "products/A1", json={"product": {"name": "x", "colour": "red"}}).status_code == 500
    assert call(mg, "POST", "order/1/ship", json={"itemz": []}).status_code == 500
    r = call(mg, "PUT", "products/A1", json={"product": {"price": "cheap"}})
    assert r.status_code == 400 and "type is invalid" in r.json()["message"]
    assert mg.state.source_quantity("A1", "default") == 10


# -- inventory ----------------------------------------------------------------------------------
def test_source_items_batch_orphans_and_failures(mg: MagentoSandbox) -> None:
    ok = {"sourceItems": [{"sku": "A1", "source_code": "store1", "quantity": 4, "status": 1}, {"sku": "GHOST", "source_code": "default", "quantity": 2, "status": 1}]}
    r = call(mg, "POST", "inventory/source-items", json=ok)
    assert r.status_code == 200 and r.json() == []
    assert mg.state.source_quantity("A1", "store1") == 4
    assert mg.state.orphan_source_items() == [{"sku": "GHOST", "source_code": "default", "quantity": 2, "status": 1}]
    bad = {"sourceItems": [{"sku": "A1", "source_code": "default", "quantity": 99, "status": 1}, {"sku": "", "source_code": "default", "quantity": 1, "status": 1}]}
    r = call(mg, "POST", "inventory/source-items", json=bad)
    assert r.status_code == 400
    assert r.json()["message"] == 'Validation Failed: "sku" can not be empty.'
    assert r.json()["errors"] == [{"message": '"%field" can not be empty.', "parameters": {"field": "sku"}}]
    assert mg.state.source_quantity("A1", "default") == 10  # nothing of the batch saved
    unknown = {"sourceItems": [{"sku": "A1", "source_code": "default", "quantity": 99, "status": 1}, {"sku": "B2", "source_code": "nowhere", "quantity": 1, "status": 1}]}
    r = call(mg, "POST", "inventory/source-items", json=unknown)
    assert r.status_code == 400 and r.json() == {"message": "Could not save Source Item"}
    assert mg.state.source_quantity("A1", "default") == 10
    listed = call(mg, "GET", "inventory/source-items", params=crit(("sku", "A1", "eq"))).json()
    assert listed["total_count"] == 2
    r = call(mg, "POST", "inventory/source-items-delete", json={"sourceItems": [{"sku": "GHOST", "source_code": "default"}]})
    assert r.json() == [] and mg.state.orphan_source_items() == []


def test_legacy_stock_item_writes_default_source(mg: MagentoSandbox) -> None:
    assert call(mg, "GET", "stockItems/B2").json()["qty"] == 5
    r = call(mg, "PUT", "products/B2/stockItems/1", json={"stockItem": {"qty": 7, "is_in_stock": True}})
    assert r.status_code == 200 and isinstance(r.json(), int)
    assert mg.state.source_quantity("B2", "default") == 7
    assert call(mg, "GET", "inventory/get-product-salable-quantity/B2/1").json() == 7


def test_reservation_arithmetic(mg: MagentoSandbox) -> None:
    def salable(sku: str) -> float:
        return call(mg, "GET", f"inventory/get-product-salable-quantity/{sku}/1").json()

    order = mg.state.place_order([("A1", 3)], invoice=False)
    assert salable("A1") == 7 and mg.state.source_quantity("A1", "default") == 10
    ship = call(mg, "POST", f"order/{order['entity_id']}/ship", json={"items": [{"order_item_id": order["items"][0]["item_id"], "qty": 2}]})
    assert ship.status_code == 200 and isinstance(ship.json(), int)
    assert salable("A1") == 7 and mg.state.source_quantity("A1", "default") == 8
    assert call(mg, "POST", f"orders/{order['entity_id']}/cancel").json() is True
    assert salable("A1") == 8 and mg.state.salable_qty("A1") == 8
    assert call(mg, "GET", f"orders/{order['entity_id']}").json()["items"][0]["qty_canceled"] == 1
    # Configurable: the child SKU is reserved, lines are parent (price) + child (price 0).
    conf = mg.state.place_order([{"sku": "TEE-S", "qty": 2, "parent_sku": "TEE"}])
    parent, child = conf["items"]
    assert parent["product_type"] == "configurable" and parent["sku"] == "TEE-S" and parent["price"] == 20
    assert child["parent_item_id"] == parent["item_id"] and child["price"] == 0
    assert salable("TEE-S") == 6
    assert call(mg, "GET", "inventory/get-product-salable-quantity/TEE/1").status_code == 400


# -- orders -------------------------------------------------------------------------------------
def test_order_shape_and_filters(mg: MagentoSandbox) -> None:
    mg.state.add_customer("c@example.com", "Cee", "Dee")
    order = mg.state.place_order([("A1", 1), ("B2", 2)], customer_email="c@example.com", shipping_amount=10, pickup_location_code="store1")
    assert order["increment_id"] == "000000001" and order["customer_is_guest"] == 0
    assert order["subtotal"] == 200 and order["tax_amount"] == 52.5 and order["grand_total"] == 262.5
    assert order["base_grand_total"] == 262.5 and order["base_total_paid"] == 262.5  # invoiced at placement
    assert order["extension_attributes"]["pickup_location_code"] == "store1"
    assert order["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] == "flatrate_flatrate"
    mg.state.place_order([("B2", 1)], guest=True, created_at="2024-04-01 00:00:00")
    r = call(mg, "GET", "orders", params=crit(("updated_at", "2024-05-01 00:00:00", "gteq"), ("status", "processing", "eq"))).json()
    assert [o["increment_id"] for o in r["items"]] == ["000000001"]
    assert call(mg, "GET", "orders", params=crit(("nonsense", "1", "eq"))).status_code == 500
    items = call(mg, "GET", "orders/items", params=crit(("order_id", 1, "eq"))).json()
    assert items["total_count"] == 2
    assert call(mg, "GET", "orders/999").status_code == 404


def test_order_mutations_bump_updated_at(mg: MagentoSandbox) -> None:
    order = mg.state.place_order([("A1", 2)], invoice=False)
    oid = order["entity_id"]
    mg.state.clock = lambda: datetime(2024, 5, 2, 8, 0, 0, tzinfo=UTC)
    body = {"statusHistory": {"comment": "synced", "is_customer_notified": 0, "is_visible_on_front": 0, "parent_id": oid}}
    assert call(mg, "POST", f"orders/{oid}/comments", json=body).json() is True
    assert call(mg, "GET", f"orders/{oid}").json()["updated_at"] == "2024-05-02 08:00:00"
    assert call(mg, "GET", f"orders/{oid}/comments").json()["items"][0]["comment"] == "synced"
    mg.state.clock = lambda: datetime(2024, 5, 3, 8, 0, 0, tzinfo=UTC)
    assert isinstance(call(mg, "POST", f"order/{oid}/invoice", json={"capture": True}).json(), int)
    got = call(mg, "GET", f"orders/{oid}").json()
    assert got["updated_at"] == "2024-05-03 08:00:00" and got["total_paid"] == got["grand_total"]
    # Invoiced -> cancel answers 200 false.
    r = call(mg, "POST", f"orders/{oid}/cancel")
    assert r.status_code == 200 and r.json() is False


def test_ship_full_default_and_already_shipped(mg: MagentoSandbox) -> None:
    order = mg.state.place_order([("A1", 2), ("B2", 1)])
    oid = order["entity_id"]
    track = {"track_number": "T1", "title": "Posten", "carrier_code": "custom"}
    body = {"notify": True, "tracks": [track], "arguments": {"extension_attributes": {"source_code": "default"}}}
    ship_id = call(mg, "POST", f"order/{oid}/ship", json=body).json()
    shipment = call(mg, "GET", f"shipment/{ship_id}").json()
    assert shipment["total_qty"] == 3 and shipment["tracks"][0]["track_number"] == "T1"
    assert shipment["extension_attributes"]["source_code"] == "default"
    assert call(mg, "GET", f"orders/{oid}").json()["state"] == "complete"
    r = call(mg, "POST", f"order/{oid}/ship", json={"tracks": [track]})
    assert r.status_code == 400
    assert r.json()["message"] == "Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created."
    assert call(mg, "GET", "shipments", params=crit(("order_id", oid, "eq"))).json()["total_count"] == 1
    # Omitted items = full qty_ordered, which fails on a partially shipped order.
    other = mg.state.place_order([("A1", 2)])
    call(mg, "POST", f"order/{other['entity_id']}/ship", json={"items": [{"order_item_id": other["items"][0]["item_id"], "qty": 1}]})
    r = call(mg, "POST", f"order/{other['entity_id']}/ship", json={})
    assert r.status_code == 400 and "invalid quantity to ship" in r.json()["message"]
    r = call(mg, "POST", f"order/{other['entity_id']}/ship", json={"tracks": [{"track_number": "", "title": "x", "carrier_code": "y"}]})
    assert "Please enter a tracking number." in r.json()["message"]


def test_refund_validation_and_return_to_stock(mg: MagentoSandbox) -> None:
    unpaid = mg.state.place_order([("A1", 1)], invoice=False)
    r = call(mg, "POST", f"order/{unpaid['entity_id']}/refund", json={"arguments": {"shipping_amount": 0}})
    assert r.status_code == 400
    assert r.json()["message"] == "Creditmemo Document Validation Error(s):\nWe can't create creditmemo for the order."
    order = mg.state.place_order([("A1", 2)], shipping_amount=10)
    oid, item_id = order["entity_id"], order["items"][0]["item_id"]
    call(mg, "POST", f"order/{oid}/ship", json={"items": [{"order_item_id": item_id, "qty": 2}]})
    assert mg.state.source_quantity("A1", "default") == 8
    r = call(mg, "POST", f"order/{oid}/refund", json={"items": [{"order_item_id": item_id, "qty": 3}], "arguments": {"shipping_amount": 0}})
    assert r.status_code == 400 and 'unrefunded quantity for product SKU "A1"' in r.json()["message"]
    body = {"items": [{"order_item_id": item_id, "qty": 1}], "arguments": {"extension_attributes": {"return_to_stock_items": [item_id]}}}
    memo_id = call(mg, "POST", f"order/{oid}/refund", json=body).json()
    memo = call(mg, "GET", f"creditmemo/{memo_id}").json()
    assert memo["shipping_amount"] == 10  # omitted shipping_amount = all remaining shipping
    assert memo["grand_total"] == 100 + 25 + 10 + 2.5
    assert mg.state.source_quantity("A1", "default") == 9
    got = call(mg, "GET", f"orders/{oid}").json()
    assert got["total_refunded"] == memo["grand_total"] and got["items"][0]["qty_refunded"] == 1
    assert call(mg, "GET", "creditmemos", params=crit(("order_id", oid, "eq"))).json()["total_count"] == 1
    r = call(mg, "POST", f"order/{oid}/refund", json={"arguments": {"shipping_amount": 5}})
    assert r.json()["message"] == "Maximum shipping amount allowed to refund is: %1"


# -- customers ----------------------------------------------------------------------------------
def test_customers(mg: MagentoSandbox) -> None:
    new = {"customer": {"email": "k@example.com", "firstname": "Kay", "lastname": "Ell", "website_id": 1,
                        "addresses": [{"firstname": "Kay", "lastname": "Ell", "street": ["S 1"], "city": "C", "postcode": "1",
                                       "country_id": "SE", "telephone": "1", "default_shipping": True}]}}  # fmt: skip
    created = call(mg, "POST", "customers", json=new).json()
    assert created["id"] and created["addresses"][0]["id"] and created["default_shipping"]
    assert mg.state.emails_sent[-1]["type"] == "new_account"
    r = call(mg, "POST", "customers", json=new)
    assert r.status_code == 400
    assert r.json() == {"message": "A customer with the same email address already exists in an associated website."}
    put = {"customer": {"id": created["id"], "email": "k@example.com", "firstname": "Kai", "lastname": "Ell", "website_id": 1}}
    updated = call(mg, "PUT", f"customers/{created['id']}", json=put).json()
    assert updated["firstname"] == "Kai" and len(updated["addresses"]) == 1  # omitted addresses kept
    put["customer"]["addresses"] = []
    assert call(mg, "PUT", f"customers/{created['id']}", json=put).json()["addresses"] == []
    found = call(mg, "GET", "customers/search", params=crit(("email", "k@example.com", "eq"), ("website_id", 1, "eq"))).json()
    assert found["total_count"] == 1
    assert call(mg, "POST", "customers/isEmailAvailable", json={"customerEmail": "k@example.com", "websiteId": 1}).json() is False
    assert call(mg, "POST", "customers/isEmailAvailable", json={"customerEmail": "z@example.com"}).json() is True
    r = call(mg, "GET", "customers/999")
    assert r.status_code == 404 and r.json()["parameters"] == {"fieldName": "customerId", "fieldValue": "999"}


# -- products -----------------------------------------------------------------------------------
def test_product_store_scope_and_prices(mg: MagentoSandbox) -> None:
    r = requests.put(f"{mg.url}/rest/V1/products/A1", json={"product": {"name": "Store name", "price": 110}}, headers=AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["name"] == "Store name"
    assert mg.state.store_overrides["default"]["A1"] == {"name": "Store name"}
    assert mg.state.products["A1"]["name"] == "Alpha" and mg.state.products["A1"]["price"] == 110
    assert requests.get(f"{mg.url}/rest/all/V1/products/A1", headers=AUTH, timeout=5).json()["name"] == "Alpha"
    requests.put(f"{mg.url}/rest/all/V1/products/A1", json={"product": {"name": "Global"}}, headers=AUTH, timeout=5)
    assert mg.state.products["A1"]["name"] == "Global"
    created = requests.post(f"{mg.url}/rest/all/V1/products", json={"product": {"sku": "NEW", "name": "New", "price": 5, "type_id": "simple", "attribute_set_id": 4}}, headers=AUTH, timeout=5)
    assert created.status_code == 200 and created.json()["extension_attributes"]["website_ids"] == [1]
    prices = {"prices": [{"sku": "B2", "price": 55, "store_id": 0}, {"sku": "NOPE", "price": 1, "store_id": 0}, {"sku": "B2", "price": 1, "store_id": 42}]}
    r = call(mg, "POST", "products/base-prices", json=prices)
    assert r.status_code == 200
    assert r.json() == [
        {"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", "NOPE"]},
        {"message": "Requested store is not found. Row ID: SKU = %SKU, Store ID: %storeId.", "parameters": ["B2", "42"]},
    ]
    assert call(mg, "POST", "products/base-prices-information", json={"skus": ["B2"]}).json() == [{"price": 55, "store_id": 0, "sku": "B2"}]
    assert call(mg, "DELETE", "products/NEW").json() is True
    assert call(mg, "GET", "products/NEW").status_code == 404


# -- faults and control API ---------------------------------------------------------------------
def test_faults_via_control_api(mg: MagentoSandbox) -> None:
    control = f"{mg.url}/_sandbox"
    assert requests.post(f"{control}/faults", json={"kind": "429", "path": "products", "retry_after": "3"}, timeout=5).status_code == 200
    r = call(mg, "GET", "products/A1")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert call(mg, "GET", "products/A1").status_code == 200
    requests.post(f"{control}/faults", json={"kind": "500_after", "path": "source-items"}, timeout=5)
    body = {"sourceItems": [{"sku": "A1", "source_code": "default", "quantity": 42, "status": 1}]}
    r = call(mg, "POST", "inventory/source-items", json=body)
    assert r.status_code == 500 and "Report ID: webapi-" in r.json()["message"]
    assert mg.state.source_quantity("A1", "default") == 42  # the write went through
    logged = requests.get(f"{control}/requests", timeout=5).json()
    assert [e["status"] for e in logged] == [429, 200, 500]
    requests.delete(f"{control}/requests", timeout=5)
    requests.delete(f"{control}/faults", timeout=5)
    assert requests.get(f"{control}/requests", timeout=5).json() == []


def test_scenario_api(mg: MagentoSandbox) -> None:
    control = f"{mg.url}/_sandbox"
    assert requests.post(f"{control}/products", json={"sku": "S1", "name": "S", "price": 9}, timeout=5).json()["id"]
    requests.post(f"{control}/source-items", json={"sku": "S1", "source_code": "default", "quantity": 4}, timeout=5)
    order = requests.post(f"{control}/orders", json={"items": [["S1", 1]], "guest": True}, timeout=5).json()
    assert order["increment_id"] and order["customer_is_guest"] == 1
    assert mg.state.salable_qty("S1") == 3
    summary = requests.get(f"{control}/state", timeout=5).json()
    assert summary["orders"] == 1 and summary["products"] == 5
    assert requests.post(f"{control}/latency", json={"seconds": 0.01}, timeout=5).json() == {"seconds": 0.01}
    assert requests.post(f"{control}/orders", json={"items": [["NOPE", 1]]}, timeout=5).status_code == 400
    # The 2FA admin-token answer (§1.2).
    r = call(mg, "POST", "integration/admin/token", json={"username": "a", "password": "b"}, headers={})
    assert r.status_code == 401 and r.json()["message"].startswith("Please use the 2fa")
