"""One requests session per API: timeouts, bounded retries with backoff, error bodies, redacted logs.

Retry policy (DESIGN.md "Retries are bounded"): 429, 502/503/504 and connection errors are retried
with exponential backoff and jitter, honouring Retry-After (seconds or HTTP date) and
X-Rate-Limit-Reset, capped at ``max_wait``. 500 is retried only on idempotent calls. A POST that
creates something is never retried when its outcome is unknown: the error says so
(``outcome_unknown``) and the caller looks the natural key up before trying again.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from magsit.config import HttpSettings
from magsit.errors import ApiError, AuthError, NotFoundError, WafBlockedError

log = logging.getLogger("magsit.http")

ErrorParser = Callable[[int, Any], str]
T = TypeVar("T")
R = TypeVar("R")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_ID_SEGMENT = re.compile(r"/(\d+|\{[0-9A-Fa-f-]+\}|%7B[0-9A-Fa-f-]+%7D)(?=/|\.json|$)")


class WriteRefused(RuntimeError):
    """A read-only session (a dry run's) was asked to send a write. Not a MagsitError on purpose:
    it is a bug in the flow, so the run fails as an internal error naming the call (exit 1)."""


class _Ticket:
    """One ``request()`` across its attempts: whether it is the one whose 429 holds the session."""

    __slots__ = ("holds",)

    def __init__(self) -> None:
        self.holds = False


class _Retryable(Exception):
    """Internal: carries an ApiError that may succeed if sent again, and how long the server asked us to wait."""

    def __init__(self, error: ApiError, wait_hint: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_hint = wait_hint


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or X-Rate-Limit-Reset (epoch seconds)."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After") if headers else None
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = headers.get("X-Rate-Limit-Reset") if headers else None
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


def endpoint_key(method: str, path: str) -> str:
    """``GET /V1/orders/{id}`` style key for counting calls per endpoint."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', path.split('?')[0])}"


class HttpSession:
    """A requests session bound to one API base URL with magsit's retry and error rules."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        settings: HttpSettings | None = None,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        error_parser: ErrorParser | None = None,
        verify: bool | str = True,
        read_only: bool = False,
    ) -> None:
        self.system = system
        self.read_only = read_only  # refuse anything but GET (a dry run's sessions)
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.session = requests.Session()
        self.session.auth = auth
        self.session.max_redirects = 0  # a redirect can silently turn a POST into a GET
        self.session.headers.update({"Accept": "application/json", "User-Agent": "magsit"})
        if headers:
            self.session.headers.update(headers)
        self.session.verify = str(self.settings.ca_bundle) if self.settings.ca_bundle else verify
        # requests re-reads the proxy variables (all of os.environ) and ~/.netrc on every call: a
        # tenth of magsit's CPU on a 1,000-page run. Every call goes to this one base URL, so the
        # environment is resolved once here (proxies with no_proxy applied, REQUESTS_CA_BUNDLE
        # only where no [http] ca_bundle is set) and not consulted again. netrc stays unused:
        # magsit always sends its own credentials.
        resolved = self.session.merge_environment_settings(self.base_url, {}, None, self.session.verify, None)
        self.session.trust_env = False
        self.session.proxies.update(resolved["proxies"])
        self.session.verify = resolved["verify"]
        self.error_parser = error_parser or (lambda status, body: f"HTTP {status}")
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self.sleep: Callable[[float], None] = time.sleep
        # After a 429 no call of any thread starts before this (monotonic) moment: the server asked
        # the client, not one request, to wait. The request that got the 429 retries after its
        # own wait and lifts the hold when it is answered.
        self._held_until = 0.0

    # -- public -----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        retry: bool | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Send one call and return its decoded JSON body.

        ``retry``: None = retry when it is safe (idempotent method); True = caller vouches the
        call is safe to repeat; False = never resend after the request may have reached the server.
        """
        method = method.upper()
        if self.read_only and method != "GET":
            raise WriteRefused(f"{self.system}: a dry run may only read, and tried {method} {path.split('?')[0]}")
        safe_to_repeat = method in IDEMPOTENT if retry is None else retry
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )
        ticket = _Ticket()
        try:
            for attempt in retrying:
                with attempt:
                    return self._send(method, path, params, json, expect_json, safe_to_repeat, ticket)
        except _Retryable as exc:
            tries = self.settings.max_retries + 1
            exc.error.message = f"{exc.error.message} (gave up after {tries} attempt{'s' if tries != 1 else ''})"
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, params: Any = None, **kwargs: Any) -> Any:
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    @property
    def call_count(self) -> int:
        return sum(self.calls.values())

    # -- internals --------------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.wait_hint if isinstance(exc, _Retryable) else None
        backoff = self.settings.backoff_base * (2 ** (state.attempt_number - 1))
        jittered = backoff * (0.5 + random.random() / 2)
        wait = max(hint or 0.0, jittered)
        wait = min(wait, self.settings.max_wait)
        log.info("%s: retrying in %.1fs (attempt %d): %s", self.system, wait, state.attempt_number, exc)
        return wait

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def _hold(self, seconds: float) -> None:
        with self._calls_lock:
            self._held_until = max(self._held_until, time.monotonic() + seconds)

    def _wait_for_hold(self) -> None:
        with self._calls_lock:
            delay = self._held_until - time.monotonic()
        if delay > 0:
            self.sleep(min(delay, self.settings.max_wait))

    def _send(self, method: str, path: str, params: Any, body: Any, expect_json: bool, safe: bool, ticket: _Ticket) -> Any:
        if not ticket.holds:
            self._wait_for_hold()
        url = self._url(path)
        with self._calls_lock:
            self.calls[endpoint_key(method, path)] += 1
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=body,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
                # explicit: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override session.verify,
                # which would silently ignore [http] ca_bundle on hosts that set those variables
                verify=self.session.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise ApiError(
                f"{self.system}: TLS verification failed for {self.base_url}: {_short(exc)} "
                "(set [http] ca_bundle for a private CA)",
                system=self.system,
                method=method,
                url=url,
            ) from None
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError) as exc:  # the last: cut off mid-answer
            # A refused/unresolvable connection never reached the server; a dropped one may have.
            never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or _connect_refused(exc)
            error = ApiError(
                f"{self.system}: {_connection_problem(exc, url, self.settings.connect_timeout)}",
                system=self.system,
                method=method,
                url=url,
                retryable=True,
                outcome_unknown=not never_sent and method not in IDEMPOTENT,
            )
            if safe or never_sent:
                raise _Retryable(error, None) from None
            raise error from None
        except requests.exceptions.Timeout as exc:
            error = ApiError(
                f"{self.system}: no answer within {self.settings.read_timeout:.0f}s from {method} {path} ({_short(exc)})",
                system=self.system,
                method=method,
                url=url,
                retryable=True,
                outcome_unknown=method not in IDEMPOTENT,
            )
            if safe:
                raise _Retryable(error, None) from None
            raise error from None
        elapsed = time.monotonic() - started
        log.debug("%s %s %s -> %s in %.0f ms", self.system, method, _loggable(response.url), response.status_code, elapsed * 1000)
        if ticket.holds and response.status_code != 429:
            ticket.holds = False
            with self._calls_lock:
                self._held_until = 0.0  # the server took a call again: the others may go on
        return self._handle(method, path, url, response, expect_json, safe, ticket)

    def _handle(
        self, method: str, path: str, url: str, response: requests.Response, expect_json: bool, safe: bool,
        ticket: _Ticket | None = None,
    ) -> Any:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        text = response.text
        looks_html = "html" in content_type.lower() or text.lstrip()[:1] == "<"
        if 200 <= status < 300:
            if not expect_json:
                return text
            if not text.strip():
                return None
            # A 2xx whose body cannot be read may still have stored a create: the caller must look
            # the natural key up before sending it again, as after a timeout.
            unreadable_write = method not in IDEMPOTENT
            if looks_html:
                raise WafBlockedError(
                    f"{self.system}: got an HTML page instead of JSON from {method} {path} "
                    "(a WAF, CDN or maintenance page answered instead of the API)",
                    system=self.system,
                    status=status,
                    method=method,
                    url=url,
                    outcome_unknown=unreadable_write,
                )
            try:
                return response.json()
            except ValueError:
                error = ApiError(
                    f"{self.system}: invalid JSON in the answer to {method} {path}",
                    system=self.system,
                    status=status,
                    method=method,
                    url=url,
                    retryable=True,
                    outcome_unknown=unreadable_write,
                )
                if safe:
                    raise _Retryable(error, None) from None
                raise error from None
        if 300 <= status < 400:
            raise ApiError(
                f"{self.system}: {method} {path} was redirected to {response.headers.get('Location', '?')}; "
                "check base_url (http vs https, trailing path)",
                system=self.system,
                status=status,
                method=method,
                url=url,
            )
        try:
            parsed = None if looks_html else response.json()
        except ValueError:
            parsed = None
        if looks_html and status in (403, 401):
            raise WafBlockedError(
                f"{self.system}: blocked by a WAF/CDN (HTTP {status} with an HTML page) on {method} {path}; "
                "ask the host to allow this machine's IP address",
                system=self.system,
                status=status,
                method=method,
                url=url,
            )
        detail = self.error_parser(status, parsed) if parsed is not None else f"HTTP {status} {response.reason or ''}".strip()
        message = f"{self.system}: {method} {path} failed: {detail}"
        if status in AUTH_HINTS:
            message += f" ({AUTH_HINTS[status]})"
        retry_statuses = {429, 502, 503, 504} | ({500} if safe else set())
        retryable = status in {429, 500, 502, 503, 504}
        outcome_unknown = status >= 500 and method not in IDEMPOTENT
        if status == 404:
            cls: type[ApiError] = NotFoundError
        elif status in (401, 403):
            cls = AuthError
        else:
            cls = ApiError
        error = cls(
            message,
            system=self.system,
            status=status,
            method=method,
            url=url,
            retryable=retryable,
            body=parsed,
            outcome_unknown=outcome_unknown,
        )
        # 429 means "not processed, come back later": safe to resend even for a POST.
        if status in retry_statuses and (safe or status == 429):
            hint = parse_retry_after(response.headers)
            if status == 429 and ticket is not None:
                ticket.holds = True
                self._hold(min(self.settings.max_wait, hint if hint is not None else self.settings.backoff_base))
            raise _Retryable(error, hint)
        raise error


