"""The receiving side of the Sitoo Events SPI: payload validation, the WSGI app, `events serve`.

Sitoo sends batches of up to 10 events, waits at most 15 s for the answer, retries only
429/503/504 and drops the batch on any other code (sitoo-api.md §10, pitfalls P36). So the handler
validates, stores each event in the queue and answers: anything that may be transient answers 503
so that Sitoo retries; only a payload that can never become valid answers 400.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from magsit.config import Config, EventSettings
from magsit.errors import ConfigError, ExitCode
from magsit.events.drain import RunFn, Worker, run_registered
from magsit.events.queue import Event, EventStore, QueueFull

log = logging.getLogger("magsit.events")

MAX_BATCH = 10  # "an array which can contain up to 10 items" (§10)
MAX_BODY = 1024 * 1024  # 10 events are a few KiB; anything near this is not Sitoo
MAX_ID_LENGTH = 200
RECEIVE_BUSY_TIMEOUT = 2.0  # seconds the receiver waits for the state file's write lock before 503
REQUIRED = ("event_id", "event_type", "event_date", "account_id", "data")


# -- payload validation ---------------------------------------------------------------------------
class PayloadError(ValueError):
    """The batch can never be valid: 400 (Sitoo drops it; the scheduled jobs heal what it meant)."""



def _id_text(value: Any, name: str, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"event {index}: {name} must be a string or an integer")
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH:
        raise PayloadError(f"event {index}: {name} must be 1-{MAX_ID_LENGTH} characters")
    return text


def validate_batch(payload: Any) -> list[Event]:
    """A JSON array of 1..10 event objects with event_id, event_type, event_date, account_id, data."""
    if not isinstance(payload, list):
        raise PayloadError("the body must be a JSON array of events")
    if not payload:
        raise PayloadError("the batch is empty")
    if len(payload) > MAX_BATCH:
        raise PayloadError(f"a batch holds at most {MAX_BATCH} events, got {len(payload)}")
    events: list[Event] = []
    for index, raw in enumerate(payload):
        if not isinstance(raw, dict):
            raise PayloadError(f"event {index}: not a JSON object")
        missing = [key for key in REQUIRED if key not in raw or raw[key] is None]
        if missing:
            raise PayloadError(f"event {index}: missing {', '.join(missing)}")
        event_id = _id_text(raw["event_id"], "event_id", index)
        event_type = raw["event_type"]
        if not isinstance(event_type, str) or not event_type.strip():
            raise PayloadError(f"event {index}: event_type must be a non-empty string")
        date = raw["event_date"]
        if isinstance(date, str) and date.strip().isdigit():
            date = int(date)
        if isinstance(date, bool) or not isinstance(date, int | float) or date < 0:
            raise PayloadError(f"event {index}: event_date must be epoch seconds")
        account_id = _id_text(raw["account_id"], "account_id", index)
        if not isinstance(raw["data"], dict):
            raise PayloadError(f"event {index}: data must be a JSON object")
        events.append(Event(event_id, event_type.strip(), int(date), account_id, raw["data"]))
    return events



# -- the HTTP side -----------------------------------------------------------------------------------
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    503: "503 Service Unavailable",
}


def check_auth_settings(settings: EventSettings) -> tuple[bytes, bytes] | None:
    """The Basic-auth pair the endpoint requires, or None (open endpoint, e.g. behind a proxy that checks)."""
    password = settings.password.get_secret_value() if settings.password is not None else None
    if bool(settings.user) != bool(password):
        raise ConfigError("[events] user and password go together: set both (Basic auth on POST /events) or neither")
    if not settings.user or not password:
        return None
    if ":" in settings.user:
        raise ConfigError("[events] user cannot contain ':' (Basic auth)")
    return settings.user.encode(), password.encode()


def _authorised(header: str | None, expected: tuple[bytes, bytes]) -> bool:
    user = password = b""
    if header and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        user, _, password = decoded.partition(b":")
    # Both compares always run (constant time, no early exit telling which half was wrong).
    ok_user = hmac.compare_digest(user, expected[0])
    ok_password = hmac.compare_digest(password, expected[1])
    return ok_user and ok_password


def make_app(settings: EventSettings, store: EventStore, on_stored: Callable[[], None] = lambda: None) -> WsgiApp:
    """The WSGI app: ``POST /events`` (the Events SPI), ``GET /health`` (for the proxy / monitoring)."""
    credentials = check_auth_settings(settings)

    def reply(start_response: Callable[..., Any], code: int, body: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(extra or [])]
        start_response(_REASONS[code], headers)
        return [data]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/health" and method in ("GET", "HEAD"):
            return reply(start_response, 200, {"ok": True})
        if path.rstrip("/") != "/events":
            return reply(start_response, 404, {"error": "not found"})
        if method != "POST":
            return reply(start_response, 405, {"error": "use POST"}, [("Allow", "POST")])
        peer = environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or "?"
        if credentials is not None and not _authorised(environ.get("HTTP_AUTHORIZATION"), credentials):
            log.warning("POST /events from %s: wrong or missing Basic auth (401)", peer)
            return reply(start_response, 401, {"error": "unauthorized"}, [("WWW-Authenticate", 'Basic realm="magsit events"')])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            log.warning("POST /events from %s: body of %d bytes refused (413)", peer, length)
            return reply(start_response, 413, {"error": f"body larger than {MAX_BODY} bytes"})
        raw = environ["wsgi.input"].read(length if length > 0 else MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return reply(start_response, 413, {"error": f"body larger than {MAX_BODY} bytes"})
        try:
            events = validate_batch(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:  # PayloadError and JSONDecodeError are ValueErrors
            reason = str(exc) if isinstance(exc, PayloadError) else f"not JSON: {exc}"
            log.warning("POST /events from %s: malformed batch (400): %s; body starts %r", peer, reason, raw[:200])
            return reply(start_response, 400, {"error": reason})
        try:
            new, duplicates = store.store(events, settings.max_queue)
        except QueueFull as exc:
            log.warning("POST /events: queue full, answering 503 so Sitoo retries later: %s", exc)
            return reply(start_response, 503, {"error": "queue full, retry later"}, [("Retry-After", "60")])
        except sqlite3.Error as exc:  # locked/busy state file, disk full …: transient from Sitoo's side
            log.warning("POST /events: state file not writable now (%s); answering 503 so Sitoo retries", exc)
            return reply(start_response, 503, {"error": "busy, retry later"}, [("Retry-After", "5")])
        except Exception:
            log.error("POST /events: internal error; answering 503 so Sitoo retries", exc_info=True)
            return reply(start_response, 503, {"error": "internal error, retry later"})
        log.debug("POST /events: %d event(s), %d new, %d already seen", len(events), new, duplicates)
        if new:
            on_stored()
        return reply(start_response, 200, {"stored": new, "duplicates": duplicates})

    return app


def serve(
    config: Config,
    host: str | None = None,
    port: int | None = None,
    *,
    threads: int = 4,
    ready: Callable[[str, int], None] | None = None,
    install_signals: bool = True,
    run: RunFn = run_registered,
) -> int:
    """Run the receiver (waitress) and the worker thread until SIGTERM/SIGINT; returns 0."""
    import waitress.server

    settings = config.events
    check_auth_settings(settings)
    store = EventStore(config.state.path, RECEIVE_BUSY_TIMEOUT, durable=True)
    stop_event = threading.Event()
    worker = Worker(config, stop_event, run)
    app = make_app(settings, store, worker.wake)
    server = waitress.server.create_server(
        app,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        threads=threads,
        ident="magsit-events",
        channel_timeout=30,
        clear_untrusted_proxy_headers=True,
    )
    bound_host, bound_port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    previous: dict[int, Any] = {}
    if install_signals:
        def stop(signum: int, _frame: Any) -> None:
            log.info("%s: stopping (the run in hand finishes first)", signal.Signals(signum).name)
            stop_event.set()
            raise SystemExit(0)  # ends waitress' loop in the main thread; it then shuts its threads down

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    worker.start()
    log.info("receiving Sitoo events at http://%s:%s/events", bound_host, bound_port)
    if ready is not None:
        ready(str(bound_host), int(bound_port))
    try:
        server.run()
    finally:
        stop_event.set()
        worker.wake()
        worker.join(timeout=120)
        store.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ExitCode.OK

