"""One pager for every list read: a paging scheme says where a read begins and where it goes after
each page; ``read_pages`` drives any scheme, ``read_rows_ahead`` reads a planned one concurrently.

The two APIs page three ways, each a scheme next to the code that knows its rules and sources:

- ``magento.search.OffsetPaging``: searchCriteria ``currentPage``/``pageSize`` over a unique sort;
  stops on ``total_count`` or a short page, never on an empty one; a page that repeats the previous
  one aborts; a ``pageSize`` limit lowers the size (pitfalls P1–P5).
- ``sync.keyset.KeysetPaging``: page 1 of ever narrower ``(updated_at, entity_id)`` windows, so a
  cluster of rows sharing one ``updated_at`` is read once (P5, P6); rows out of order abort.
- ``sitoo.client.StartNumPaging``: ``start``/``num``, reads while ``start < totalcount`` (a short page
  is not the end, sitoo-api.md §2.2); an empty page or a short page served again ends it.

A scheme is a small stateful object made for one read: ``first()`` gives the first request and
``step(page)`` checks the page (raising ``PagingError`` when the data moved under the read), returns
the rows to hand on (an overlap with earlier pages already dropped) and the next request, or None
when the collection is read. Schemes do no I/O; the caller's ``fetch`` turns a request into a Page,
so every stop rule is testable against a scripted server (tests/unit/test_paging.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from magsit.errors import PagingError
from magsit.http import parallel_map

Row = dict[str, Any]
Request = TypeVar("Request")


@dataclass(frozen=True)
class Page(Generic[Request]):
    """One answer: the request it answers *as served* (Magento may have lowered the page size), its
    items, and the collection's unpaged count when the answer carries one."""

    request: Request
    items: list[Row]
    total: int | None


@dataclass(frozen=True)
class Step(Generic[Request]):
    rows: list[Row]  # this page's rows to hand on
    next: Request | None  # None: the collection is read


class Paging(Protocol[Request]):
    system: str  # for PagingError: which API moved under the read
    what: str  # what is read, for messages ("/V1/orders", "GET /sites/1/products.json")

    def first(self) -> Request: ...

    def step(self, page: Page[Request]) -> Step[Request]: ...


class PlannedPaging(Paging[Request], Protocol[Request]):
    """A scheme whose first page tells every request that follows (offsets over a known total)."""

    def rest(self, first: Page[Request]) -> Sequence[Request]: ...


Fetch = Callable[[Request], Page[Request]]


def read_pages(fetch: Fetch[Request], paging: Paging[Request]) -> Iterator[Page[Request]]:
    """Each page with only its rows to hand on, until the scheme says the collection is read.

    Lazy: a caller that stops iterating (e.g. after deciding on page 1) reads nothing more."""
    request: Request | None = paging.first()
    while request is not None:
        page = fetch(request)
        step = paging.step(page)
        yield replace(page, items=step.rows)
        request = step.next


def read_rows(fetch: Fetch[Request], paging: Paging[Request]) -> Iterator[Row]:
    for page in read_pages(fetch, paging):
        yield from page.items


def read_rows_ahead(fetch: Fetch[Request], paging: PlannedPaging[Request], workers: int) -> Iterator[Row]:
    """Like ``read_rows``, but after page 1 the planned requests are fetched ``workers`` at a time and
    handed on in order. Each page still goes through the scheme's ``step``; on top, the pages must be
    the ones the scheme would have asked for, report the same total, and add up to it — otherwise the
    data moved while reading and the read aborts rather than skipping or repeating rows."""
    if workers <= 1:
        yield from read_rows(fetch, paging)
        return
    first = fetch(paging.first())
    step = paging.step(first)
    yield from step.rows
    if step.next is None:
        return
    planned = list(paging.rest(first))
    count = len(step.rows)
    for request, page in zip(planned, parallel_map(fetch, planned, workers), strict=True):
        if step.next != request or page.total != first.total:
            raise _moved(paging, f"the page after {count} rows is not the one planned or reports a different total "
                                 f"({page.total} vs {first.total})")  # fmt: skip
        step = paging.step(page)
        count += len(step.rows)
        yield from step.rows
    if step.next is not None or (first.total is not None and count != first.total):
        raise _moved(paging, f"read {count} rows but the first page said {first.total}")


def _moved(paging: Paging[Any], detail: str) -> PagingError:
    return PagingError(
        f"{paging.system}: {detail} while reading {paging.what}: the data moved while reading — aborted instead "
        "of skipping or re-reading rows",
        system=paging.system,
    )
