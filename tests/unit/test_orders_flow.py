"""push-orders / sync-fulfilment flow logic against an in-memory fake of both APIs (no HTTP).

The e2e tests drive the same flows over real HTTP against the emulators; these pin the
exactly-once logic (pending intents, adoption, retry queue, cumulative shipment quantities).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from magsit.config import parse_config
from magsit.errors import ApiError
from magsit.runner import run_job
from magsit.state import StateStore
from magsit.sync import calls, fulfilment, orders
from magsit.sync.inflight import in_flight_units
from magsit.sync.keyset import magento_ts


class World:
    def __init__(self):
        self.m_orders: dict[int, dict] = {}
        self.s_orders: dict[int, dict] = {}
        self.deliveries: dict[int, list[dict]] = {}
        self.products = {"A": Decimal("100.00"), "B/1": Decimal("50.00"), "SHIPPING": Decimal("0")}
        self.users: list[dict] = []
        self.next_orderid = itertools.count(1000)
        self.next_ship = itertools.count(1)
        self.fail_create: str | None = None  # "500_after" | "500_before" | "400"
        self.ships: list[tuple[int, dict]] = []
        self.cancel_answer = True
        self.comments: list[tuple[int, str]] = []
        self.ship_unknown_once = False
        self.posts = 0
        self.s_puts: list[tuple[int, dict]] = []

    # magento
    def add_order(self, entity_id, skus, status="processing", updated_at=None, **extra):
        items = []
        for n, (sku, qty) in enumerate(skus, start=1):
            price = self.products.get(sku, Decimal("10"))
            items.append({"item_id": entity_id * 10 + n, "sku": sku, "name": sku, "product_type": "simple",
                          "qty_ordered": qty, "qty_shipped": 0, "qty_canceled": 0,
                          "base_price_incl_tax": str(price), "base_row_total_incl_tax": str(price * qty),
                          "tax_percent": 25})
        address = {"street": ["Gatan 1"], "postcode": "111", "city": "Sthlm", "country_id": "SE"}
        order = {"entity_id": entity_id, "increment_id": f"{entity_id:09d}", "status": status, "state": "processing",
                 "updated_at": updated_at or magento_ts(datetime.now(UTC) - timedelta(minutes=10)),
                 "customer_email": f"c{entity_id}@example.com", "base_grand_total": "1", "base_total_paid": "1",
                 "billing_address": address, "items": items,
                 "extension_attributes": {"shipping_assignments": [{"shipping": {"address": address, "method": "flatrate_flatrate"}}]}}
        order.update(extra)
        self.m_orders[entity_id] = order
        return order

    def search(self, ctx, filters, size):
        rows = list(self.m_orders.values())
        for field, value, cond in filters:
            def ok(row, field=field, value=value, cond=cond):
                have = row[field]
                if cond == "in":
                    return str(have) in value.split(",")
                want = int(value) if field == "entity_id" else value
                return {"eq": have == want, "gt": have > want, "gteq": have >= want, "lteq": have <= want}[cond]
            rows = [r for r in rows if ok(r)]
        rows.sort(key=lambda r: (r["updated_at"], r["entity_id"]))
        return [dict(r) for r in rows[:size]], len(rows)

    def orders_by(self, ctx, field, values):
        return [dict(r) for r in self.m_orders.values() if str(r[field]) in values]

    def order(self, ctx, entity_id):
        return self.m_orders[entity_id]

    def ship(self, ctx, entity_id, body):
        order = self.m_orders[entity_id]
        for item in body["items"]:
            m = next(i for i in order["items"] if i["item_id"] == item["order_item_id"])
            if m["qty_shipped"] + item["qty"] > m["qty_ordered"]:
                raise ApiError("Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created.",
                               system="magento", status=400)
            m["qty_shipped"] += item["qty"]
        self.ships.append((entity_id, body))
        if self.ship_unknown_once:
            self.ship_unknown_once = False
            raise ApiError("timeout", system="magento", outcome_unknown=True)
        return next(self.next_ship)

    def cancel(self, ctx, entity_id):
        if self.cancel_answer:
            self.m_orders[entity_id]["state"] = "canceled"
        return self.cancel_answer

    def comment(self, ctx, entity_id, text):
        self.comments.append((entity_id, text))

    def open_orders(self, ctx, entity_ids):
        return {e: {"entity_id": e, "state": o["state"], "items": o.get("items") or []}
                for e, o in self.m_orders.items() if str(e) in entity_ids}  # fmt: skip

    # sitoo
    def s_orders_by(self, ctx, field, values):
        return [dict(o) for o in self.s_orders.values() if str(o[field]) in values]

    def create(self, ctx, payload):
        self.posts += 1
        if self.fail_create == "500_before":
            raise ApiError("500", system="sitoo", status=500, outcome_unknown=True)
        if self.fail_create == "400":
            raise ApiError("bad", system="sitoo", status=400)
        if any(o["externalid"] == payload["externalid"] for o in self.s_orders.values()):
            raise ApiError("externalid exists", system="sitoo", status=400)
        orderid = next(self.next_orderid)
        items = [dict(i, orderitemid=n) for n, i in enumerate(payload["orderitems"])]
        self.s_orders[orderid] = dict(payload, orderid=orderid, orderitems=items, orderstateid=0)
        if self.fail_create == "500_after":
            raise ApiError("500", system="sitoo", status=500, outcome_unknown=True)
        return orderid

    def s_update(self, ctx, orderid, fields):
        self.s_puts.append((orderid, dict(fields)))
        self.s_orders[orderid].update(fields)
        return True

    def s_deliveries(self, ctx, orderid):
        return self.deliveries.get(orderid, [])

    def s_products(self, ctx, skus):
        return [{"sku": s, "moneyprice": str(p)} for s, p in self.products.items() if s in skus]

    def s_users(self, ctx, emails):
        return {e: [u for u in self.users if u["email"] == e] for e in emails}

    def s_create_users(self, ctx, users):
        out = []
        for user in users:
            guid = f"{{U-{len(self.users)}}}"
            self.users.append(dict(user, userid=guid))
            out.append({"ok": True, "userid": guid, "error": None})
        return out

    def deliver(self, orderid, lines, ref="TRACK1", warehouse=1):
        did = 500 + sum(len(v) for v in self.deliveries.values())
        self.deliveries.setdefault(orderid, []).append(
            {"orderdeliveryid": did, "orderid": orderid, "warehouseid": warehouse, "orderdeliveryref": ref,
             "orderdeliveryitems": [{"orderitemid": i, "quantity": q} for i, q in lines]})
        return did


@pytest.fixture
def world(monkeypatch):
    w = World()
    for name, fn in {
        "magento_search_orders": w.search, "magento_orders_by": w.orders_by, "magento_order": w.order,
        "magento_ship": w.ship, "magento_cancel": w.cancel, "magento_comment": w.comment,
        "sitoo_orders_by": w.s_orders_by, "sitoo_create_order": w.create, "sitoo_deliveries": w.s_deliveries,
        "sitoo_products_by_sku": w.s_products, "sitoo_users_by_emails": w.s_users,
        "sitoo_create_users": w.s_create_users, "magento_open_orders": w.open_orders, "sitoo_update_order": w.s_update,
    }.items():
        monkeypatch.setattr(calls, name, fn)
    return w


def make_config(tmp_path, **orders_extra):
    return parse_config({
        "magento": {"base_url": "http://127.0.0.1:9", "token": "t", "page_size": 7},
        "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
        "orders": {"retry_backoff_minutes": 0, **orders_extra},
        "state": {"path": str(tmp_path / "s.db")},
    })


def push(config, **options):
    return run_job(config, "push-orders", orders, options=options)


def sync(config):
    return run_job(config, "sync-fulfilment", fulfilment)


def test_push_creates_once_and_links_customer(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 2), ("B/1", 1)])
    world.add_order(2, [("A", 1)], status="pending")
    outcome = push(config)
    assert outcome.exit_code == 0, outcome.failures
    assert len(world.s_orders) == 1
    sitoo = next(iter(world.s_orders.values()))
    assert sitoo["externalid"] == "000000001"
    assert sitoo["additionaldata"]["sitoo-userid"] == world.users[0]["userid"]
    push(config)
    assert len(world.s_orders) == 1 and world.posts == 1
    store = StateStore(config.state.path)
    mapping = store.get_mapping("order", "magento", "000000001")
    assert mapping["status"] == "pushed"
    assert [(line["sku"], line["qty"], line["sitoo_orderitemid"]) for line in mapping["data"]["lines"]] == [("A", 2, 0), ("B/1", 1, 1)]


def test_500_after_store_is_adopted_not_duplicated(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    world.fail_create = "500_after"
    outcome = push(config)
    assert outcome.exit_code == 0  # looked up right away and adopted
    world.fail_create = None
    push(config)
    assert len(world.s_orders) == 1 and world.posts == 1
    store = StateStore(config.state.path)
    assert store.get_mapping("order", "magento", "000000001")["status"] == "pushed"


def test_unknown_outcome_keeps_intent_then_creates_once(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    world.fail_create = "500_before"
    assert push(config).exit_code == 3
    store = StateStore(config.state.path)
    pending = store.get_mapping("order", "magento", "000000001")
    assert pending["status"] == "pending" and pending["other_id"] is None
    assert in_flight_units(store.mappings("order"), {"1": "default"}) == {}
    world.fail_create = None
    assert push(config).exit_code == 0
    assert len(world.s_orders) == 1
    assert store.exceptions() == []


def test_crash_after_post_before_outcome_is_adopted(world, tmp_path):
    """A pending intent left by a crash: the next run finds the order in Sitoo and adopts it."""
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    store = StateStore(config.state.path)
    store.put_mapping("order", "magento", "000000001", None, {"entity_id": 1, "externalid": "000000001"}, "pending")
    world.create(None, {"externalid": "000000001", "orderitems": [{"sku": "A", "quantity": 1, "additionaldata": {"web-itemid": "11"}}]})
    world.m_orders[1]["updated_at"] = "2000-01-01 00:00:00"  # outside the cursor window
    push(config)
    assert len(world.s_orders) == 1 and world.posts == 1
    mapping = store.get_mapping("order", "magento", "000000001")
    assert mapping["status"] == "pushed" and mapping["data"]["lines"][0]["sitoo_orderitemid"] == 0


def test_unknown_sku_is_an_exception_and_lands_later_via_retry_queue(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("NOPE", 1)])
    world.add_order(2, [("A", 1)])
    outcome = push(config)
    assert outcome.exit_code == 3
    assert [(f.kind, f.owner, f.key) for f in outcome.failures] == [("unknown_sku", "ecommerce", "000000001")]
    assert len(world.s_orders) == 1
    world.products["NOPE"] = Decimal("10")
    world.m_orders[1]["updated_at"] = "2000-01-01 00:00:00"  # the cursor moved past it
    outcome = push(config)
    assert outcome.exit_code == 0
    assert len(world.s_orders) == 2
    store = StateStore(config.state.path)
    assert store.exceptions() == [] and store.mappings("order_retry") == []


def test_backoff_holds_a_failing_order_until_due_and_order_option_forces(world, tmp_path):
    config = make_config(tmp_path, retry_backoff_minutes=60)
    world.add_order(1, [("NOPE", 1)])
    push(config)
    world.products["NOPE"] = Decimal("10")
    outcome = push(config)
    assert outcome.exit_code == 0 and len(world.s_orders) == 0  # waiting
    push(config, orders=("000000001",))
    assert len(world.s_orders) == 1


def test_cluster_bigger_than_page_all_pushed_once(world, tmp_path):
    config = make_config(tmp_path)
    stamp = magento_ts(datetime.now(UTC) - timedelta(minutes=30))
    for n in range(1, 31):
        world.add_order(n, [("A", 1)], updated_at=stamp)
    assert push(config).exit_code == 0
    assert len(world.s_orders) == 30
    push(config)
    assert world.posts == 30


def test_delivery_ships_once_with_tracking_partial_then_rest(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 3)])
    push(config)
    orderid = next(iter(world.s_orders))
    world.deliver(orderid, [(0, 1)], ref="TRK-1")
    assert sync(config).exit_code == 0
    sync(config)
    assert len(world.ships) == 1
    body = world.ships[0][1]
    assert body["items"] == [{"order_item_id": 11, "qty": 1}] and body["notify"] is True
    assert body["tracks"] == [{"track_number": "TRK-1", "title": "Store delivery", "carrier_code": "custom"}]
    assert body["arguments"]["extension_attributes"]["source_code"] == "default"
    store = StateStore(config.state.path)
    assert in_flight_units(store.mappings("order"), {"1": "default"}) == {("A", "default"): 2}
    world.deliver(orderid, [(0, 2)], ref="TRK-2")
    sync(config)
    assert [b["items"] for _, b in world.ships] == [[{"order_item_id": 11, "qty": 1}], [{"order_item_id": 11, "qty": 2}]]
    assert store.get_mapping("order", "magento", "000000001")["status"] == "shipped"
    assert in_flight_units(store.mappings("order"), {"1": "default"}) == {}


def test_lost_ship_answer_is_not_shipped_twice(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    push(config)
    world.deliver(next(iter(world.s_orders)), [(0, 1)])
    world.ship_unknown_once = True
    assert sync(config).exit_code == 3
    assert sync(config).exit_code == 0
    assert len(world.ships) == 1
    store = StateStore(config.state.path)
    assert store.get_mapping("order", "magento", "000000001")["status"] == "shipped"
    assert store.exceptions() == []


def test_cancel_in_sitoo_cancels_magento_and_releases_in_flight(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 2)])
    push(config)
    store = StateStore(config.state.path)
    assert in_flight_units(store.mappings("order"), {"1": "default"}) == {("A", "default"): 2}
    next(iter(world.s_orders.values()))["orderstateid"] = 20
    assert sync(config).exit_code == 0
    assert world.m_orders[1]["state"] == "canceled"
    assert store.get_mapping("order", "magento", "000000001")["status"] == "canceled"
    assert in_flight_units(store.mappings("order"), {"1": "default"}) == {}


def test_cancel_refused_comments_once_and_raises(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    push(config)
    next(iter(world.s_orders.values()))["orderstateid"] = 20
    world.cancel_answer = False
    outcome = sync(config)
    assert outcome.exit_code == 3 and outcome.failures[0].kind == "cancel_refused"
    sync(config)
    assert len(world.comments) == 1


def _ago(minutes):
    return magento_ts(datetime.now(UTC) - timedelta(minutes=minutes))


def test_stop_mid_push_does_not_move_the_cursor_past_unhandled_orders(world, tmp_path):
    import threading

    config = make_config(tmp_path)
    for entity_id, minutes in ((1, 60), (2, 50), (3, 30)):
        world.add_order(entity_id, [("A", 1)], updated_at=_ago(minutes))
    stop = threading.Event()
    create = world.create

    def create_then_stop(ctx, payload):  # SIGTERM arrives while the first order is in hand
        stop.set()
        return create(ctx, payload)

    calls.sitoo_create_order = create_then_stop
    run_job(config, "push-orders", orders, stop_event=stop)
    assert world.posts == 1
    calls.sitoo_create_order = create
    assert push(config).exit_code == 0
    assert sorted(o["externalid"] for o in world.s_orders.values()) == ["000000001", "000000002", "000000003"]


def test_since_later_than_the_cursor_does_not_skip_the_gap(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)], updated_at=_ago(300))
    push(config)
    world.add_order(2, [("A", 1)], updated_at=_ago(240))  # between the cursor and --since
    world.add_order(3, [("A", 1)], updated_at=_ago(120))
    push(config, since=datetime.now(UTC) - timedelta(minutes=180))
    assert push(config).exit_code == 0
    assert sorted(o["externalid"] for o in world.s_orders.values()) == ["000000001", "000000002", "000000003"]


def test_a_failing_cancel_fails_that_order_only(world, tmp_path):
    config = make_config(tmp_path)
    world.add_order(1, [("A", 1)])
    world.add_order(2, [("A", 1)])
    push(config)
    for order in world.s_orders.values():
        order["orderstateid"] = 20
    cancel = world.cancel

    def cancel_or_fail(ctx, entity_id):
        if entity_id == 1:
            raise ApiError("magento: POST /orders/1/cancel failed: order is locked", system="magento", status=400)
        return cancel(ctx, entity_id)

    calls.magento_cancel = cancel_or_fail
    outcome = sync(config)
    assert outcome.exit_code == 3 and [f.kind for f in outcome.failures] == ["cancel_failed"]
    assert world.m_orders[2]["state"] == "canceled"
    calls.magento_cancel = cancel
    assert sync(config).exit_code == 0
    assert world.m_orders[1]["state"] == "canceled"
