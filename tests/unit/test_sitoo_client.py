"""SitooClient against `responses`: paging, projections, filters, batch envelopes, retries, errors."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from magsit.config import HttpSettings, SitooSettings
from magsit.errors import ApiError, AuthError
from magsit.http import HttpSession
from magsit.sitoo.client import SitooClient, chunk_values
from magsit.sitoo.models import order_write_payload, to_api, to_epoch

BASE = "https://api.mysitoo.com/v2/accounts/90001"
SITE = f"{BASE}/sites/1"
PASSWORD = "pa55-SECRET-xyz"


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> SitooClient:
    settings = SitooSettings(base_url=BASE, api_id="90001-56", password=PASSWORD, site_id=1, page_size=2)
    c = SitooClient(settings, HttpSettings(max_retries=2, backoff_base=0.01, max_wait=5))
    # HttpSession.sleep is a per-instance hook (time.sleep by default): record waits instead.
    assert isinstance(c.http, HttpSession)
    c.http.sleep = waits.append
    return c


def query(call: responses.Call) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True))


def envelope(items: list[dict], total: int) -> dict:
    return {"totalcount": total, "items": items}


# -- paging ---------------------------------------------------------------------------------------
@responses.activate
def test_pager_stops_on_totalcount_with_exact_call_count(client: SitooClient) -> None:
    url = f"{SITE}/warehouses/3/warehouseitems.json"
    responses.get(url, json=envelope([{"sku": "A"}, {"sku": "B"}], 4))
    responses.get(url, json=envelope([{"sku": "C"}, {"sku": "D"}], 4))
    # A third page would be a bug: the server says 4 in total, two full pages hold them.
    responses.get(url, json=envelope([{"sku": "D"}, {"sku": "D"}], 4))

    items = list(client.iter_warehouse_items(3))

    assert [i["sku"] for i in items] == ["A", "B", "C", "D"]
    assert len(responses.calls) == 2
    assert [query(c)["start"] for c in responses.calls] == ["0", "2"]
    assert all(query(c)["num"] == "2" for c in responses.calls)
    assert client.calls["GET /sites/{id}/warehouses/{id}/warehouseitems.json"] == 2


@responses.activate
def test_pager_reads_on_after_a_short_page_while_start_is_below_totalcount(client: SitooClient) -> None:
    # Sitoo's largest num is undocumented (sitoo-api.md §2.2): a short page is not the end.
    url = f"{SITE}/products.json"
    responses.get(url, json=envelope([{"sku": "A"}, {"sku": "B"}], 5))
    responses.get(url, json=envelope([{"sku": "C"}], 5))
    responses.get(url, json=envelope([{"sku": "D"}, {"sku": "E"}], 5))
    assert [i["sku"] for i in client.iter_products()] == ["A", "B", "C", "D", "E"]
    assert [query(c)["start"] for c in responses.calls] == ["0", "2", "3"]


@responses.activate
def test_pager_stops_on_an_empty_page_before_totalcount(client: SitooClient) -> None:
    url = f"{SITE}/products.json"
    responses.get(url, json=envelope([{"sku": "A"}], 9))
    responses.get(url, json=envelope([], 9))
    assert len(list(client.iter_products())) == 1
    assert len(responses.calls) == 2


@responses.activate
def test_pager_stops_on_a_repeated_short_page_when_totalcount_is_stale(client: SitooClient) -> None:
    url = f"{SITE}/products.json"
    responses.get(url, json=envelope([{"sku": "A"}, {"sku": "B"}], 9))
    responses.get(url, json=envelope([{"sku": "C"}], 9))  # `responses` repeats the last one from here
    assert [p["sku"] for p in client.iter_products()] == ["A", "B", "C"]
    assert len(responses.calls) == 3


@responses.activate
def test_fields_projection_and_includeinactive_string(client: SitooClient) -> None:
    responses.get(f"{SITE}/products.json", json=envelope([], 0))
    list(client.iter_products(include_inactive=True, fields=("sku", "moneyprice")))
    list(client.iter_products())
    first, second = (query(c) for c in responses.calls)
    assert first["fields"] == "sku,moneyprice"
    assert first["includeinactive"] == "true"
    assert second["includeinactive"] == "false"
    assert "sku" in second["fields"] and "moneyprice" in second["fields"]


@responses.activate
def test_warehouse_items_send_explicit_fields_and_modified_window(client: SitooClient) -> None:
    responses.get(f"{SITE}/warehouses/1/warehouseitems.json", json=envelope([], 0))
    since = datetime(2024, 5, 1, tzinfo=UTC)
    list(client.iter_warehouse_items(1, modified_from=since, modified_to=1714600000))
    q = query(responses.calls[0])
    assert q["fields"] == "warehouseitemid,sku,decimaltotal,decimalreserved,decimalavailable,datelastmodified"
    assert q["datelastmodifiedfrom"] == str(int(since.timestamp()))
    assert q["datelastmodifiedto"] == "1714600000"


@responses.activate
def test_multi_value_filters_are_comma_joined_and_chunked(client: SitooClient) -> None:
    responses.get(f"{SITE}/warehouses/1/warehouseitems.json", json=envelope([], 0))
    skus = [f"SKU-{i}" for i in range(250)]
    list(client.iter_warehouse_items(1, skus=skus))
    assert len(responses.calls) == 3  # 100 + 100 + 50
    sent = [query(c)["sku"].split(",") for c in responses.calls]
    assert [len(s) for s in sent] == [100, 100, 50]
    assert sum(sent, []) == skus
    # Commas stay literal in the URL (short, readable), other characters are escaped.
    assert "sku=SKU-0,SKU-1," in responses.calls[0].request.url


def test_chunk_values_respects_char_budget_and_dedupes() -> None:
    values = ["x" * 40] * 3 + [f"{i:040d}" for i in range(100)]
    chunks = list(chunk_values(values, max_count=100, max_chars=500))
    assert all(len(",".join(c)) <= 500 for c in chunks)
    assert sum(len(c) for c in chunks) == 101  # the three duplicates count once


@responses.activate
def test_find_orders_by_externalid_is_account_level_and_chunked(client: SitooClient) -> None:
    responses.get(f"{BASE}/orders.json", json=envelope([{"orderid": 7, "externalid": "WEB-1"}], 1))
    found = client.find_orders_by_externalid(["WEB-1", "WEB-2"])
    assert found == [{"orderid": 7, "externalid": "WEB-1"}]
    q = query(responses.calls[0])
    assert q["externalid"] == "WEB-1,WEB-2"
    assert "orderid" in q["fields"]


@responses.activate
def test_iter_orders_sorts_by_orderid_and_joins_list_filters(client: SitooClient) -> None:
    responses.get(f"{BASE}/orders.json", json=envelope([], 0))
    list(client.iter_orders(orderid_from=100, orderstate=[0, 10]))
    q = query(responses.calls[0])
    assert q["sort"] == "orderid" and q["orderidfrom"] == "100" and q["eshopid"] == "1"
    assert q["orderstate"] == "0,10"


@responses.activate
def test_users_by_email_one_call_each_and_plus_is_escaped(client: SitooClient) -> None:
    responses.get(f"{SITE}/users.json", json=envelope([], 0))
    result = client.find_users_by_email(["a+b@example.com", "c@example.com"])
    assert set(result) == {"a+b@example.com", "c@example.com"}
    assert len(responses.calls) == 2
    urls = [c.request.url for c in responses.calls]
    assert any("email=a%2Bb%40example.com" in u for u in urls)  # a raw '+' would arrive as a space


# -- batch envelopes ------------------------------------------------------------------------------
@responses.activate
def test_batch_envelope_surfaces_the_failed_element(client: SitooClient) -> None:
    responses.post(
        f"{SITE}/users.json",
        json=[
            {"statuscode": 200, "return": "{G-28}"},
            {"statuscode": 400, "errortext": "Email must be unique"},
            {"statuscode": 200, "return": "{G-30}"},
        ],
    )
    results = client.add_users([{"email": "a@x.se"}, {"email": "b@x.se"}, {"email": "c@x.se"}])
    assert [r.ok for r in results] == [True, False, True]
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].value == "{G-28}" and results[2].value == "{G-30}"
    assert results[1].error == "Email must be unique" and results[1].status == 400


@responses.activate
def test_batch_indexes_span_chunks(client: SitooClient) -> None:
    # WRITE_BATCH is 100: 150 users go in two calls; indexes refer to the caller's list.
    def reply(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent = json.loads(request.body)
        out = [{"statuscode": 200, "return": f"{{G-{u['email']}}}"} for u in sent]
        if len(sent) == 50:
            out[-1] = {"statuscode": 400, "errortext": "Email must be unique"}
        return 200, {}, json.dumps(out)

    responses.add_callback(responses.POST, f"{SITE}/users.json", callback=reply)
    results = client.add_users([{"email": f"u{i}@x.se"} for i in range(150)])
    assert len(responses.calls) == 2
    failed = [r for r in results if not r.ok]
    assert [(r.index, r.error) for r in failed] == [(149, "Email must be unique")]
    assert results[120].value == "{G-u120@x.se}"


@responses.activate
def test_batch_4xx_with_envelope_body_is_read_per_element(client: SitooClient) -> None:
    responses.post(
        f"{SITE}/users.json",
        status=400,
        json=[{"statuscode": 200, "return": "{A}"}, {"statuscode": 400, "errortext": "Email must be unique"}],
    )
    results = client.add_users([{"email": "a@x.se"}, {"email": "b@x.se"}])
    assert [r.ok for r in results] == [True, False]
    assert results[1].error == "Email must be unique"


@responses.activate
def test_batch_whole_call_failure_raises(client: SitooClient) -> None:
    responses.post(f"{SITE}/users.json", status=400, json={"statuscode": 400, "errortext": "Invalid JSON"})
    with pytest.raises(ApiError, match="Invalid JSON"):
        client.add_users([{"email": "a@x.se"}])


@responses.activate
def test_batch_length_mismatch_is_outcome_unknown(client: SitooClient) -> None:
    responses.post(f"{SITE}/users.json", json=[{"statuscode": 200, "return": "{A}"}])
    with pytest.raises(ApiError) as info:
        client.add_users([{"email": "a@x.se"}, {"email": "b@x.se"}])
    assert info.value.outcome_unknown


@responses.activate
def test_add_user_returns_guid_or_raises_with_errortext(client: SitooClient) -> None:
    responses.post(f"{SITE}/users.json", json=[{"statuscode": 200, "return": "{432586AA-1}"}])
    responses.post(f"{SITE}/users.json", json=[{"statuscode": 400, "errortext": "Email must be unique"}])
    assert client.add_user({"email": "a@x.se"}) == "{432586AA-1}"
    assert json.loads(responses.calls[0].request.body) == [{"email": "a@x.se"}]
    with pytest.raises(ApiError, match="Email must be unique"):
        client.add_user({"email": "a@x.se"})


@responses.activate
def test_update_user_quotes_guid_and_expects_true(client: SitooClient) -> None:
    responses.put(f"{SITE}/users/%7BAB-12%7D.json", json=True)
    assert client.update_user("{AB-12}", {"namefirst": "Ann"}) is True
    responses.put(f"{SITE}/orders/5.json", json=False)
    with pytest.raises(ApiError, match="instead of true"):
        client.update_order(5, {"orderstateid": 20})


# -- retries and unknown outcomes -----------------------------------------------------------------
@responses.activate
def test_429_waits_for_retry_after_then_succeeds(client: SitooClient, waits: list[float]) -> None:
    url = f"{SITE}/warehouses.json"
    responses.get(url, status=429, headers={"Retry-After": "3"}, json={"statuscode": 429, "errortext": "Too Many Requests"})
    responses.get(url, json=envelope([{"warehouseid": 1}], 1))
    assert client.list_warehouses() == [{"warehouseid": 1}]
    assert len(responses.calls) == 2
    assert waits == [3.0]


@responses.activate
def test_create_order_not_retried_on_500(client: SitooClient, waits: list[float]) -> None:
    responses.post(f"{SITE}/orders.json", status=500, json={"statuscode": 500, "errortext": "Internal Server Error"})
    with pytest.raises(ApiError) as info:
        client.create_order({"ordertypeid": 10, "externalid": "WEB-1"})
    assert info.value.outcome_unknown is True
    assert len(responses.calls) == 1 and waits == []


@responses.activate
def test_create_order_not_retried_on_timeout(client: SitooClient, waits: list[float]) -> None:
    responses.post(f"{SITE}/orders.json", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ApiError) as info:
        client.create_order({"ordertypeid": 10, "externalid": "WEB-1"})
    assert info.value.outcome_unknown is True
    assert len(responses.calls) == 1 and waits == []


@responses.activate
def test_create_order_returns_id_and_sends_write_fields_only(client: SitooClient) -> None:
    responses.post(f"{SITE}/orders.json", json=4711)
    order = {
        "ordertypeid": 10,
        "externalid": "WEB-1",
        "orderid": 99,  # read-only: must not be sent
        "moneytotal_gross_all": "10.00",  # read-only
        "additionaldata": {"weborder": True, "magento-order-id": 12},
        "orderitems": [
            {"productname": "Shirt", "sku": "S1", "quantity": 1, "moneyrowprice": Decimal("399"), "vatvalue": Decimal("25"), "orderitemid": 0}
        ],
    }
    assert client.create_order(order) == 4711
    body = json.loads(responses.calls[0].request.body)
    assert "orderid" not in body and "moneytotal_gross_all" not in body
    assert body["additionaldata"] == {"weborder": "true", "magento-order-id": "12"}
    assert body["orderitems"] == [{"productname": "Shirt", "sku": "S1", "quantity": 1, "moneyrowprice": "399.00", "vatvalue": 25}]


# -- errors and secrets ---------------------------------------------------------------------------
@responses.activate
def test_401_message_names_credentials_and_allow_list(client: SitooClient) -> None:
    responses.get(f"{SITE}/warehouses.json", status=401, json={"statuscode": 401, "errortext": "Unauthorized"})
    with pytest.raises(AuthError) as info:
        client.list_warehouses()
    message = str(info.value)
    assert "api_id" in message and "password" in message
    assert "allow-list" in message and "Settings › Sitoo REST API" in message
    assert PASSWORD not in message


@responses.activate
def test_errortext_is_the_message(client: SitooClient) -> None:
    responses.get(f"{SITE}/orders/5.json", status=404, json={"statuscode": 404, "errortext": "Order not found"})
    with pytest.raises(ApiError, match="Order not found"):
        client.get_order(5)


@responses.activate
def test_basic_auth_header_and_no_password_in_logs(client: SitooClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(f"{SITE}/warehouses.json", status=429, json={"statuscode": 429, "errortext": "slow down"})
    responses.get(f"{SITE}/warehouses.json", json=envelope([], 0))
    client.list_warehouses()
    header = responses.calls[0].request.headers["Authorization"]
    assert header == "Basic " + base64.b64encode(f"90001-56:{PASSWORD}".encode()).decode()
    assert caplog.records, "expected DEBUG/INFO request logs"
    assert PASSWORD not in caplog.text
    assert base64.b64encode(f"90001-56:{PASSWORD}".encode()).decode() not in caplog.text
    assert PASSWORD not in repr(client)


@responses.activate
def test_every_path_ends_in_json(client: SitooClient) -> None:
    responses.get(f"{SITE}/orders/5/orderdeliveries.json", json=envelope([], 0))
    responses.post(f"{SITE}/orders/5/orderdeliveries.json", json=12)
    client.list_deliveries(5)
    assert client.add_delivery(5, 2, [(0, 1)], ref="D1", ignorestock=False) == 12
    assert all(urlsplit(c.request.url).path.endswith(".json") for c in responses.calls)
    assert query(responses.calls[-1]) == {"ignorestock": "false"}
    assert json.loads(responses.calls[-1].request.body) == {
        "warehouseid": 2,
        "orderdeliveryitems": [{"orderitemid": 0, "quantity": 1}],
        "orderdeliveryref": "D1",
    }


def test_serialising_decimal_money_and_dates() -> None:
    payload = to_api(
        {
            "moneyprice": Decimal("123.5"),
            "items": [{"decimalquantity": Decimal("-13"), "moneypricein": Decimal("3.455")}],
            "vatvalue": Decimal("12.5"),
            "orderdate": datetime(2024, 1, 1, tzinfo=UTC),
        }
    )
    assert payload == {
        "moneyprice": "123.50",
        "items": [{"decimalquantity": "-13.000", "moneypricein": "3.46"}],
        "vatvalue": 12.5,
        "orderdate": 1704067200,
    }
    with pytest.raises(ValueError, match="moneyprice"):
        to_api({"moneyprice": Decimal("Infinity")})
    assert to_epoch(datetime(2024, 1, 1, tzinfo=UTC)) == 1704067200 == to_epoch(1704067200)
    with pytest.raises(ValueError, match="naive"):
        to_epoch(datetime(2024, 1, 1))


def test_order_write_payload_keeps_writable_fields_and_requires_ordertypeid() -> None:
    order = {"orderid": 3, "ordertypeid": 10, "moneyfinal_net": Decimal("8.00"),
             "orderitems": [{"orderitemid": 0, "productname": "x", "quantity": 1, "moneyrowprice": Decimal("10")}]}  # fmt: skip
    assert order_write_payload(order) == {
        "ordertypeid": 10,
        "orderitems": [{"productname": "x", "quantity": 1, "moneyrowprice": "10.00"}],
    }
    with pytest.raises(ValueError, match="ordertypeid"):
        order_write_payload({"externalid": "X"})
