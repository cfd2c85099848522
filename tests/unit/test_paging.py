"""The one pager (magsit.paging) and its three schemes, each against a scripted server.

The client tests (test_magento_client, test_sitoo_client, test_keyset) check the same rules through
HTTP; here every stop rule is checked on the scheme itself, plus what the drivers add: laziness and
the read-ahead checks.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magsit.errors import ApiError, PagingError
from magsit.magento.search import (
    OffsetPaging,
    PageKey,
    PageSizeLimitError,
    SearchCriteria,
    iter_items,
    iter_items_parallel,
)
from magsit.paging import Page, read_pages, read_rows, read_rows_ahead
from magsit.sitoo.client import StartNumPaging
from magsit.sync.keyset import KeysetPaging, Window, keyset_scan

ID = PageKey.of("id")


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i} for i in range(1, n + 1)]


class OffsetServer:
    """Magento's offset paging: a page past the end answers the last page again (P1)."""

    def __init__(self, data: list[dict[str, Any]], *, total: int | None = None, max_size: int | None = None) -> None:
        self.data, self.total, self.max_size = data, total, max_size
        self.asked: list[tuple[int, int]] = []

    def __call__(self, params: list[tuple[str, str]]) -> dict[str, Any]:
        query = dict(params)
        size, page = int(query["searchCriteria[pageSize]"]), int(query["searchCriteria[currentPage]"])
        self.asked.append((size, page))
        if self.max_size and size > self.max_size:
            refusal = ApiError("Maximum SearchCriteria pageSize is 2", system="magento", status=400)
            raise PageSizeLimitError(refusal, self.max_size)
        last = max(1, -(-len(self.data) // size))
        page = min(page, last)
        total = len(self.data) if self.total is None else self.total
        return {"items": self.data[(page - 1) * size : page * size], "total_count": total}


# -- the drivers -------------------------------------------------------------------------------------
def test_read_pages_is_lazy_a_caller_that_stops_reads_nothing_more() -> None:
    server = OffsetServer(rows(10))
    paging = OffsetPaging(SearchCriteria(), key=ID, page_size=3)
    pages = read_pages(lambda c: Page(c, server(c.to_params())["items"], 10), paging)
    first = next(pages)
    assert [r["id"] for r in first.items] == [1, 2, 3] and first.total == 10
    assert server.asked == [(3, 1)]


def test_read_ahead_reads_planned_pages_concurrently_in_order_with_the_minimum_calls() -> None:
    server = OffsetServer(rows(10))
    got = list(iter_items_parallel(server, SearchCriteria(), key=ID, page_size=3, workers=3))
    assert [r["id"] for r in got] == list(range(1, 11))
    assert sorted(server.asked) == [(3, 1), (3, 2), (3, 3), (3, 4)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda page, items: (items, 11), "different total"),  # a row arrived between the reads
        (lambda page, items: (items[:1] if page == 2 else items, 10), "not the one planned"),  # a row left
        (lambda page, items: ([] if page == 4 else items, 10), "read 9 rows"),  # the last page came back empty
    ],
)
def test_read_ahead_aborts_when_the_data_moved_instead_of_skipping_or_repeating(answer: Any, reason: str) -> None:
    data = rows(10)

    def fetch(criteria: SearchCriteria) -> Page[SearchCriteria]:
        page, size = criteria.current_page or 1, criteria.page_size or 3
        items, total = answer(page, data[(page - 1) * size : page * size]) if page > 1 else (data[:size], 10)
        return Page(criteria, items, total)

    with pytest.raises(PagingError, match=reason):
        list(read_rows_ahead(fetch, OffsetPaging(SearchCriteria(), key=ID, page_size=3), workers=2))


# -- Magento offset pages ----------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "calls"), [(0, 1), (2, 1), (5, 2), (6, 2), (7, 3)])
def test_offset_paging_stops_on_total_count_never_asking_past_the_end(n: int, calls: int) -> None:
    server = OffsetServer(rows(n))
    assert [r["id"] for r in iter_items(server, SearchCriteria(), key=ID, page_size=3)] == list(range(1, n + 1))
    assert len(server.asked) == calls


def test_offset_paging_aborts_on_a_repeated_page_when_total_count_is_stale() -> None:
    server = OffsetServer(rows(4), total=9)
    with pytest.raises(PagingError, match="repeats the previous page"):
        list(iter_items(server, SearchCriteria(), key=ID, page_size=2))


def test_offset_paging_lowers_the_page_size_and_drops_the_overlap() -> None:
    server = OffsetServer(rows(7), max_size=2)
    assert [r["id"] for r in iter_items(server, SearchCriteria(), key=ID, page_size=5)] == list(range(1, 8))
    assert server.asked[:2] == [(5, 1), (2, 1)]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), size=st.integers(1, 9), workers=st.integers(1, 4))
