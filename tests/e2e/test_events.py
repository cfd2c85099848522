"""Sitoo events end to end: the emulator posts Events-SPI batches to `magsit events serve`
(a real subprocess on a free loopback port), whose worker applies them with targeted runs."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from magsit.state import StateStore

pytestmark = pytest.mark.e2e

USER, PASSWORD = "sitoo-events", "s3cret-for-events"


def seed(env, stock):
    sitoo, magento = env.sitoo.state, env.magento.state
    sitoo.add_warehouse("Warehouse 1")
    store = sitoo.add_store("Store 1")
    register = sitoo.add_register(store, 1, "Till 1")
    for sku, qty in stock.items():
        sitoo.add_product(sku, f"Product {sku}", "100.00")
        sitoo.set_stock(1, sku, qty)
        magento.add_product(sku, f"Product {sku}", 100)
    # The seeding's own stock-count events reach the service too: let their run finish first, so the
    # test's baseline `sync-stock` neither meets its lock (exit 4) nor is counted as the sale's run.
    if sitoo.event_sink:
        assert sitoo.flush_events(10)
        assert wait_for(lambda: not _queued(env), timeout=10) is not None
    return register


def source_item(env, sku, source="default"):
    item = env.magento.state.source_items.get((source, sku.lower()))
    return None if item is None else (float(item["quantity"]), item["status"])


def wait_for(predicate, timeout: float, step: float = 0.02) -> float | None:
    """Seconds until predicate() was true, or None after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


class Service:
    def __init__(self, env, proc: subprocess.Popen, url: str) -> None:
        self.env, self.proc, self.url = env, proc, url

    def post(self, payload, auth=(USER, PASSWORD)) -> requests.Response:
        return requests.post(self.url, json=payload, auth=auth, timeout=20)

    def runs(self, job: str) -> list[dict]:
        state = StateStore(self.env.state_path)
        try:
            return [r for r in state.runs(job, limit=1000) if not r["dry_run"]]
        finally:
            state.close()


@pytest.fixture
def service(sandbox) -> Iterator[Service]:
    sandbox.configure(events={"user": USER, "password": PASSWORD, "max_queue": 1000})
    env = dict(os.environ)
    env.pop("MAGSIT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "magsit", "--config", str(sandbox.config_path), "events", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=sandbox.tmp,
        env=env,
    )
    url = None
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline and url is None:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"listening on (http://\S+/events)", line)
        if found:
            url = found.group(1)
    assert url, f"serve did not start: {''.join(lines)}"
    sitoo = sandbox.sitoo.state
    sitoo.event_sink = url
    sitoo.event_auth = (USER, PASSWORD)
    svc = Service(sandbox, proc, url)
    try:
        yield svc
    finally:
        sitoo.event_sink = None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read()
        assert proc.returncode == 0, f"serve exited {proc.returncode}: {stderr}"
        assert "Traceback" not in stderr, stderr


def test_pos_sale_reaches_magento_within_two_seconds_without_a_scheduled_run(sandbox, service):
    register = seed(sandbox, {"LAST-1": 1, "OTHER": 4})
    sandbox.run("sync-stock", check_code=0)  # the baseline, as the scheduled job would have left it
    assert source_item(sandbox, "LAST-1") == (1.0, 1)
    stock_runs = len(service.runs("sync-stock"))

    start = time.monotonic()
    sandbox.sitoo.state.pos_sale(register, [("LAST-1", 1)])
    took = wait_for(lambda: source_item(sandbox, "LAST-1") == (0.0, 0), timeout=2.0)
    assert took is not None, f"Magento still shows {source_item(sandbox, 'LAST-1')} 2 s after the sale"
    assert time.monotonic() - start < 2.0
    assert source_item(sandbox, "OTHER") == (4.0, 1)
    # One targeted run did it (the sale's order/delivery/close events needed no run of their own).
    assert wait_for(lambda: not _queued(sandbox), timeout=5) is not None
    new_runs = service.runs("sync-stock")[: len(service.runs("sync-stock")) - stock_runs]
    assert len(new_runs) == 1 and new_runs[0]["status"] == "ok"

    status = sandbox.run_json("status", check_code=0)["events"]
    assert status["queued"] == 0 and status["processed_last_hour"] >= 1
    assert 0 <= status["max_lag_seconds"] < 2


