"""Shared plumbing of the sandbox emulators: request log, fault injection, latency, loopback server.

Nothing here knows about magsit's clients or flows: the emulators are written from the API
references alone, so a misreading in a client is not silently repeated here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

FAULT_KINDS = ("429", "500", "503", "500_after", "slow", "drop", "html403", "timeout")

# Checks one request against an API schema; returns human-readable violations (empty = conforms).
RequestChecker = Callable[[str, str, list[tuple[str, str]], Any], list[str]]


@dataclass
class Fault:
    """A fault injected into matching requests.

    ``after`` matching requests pass untouched, then the next ``times`` matching requests get the
    fault. ``kind``: 429 (with Retry-After), 500, 503, 500_after (the request is applied, then 500
    is answered), slow / timeout (sleep ``delay`` seconds first), drop (the connection is cut
    mid-response), html403 (a WAF's HTML page).
    """

    kind: str
    method: str | None = None
    path: str | None = None  # regular expression searched in the request path
    times: int = 1
    after: int = 0
    retry_after: str | None = "1"
    delay: float = 2.0
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    status: int = 0
    fault: str | None = None
    violations: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "status": self.status,
            "fault": self.fault,
            "violations": self.violations,
            "at": self.at,
        }


class Control:
    """Fault plan, request log and latency of one emulator; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.latency: float = 0.0
        self.checker: RequestChecker | None = None
        self.keep_bodies = True

    def add_fault(self, kind: str, **kwargs: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind=kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen > fault.after and fault.fired < fault.times:
                    fault.fired += 1
                    return fault
        return None

    def violations(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.as_dict() for r in self.requests if r.violations]

    def calls(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests (faulted ones included), optionally filtered by method and path regex."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))
            ]

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.calls() if r.method in ("POST", "PUT", "DELETE", "PATCH")]


def _html403() -> tuple[str, list[tuple[str, str]], bytes]:
    body = (
        b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
        b"<body><h1>Sorry, you have been blocked</h1><p>You are unable to access this site.</p></body></html>"
    )
    return "403 Forbidden", [("Content-Type", "text/html; charset=UTF-8"), ("Content-Length", str(len(body)))], body


class ControlledApp:
    """WSGI middleware: logs each request, checks it against the schema, applies latency and faults.

    Requests under ``/_sandbox/`` (the scenario and control API) are neither logged nor faulted.
    """

    def __init__(self, app: Callable, control: Control, error_body: Callable[[int, str], bytes]) -> None:
        self.app = app
        self.control = control
        self.error_body = error_body

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # PATH_INFO is percent-decoded by WSGI; SKUs like "A/B" travel as A%2FB, so log and check the raw path.
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        path = raw.split("?", 1)[0]
        if "/_sandbox/" in path or path.startswith("/_sandbox"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        raw = _read_body(environ)
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if len(raw) < environ["magsit.sandbox.declared_length"]:
            # The client went away mid-body (a killed process with requests in flight): a server
            # never runs the handler for an incomplete request. Logged, not applied, not checked.
            entry = LoggedRequest(method, path, query, None, status=400, fault="truncated")
            with self.control.lock:
                self.control.requests.append(entry)
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [self.error_body(400, "Incomplete request body")]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry = LoggedRequest(method, path, query, body if self.control.keep_bodies else None)
        if self.control.checker is not None:
            try:
                entry.violations = self.control.checker(method, path, query, body)
            except Exception as exc:  # a checker bug must not take the emulator down
                entry.violations = [f"schema checker crashed: {exc!r}"]
        with self.control.lock:
            self.control.requests.append(entry)
        if self.control.latency:
            time.sleep(self.control.latency)
        fault = self.control.take_fault(method, path)
        if fault is not None:
            entry.fault = fault.kind
            return self._fault(fault, environ, start_response, entry)
        return self._call_app(environ, start_response, entry)

    def _call_app(self, environ: dict, start_response: Callable, entry: LoggedRequest) -> Iterable[bytes]:
        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            entry.status = int(status.split()[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start_response)

    def _fault(self, fault: Fault, environ: dict, start_response: Callable, entry: LoggedRequest) -> Iterable[bytes]:
        kind = fault.kind
        if kind in ("slow", "timeout"):
            time.sleep(fault.delay)
            return self._call_app(environ, start_response, entry)
        if kind == "html403":
            status, headers, body = _html403()
            entry.status = 403
            start_response(status, headers)
            return [body]
        if kind == "500_after":
            # The write is applied, then the answer is lost: the client cannot know it succeeded.
            result = self.app(environ, lambda *a, **k: (lambda data: None))
            for _ in result:
                pass
            if hasattr(result, "close"):
                result.close()
            return self._error(500, "Internal Server Error", start_response, entry)
        if kind == "drop":
            entry.status = 0
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "4096")])
            return _DroppedBody()
        status = int(kind)
        headers = [("Retry-After", fault.retry_after)] if kind == "429" and fault.retry_after else []
        text = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
        return self._error(status, text, start_response, entry, headers)

    def _error(
        self, status: int, text: str, start_response: Callable, entry: LoggedRequest, extra: list | None = None
    ) -> Iterable[bytes]:
        body = self.error_body(status, text)
        entry.status = status
        reason = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body)))] + (extra or []),
        )
        return [body]


class _DroppedBody:
    """Yields a fragment, then fails: werkzeug closes the socket, the client sees a broken response."""

    def __iter__(self) -> _DroppedBody:
        self._sent = False
        return self

    def __next__(self) -> bytes:
        if not self._sent:
            self._sent = True
            return b'{"items": ['
        raise ConnectionAbortedError("sandbox fault: connection dropped")


def _content_length(environ: dict) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _read_body(environ: dict) -> bytes:
    length = _content_length(environ)
    environ["magsit.sandbox.declared_length"] = length  # CONTENT_LENGTH is set to what arrived below
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    # Put the body back so the wrapped app can read it again.
    import io

    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    return raw


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the request log in Control is the record, the demo's output stays readable."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LoopbackServer:
    """A threaded werkzeug server on 127.0.0.1 (loopback only, never another interface)."""

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sandbox listens on loopback only")
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self.host = host
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"sandbox:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, poll_interval: float = 0.02) -> LoopbackServer:
        # werkzeug polls for shutdown every 0.5 s by default; tests start and stop many servers.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": poll_interval}, name=f"sandbox:{self.port}", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