def test_offset_paging_reads_every_row_once_in_order(n: int, size: int, workers: int) -> None:
    server = OffsetServer(rows(n))
    got = list(iter_items_parallel(server, SearchCriteria(), key=ID, page_size=size, workers=workers))
    assert got == rows(n)
    assert len(server.asked) == max(1, -(-n // size))


# -- Magento keyset windows --------------------------------------------------------------------------
def test_keyset_paging_finishes_a_cluster_then_moves_past_its_timestamp() -> None:
    paging = KeysetPaging("t0", until="t9")
    first = paging.first()
    assert first == Window((("updated_at", "t0", "gteq"), ("updated_at", "t9", "lteq")))
    cluster = [{"updated_at": "t1", "entity_id": 1}, {"updated_at": "t1", "entity_id": 2}]
    step = paging.step(Page(first, cluster, 5))
    assert step.next == Window((("updated_at", "t1", "eq"), ("entity_id", "2", "gt")), cluster=True)
    step = paging.step(Page(step.next, [{"updated_at": "t1", "entity_id": 3}], 1))
    assert step.next == Window((("updated_at", "t1", "gt"), ("updated_at", "t9", "lteq")))
    last = paging.step(Page(step.next, [{"updated_at": "t2", "entity_id": 1}], 1))
    assert last.next is None and last.rows == [{"updated_at": "t2", "entity_id": 1}]


def test_keyset_paging_refuses_rows_out_of_order() -> None:
    paging = KeysetPaging("t0", what="/V1/orders")
    page = Page(paging.first(), [{"updated_at": "t2", "entity_id": 1}, {"updated_at": "t1", "entity_id": 9}], 2)
    with pytest.raises(PagingError, match="out of order .* while reading /V1/orders"):
        paging.step(page)


def test_keyset_scan_reads_a_cluster_larger_than_a_page_once() -> None:
    data = [{"updated_at": "t1", "entity_id": i} for i in range(1, 8)] + [{"updated_at": "t2", "entity_id": 1}]

    def fetch(filters: list[tuple[str, str, str]], size: int) -> tuple[list[dict[str, Any]], int]:
        ops = {"gteq": str.__ge__, "gt": str.__gt__, "eq": str.__eq__, "lteq": str.__le__}
        out = [r for r in data if all(ops[c](str(r[f]) if f == "updated_at" else f"{r[f]:09}", v if f == "updated_at"
                                              else f"{int(v):09}") for f, v, c in filters)]  # fmt: skip
        return out[:size], len(out)

    assert list(keyset_scan(fetch, "t0", 3)) == data


# -- Sitoo start/num ---------------------------------------------------------------------------------
def sitoo(answers: list[tuple[list[Any], int | None]]) -> tuple[list[int], Any]:
    starts: list[int] = []

    def fetch(start: int) -> Page[int]:
        starts.append(start)
        items, total = answers[min(len(starts), len(answers)) - 1]
        return Page(start, [{"n": i} for i in items], total)

    return starts, fetch


@pytest.mark.parametrize(
    ("answers", "want", "starts"),
    [
        ([([1, 2], 4), ([3, 4], 4)], [1, 2, 3, 4], [0, 2]),  # stops on totalcount, no third call
        ([([1, 2], 5), ([3], 5), ([4, 5], 5)], [1, 2, 3, 4, 5], [0, 2, 3]),  # a short page is not the end
        ([([1], 9), ([], 9)], [1], [0, 1]),  # an empty page ends it
        ([([1, 2], 9), ([3], 9), ([3], 9)], [1, 2, 3], [0, 2, 3]),  # the short page again: stale totalcount
        ([([1, 2], None), ([3], None)], [1, 2, 3], [0, 2]),  # no totalcount: a short page ends it
    ],
)
def test_start_num_paging_stop_rules(answers: list[Any], want: list[int], starts: list[int]) -> None:
    asked, fetch = sitoo(answers)
    assert [r["n"] for r in read_rows(fetch, StartNumPaging(2, "GET /products.json"))] == want
    assert asked == starts


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 30), size=st.integers(1, 6), served=st.lists(st.integers(1, 6), min_size=1, max_size=8))
def test_start_num_paging_reads_every_row_once_whatever_the_server_serves(n: int, size: int, served: list[int]) -> None:
    calls: list[int] = []

    def fetch(start: int) -> Page[int]:
        calls.append(start)
        num = min(size, served[len(calls) % len(served)])  # a server may serve fewer than num (§2.2)
        return Page(start, rows(n)[start : start + num], n)

    assert list(read_rows(fetch, StartNumPaging(size, "GET /users.json"))) == rows(n)