def _queued(env) -> int:
    conn = sqlite3.connect(env.state_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM events WHERE status = 'queued'").fetchone()[0]
    finally:
        conn.close()


def test_duplicate_event_is_applied_once(sandbox, service):
    register = seed(sandbox, {"DUP": 5})
    sandbox.run("sync-stock", check_code=0)
    sandbox.sitoo.state.pos_sale(register, [("DUP", 1)])
    assert wait_for(lambda: source_item(sandbox, "DUP") == (4.0, 1), timeout=2.0) is not None
    assert sandbox.sitoo.state.flush_events(5)
    assert wait_for(lambda: not _queued(sandbox), timeout=5) is not None
    stock_runs = len(service.runs("sync-stock"))
    sent = [e for e in sandbox.sitoo.state.events_sent if e["event_type"] == "warehouse-transaction"]
    assert len(sent) >= 1

    # Sitoo re-sends the batch (e.g. our 200 was lost): 200 again, nothing stored, no run.
    answer = service.post(sent)
    assert answer.status_code == 200 and answer.json() == {"stored": 0, "duplicates": len(sent)}
    time.sleep(0.8)  # longer than the worker's debounce + a targeted run
    assert len(service.runs("sync-stock")) == stock_runs
    conn = sqlite3.connect(sandbox.state_path)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM events WHERE event_id = ?", (sent[0]["event_id"],)).fetchone()[0]
    finally:
        conn.close()
    assert rows == 1


def test_malformed_batch_gets_400_and_bad_auth_401(sandbox, service):
    good = {"event_id": "e1", "event_type": "order", "event_date": 1, "account_id": 1, "data": {}}
    assert service.post({"not": "an array"}).status_code == 400
    assert service.post([good] * 11).status_code == 400  # more than 10 events
    assert service.post([{k: v for k, v in good.items() if k != "event_id"}]).status_code == 400
    raw = requests.post(service.url, data=b"[{", auth=(USER, PASSWORD), timeout=5,
                        headers={"Content-Type": "application/json"})
    assert raw.status_code == 400
    assert service.post([good], auth=(USER, "wrong")).status_code == 401
    assert service.post([good], auth=None).status_code == 401
    assert _count(sandbox) == 0  # nothing from a refused batch was stored
    assert service.post([good]).status_code == 200


def _count(env) -> int:
    conn = sqlite3.connect(env.state_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def test_locked_state_file_answers_503_and_the_retry_succeeds(sandbox, service):
    register = seed(sandbox, {"LOCK": 3})
    sandbox.run("sync-stock", check_code=0)
    sitoo = sandbox.sitoo.state
    sitoo.event_retry_delay = 0.2
    holder = sqlite3.connect(sandbox.state_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # an exclusive write lock on the state file
    try:
        sitoo.pos_sale(register, [("LOCK", 1)])
        assert wait_for(lambda: 503 in sitoo.event_attempts, timeout=10) is not None, sitoo.event_attempts
        assert source_item(sandbox, "LOCK") == (3.0, 1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Sitoo retries the same batch; now it is stored and applied.
    assert wait_for(lambda: source_item(sandbox, "LOCK") == (2.0, 1), timeout=10) is not None
    assert sitoo.flush_events(10)
    assert sitoo.events_dropped == []
    assert sitoo.event_attempts[-1] == 200


def test_scheduled_sync_stock_heals_a_dropped_event(sandbox, service):
    register = seed(sandbox, {"DROP": 3, "KEEP": 2})
    sandbox.run("sync-stock", check_code=0)
    sitoo = sandbox.sitoo.state
    sitoo.event_sink = "http://127.0.0.1:9/events"  # nobody listens: the event is lost after retries
    sitoo.event_max_attempts = 2
    sitoo.event_retry_delay = 0.01
    sitoo.pos_sale(register, [("DROP", 1)])
    assert sitoo.flush_events(10)
    assert any(e["event_type"] == "warehouse-transaction" for e in sitoo.events_dropped)
    time.sleep(0.5)
    assert source_item(sandbox, "DROP") == (3.0, 1)  # the service never heard of it
    sitoo.event_sink = service.url
    sandbox.run("sync-stock", check_code=0)  # the scheduled safety net
    assert source_item(sandbox, "DROP") == (2.0, 1)
    assert source_item(sandbox, "KEEP") == (2.0, 1)


def test_events_process_applies_stored_events_from_cron(sandbox):
    """Without `serve` running: events stored earlier are applied by `magsit events process`."""
    from magsit.events.queue import EventStore
    from magsit.events.receiver import validate_batch

    register = seed(sandbox, {"CRON-1": 4})
    sandbox.run("sync-stock", check_code=0)
    sandbox.sitoo.state.pos_sale(register, [("CRON-1", 2)])
    transaction = sandbox.sitoo.state.transactions[-1]
    store = EventStore(sandbox.state_path)
    store.store(
        validate_batch(
            [
                {"event_id": "wt-1", "event_type": "warehouse-transaction", "event_date": int(time.time()),
                 "account_id": 1, "data": {"warehouse_id": 1,
                                           "warehouse_transaction_id": transaction["warehousetransactionid"]}},
            ]
        ),
        max_queue=10,
    )
    store.close()
    dry = sandbox.run_json("--dry-run", "events", "process", check_code=0)
    assert dry["plan"]["runs"] == [{"job": "sync-stock", "options": {"skus": ["CRON-1"]}, "events": 1}]
    assert source_item(sandbox, "CRON-1") == (4.0, 1)
    report = sandbox.run_json("events", "process", check_code=0)
    assert report["processed"] == 1 and report["runs"][0]["status"] == "ok"
    assert source_item(sandbox, "CRON-1") == (2.0, 1)
    assert sandbox.run_json("events", "process", check_code=0)["read"] == 0


def _store_events(env, *events):
    from magsit.events.queue import EventStore
    from magsit.events.receiver import validate_batch

    store = EventStore(env.state_path)
    store.store(validate_batch([{"event_date": int(time.time()), "account_id": 1, "event_type": "order-delivery", **e}
                                for e in events]), max_queue=10)  # fmt: skip
    store.close()


def _delivery_event(event_id, orderid, deliveryid, state):
    return {"event_id": event_id, "data": {"eshop_id": 1, "order_id": orderid, "order_delivery_id": deliveryid,
                                           "warehouse_id": 1, "order_delivery_event_type": "update",
                                           "order_delivery_state_changed": state}}  # fmt: skip


def test_order_delivery_event_before_dispatch_ships_nothing_yet(sandbox):
    from tests.e2e.test_fulfilment import pushed

    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    _store_events(sandbox, _delivery_event("d-new", sitoo["orderid"], 900, "new"),
                  _delivery_event("d-rts", sitoo["orderid"], 900, "ready-to-ship"))  # fmt: skip
    report = sandbox.run_json("events", "process", check_code=0)
    assert report["ignored"] == 2 and report["runs"] == []
    assert sandbox.magento.state.shipments == {}
    # Dispatched: the delivery exists in Sitoo and its event ships it.
    delivery = sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-1")
    _store_events(sandbox, _delivery_event("d-done", sitoo["orderid"], delivery, "delivered"))
    report = sandbox.run_json("events", "process", check_code=0)
    assert [r["job"] for r in report["runs"]][:1] == ["sync-fulfilment"]
    assert len(sandbox.magento.state.shipments) == 1


def test_cancelled_delivery_event_of_a_shipped_order_raises_it_at_once(sandbox):
    from tests.e2e.test_fulfilment import pushed

    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    delivery = sandbox.sitoo.state.deliver(sitoo["orderid"], ref="PN-1")
    sandbox.configure(orders={"watch_shipped_hours": 0})  # only the event brings the order back
    sandbox.run("sync-fulfilment", check_code=0)
    sandbox.sitoo.state.cancel_delivery(delivery)
    _store_events(sandbox, _delivery_event("d-cancel", sitoo["orderid"], delivery, "cancelled"))
    sandbox.run_json("events", "process")
    state = StateStore(sandbox.state_path)
    assert [e["kind"] for e in state.exceptions()] == ["delivery_cancelled_after_shipment"]
