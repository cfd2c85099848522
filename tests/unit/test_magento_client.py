"""MagentoClient against `responses`: paging, retries, encoding, error bodies, input limits, auth."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from pydantic import SecretStr

from magsit.config import HttpSettings, MagentoSettings
from magsit.errors import ApiError, AuthError, PagingError, WafBlockedError
from magsit.magento.client import MagentoClient
from magsit.magento.messages import describe_error, format_body, substitute
from magsit.magento.search import SearchCriteria, chunk_values, in_group

BASE = "https://shop.example.com"
REST = f"{BASE}/rest/default/V1"
ALL = f"{BASE}/rest/all/V1"
SECRETS = {
    "consumer_key": "ck-5ecret-consumer-key",
    "consumer_secret": "cs-5ecret-consumer-secret",
    "access_token": "at-5ecret-access-token",
    "access_token_secret": "ats-5ecret-token-secret",
}


def client(**overrides: Any) -> MagentoClient:
    values: dict[str, Any] = {"base_url": BASE, "token": SecretStr("bearer-5ecret"), "page_size": 2}
    values.update(overrides)
    c = MagentoClient(MagentoSettings(**values), HttpSettings(max_retries=2, backoff_base=0.0, max_wait=30))
    for session in (c.http, c.http_all):
        session.sleep = lambda _s: None
    return c


def oauth_client() -> MagentoClient:
    return client(token=None, **{k: SecretStr(v) for k, v in SECRETS.items()})


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query))


def pager(rows: list[dict[str, Any]], total: int | None = None):
    """A /V1/... search answer that clamps currentPage to the last page, as Magento does (P1)."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = query(request)
        size = int(q["searchCriteria[pageSize]"])
        page = int(q.get("searchCriteria[currentPage]", "1"))
        last = max(1, -(-len(rows) // size))
        page = min(max(page, 1), last)
        items = rows[(page - 1) * size : page * size]
        return 200, {"Content-Type": "application/json"}, json.dumps({"items": items, "total_count": len(rows) if total is None else total})

    return answer


# -- paging ------------------------------------------------------------------------------------------
@responses.activate
def test_paging_stops_on_total_count_and_never_asks_past_the_end():
    rows = [{"entity_id": i, "increment_id": f"10000{i}"} for i in range(1, 6)]
    responses.add_callback(responses.GET, f"{REST}/orders", callback=pager(rows))
    got = list(client().search_orders())
    assert [r["entity_id"] for r in got] == [1, 2, 3, 4, 5]
    assert len(responses.calls) == 3  # pages of 2, 2, 1 — no fourth call for an "empty" page


@responses.activate
def test_paging_exact_multiple_stops_on_total_count_not_on_a_repeated_last_page():
    rows = [{"entity_id": i} for i in range(1, 5)]
    responses.add_callback(responses.GET, f"{REST}/orders", callback=pager(rows))
    assert len(list(client().search_orders())) == 4
    assert len(responses.calls) == 2  # page 3 would repeat page 2 forever on Magento


@responses.activate
def test_stale_total_count_with_a_repeated_page_aborts():
    rows = [{"entity_id": i} for i in range(1, 5)]
    responses.add_callback(responses.GET, f"{REST}/orders", callback=pager(rows, total=9))
    with pytest.raises(PagingError, match="repeats the previous page"):
        list(client().search_orders())
    assert len(responses.calls) == 3


@responses.activate
def test_every_search_sends_page_size_and_a_sort_ending_on_a_unique_key():
    responses.add_callback(responses.GET, f"{REST}/orders", callback=pager([]))
    responses.add_callback(responses.GET, f"{REST}/inventory/source-items", callback=pager([]))
    responses.add_callback(responses.GET, f"{ALL}/products", callback=pager([]))
    c = client()
    list(c.search_orders(SearchCriteria().where("status", "processing").order_by("updated_at")))
    c.search_source_items(source_code="default")
    c.get_products_by_skus(["A"])
    orders, items, products = (query(call.request) for call in responses.calls)
    assert orders["searchCriteria[sortOrders][0][field]"] == "updated_at"
    assert orders["searchCriteria[sortOrders][1][field]"] == "entity_id"
    assert orders["searchCriteria[sortOrders][1][direction]"] == "ASC"
    assert orders["searchCriteria[pageSize]"] == "2" and orders["searchCriteria[currentPage]"] == "1"
    assert [items[f"searchCriteria[sortOrders][{i}][field]"] for i in (0, 1)] == ["sku", "source_code"]
    assert products["searchCriteria[sortOrders][0][field]"] == "entity_id"
    assert products["fields"].endswith(",total_count")
    assert products["searchCriteria[filter_groups][0][filters][0][condition_type]"] == "in"


@responses.activate
def test_search_orders_page_is_the_keyset_primitive():
    responses.add(responses.GET, f"{REST}/orders", json={"items": [{"entity_id": 1}], "total_count": 1})
    items, total = client(page_size=300).search_orders_page(
        [("updated_at", "2024-05-01 10:00:00", "eq"), ("entity_id", "7", "gt")], 50
    )
    assert (items, total) == ([{"entity_id": 1}], 1)
    q = query(responses.calls[0].request)
    assert q["searchCriteria[filter_groups][1][filters][0][field]"] == "entity_id"
    assert [q[f"searchCriteria[sortOrders][{i}][field]"] for i in (0, 1)] == ["updated_at", "entity_id"]
    assert q["searchCriteria[pageSize]"] == "50" and q["searchCriteria[currentPage]"] == "1"


def test_sku_filters_keep_urls_short_and_commas_out_of_in():
    skus = [f"SKU-{i:05d}-{'x' * 40}" for i in range(400)]
    for chunk in chunk_values(skus, max_chars=4000, max_count=300):
        assert len(",".join(chunk)) < 4500
    group = in_group("sku", ["A", "B,C", "D"])
    assert [(f.value, f.condition_type) for f in group] == [("A,D", "in"), ("B,C", "eq")]


def indexes(params: list[tuple[str, str]]) -> list[int]:
    return [int(n) for name, _ in params for n in re.findall(r"\[(\d+)\]", name)]


def test_split_cuts_or_groups_to_the_limit_and_keeps_every_combination():
    emails = [("email", f"u{i}@example.com", "like") for i in range(23)]
    criteria = SearchCriteria().any_of(*emails).where("website_id", 1).any_of(*in_group("sku", [f"A,{i}" for i in range(12)]))
    parts = criteria.split(10)
    assert [len(p.groups[0]) for p in parts] == [10, 10, 10, 10, 3, 3]  # (23 e-mails -> 10/10/3) x (12 SKUs -> 10/2)
    assert [len(p.groups[2]) for p in parts] == [10, 2] * 3
    assert {f.value for p in parts for f in p.groups[0]} == {f"u{i}@example.com" for i in range(23)}
    assert all(p.groups[1] == criteria.groups[1] and max(indexes(p.to_params())) < 10 for p in parts)
    assert SearchCriteria().split(10) == [SearchCriteria()] and criteria.split(30) == [criteria]
    with pytest.raises(ValueError, match="11 filter groups"):
        SearchCriteria().any_of(*[("a", i) for i in range(3)]).where("b", 1).where("c", 1).where("d", 1).where(
            "e", 1).where("f", 1).where("g", 1).where("h", 1).where("i", 1).where("j", 1).where("k", 1).split(10)  # fmt: skip


@responses.activate
def test_or_groups_over_ten_are_split_under_oauth_only():
    # Array indexes of 10+ have no OAuth signature every 2.4 shop accepts (magento-api.md §1.3):
    # signed searches hold at most ten filters per group; Bearer shops keep one call.
    rows = [{"id": i, "email": f"u{i}@example.com"} for i in range(1, 13)]
    responses.add_callback(responses.GET, f"{REST}/customers/search", callback=pager(rows))
    criteria = SearchCriteria().any_of(*[("email", f"u{i}@example.com", "like") for i in range(12)])
    assert [r["id"] for r in client(page_size=300).search_customers(criteria)] == list(range(1, 13))
    assert len(responses.calls) == 1
    signing = client(page_size=300, token=None, **{k: SecretStr(v) for k, v in SECRETS.items()})
    found = list(signing.search_customers(criteria))
    assert [r["id"] for r in found] == list(range(1, 13))  # both parts answer every row: repeats dropped
    signed = responses.calls[1:]
    assert len(signed) == 2
    for call in signed:
        assert max(indexes(list(parse_qsl(urlsplit(call.request.url).query)))) < 10
    with pytest.raises(ValueError, match="at most 10 filters per group"):
        signing.search_page("/orders", criteria)


@responses.activate
def test_products_by_skus_chunks_so_the_url_stays_under_6kb():
    responses.add_callback(responses.GET, f"{ALL}/products", callback=pager([]))
    c = client(page_size=300)
    c.get_products_by_skus([f"LONG-SKU-{i:04d}-ÅÄÖ/{'y' * 30}" for i in range(300)])
    assert len(responses.calls) > 1
    assert all(len(call.request.url) < 6144 for call in responses.calls)


@responses.activate
def test_sku_lookup_chunks_are_the_calls_existing_skus_makes():
    responses.add_callback(responses.GET, f"{ALL}/products", callback=pager([]))
    c = client(page_size=300)
    skus = [f"LONG-SKU-{i:04d}-ÅÄÖ/{'y' * 30}" for i in range(300)] + [f"S-{i}" for i in range(400)]
    c.existing_skus(skus)
    together = len(responses.calls)
    chunks = c.sku_lookup_chunks(skus + skus[:5])  # repeats are looked up once
    assert sum(chunks, []) == skus and len(chunks) == together > 2
    for chunk in chunks:
        before = len(responses.calls)
        c.existing_skus(chunk)
        assert len(responses.calls) == before + 1


# -- retries and writes ------------------------------------------------------------------------------
@responses.activate
def test_429_retry_after_is_waited_and_retried():
    c = client()
    waits: list[float] = []
    c.http.sleep = waits.append
    responses.add(responses.GET, f"{REST}/orders/5", status=429, headers={"Retry-After": "7"}, json={"message": "Too Many Requests"})
    responses.add(responses.GET, f"{REST}/orders/5", json={"entity_id": 5})
    assert c.get_order(5) == {"entity_id": 5}
    assert waits == [7.0]
    assert c.calls["GET /orders/{id}"] == 2


MASKED_500 = {"message": "Internal Error. Details are available in Magento log file. Report ID: webapi-6658a1b2c3d4e"}


@pytest.mark.parametrize(
    ("name", "call", "url"),
    [
        ("ship", lambda c: c.ship(9, {3: 1}, [{"track_number": "1Z", "title": "UPS", "carrier_code": "ups"}]), f"{REST}/order/9/ship"),
        ("refund", lambda c: c.refund_offline(9, {3: 1}, shipping_amount=0), f"{REST}/order/9/refund"),
        ("invoice", lambda c: c.invoice(9), f"{REST}/order/9/invoice"),
        ("customer", lambda c: c.create_customer({"email": "a@b.se", "firstname": "A", "lastname": "B"}), f"{REST}/customers"),
        ("comment", lambda c: c.add_order_comment(9, "shipped from store"), f"{REST}/orders/9/comments"),
    ],
)
@responses.activate
def test_document_creates_are_never_resent(name, call, url):
    c = client()
    responses.add(responses.POST, url, status=500, json=MASKED_500)
    with pytest.raises(ApiError) as info:
        call(c)
    assert info.value.outcome_unknown is True
    assert "webapi-6658a1b2c3d4e" in str(info.value)
    assert len(responses.calls) == 1

    responses.reset()
    responses.add(responses.POST, url, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ApiError) as info:
        call(c)
    assert info.value.outcome_unknown is True
    assert len(responses.calls) == 1


@responses.activate
def test_source_items_are_an_idempotent_upsert_and_retried():
    responses.add(responses.POST, f"{REST}/inventory/source-items", status=503, json={"message": "Service Unavailable"})
    responses.add(responses.POST, f"{REST}/inventory/source-items", json=[])
    client().save_source_items([{"sku": "A", "source_code": "default", "quantity": Decimal("3"), "status": 1}])
    assert len(responses.calls) == 2
    assert json.loads(responses.calls[1].request.body) == {
        "sourceItems": [{"sku": "A", "source_code": "default", "quantity": 3, "status": 1}]
    }


@responses.activate
def test_cancel_returns_the_boolean_body():
    responses.add(responses.POST, f"{REST}/orders/4/cancel", body="false", content_type="application/json")
    assert client().cancel_order(4) is False


# -- SKUs in paths -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sku", "encoded"),
    [("A/B", "A%2FB"), ("A B", "A%20B"), ("A+B", "A%2BB"), ("ÅÄÖ-1", "%C3%85%C3%84%C3%96-1")],
)
@responses.activate
def test_skus_are_encoded_as_one_path_segment(sku, encoded):
    responses.add(responses.GET, re.compile(r".*"), json={"sku": sku})
    responses.add(responses.PUT, re.compile(r".*"), json={"sku": sku})
    responses.add(responses.POST, re.compile(r".*"), json={"sku": sku})
    c = client()
    c.update_product(sku, {"name": "x"})
    c.get_stock_item(sku)
    paths = [call.request.path_url for call in responses.calls]
    # A "/" SKU is written without the SKU in the path (Apache 404 on %2F, OAuth GH#37913).
    written = "/rest/all/V1/products" if "/" in sku else f"/rest/all/V1/products/{encoded}"
    assert paths == [written, f"/rest/default/V1/stockItems/{encoded}"]
    assert json.loads(responses.calls[0].request.body)["product"]["sku"] == sku
    assert json.loads(responses.calls[0].request.body) == {"product": {"name": "x", "sku": sku}}


# -- error bodies ------------------------------------------------------------------------------------
def test_error_parameters_are_substituted():
    assert substitute("Invalid product data: %1", ["bad set"]) == "Invalid product data: bad set"
    assert substitute("%1 and %10", list("abcdefghij")) == "a and j"
    assert (
        substitute('"%fieldName" is required (%field).', {"field": "f", "fieldName": "sku"})
        == '"sku" is required (f).'
    )
    body = {
        "message": "Validation Failed: %1",
        "parameters": ["x"],
        "errors": [{"message": '"%field" can not be empty.', "parameters": {"field": "sku"}}],
    }
    assert format_body(body) == 'Validation Failed: x ("sku" can not be empty.)'


@responses.activate
def test_error_message_reaches_the_exception():
    responses.add(
        responses.POST,
        f"{REST}/customers",
        status=400,
        json={"message": "A customer with the same email address already exists in an associated website.", "parameters": []},
    )
    with pytest.raises(ApiError, match="already exists in an associated website") as info:
        client().create_customer({"email": "a@b.se", "firstname": "A", "lastname": "B"})
    assert info.value.status == 400 and info.value.outcome_unknown is False


@responses.activate
def test_401_resources_names_acl_and_bearer_flag():
    responses.add(
        responses.GET,
        f"{REST}/inventory/sources",
        status=401,
        json={"message": "The consumer isn't authorized to access %resources.", "parameters": {"resources": "Magento_InventoryApi::source"}},
    )
    with pytest.raises(AuthError) as info:
        client().list_sources()
    text = str(info.value)
    assert "The consumer isn't authorized to access Magento_InventoryApi::source." in text
    assert "oauth/consumer/enable_integration_as_bearer" in text
    assert "resources needed: Magento_InventoryApi::source" in text


def test_masked_500_keeps_report_id():
    assert "Report ID: webapi-abc123" in describe_error(500, {"message": "Internal Error. Report ID: webapi-abc123"})


@responses.activate
def test_html_403_is_a_waf_block():
    responses.add(responses.GET, f"{REST}/orders/1", status=403, body="<html><body>Access denied</body></html>", content_type="text/html")
    with pytest.raises(WafBlockedError):
        client().get_order(1)
    assert len(responses.calls) == 1


# -- input limits ------------------------------------------------------------------------------------
@responses.activate
def test_page_size_limit_lowers_the_page_size_and_rereads_once():
    rows = [{"entity_id": i} for i in range(1, 4)]
    inner = pager(rows)

    def answer(request: requests.PreparedRequest):
        if int(query(request)["searchCriteria[pageSize]"]) > 2:
            return 400, {}, json.dumps({"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 2}})
        return inner(request)

    responses.add_callback(responses.GET, f"{REST}/orders", callback=answer)
    c = client(page_size=300)
    assert [r["entity_id"] for r in c.search_orders()] == [1, 2, 3]
    assert c.page_size == 2
    sizes = [query(call.request)["searchCriteria[pageSize]"] for call in responses.calls]
    assert sizes == ["300", "2", "2"]
    responses.calls.reset()
    list(c.search_orders())
    assert [query(call.request)["searchCriteria[pageSize]"] for call in responses.calls] == ["2", "2"]


@responses.activate
def test_keyset_pages_ask_for_the_lowered_page_size_after_one_refusal():
    """Keyset readers pass their configured size for every page 1: once the shop named a lower
    maximum, asking above it again would cost a refused call per page."""
    def answer(request: requests.PreparedRequest):
        if int(query(request)["searchCriteria[pageSize]"]) > 2:
            return 400, {}, json.dumps({"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 2}})
        return 200, {}, json.dumps({"items": [{"entity_id": 1}], "total_count": 1})

    responses.add_callback(responses.GET, f"{REST}/orders", callback=answer)
    c = client(page_size=300)
    for _ in range(3):
        c.search_orders_page([("updated_at", "2024-05-01 10:00:00", "gteq")], 300)
    assert [query(call.request)["searchCriteria[pageSize]"] for call in responses.calls] == ["300", "2", "2", "2"]


@responses.activate
def test_list_limit_splits_the_body_and_is_remembered():
    def answer(request: requests.PreparedRequest):
        items = json.loads(request.body)["sourceItems"]
        if len(items) > 2:
            return 400, {}, json.dumps(
                {
                    "message": 'Maximum items of type "%type" is %max',
                    "parameters": {"type": "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface", "max": 2},
                }
            )
        return 200, {}, "[]"

    responses.add_callback(responses.POST, f"{REST}/inventory/source-items", callback=answer)
    c = client()
    rows = [{"sku": f"S{i}", "source_code": "default", "quantity": i, "status": 1} for i in range(5)]
    c.save_source_items(rows)
    sent = [len(json.loads(call.request.body)["sourceItems"]) for call in responses.calls]
    assert sent == [5, 2, 2, 1]
    assert c.list_limit == 2
    responses.calls.reset()
    c.save_source_items(rows[:3])
    assert [len(json.loads(call.request.body)["sourceItems"]) for call in responses.calls] == [2, 1]


@responses.activate
def test_base_prices_return_per_row_failures():
    responses.add(
        responses.POST,
        f"{ALL}/products/base-prices",
        json=[{"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", "CONF-1"]}],
    )
    failures = client().save_base_prices([{"sku": "CONF-1", "price": Decimal("19.90"), "store_id": 0}])
    assert failures[0]["parameters"] == ["SKU", "CONF-1"]
    assert json.loads(responses.calls[0].request.body) == {"prices": [{"price": 19.9, "store_id": 0, "sku": "CONF-1"}]}


# -- customers ---------------------------------------------------------------------------------------
@responses.activate
def test_customer_update_is_get_merge_put_without_addresses():
    current = {"id": 7, "email": "a@b.se", "firstname": "A", "lastname": "B", "website_id": 1, "group_id": 3,
               "addresses": [{"id": 1, "city": "Umeå"}], "extension_attributes": {"is_subscribed": False}}  # fmt: skip
    responses.add(responses.GET, f"{REST}/customers/7", json=current)
    responses.add(responses.PUT, f"{REST}/customers/7", json={**current, "lastname": "C"})
    client().update_customer(7, {"lastname": "C"})
    sent = json.loads(responses.calls[1].request.body)["customer"]
    assert sent["lastname"] == "C" and sent["group_id"] == 3 and sent["id"] == 7
    assert "addresses" not in sent and "extension_attributes" not in sent
    with pytest.raises(ValueError, match="not in the Magento API"):
        client().create_customer({"email": "a@b.se", "firstname": "A", "lastname": "B", "phone": "1"})


# -- auth and secrets --------------------------------------------------------------------------------
@responses.activate
def test_bearer_header():
    responses.add(responses.GET, f"{REST}/orders/1", json={})
    client().get_order(1)
    assert responses.calls[0].request.headers["Authorization"] == "Bearer bearer-5ecret"


@responses.activate
def test_oauth_header_hmac_sha256_and_a_new_nonce_per_retry():
    responses.add(responses.GET, f"{REST}/orders", status=503, json={"message": "busy"})
    responses.add_callback(responses.GET, f"{REST}/orders", callback=pager([]))
    list(oauth_client().search_orders(SearchCriteria().where("status", "processing")))
    raw = [call.request.headers["Authorization"] for call in responses.calls]
    headers = [h.decode() if isinstance(h, bytes) else h for h in raw]  # requests_oauthlib sets bytes
    assert len(headers) == 2
    for header in headers:
        assert header.startswith("OAuth ")
        assert 'oauth_signature_method="HMAC-SHA256"' in header
        assert f'oauth_consumer_key="{SECRETS["consumer_key"]}"' in header
        assert f'oauth_token="{SECRETS["access_token"]}"' in header
    nonces = [re.search(r'oauth_nonce="([^"]+)"', h).group(1) for h in headers]
    assert nonces[0] != nonces[1]


@responses.activate
def test_secrets_never_reach_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    responses.add(responses.GET, f"{REST}/orders/1", status=503, json={"message": "busy"})
    responses.add(responses.GET, f"{REST}/orders/1", json={"entity_id": 1})
    responses.add(responses.POST, f"{REST}/order/1/ship", status=500, json=MASKED_500)
    c = oauth_client()
    c.get_order(1)
    with pytest.raises(ApiError) as info:
        c.ship(1, {2: 1})
    logging.getLogger("magsit").debug("client %r auth %r", c, c.http.session.auth)
    text = caplog.text + str(info.value) + repr(c.http.session.auth)
    assert caplog.records  # the DEBUG capture did run
    for secret in SECRETS.values():
        assert secret not in text

    caplog.clear()
    b = client()
    logging.getLogger("magsit").debug("auth %r", b.http.session.auth)
    assert "bearer-5ecret" not in caplog.text


def test_adapt_list_limit_lowers_the_limit_only_on_the_shops_refusal():
    from magsit.config import MagentoSettings
    from magsit.errors import ApiError
    from magsit.magento.client import MagentoClient

    client = MagentoClient(MagentoSettings(base_url="https://shop.example", token="t"))
    refusal = {"message": 'Maximum items of type "%type" is %max', "parameters": {"type": "X", "max": 5}}
    assert client.adapt_list_limit(ApiError("m", system="magento", status=400, body=refusal), 12) is True
    assert client.list_limit == 5
    assert client.adapt_list_limit(ApiError("m", system="magento", status=400, body=refusal), 5) is False  # not the cause
    assert client.adapt_list_limit(ApiError("other", system="magento", status=400, body={"message": "x"}), 9) is False
    assert client.list_limit == 5
