"""Keyset reading of a Magento list endpoint on ``(updated_at, entity_id)``: no record missed, none twice.

Pure logic (no I/O): the caller passes a ``fetch`` function that runs one search with the given
extra filters, sorted ``updated_at ASC, entity_id ASC``, ``pageSize`` = ``page_size``,
``currentPage`` = 1, and returns ``(items, total_count)``.

Why keyset and not ``currentPage``: deep offsets are slow (P5), Magento repeats the last page past
the end (P1), and a cluster of rows sharing one ``updated_at`` larger than a page would loop or
skip with a timestamp-only cursor (P6). So every query is page 1 of a narrower window:

1. ``updated_at >= start``                       (first page)
2. ``updated_at = ts AND entity_id > last``      (finish the cluster of the last row seen)
3. ``updated_at > ts``                           (the next page), then 2. again, ...

Each query stops on ``total_count`` (the unpaged count), never on an empty page. ``KeysetPaging``
is this as a ``magsit.paging`` scheme; ``keyset_scan`` drives it over the caller's ``fetch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from magsit.errors import PagingError
from magsit.paging import Page, Step, read_rows
from magsit.state.cursor import KeysetPosition

if TYPE_CHECKING:
    from magsit.runner import JobContext

# (field, value, condition_type); each tuple is its own filter group (groups are ANDed).
Filter = tuple[str, str, str]
Fetch = Callable[[list[Filter], int], tuple[list[dict[str, Any]], int]]

MAGENTO_TS = "%Y-%m-%d %H:%M:%S"


def magento_ts(moment: datetime) -> str:
    """Magento's UTC timestamp text (P7: always UTC, no offset)."""
    return moment.astimezone(UTC).strftime(MAGENTO_TS)


def parse_magento_ts(text: str) -> datetime:
    return datetime.strptime(text[:19], MAGENTO_TS).replace(tzinfo=UTC)


def key_of(item: dict[str, Any]) -> KeysetPosition:
    return KeysetPosition(str(item["updated_at"]), int(item["entity_id"]))


@dataclass(frozen=True)
class Window:
    """One keyset query: page 1 of the rows matching ``filters`` (AND), sorted ``updated_at, entity_id``."""

    filters: tuple[Filter, ...]
    cluster: bool = False  # finishing the rows of one updated_at after the last one seen


class KeysetPaging:
    """The ``magsit.paging`` scheme for a keyset read (see the module docstring): every row with
    ``start <= updated_at (<= until)`` once, in ``(updated_at, entity_id)`` order."""

    system = "magento"

    def __init__(self, start: str, until: str | None = None, what: str = "rows") -> None:
        self.start = start
        self.upper: tuple[Filter, ...] = (("updated_at", until, "lteq"),) if until else ()
        self.what = what
        self.previous: KeysetPosition | None = None  # the last row handed on

    def first(self) -> Window:
        return Window((("updated_at", self.start, "gteq"), *self.upper))

    def step(self, page: Page[Window]) -> Step[Window]:
        for item in page.items:
            position = key_of(item)
            if self.previous is not None and position <= self.previous:
                raise PagingError(
                    f"magento: rows out of order or repeated at {position} (after {self.previous}) "
                    f"while reading {self.what}; aborted",
                    system="magento",
                )
            self.previous = position
        window_read = not page.items or len(page.items) >= (page.total or 0)
        if not window_read:
            # Finish the cluster of the last timestamp seen, keyset on entity_id.
            assert self.previous is not None
            ts, last = self.previous.updated_at, str(self.previous.entity_id)
            return Step(page.items, Window((("updated_at", ts, "eq"), ("entity_id", last, "gt")), cluster=True))
        if page.request.cluster:
            assert self.previous is not None
            return Step(page.items, Window((("updated_at", self.previous.updated_at, "gt"), *self.upper)))
        return Step(page.items, None)


def keyset_scan(
    fetch: Fetch, start: str, page_size: int, until: str | None = None, *, what: str = "rows"
) -> Iterator[dict[str, Any]]:
    """Yield every row with ``start <= updated_at (<= until)`` once, in ``(updated_at, entity_id)`` order."""

    def fetch_page(window: Window) -> Page[Window]:
        return Page(window, *fetch(list(window.filters), page_size))

    return read_rows(fetch_page, KeysetPaging(start, until, what))


def read_start(
    cursor: KeysetPosition | None,
    *,
    run_start: datetime,
    lookback: timedelta,
    initial_lookback: timedelta,
    since: datetime | None = None,
) -> str:
    """Where this run reads from: ``--since``, else the cursor minus the lookback, else now − initial lookback."""
    if since is not None:
        return magento_ts(since)
    if cursor is None:
        return magento_ts(run_start - initial_lookback)
    return magento_ts(parse_magento_ts(cursor.updated_at) - lookback)


def next_cursor(
    previous: KeysetPosition | None, seen: list[KeysetPosition], *, run_start: datetime, lookback: timedelta
) -> KeysetPosition | None:
    """The cursor after a run: the furthest row seen, never past ``run_start − lookback`` (P8), never backwards."""
    if not seen:
        return previous
    furthest = max(seen)
    ceiling = KeysetPosition(magento_ts(run_start - lookback), 0)
    candidate = min(furthest, ceiling)
    if previous is not None and candidate < previous:
        return previous
    return candidate


def save_cursor(
    ctx: JobContext,
    job: str,
    stream: str,
    previous: KeysetPosition | None,
    seen: list[KeysetPosition],
    *,
    start: str,
    lookback: timedelta,
    initial_lookback: timedelta,
) -> None:
    """Advance the ``(job, stream)`` cursor after a run that read from ``start`` and handled every row in ``seen``.

    The one place the Magento-keyset flows move their cursor (from their push step). It stays put when the run stopped
    early (SIGTERM: rows after the one in hand were read but not handled) and when ``--since``
    began the read later than the cursor would have (the gap in between was never read); either
    way the next run reads those rows again instead of skipping them.
    """
    if ctx.should_stop():
        return
    usual = read_start(previous, run_start=ctx.started_at, lookback=lookback, initial_lookback=initial_lookback)
    if start > usual:  # fixed-width UTC text: compares as time
        return
    cursor = next_cursor(previous, seen, run_start=ctx.started_at, lookback=lookback)
    if cursor is not None and cursor != previous:
        with ctx.state.transaction():
            ctx.state.set_cursor(job, stream, cursor)
