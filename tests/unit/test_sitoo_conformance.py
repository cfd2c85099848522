"""Every public SitooClient method, its requests validated against the bundled Sitoo OpenAPI file.

The emulator and this check are written from the references independently of the client, so a
misread path, parameter or body shape shows up here rather than against a live account.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from magsit.config import HttpSettings, SitooSettings
from magsit.sandbox.schemacheck import SitooSchema, find_schemas_dir
from magsit.sitoo.client import SitooClient

BASE = "https://api.mysitoo.com/v2/accounts/90001"


def _schema() -> SitooSchema:
    root = find_schemas_dir()
    if root is None:
        pytest.skip("no schemas/ directory found (find_schemas_dir() is None): cannot check conformance")
    return SitooSchema.load(root / "sitoo" / "sitoo-v2-openapi.json")


def _answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    """A plausible Sitoo answer for any request, shaped by method and body."""
    body = json.loads(request.body) if request.body else None
    if request.method == "GET":
        return 200, {}, json.dumps({"totalcount": 0, "items": []})
    if isinstance(body, list):
        return 200, {}, json.dumps([{"statuscode": 200, "return": i + 1} for i in range(len(body))])
    if request.method == "POST":
        return 200, {}, "17"
    return 200, {}, "true"


# One call per public method, with realistic arguments. The test fails if a public method is
# missing here, so a new endpoint cannot skip the schema check.
CALLS: dict[str, Callable[[SitooClient], Any]] = {
    "list_warehouses": lambda c: c.list_warehouses(),
    "iter_warehouse_items": lambda c: (
        list(c.iter_warehouse_items(1, modified_from=1714560000, modified_to=1714600000)),
        list(c.iter_warehouse_items(1, skus=["A-1", "B/2"])),
    ),
    "warehouse_items": lambda c: list(c.warehouse_items(1, modified_from=1714560000)),
    "iter_warehouse_transactions": lambda c: list(
        c.iter_warehouse_transactions(warehouse_id=1, id_from=500, date_from=1714560000, transaction_type=10)
    ),
    "iter_products": lambda c: (
        list(c.iter_products(modified_after=1714560000)),
        list(c.iter_products(skus=["A-1", "B-2"], include_inactive=True)),
    ),
    "get_products_by_skus": lambda c: c.get_products_by_skus(["A-1"]),
    "find_users_by_email": lambda c: c.find_users_by_email(["a+b@example.com"]),
    "iter_users": lambda c: list(c.iter_users()),
    "add_user": lambda c: c.add_user({"email": "a@example.com", "namefirst": "Ann", "namelast": "Lee"}),
    "add_users": lambda c: c.add_users([{"email": "b@example.com", "namefirst": "Bo"}]),
    "update_user": lambda c: c.update_user("{102DC4AA-0001}", {"namefirst": "Anna"}),
    "create_order": lambda c: c.create_order(
        {
            "ordertypeid": 10,
            "externalid": "WEB-000000123",
            "paymentstateid": 20,
            "warehouseid": 43,
            "email": "a@example.com",
            "additionaldata": {"weborder": "true"},
            "orderitems": [
                {
                    "productname": "Shirt blue",
                    "sku": "14785-5",
                    "quantity": 1,
                    "moneyrowprice": Decimal("399"),
                    "vatvalue": Decimal("25"),
                    "additionaldata": {"web-itemid": "10"},
                }
            ],
            "payments": [{"name": "Magento", "moneyamount": Decimal("399")}],
        }
    ),
    "find_orders_by_externalid": lambda c: c.find_orders_by_externalid(["WEB-1", "WEB-2"]),
    "get_orders": lambda c: c.get_orders([11, 12]),
    "get_order": lambda c: c.get_order(11),
    "iter_orders": lambda c: list(
        c.iter_orders(orderid_from=100, orderdate_from=1714560000, orderdate_to=1714600000, orderstate=[0, 10])
    ),
    "update_order": lambda c: c.update_order(11, {"orderstateid": 20}),
    "list_deliveries": lambda c: c.list_deliveries(11),
    "add_delivery": lambda c: c.add_delivery(11, 2, [(0, 1), (1, 2)], ref="D123456789", ignorestock=False),
}


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(SitooClient)
        if not name.startswith("_") and callable(member) and not isinstance(member, property)
    }


def test_every_public_method_is_exercised() -> None:
    assert _public_methods() == set(CALLS)


@responses.activate
def test_requests_conform_to_the_sitoo_openapi_schema() -> None:
    schema = _schema()
    responses.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/.*"), callback=_answer)
    responses.add_callback(responses.POST, re.compile(re.escape(BASE) + r"/.*"), callback=_answer)
    responses.add_callback(responses.PUT, re.compile(re.escape(BASE) + r"/.*"), callback=_answer)
    client = SitooClient(
        SitooSettings(base_url=BASE, api_id="90001-56", password="secret", site_id=1),
        HttpSettings(max_retries=0),
    )

    problems: list[str] = []
    for name, call in CALLS.items():
        before = len(responses.calls)
        call(client)
        sent = [c.request for c in list(responses.calls)[before:]]
        assert sent, f"{name} sent no request"
        for request in sent:
            parts = urlsplit(request.url)
            assert parts.path.endswith(".json"), f"{name}: {parts.path} does not end in .json"
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            body = json.loads(request.body) if request.body else None
            for violation in schema.check(request.method, parts.path, pairs, body):
                problems.append(f"{name}: {request.method} {parts.path}?{parts.query}: {violation}")
    assert not problems, "\n".join(problems)


def test_the_check_is_not_vacuous() -> None:
    schema = _schema()
    assert schema.check("GET", "/v2/accounts/90001/sites/1/no-such-thing.json", [], None)
    assert schema.check("GET", "/v2/accounts/90001/sites/1/products.json", [("no_such_param", "1")], None)
    # A float where Sitoo wants a 3-decimal string: what a Decimal->float slip would send.
    wh_items = "/v2/accounts/90001/sites/1/warehouses/1/warehouseitems.json"
    assert schema.check("PUT", wh_items, [], [{"sku": "A", "decimaltotal": 5.0}])