# The likely cause in words, after the API's own text (which is often just "not authorized").
AUTH_HINTS = {
    401: "the credentials were refused: the token/password is wrong or revoked, or the integration is "
    "missing the ACL for this resource",
    403: "not allowed: the integration or API user is missing the ACL/role for this resource",
}


def _connection_problem(exc: Exception, url: str, connect_timeout: float) -> str:
    """What went wrong on the wire, in words: not urllib3's repr of its connection pool."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    text = repr(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {where}: no answer within {connect_timeout:g}s (host down, firewall, or wrong address)"
    if "Name or service not known" in text or "NameResolutionError" in text or "nodename nor servname" in text:
        return f"cannot connect to {where}: the host name does not resolve (check base_url and DNS)"
    if "Connection refused" in text or "NewConnectionError" in text:
        return f"cannot connect to {where}: connection refused (nothing listens there: check base_url and that the service is up)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the connection to {where} was cut off in the middle of the answer"
    return f"the connection to {where} failed ({_short(exc)})"


def _connect_refused(exc: Exception) -> bool:
    text = repr(exc)
    return any(word in text for word in ("NewConnectionError", "Connection refused", "Name or service not known", "NameResolutionError"))


def _short(exc: Exception) -> str:
    text = str(exc)
    text = re.sub(r"https?://[^\s'\"]+", lambda m: _loggable(m.group(0)), text)
    return text if len(text) < 200 else text[:197] + "..."


_SECRET_QUERY = re.compile(r"(?i)((?:password|token|secret|signature|oauth_[a-z_]+)=)[^&\s]+")
_USERINFO = re.compile(r"//[^/@\s]+@")


def _loggable(url: str) -> str:
    """A URL with any credentials removed."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("//***@", url))


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Map with bounded concurrency, results in input order. workers=1 runs inline (simpler tracebacks)."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        yield from (fn(item) for item in items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="magsit") as pool:
        yield from pool.map(fn, items)


def utcnow() -> datetime:
    return datetime.now(UTC)
