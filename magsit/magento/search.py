"""searchCriteria builder and ``OffsetPaging``, the ``magsit.paging`` scheme for Magento list reads (magento-api.md §3).

Paging rules (pitfalls P1–P5), enforced here so no caller can forget them:
- ``pageSize`` is always sent (omitted = *all* rows, or silently 20 with input limits on);
- the sort always ends on a unique key with an explicit direction (default sort is DESC and an
  unstable sort duplicates/loses rows across pages);
- stop on ``total_count`` or a short page, never on an empty page: past the end Magento answers
  the *last page again*; a page whose first key equals the previous page's first key aborts;
- ``Maximum SearchCriteria pageSize is N`` lowers the page size and re-reads that page once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import product
from typing import Any, Literal
from urllib.parse import quote

from magsit.errors import ApiError, PagingError
from magsit.paging import Page, Step, read_rows, read_rows_ahead

CONDITIONS = frozenset(
    {"eq", "finset", "from", "gt", "gteq", "in", "like", "lt", "lteq", "moreq", "neq", "nfinset", "nin", "nlike", "notnull", "null", "to"}
)
Direction = Literal["ASC", "DESC"]
MAGENTO_TS = "%Y-%m-%d %H:%M:%S"
Params = list[tuple[str, str]]
# Under OAuth 1.0a an array index of 10 or more has no signature every 2.4 shop accepts: laminas-oauth
# (up to 2.4.7) sorts ``[2]`` before ``[10]``, 2.4-develop ``[10]`` before ``[1]``, RFC 5849 between
# them (magento-api.md §1.3; magsit/sandbox/magento/oauth.py). So at most ten entries per array.
OAUTH_ARRAY_LIMIT = 10


def to_value(value: Any) -> str:
    """A filter value as Magento expects it: lists comma-joined (``in``/``nin``), UTC timestamps."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive = already UTC (P7)
        return moment.astimezone(UTC).strftime(MAGENTO_TS)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(to_value(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Filter:
    field: str
    value: str
    condition_type: str = "eq"

    def __post_init__(self) -> None:
        if self.condition_type not in CONDITIONS:
            # An unknown condition_type is an SQL error -> masked 500 on the shop; fail here instead.
            raise ValueError(f"unknown searchCriteria condition_type {self.condition_type!r}")


@dataclass(frozen=True)
class SortOrder:
    field: str
    direction: Direction = "ASC"


@dataclass(frozen=True)
class SearchCriteria:
    """Immutable builder: every method returns a new criteria.

    ``where`` adds an AND group of one filter; ``any_of`` adds one group whose filters are ORed
    (Magento has no OR across groups).
    """

    groups: tuple[tuple[Filter, ...], ...] = ()
    sort_orders: tuple[SortOrder, ...] = ()
    page_size: int | None = None
    current_page: int | None = None
    fields: str | None = field(default=None)

    def where(self, field_name: str, value: Any, condition: str = "eq") -> SearchCriteria:
        return replace(self, groups=(*self.groups, (Filter(field_name, to_value(value), condition),)))

    def any_of(self, *filters: Filter | tuple[str, Any] | tuple[str, Any, str]) -> SearchCriteria:
        group = tuple(f if isinstance(f, Filter) else Filter(f[0], to_value(f[1]), *f[2:]) for f in filters)
        if not group:
            raise ValueError("any_of needs at least one filter")
        return replace(self, groups=(*self.groups, group))

    def order_by(self, field_name: str, direction: Direction = "ASC") -> SearchCriteria:
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"sort direction must be ASC or DESC, not {direction!r}")
        return replace(self, sort_orders=(*self.sort_orders, SortOrder(field_name, direction)))

    def page(self, size: int, current: int = 1) -> SearchCriteria:
        if size < 1 or current < 1:
            raise ValueError("pageSize and currentPage start at 1")
        return replace(self, page_size=size, current_page=current)

    def only(self, fields_param: str | None) -> SearchCriteria:
        """``fields=`` partial response, e.g. ``item_fields("sku", "id")``."""
        return replace(self, fields=fields_param)

    def with_unique_sort(self, key_fields: Sequence[str]) -> SearchCriteria:
        """Append ``key_fields ASC`` unless the sort already contains them (then the order is total)."""
        present = {s.field for s in self.sort_orders}
        missing = [f for f in key_fields if f not in present]
        return replace(self, sort_orders=(*self.sort_orders, *(SortOrder(f, "ASC") for f in missing)))

    def split(self, limit: int) -> list[SearchCriteria]:
        """Criteria with at most ``limit`` filters per group whose results, together, are this one's.

        An OR group is cut into slices of ``limit`` filters; with several long groups every
        combination of slices is one criteria (``(a or b) and (c or d)`` = the union of the four).
        A row can match more than one part, so the caller drops repeats. AND groups and sort orders
        cannot be cut that way: more than ``limit`` of them is a ValueError."""
        if len(self.groups) > limit or len(self.sort_orders) > limit:
            raise ValueError(
                f"searchCriteria with {len(self.groups)} filter groups and {len(self.sort_orders)} sort orders: "
                f"at most {limit} of each can be sent"
            )
        slices = [[group[i : i + limit] for i in range(0, len(group), limit)] for group in self.groups]
        return [replace(self, groups=combo) for combo in product(*slices)]

    def to_params(self) -> Params:
        """Query pairs, snake_case keys as documented (Magento also accepts the schema's camelCase)."""
        params: Params = []
        for g, group in enumerate(self.groups):
            for f, flt in enumerate(group):
                prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
                params.append((f"{prefix}[field]", flt.field))
                if flt.condition_type not in ("null", "notnull") or flt.value:
                    params.append((f"{prefix}[value]", flt.value))
                else:
                    params.append((f"{prefix}[value]", "1"))  # value is required by the interface
                params.append((f"{prefix}[condition_type]", flt.condition_type))
        for i, order in enumerate(self.sort_orders):
            params.append((f"searchCriteria[sortOrders][{i}][field]", order.field))
            params.append((f"searchCriteria[sortOrders][{i}][direction]", order.direction))
        if self.page_size is not None:
            params.append(("searchCriteria[pageSize]", str(self.page_size)))
        if self.current_page is not None:
            params.append(("searchCriteria[currentPage]", str(self.current_page)))
        if self.fields:
            params.append(("fields", self.fields))
        return params


def item_fields(*names: str, total_count: bool = True) -> str:
    """``fields=items[a,b],total_count`` — the pagers need ``total_count``, so it is always listed."""
    text = f"items[{','.join(names)}]"
    return f"{text},total_count" if total_count else text


def _with_total(fields_param: str | None) -> str | None:
    if fields_param and "total_count" not in fields_param:
        return f"{fields_param},total_count"
    return fields_param


def keyset_criteria(
    filters: Iterable[tuple[str, Any, str]],
    page_size: int,
    *,
    ts_field: str = "updated_at",
    key: str = "entity_id",
    fields: str | None = None,
) -> SearchCriteria:
    """Page 1 of a ``(ts_field, key)`` keyset window: one AND group per filter, sorted ``ts ASC, key ASC``.

    The flows own the cursor (``magsit.sync.keyset``): they pass e.g. ``[("updated_at", ts, "gteq")]``,
    then ``[("updated_at", ts, "eq"), ("entity_id", last, "gt")]``, and stop on the returned total.
    """
    criteria = SearchCriteria()
    for field_name, value, condition in filters:
        criteria = criteria.where(field_name, value, condition)
    return criteria.order_by(ts_field).order_by(key).page(page_size, 1).only(_with_total(fields))


# -- pagers ----------------------------------------------------------------------------------------
class PageSizeLimitError(ApiError):
    """400 ``Maximum SearchCriteria pageSize is N``; ``limit`` = N."""

    def __init__(self, error: ApiError, limit: int) -> None:
        super().__init__(
            error.message, system=error.system, status=error.status, method=error.method, url=error.url, body=error.body
        )
        self.limit = limit


Fetch = Callable[[Params], Any]


@dataclass(frozen=True)
class PageKey:
    """How rows are ordered uniquely: ``sort`` fields as searchCriteria knows them, ``item`` fields as
    they come back (products/customers sort on ``entity_id`` but answer ``id``)."""

    sort: tuple[str, ...]
    item: tuple[str, ...]

    @classmethod
    def of(cls, sort: str | Sequence[str], item: str | Sequence[str] | None = None) -> PageKey:
        sort_t = (sort,) if isinstance(sort, str) else tuple(sort)
        item_t = sort_t if item is None else ((item,) if isinstance(item, str) else tuple(item))
        return cls(sort_t, item_t)

    def value(self, row: Any) -> tuple[Any, ...]:
        return tuple(row.get(f) for f in self.item) if isinstance(row, dict) else (row,)


def _parse(body: Any, what: str) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
        raise ApiError(f"magento: unexpected answer to a search of {what}: {str(body)[:200]}", system="magento")
    items = body.get("items") or []
    total = body.get("total_count")
    if not isinstance(total, int):
        raise ApiError(
            f"magento: search of {what} answered without total_count (needed to stop paging; keep it in fields=)",
            system="magento",
        )
    return items, total


def page_fetcher(fetch: Fetch, what: str) -> Callable[[SearchCriteria], Page[SearchCriteria]]:
    """One search call as a Page; on a pageSize limit lower the size, keeping the offset, and read once more."""

    def fetch_page(criteria: SearchCriteria) -> Page[SearchCriteria]:
        try:
            return Page(criteria, *_parse(fetch(criteria.to_params()), what))
        except PageSizeLimitError as exc:
            size = criteria.page_size or exc.limit
            if exc.limit >= size or exc.limit < 1:
                raise
            # Re-point to the page holding the same first row; OffsetPaging drops the leading overlap.
            offset = size * ((criteria.current_page or 1) - 1)
            lowered = criteria.page(exc.limit, offset // exc.limit + 1)
            return Page(lowered, *_parse(fetch(lowered.to_params()), what))

    return fetch_page


class OffsetPaging:
    """searchCriteria offset paging that is safe on Magento: see the module docstring for the rules."""

    system = "magento"

    def __init__(self, criteria: SearchCriteria, *, key: PageKey, page_size: int, what: str = "records") -> None:
        self.criteria = criteria.with_unique_sort(key.sort).only(_with_total(criteria.fields)).page(page_size, 1)
        self.key = key
        self.page_size = page_size
        self.what = what
        self.offset = 0  # rows handed on so far
        self.previous_first: tuple[Any, ...] | None = None

    def first(self) -> SearchCriteria:
        return self.criteria

    def _size_and_number(self, served: SearchCriteria) -> tuple[int, int]:
        return served.page_size or self.page_size, served.current_page or 1

    def step(self, page: Page[SearchCriteria]) -> Step[SearchCriteria]:
        size, page_no = self._size_and_number(page.request)
        total = page.total or 0
        if page.items:
            first = self.key.value(page.items[0])
            if self.previous_first is not None and first == self.previous_first:
                raise PagingError(
                    f"magento: page {page_no} of {self.what} repeats the previous page (first key {first}); "
                    f"total_count {total} may be stale — aborted instead of re-reading rows",
                    system="magento",
                )
            self.previous_first = first
        skip = self.offset - (page_no - 1) * size  # > 0 only right after the page size was lowered
        fresh = page.items[skip:] if skip > 0 else page.items
        self.offset += len(fresh)
        done = (page_no - 1) * size + len(page.items) >= total or len(page.items) < size
        return Step(fresh, None if done else page.request.page(size, page_no + 1))

    def rest(self, first: Page[SearchCriteria]) -> list[SearchCriteria]:
        size, _ = self._size_and_number(first.request)
        last_page = math.ceil((first.total or 0) / size)
        return [first.request.page(size, page_no) for page_no in range(2, last_page + 1)]


def iter_items(fetch: Fetch, criteria: SearchCriteria, *, key: PageKey, page_size: int, what: str = "records") -> Iterator[dict[str, Any]]:
    return read_rows(page_fetcher(fetch, what), OffsetPaging(criteria, key=key, page_size=page_size, what=what))


def iter_items_parallel(
    fetch: Fetch,
    criteria: SearchCriteria,
    *,
    key: PageKey,
    page_size: int,
    workers: int,
    what: str = "records",
) -> Iterator[dict[str, Any]]:
    """Like ``iter_items`` for long full reads: page 1 gives total_count (and adapts the page size),
    pages 2..N are known offsets read ``workers`` at a time (``paging.read_rows_ahead``)."""
    paging = OffsetPaging(criteria, key=key, page_size=page_size, what=what)
    return read_rows_ahead(page_fetcher(fetch, what), paging, workers)


def chunk_values(values: Iterable[str], *, max_chars: int = 4000, max_count: int = 200) -> Iterator[list[str]]:
    """Split values for an ``in`` filter so the encoded query stays well under ~6 KB (proxies/WAFs)."""
    chunk: list[str] = []
    size = 0
    for value in values:
        cost = len(quote(value, safe="")) + 3  # + the encoded comma
        if chunk and (size + cost > max_chars or len(chunk) >= max_count):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += cost
    if chunk:
        yield chunk


def in_group(field_name: str, values: Sequence[str]) -> tuple[Filter, ...]:
    """One OR group matching any of ``values``: ``in`` for plain values, ``eq`` for values containing
    a comma (``in`` splits on commas, so ``"A,B"`` would match SKUs ``A`` and ``B``)."""
    plain = [v for v in values if "," not in v]
    group = [Filter(field_name, ",".join(plain), "in")] if plain else []
    group += [Filter(field_name, v, "eq") for v in values if "," in v]
    return tuple(group)
