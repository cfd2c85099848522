"""magsit.events: payload validation, the de-duplicating queue, coalescing into runs, draining."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import time
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from magsit.config import EventSettings
from magsit.errors import ApiError, ConfigError, LockedError
from magsit.events import drain, queue, receiver
from magsit.events import plan as event_plan
from magsit.state import JobLock, StateStore


def raw(event_id="e1", event_type="warehouse-transaction", **data):
    return {"event_id": event_id, "event_type": event_type, "event_date": 1611138542, "account_id": 1500, "data": data}


def queued(event_id, event_type, **data):
    return queue.QueuedEvent(event_id, event_type, data, time.time())


# -- validation -----------------------------------------------------------------------------------
def test_valid_batch_normalises_ids():
    events = receiver.validate_batch([raw("a", sku="X"), {**raw(7), "account_id": "1500", "event_date": "1611138542"}])
    assert [e.event_id for e in events] == ["a", "7"]
    assert events[1].account_id == "1500" and events[1].event_date == 1611138542


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"event_id": "x"}, "JSON array"),
        ([], "empty"),
        ([raw(str(n)) for n in range(11)], "at most 10"),
        (["text"], "not a JSON object"),
        ([{k: v for k, v in raw().items() if k != "data"}], "missing data"),
        ([{**raw(), "event_id": None}], "missing event_id"),
        ([{**raw(), "event_id": ""}], "event_id"),
        ([{**raw(), "event_id": True}], "event_id"),
        ([{**raw(), "event_type": 3}], "event_type"),
        ([{**raw(), "event_date": "yesterday"}], "event_date"),
        ([{**raw(), "event_date": -1}], "event_date"),
        ([{**raw(), "account_id": {"id": 1}}], "account_id"),
        ([{**raw(), "data": [1]}], "data must be a JSON object"),
        ([raw("ok"), {**raw("bad"), "data": None}], "event 1: missing data"),
    ],
)
def test_malformed_batches_are_refused(payload, message):
    with pytest.raises(receiver.PayloadError, match=message):
        receiver.validate_batch(payload)


# -- the queue ------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    s = queue.EventStore(tmp_path / "magsit.db", busy_timeout=0.2)
    yield s
    s.close()


def statuses(store):
    rows = store._conn().execute("SELECT event_id, status FROM events ORDER BY event_id")
    return {r[0]: r[1] for r in rows}


def test_store_deduplicates_by_event_id(store):
    batch = receiver.validate_batch([raw("a", sku="X"), raw("b", sku="Y"), raw("a", sku="X")])
    assert store.store(batch, max_queue=100) == (2, 1)  # the same id twice in one batch: once
    assert store.store(receiver.validate_batch([raw("a"), raw("c")]), max_queue=100) == (1, 1)
    assert store.store(receiver.validate_batch([raw("a"), raw("b")]), max_queue=100) == (0, 2)
    assert statuses(store) == {"a": "queued", "b": "queued", "c": "queued"}
    store.finish({"a": None}, "processed")
    assert store.store(receiver.validate_batch([raw("a")]), max_queue=100) == (0, 1)  # handled earlier: still 200
    assert statuses(store)["a"] == "processed"


def test_unused_event_types_are_stored_as_ignored(store):
    store.store(receiver.validate_batch([raw("z", "z-report"), raw("w", sku="A")]), max_queue=100)
    assert statuses(store) == {"w": "queued", "z": "ignored"}
    assert [e.event_id for e in store.due()] == ["w"]


def test_full_queue_refuses_new_events_but_not_known_ones(store):
    store.store(receiver.validate_batch([raw("a"), raw("b")]), max_queue=2)
    with pytest.raises(queue.QueueFull):
        store.store(receiver.validate_batch([raw("c")]), max_queue=2)
    assert store.store(receiver.validate_batch([raw("a")]), max_queue=2) == (0, 1)
    assert "c" not in statuses(store)


def test_locked_state_file_raises_quickly(store, tmp_path):
    holder = sqlite3.connect(tmp_path / "magsit.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.raises(sqlite3.OperationalError):
            store.store(receiver.validate_batch([raw("a")]), max_queue=10)
        assert time.monotonic() - start < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.store(receiver.validate_batch([raw("a")]), max_queue=10) == (1, 0)


def test_defer_backoff_and_give_up(store, monkeypatch):
    store.store(receiver.validate_batch([raw("a"), raw("b")]), max_queue=10)
    now = time.time()
    store.defer({"a": "locked"}, 2.0, now=now)
    store.defer({"b": "run failed"}, None, now=now)
    assert [e.event_id for e in store.due(now=now)] == []
    assert [e.event_id for e in store.due(now=now + 2.1)] == ["a"]  # lock: retry soon, not counted
    assert [e.event_id for e in store.due(now=now + 5.1)] == ["a", "b"]
    rows = {r[0]: r[1] for r in store._conn().execute("SELECT event_id, attempts FROM events")}
    assert rows == {"a": 0, "b": 1}
    monkeypatch.setattr(queue, "MAX_ATTEMPTS", 2)
    assert store.defer({"b": "run failed"}, None, now=now) == ["b"]
    assert statuses(store)["b"] == "failed"


def test_purge_keeps_queued_and_recent(store):
    store.store(receiver.validate_batch([raw("old"), raw("new"), raw("waiting")]), max_queue=10, now=1000.0)
    store.finish({"old": None}, "processed", now=1000.0)
    store.finish({"new": None}, "processed", now=time.time())
    assert store.purge() == 1
    assert statuses(store) == {"new": "processed", "waiting": "queued"}


# -- planning (coalescing) ------------------------------------------------------------------------
def pushed(increment_id, skus, status="pushed"):
    return {"external_id": increment_id, "status": status, "data": {"lines": [{"sku": s, "qty": 1} for s in skus]}}


def test_burst_of_stock_events_is_one_targeted_run():
    events = [queued(f"t{n}", "warehouse-transaction", warehouse_id=1, skus=[f"SKU-{n % 3}"]) for n in range(25)]
    plan = event_plan.plan_drain(events, event_plan.Facts(), {"1": "default"})
    assert [(r.job, r.options) for r in plan.runs] == [("sync-stock", {"skus": ["SKU-0", "SKU-1", "SKU-2"]})]
    assert len(plan.runs[0].event_ids) == 25 and not plan.ignored


def test_skus_from_the_transaction_or_an_incremental_run():
    events = [
        queued("a", "warehouse-transaction", warehouse_id=1, warehouse_transaction_id=5),
        queued("b", "warehouse-transaction", warehouse_id=2, skus=["X"]),  # warehouse 2 is not mapped
    ]
    plan = event_plan.plan_drain(events, event_plan.Facts(transactions={"5": ["A", "B"]}), {"1": "default"})
    assert [(r.job, r.options, r.event_ids) for r in plan.runs] == [("sync-stock", {"skus": ["A", "B"]}, ["a"])]
    assert "not mapped" in plan.ignored["b"]
    # Transaction unreadable: an incremental run (no skus option) for everything.
    plan = event_plan.plan_drain([events[0], queued("c", "warehouse-transaction", skus=["C"])], event_plan.Facts(), {"1": "x"})
    assert [(r.job, r.options, r.event_ids) for r in plan.runs] == [("sync-stock", {}, ["a", "c"])]


def test_too_many_skus_become_an_incremental_run(monkeypatch):
    monkeypatch.setattr(event_plan, "MAX_TARGETED_SKUS", 2)
    events = [queued(str(n), "warehouse-transaction", skus=[f"S{n}"]) for n in range(3)]
    assert event_plan.plan_drain(events, event_plan.Facts(), {"1": "d"}).runs[0].options == {}


def test_order_events_route_to_fulfilment_returns_or_nothing():
    facts = event_plan.Facts(
        pushed={"100": pushed("000000042", ["WEB-1"]), "101": pushed("000000043", ["WEB-2"]),
                "102": pushed("000000044", [], status="done")},
        orders={"200": {"orderid": 200, "creditorderid": 100}, "201": {"orderid": 201, "creditorderid": None},
                "202": {"orderid": 202, "additionaldata": {"pos-originalsales-orderid": "999"}}},
    )
    events = [
        queued("d1", "order-delivery", order_id=100, order_delivery_id=1),
        queued("u1", "order", order_id=101, order_event_type="update", order_state_changed="cancelled"),
        queued("d2", "order-delivery", order_id=100, order_delivery_id=2),
        queued("u2", "order", order_id=101, order_event_type="update"),  # no state change
        queued("x1", "order", order_id=102, order_event_type="update", order_state_changed="closed"),
        queued("r1", "order", order_id=200, order_event_type="add"),  # refund of a pushed web order
        queued("n1", "order", order_id=201, order_event_type="add"),  # a POS sale
        queued("p1", "order", order_id=202, order_event_type="add"),  # refund of a POS sale
        queued("s1", "order-delivery", order_id=300),  # a POS sale's delivery
        queued("w1", "warehouse-transaction", skus=["POS-1"]),
    ]
    plan = event_plan.plan_drain(events, facts, {"1": "default"})
    runs = {r.job: r for r in plan.runs}
    assert [r.job for r in plan.runs] == ["sync-returns", "sync-fulfilment", "sync-stock"]
    assert runs["sync-returns"].event_ids == ["r1"] and runs["sync-returns"].options == {}
    assert runs["sync-fulfilment"].options == {"orders": ["000000042", "000000043"]}
    assert runs["sync-fulfilment"].event_ids == ["d1", "u1", "d2"]
    # The pushed orders' SKUs are re-read after fulfilment moved their in-flight units.
    assert runs["sync-stock"].options == {"skus": ["WEB-1", "WEB-2", "POS-1"]}
    assert set(runs["sync-stock"].event_ids) == {"d1", "u1", "d2", "w1"}
    assert set(plan.ignored) == {"u2", "x1", "n1", "p1", "s1"}


def test_event_whose_facts_could_not_be_read_waits():
    facts = event_plan.Facts(unavailable={"a": "Sitoo down"})
    plan = event_plan.plan_drain([queued("a", "order", order_id=5, order_event_type="add")], facts, {})
    assert plan.waiting == {"a": "Sitoo down"} and not plan.runs


# -- facts ----------------------------------------------------------------------------------------
class FakeSitoo:
    def __init__(self, orders=(), transactions=(), fail=False):
        self.orders, self.transactions, self.fail = list(orders), list(transactions), fail
        self.order_calls: list[list[int]] = []

    def get_orders(self, ids, fields=None):
        self.order_calls.append(list(ids))
        if self.fail:
            raise ApiError("down", system="sitoo", status=503, retryable=True)
        return [o for o in self.orders if o["orderid"] in ids]

    def iter_warehouse_transactions(self, warehouse_id=None, id_from=None, fields=None):
        if self.fail:
            raise ApiError("down", system="sitoo", status=503, retryable=True)
        return iter([t for t in self.transactions if t["warehousetransactionid"] >= id_from])


def test_gather_facts_reads_new_orders_in_one_call_and_transactions(tmp_path):
    state = StateStore(tmp_path / "s.db")
    state.put_mapping("order", "magento", "000000042", "100", data={"lines": []}, status="pushed")
    sitoo = FakeSitoo(
        orders=[{"orderid": 200, "creditorderid": 100}, {"orderid": 201}],
        transactions=[{"warehousetransactionid": 9, "items": [{"sku": "T1"}, {"sku": "T2"}]}],
    )
    events = [
        queued("a", "order", order_id=200, order_event_type="add"),
        queued("b", "order", order_id=201, order_event_type="add"),
        queued("c", "order", order_id=100, order_event_type="add"),  # ours: no read needed
        queued("d", "warehouse-transaction", warehouse_id=1, warehouse_transaction_id=9),
    ]
    facts = drain.gather_facts(events, state, sitoo)
    assert sitoo.order_calls == [[200, 201]]
    assert set(facts.pushed) == {"100"} and set(facts.orders) == {"200", "201"}
    assert facts.transactions == {"9": ["T1", "T2"]}
    facts = drain.gather_facts(events, state, FakeSitoo(fail=True))
    assert set(facts.unavailable) == {"a", "b"} and facts.transactions == {}
    state.close()


# -- draining -------------------------------------------------------------------------------------
def config_for(tmp_path):
    return SimpleNamespace(
        state=SimpleNamespace(path=tmp_path / "magsit.db"),
        stock=SimpleNamespace(sources={"1": "default"}),
        events=EventSettings(),
    )


class Runs:
    def __init__(self, results=None):
        self.calls: list[tuple[str, dict]] = []
        self.results = results or {}

    def __call__(self, config, job, options, stop_event):
        self.calls.append((job, options))
        result = self.results.get(job, "ok")
        if isinstance(result, BaseException):
            raise result
        return SimpleNamespace(status=result, exit_code=0 if result == "ok" else 1, run_id=1, error=None)


def fill(store, *events):
    store.store(receiver.validate_batch(list(events)), max_queue=1000)


def test_drain_coalesces_and_marks_processed_with_lag(tmp_path, store):
    config = config_for(tmp_path)
    fill(store, *[raw(f"t{n}", skus=[f"S{n % 2}"], warehouse_id=1) for n in range(10)])
    fill(store, *[raw(f"u{n}", skus=["S1", "S9"], warehouse_id=1) for n in range(10)])
    runs = Runs()
    report = drain.drain(config, store, sitoo=FakeSitoo(), run=runs)
    assert runs.calls == [("sync-stock", {"skus": ["S0", "S1", "S9"]})]
    assert report.processed == 20 and report.clean
    assert set(statuses(store).values()) == {"processed"}
    stats = queue.event_stats(store._conn())
    assert stats["queued"] == 0 and stats["processed_last_hour"] == 20 and stats["max_lag_seconds"] >= 0
    assert drain.drain(config, store, sitoo=FakeSitoo(), run=runs).read == 0 and len(runs.calls) == 1


def test_locked_job_leaves_events_queued_and_failed_run_backs_off(tmp_path, store):
    config = config_for(tmp_path)
    fill(store, raw("a", skus=["A"]))
    report = drain.drain(config, store, sitoo=FakeSitoo(), run=Runs({"sync-stock": LockedError("held by cron")}))
    assert report.processed == 0 and report.deferred == 1
    assert statuses(store) == {"a": "queued"}
    assert store.due() == []  # retried after LOCKED_RETRY_SECONDS, never lost
    assert [e.event_id for e in store.due(now=time.time() + drain.LOCKED_RETRY_SECONDS + 0.1)] == ["a"]
    store._conn().execute("UPDATE events SET next_attempt_at = NULL")
    drain.drain(config, store, sitoo=FakeSitoo(), run=Runs({"sync-stock": "failed"}))
    row = store._conn().execute("SELECT status, attempts FROM events").fetchone()
    assert tuple(row) == ("queued", 1)
    store._conn().execute("UPDATE events SET next_attempt_at = NULL")
    report = drain.drain(config, store, sitoo=FakeSitoo(), run=Runs())
    assert report.processed == 1 and statuses(store) == {"a": "processed"}


def test_partial_run_counts_as_applied_and_missing_flow_does_not_loop(tmp_path, store):
    config = config_for(tmp_path)
    state = StateStore(config.state.path)
    state.put_mapping("order", "magento", "000000042", "100", data={"lines": []}, status="pushed")
    state.close()
    fill(store, raw("s", skus=["A"]), raw("r", "order", order_id=200, order_event_type="add"))
    sitoo = FakeSitoo(orders=[{"orderid": 200, "creditorderid": 100}])
    runs = Runs({"sync-stock": "partial", "sync-returns": ConfigError("job sync-returns: not built")})
    drain.drain(config, store, sitoo=sitoo, run=runs)
    assert [c[0] for c in runs.calls] == ["sync-returns", "sync-stock"]
    assert statuses(store) == {"r": "queued", "s": "processed"}


def test_only_one_drainer(tmp_path, store):
    config = config_for(tmp_path)
    with JobLock(config.state.path, "events"), pytest.raises(LockedError):
        drain.drain(config, store, sitoo=FakeSitoo(), run=Runs())


def test_dry_run_plans_without_running_or_marking(tmp_path, store):
    config = config_for(tmp_path)
    fill(store, raw("a", skus=["A"]))
    runs = Runs()
    report = drain.drain(config, store, sitoo=FakeSitoo(), run=runs, dry_run=True)
    assert runs.calls == [] and report.plan["runs"][0]["job"] == "sync-stock"
    assert statuses(store) == {"a": "queued"}


# -- the WSGI app ---------------------------------------------------------------------------------
def call(app, body, auth=None, method="POST", path="/events"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "REMOTE_ADDR": "127.0.0.1",
    }
    if auth:
        environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    out = b"".join(app(environ, start_response))
    return seen["status"], json.loads(out), seen["headers"]


def test_app_auth_validation_dedup_and_wakeup(store):
    woken = []
    settings = EventSettings(user="hook", password=SecretStr("pw"))
    app = receiver.make_app(settings, store, lambda: woken.append(1))
    assert call(app, [raw("a")])[0] == 401
    status, _, headers = call(app, [raw("a")], auth=("hook", "nope"))
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    assert call(app, [raw("a")], auth=("hoo", "kpw"))[0] == 401
    assert call(app, b"[{", auth=("hook", "pw"))[0] == 400
    assert call(app, [raw("a")] * 0, auth=("hook", "pw"))[0] == 400
    assert woken == []
    assert call(app, [raw("a"), raw("b")], auth=("hook", "pw"))[:2] == (200, {"stored": 2, "duplicates": 0})
    assert call(app, [raw("a")], auth=("hook", "pw"))[:2] == (200, {"stored": 0, "duplicates": 1})
    assert woken == [1]  # a batch of known events does not wake the worker
    assert call(app, [], method="GET")[0] == 405
    assert call(app, [], method="GET", path="/health")[0] == 200
    assert call(app, [], path="/other")[0] == 404


def test_app_answers_503_when_full_or_locked(store, tmp_path):
    app = receiver.make_app(EventSettings(max_queue=1), store)
    assert call(app, [raw("a")])[0] == 200  # no auth configured: open (e.g. behind a proxy that checks)
    status, _, headers = call(app, [raw("b")])
    assert status == 503 and "Retry-After" in headers
    holder = sqlite3.connect(tmp_path / "magsit.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert call(app, [raw("a")])[0] == 503  # even a duplicate: it cannot be checked now
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_user_without_password_is_a_config_error(store):
    with pytest.raises(ConfigError, match="go together"):
        receiver.make_app(EventSettings(user="hook"), store)


# -- the systemd unit -----------------------------------------------------------------------------
def test_events_unit_is_hardened_like_the_daemon_and_verifies(tmp_path):
    import shutil
    import subprocess
    from pathlib import Path

    from tests.unit.test_status import CRON, REPO, read_unit

    unit = read_unit("magsit-events.service")
    daemon = read_unit("magsit-daemon.service")
    service = unit["Service"]
    assert service["ExecStart"].split()[-2:] == ["events", "serve"]
    assert Path(service["ExecStart"].split()[0]).is_absolute()
    for key, value in daemon["Service"].items():
        if key.startswith(("Protect", "Restrict", "Private", "NoNewPrivileges", "SystemCall", "Capability")) or key in (
            "User", "UMask", "ReadWritePaths", "LockPersonality", "MemoryDenyWriteExecute", "KillSignal",
        ):
            assert service.get(key) == value, f"{key}: {service.get(key)!r} != daemon's {value!r}"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    magsit = shutil.which("magsit") or str(REPO / ".venv" / "bin" / "magsit")
    (tmp_path / "magsit-events.service").write_text(
        (CRON / "magsit-events.service").read_text().replace("/opt/magsit/.venv/bin/magsit", magsit)
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "magsit-events.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr
