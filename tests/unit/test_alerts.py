"""Alerts: one digest per owner per run, no repeats within repeat_hours, delivery never fails a run."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from magsit import alerts
from magsit.config import parse_config
from magsit.errors import ApiError, RecordError
from magsit.flow import Preview
from magsit.runner import JobResult, after_run_hooks, run_job
from magsit.state import StateStore
from magsit.state.store import iso, now_utc
from tests.flows import pull_only, push_only


class Hook:
    """A loopback webhook that records JSON bodies and answers with ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/SECRETPATH"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def by_owner(self) -> dict[str, dict]:
        return {body["owner"]: body for body in self.bodies}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def installed():
    alerts.install()
    alerts.install()  # idempotent
    assert after_run_hooks.count(alerts.after_run) == 1
    yield


def make_config(tmp_path, **alert_settings):
    return parse_config(
        {
            "magento": {"base_url": "http://127.0.0.1:9", "token": "magento-token-xyz"},
            "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "sitoo-pass-123"},
            "state": {"path": str(tmp_path / "s.db")},
            "alerts": {"stale_minutes": 0, **alert_settings},
        }
    )


def failing(*records):
    """A flow whose plan has these record problems: listed by a dry run, recorded by push."""
    errors = [RecordError(*record) for record in records]
    plan = SimpleNamespace(preview=lambda: Preview([], problems=errors))

    def push(ctx, _plan):
        for error in errors:
            ctx.fail_record(error)
        return JobResult()

    return SimpleNamespace(JOB="test", pull=lambda ctx: None, plan=lambda pulled, config, now: plan, push=push)


RECORDS = [
    ("unknown_sku", "ecommerce", "SKU-1", "SKU-1 is not a Magento product"),
    ("unknown_sku", "ecommerce", "SKU-2", "SKU-2 is not a Magento product"),
    ("price_mismatch", "finance", "100000042", "order 100000042 total differs by 0.05"),
]


def test_one_digest_per_owner_then_no_repeat(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)
    outcome = run_job(config, "sync-stock", failing(*RECORDS))
    assert outcome.exit_code == 3
    assert sorted(b["owner"] for b in hook.bodies) == ["ecommerce", "finance"]
    ecommerce = hook.by_owner()["ecommerce"]
    assert [i["key"] for i in ecommerce["items"]] == ["SKU-1", "SKU-2"]
    assert ecommerce["items"][0]["kind"] == "unknown_sku" and "Magento" in ecommerce["items"][0]["hint"]
    assert "SKU-1 is not a Magento product" in ecommerce["text"] and ecommerce["job"] == "sync-stock"
    assert [i["key"] for i in hook.by_owner()["finance"]["items"]] == ["100000042"]
    state = StateStore(config.state.path)
    assert all(row["alerted_at"] for row in state.exceptions())

    hook.bodies.clear()
    run_job(config, "sync-stock", failing(*RECORDS))  # the same open exceptions: no repeat
    assert hook.bodies == []

    run_job(config, "sync-stock", failing(*RECORDS, ("unknown_sku", "ecommerce", "SKU-3", "SKU-3 is not a Magento product")))
    assert [(b["owner"], [i["key"] for i in b["items"]]) for b in hook.bodies] == [("ecommerce", ["SKU-3"])]


def test_repeat_after_repeat_hours(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url, repeat_hours=1)
    run_job(config, "sync-stock", failing(RECORDS[0]))
    state = StateStore(config.state.path)
    state.db.execute("UPDATE exceptions SET alerted_at = ?", [iso(now_utc() - timedelta(hours=2))])
    hook.bodies.clear()
    run_job(config, "sync-stock", failing(RECORDS[0]))
    assert [i["key"] for i in hook.by_owner()["ecommerce"]["items"]] == ["SKU-1"]


def test_resolved_then_failing_again_alerts_again(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)
    run_job(config, "sync-stock", failing(RECORDS[0]))
    run_job(config, "sync-stock", push_only(lambda ctx: (ctx.succeeded("SKU-1"), JobResult())[1]))
    hook.bodies.clear()
    run_job(config, "sync-stock", failing(RECORDS[0]))
    assert len(hook.bodies) == 1


@pytest.mark.parametrize("mode", ["http500", "refused"])
def test_failing_webhook_does_not_fail_the_run_and_is_retried(tmp_path, hook, mode):
    if mode == "http500":
        hook.status = 500
        url = hook.url
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/hook"  # nothing listens here: connection refused
    config = make_config(tmp_path, webhook_url=url)
    outcome = run_job(config, "sync-stock", failing(RECORDS[0]))
    assert outcome.exit_code == 3 and outcome.status == "partial"
    state = StateStore(config.state.path)
    assert state.exceptions()[0]["alerted_at"] is None  # not delivered: retried next run
    hook.status = 200
    config.alerts.webhook_url = hook.url
    hook.bodies.clear()
    run_job(config, "sync-stock", failing(RECORDS[0]))
    assert [b["owner"] for b in hook.bodies] == ["ecommerce"]


def test_run_failure_goes_to_ops_once_per_streak_then_recovery(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)

    def broken(ctx):
        raise ApiError("sitoo: cannot reach the API (connection refused)", system="sitoo")

    assert run_job(config, "push-orders", push_only(broken)).exit_code == 1
    ops = hook.by_owner()["ops"]
    assert ops["items"][0]["kind"] == "run_failed" and "cannot reach" in ops["items"][0]["message"]
    hook.bodies.clear()
    run_job(config, "push-orders", push_only(broken))
    assert hook.bodies == []  # same failure streak
    run_job(config, "push-orders", push_only(lambda ctx: JobResult()))
    assert len(hook.bodies) == 1 and "recovered" in hook.bodies[0]["text"]
    hook.bodies.clear()
    run_job(config, "push-orders", push_only(lambda ctx: JobResult()))
    assert hook.bodies == []


def test_secrets_never_in_payloads(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)

    def leaky(ctx):
        ctx.fail("auth", "ops", "call", "rejected password sitoo-pass-123 and token magento-token-xyz")
        raise ApiError(f"posting to {hook.url} failed", system="sitoo")

    run_job(config, "sync-stock", push_only(leaky))
    raw = json.dumps(hook.bodies)
    assert hook.bodies and "sitoo-pass-123" not in raw and "magento-token-xyz" not in raw and "SECRETPATH" not in raw
    assert "***" in raw


def test_dry_run_sends_nothing(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)
    run_job(config, "sync-stock", failing(RECORDS[0]), dry_run=True)
    run_job(config, "sync-stock", pull_only(lambda ctx: (_ for _ in ()).throw(ApiError("down", system="sitoo"))), dry_run=True)
    assert hook.bodies == []


class FakeSMTP:
    sent: list = []
    fail = False

    def __init__(self, host, port, timeout=None):
        self.calls = [("connect", host, port)]
        if FakeSMTP.fail:
            raise ConnectionRefusedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def ehlo(self):
        pass

    def has_extn(self, name):
        return name == "starttls"

    def starttls(self, context=None):
        self.calls.append(("starttls",))

    def login(self, user, password):
        self.calls.append(("login", user))

    def send_message(self, message):
        FakeSMTP.sent.append((self.calls, message))


def test_email_digest_to_owner_recipients_with_starttls(tmp_path, monkeypatch):
    FakeSMTP.sent = []
    FakeSMTP.fail = False
    monkeypatch.setattr(alerts.smtplib, "SMTP", FakeSMTP)
    config = make_config(
        tmp_path,
        smtp_host="smtp.example.com",
        smtp_user="magsit",
        smtp_password="smtp-secret-9",
        smtp_from="magsit@example.com",
        recipients={"ecommerce": ["shop@example.com"], "ops": ["ops@example.com"]},
    )
    run_job(config, "sync-stock", failing(*RECORDS))
    by_to = {message["To"]: (calls, message) for calls, message in FakeSMTP.sent}
    # finance has no recipients: its digest falls back to ops rather than vanishing.
    assert set(by_to) == {"shop@example.com", "ops@example.com"}
    calls, message = by_to["shop@example.com"]
    assert ("starttls",) in calls and calls.index(("starttls",)) < calls.index(("login", "magsit"))
    body = message.get_content()
    assert "SKU-1" in body and "SKU-2" in body and "smtp-secret-9" not in body
    assert "ecommerce" in message["Subject"]


def test_smtp_down_does_not_fail_the_run(tmp_path, monkeypatch):
    FakeSMTP.fail = True
    monkeypatch.setattr(alerts.smtplib, "SMTP", FakeSMTP)
    config = make_config(tmp_path, smtp_host="smtp.example.com", recipients={"ops": ["ops@example.com"]})
    try:
        assert run_job(config, "sync-stock", failing(RECORDS[0])).exit_code == 3
    finally:
        FakeSMTP.fail = False
    assert StateStore(config.state.path).exceptions()[0]["alerted_at"] is None


def test_stale_job_alerts_ops_once(tmp_path, hook):
    config = make_config(tmp_path, webhook_url=hook.url)
    config.alerts.stale_minutes = 10
    config.schedule = {"sync-stock": "every 1m", "push-orders": "every 1m"}
    state = StateStore(config.state.path)
    run_job(config, "sync-stock", push_only(lambda ctx: JobResult()), state=state)
    run_job(config, "push-orders", push_only(lambda ctx: JobResult()), state=state)
    old = iso(now_utc() - timedelta(minutes=30))
    state.db.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE job = 'sync-stock'", [old, old])
    hook.bodies.clear()
    assert alerts.check_stale(config, state) == ["sync-stock"]
    assert hook.bodies[0]["items"][0]["kind"] == "stale_job" and hook.bodies[0]["owner"] == "ops"
    assert alerts.check_stale(config, state) == []  # same stale streak: no repeat
    assert [s["job"] for s in alerts.stale_jobs(config, state)] == ["sync-stock"]
