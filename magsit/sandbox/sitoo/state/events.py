"""The Events SPI sender (sitoo-api.md §10): queued events are POSTed to a sink in batches of up
to 10, in order (head-of-line), retried on 429/503/504 and connection errors, dropped otherwise."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import requests

from magsit.sandbox.sitoo.constants import EVENT_BATCH, RETRYABLE_EVENT_STATUSES
from magsit.sandbox.sitoo.state.account import Account

log = logging.getLogger(__name__)


class EventEmitter(Account):
    """The account plus its event sender: ``_event`` queues, a daemon thread delivers."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        super().__init__(clock)
        # Events SPI (§10): a sink URL turns event delivery on.
        self.event_sink: str | None = None
        self.event_auth: tuple[str, str] | None = None
        self.event_retry_delay = 0.05  # seconds between retries of the head batch (Sitoo: minutes)
        self.event_max_attempts = 30  # then the batch is dropped (Sitoo: ~24 h of retries)
        self.event_timeout = 15.0  # "No response in 15 s -> events re-queued"
        self.events_sent: list[dict[str, Any]] = []
        self.events_dropped: list[dict[str, Any]] = []
        self.event_attempts: list[int] = []  # HTTP status per POST to the sink (0 = connection error)
        self._event_queue: deque[dict[str, Any]] = deque()
        self._event_cond = threading.Condition(self.lock)
        self._event_inflight = 0
        self._event_thread: threading.Thread | None = None
        self._event_stop = False

    def _event(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue an Events-SPI event if a sink is configured (checked at the moment of change)."""
        with self.lock:
            if not self.event_sink:
                return
            self._event_queue.append(
                {
                    "event_id": uuid.uuid4().hex,
                    "event_type": event_type,
                    "event_date": self.clock(),
                    "account_id": self.account_id,
                    "data": data,
                }
            )
            if self._event_thread is None or not self._event_thread.is_alive():
                self._event_stop = False
                self._event_thread = threading.Thread(
                    target=self._event_loop, name="sitoo-events", daemon=True
                )
                self._event_thread.start()
            self._event_cond.notify_all()

    def _event_loop(self) -> None:
        while True:
            with self._event_cond:
                while not self._event_queue and not self._event_stop:
                    self._event_cond.wait(timeout=0.5)
                if self._event_stop:
                    return
                # Head-of-line: the batch is only removed once answered, so order is kept.
                batch = [self._event_queue[i] for i in range(min(EVENT_BATCH, len(self._event_queue)))]
                self._event_inflight = len(batch)
                sink, auth = self.event_sink, self.event_auth
            outcome = self._post_batch(sink, auth, batch)
            with self._event_cond:
                if outcome == "retry":
                    self._event_inflight = 0
                    attempts = batch[0].setdefault("_attempts", 0) + 1  # bookkeeping only
                    batch[0]["_attempts"] = attempts
                    if attempts < self.event_max_attempts:
                        self._event_cond.wait(timeout=self.event_retry_delay)
                        continue
                    outcome = "drop"
                for _ in batch:
                    self._event_queue.popleft()
                clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in batch]
                (self.events_sent if outcome == "sent" else self.events_dropped).extend(clean)
                self._event_inflight = 0
                self._event_cond.notify_all()

    def _post_batch(self, sink: str | None, auth: tuple[str, str] | None, batch: list[dict[str, Any]]) -> str:
        if not sink:
            return "drop"
        payload = [{k: v for k, v in e.items() if not k.startswith("_")} for e in batch]
        try:
            resp = requests.post(sink, json=payload, auth=auth, timeout=self.event_timeout)
        except requests.RequestException:
            with self.lock:
                self.event_attempts.append(0)
            return "retry"
        with self.lock:
            self.event_attempts.append(resp.status_code)
        if resp.status_code == 200:
            return "sent"
        if resp.status_code in RETRYABLE_EVENT_STATUSES:
            return "retry"
        log.info("event sink answered %s; %d events dropped", resp.status_code, len(batch))
        return "drop"

    def flush_events(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was sent or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._event_cond:
            while self._event_queue or self._event_inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._event_cond.wait(timeout=min(remaining, 0.05))
            return True

    def stop_events(self) -> None:
        with self._event_cond:
            self._event_stop = True
            self._event_cond.notify_all()
        if self._event_thread is not None:
            self._event_thread.join(timeout=2)
