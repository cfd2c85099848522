"""Sitoo REST API v2 client: Basic auth, ``.json`` paths, start/num pager, batch envelopes.

API facts are from ``reference/sitoo-api.md`` (section numbers below refer to it):
- base URL copied verbatim from Backoffice (``…/v2/accounts/{accountid}``), every path ends in
  ``.json``, site-scoped paths under ``/sites/{eshopid}`` (§1);
- collections come as ``{"totalcount", "items"}``; paging is ``start``/``num`` and goes on while
  ``start < totalcount``: a page shorter than ``num`` is not the end, since the largest ``num``
  Sitoo serves is undocumented (§2.2); only an answer without ``totalcount`` ends on a short page;
- array POST/PUT return one ``{"statuscode", "return"|"errortext"}`` per element, in order; every
  element is checked and reported, one failed element never raises (§2.3, pitfalls P35);
- errors are ``{"statuscode", "errortext"}`` (§2.4); 401 is usually credentials or the IP
  allow-list (P46).

Readers return raw dicts (see ``models`` for parsing per record). Writes accept Decimals and
datetimes and encode them with ``models.to_api``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any
from urllib.parse import quote, urlencode

from requests.auth import HTTPBasicAuth

from magsit.config import HttpSettings, SitooSettings
from magsit.errors import ApiError
from magsit.http import HttpSession, parallel_map
from magsit.paging import Page, Step, read_pages, read_rows
from magsit.sitoo.models import BatchResult, order_write_payload, to_api, to_epoch

log = logging.getLogger("magsit.sitoo")

SYSTEM = "sitoo"

# Multi-value filters go comma-joined in the query string; keep URLs well under the ~8 KB many
# proxies allow, whatever the SKUs look like.
MAX_FILTER_VALUES = 100
MAX_FILTER_CHARS = 1500
WRITE_BATCH = 100  # products/users/warehouse items: no documented limit, stay modest
USER_SCAN_THRESHOLD = 3  # more addresses than this to look up: consider one read of all users instead

# Explicit projections for the reads the flows do ("Only request fields that you need", §2.2).
WAREHOUSE_ITEM_FIELDS = ("warehouseitemid", "sku", "decimaltotal", "decimalreserved", "decimalavailable", "datelastmodified")
WAREHOUSE_FIELDS = ("warehouseid", "warehousetype", "usetype", "storeid", "name", "externalid", "currencycode", "sellable")
TRANSACTION_FIELDS = (
    "warehousetransactionid",
    "warehouseid",
    "datecreated",
    "transactiontype",
    "description",
    "orderdeliveryid",
    "externalid",
    "reasoncode",
    "items",
)
PRODUCT_FIELDS = (
    "productid",
    "sku",
    "title",
    "moneyprice",
    "vatid",
    "vatvalue",
    "active",
    "activepos",
    "barcode",
    "barcodealiases",
    "variantparentid",
    "datemodified",
)
USER_FIELDS = (
    "userid",
    "email",
    "namefirst",
    "namelast",
    "externalid",
    "customernumber",
    "company",
    "phone",
    "mobile",
    "address",
    "address2",
    "zip",
    "city",
    "state",
    "countryid",
    "role",
    "datecreated",
    "datemodified",
)
ORDER_FIELDS = (
    "orderid",
    "externalid",
    "creditorderid",
    "eshopid",
    "ordertypeid",
    "orderstateid",
    "paymentstateid",
    "warehouseid",
    "registerid",
    "orderdate",
    "datereserved",
    "email",
    "namefirst",
    "namelast",
    "currencycode",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_all",
    "additionaldata",
    "orderitems",
    "payments",
)


def sitoo_error_text(status: int, body: Any) -> str:
    """HttpSession error parser: Sitoo's ``errortext``, plus what to check on a 401/403."""
    text = ""
    if isinstance(body, Mapping):
        text = str(body.get("errortext") or body.get("message") or "").strip()
    elif isinstance(body, list):
        # A batch that failed as a whole may carry the per-element envelope: show the first error.
        texts = [str(e.get("errortext")) for e in body if isinstance(e, Mapping) and e.get("errortext")]
        if texts:
            text = texts[0] + (f" (and {len(texts) - 1} more)" if len(texts) > 1 else "")
    if status in (401, 403):
        hint = (
            "Sitoo rejected the credentials or this machine's address: check [sitoo] api_id and password, "
            "and that this machine's public IP address is on the allow-list "
            "(Sitoo Backoffice › Settings › Sitoo REST API)"
        )
        return f"HTTP {status}: {hint}" + (f" — Sitoo said: {text}" if text else "")
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


def chunk_values(values: Iterable[Any], max_count: int = MAX_FILTER_VALUES, max_chars: int = MAX_FILTER_CHARS) -> Iterator[list[str]]:
    """Split filter values into comma-joinable chunks (≤ max_count values, ≤ ~max_chars joined).

    Values are de-duplicated in first-seen order; empty values are dropped (an empty filter
    value could mean "no filter" to the server).
    """
    chunk: list[str] = []
    size = 0
    seen: set[str] = set()
    for raw in values:
        value = str(raw)
        if not value or value in seen:
            continue
        seen.add(value)
        if chunk and (len(chunk) >= max_count or size + len(value) + 1 > max_chars):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        yield chunk


def _query(pairs: Sequence[tuple[str, Any]]) -> str:
    """Encode query pairs keeping commas literal (multi-value separator), everything else quoted."""
    clean = [(k, _query_value(v)) for k, v in pairs if v is not None]
    return urlencode(clean, quote_via=quote, safe=",")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


def _envelope(body: Any, what: str) -> tuple[list[Any], int | None]:
    """(items, totalcount) from a collection answer; a bare list is taken as all items."""
    if isinstance(body, list):
        return body, len(body)
    if isinstance(body, Mapping) and isinstance(body.get("items", []), list):
        total = body.get("totalcount")
        try:
            total_int = int(total) if total is not None else None
        except (TypeError, ValueError):
            total_int = None
        return list(body.get("items") or []), total_int
    raise ApiError(
        f"{SYSTEM}: unexpected answer to {what}: expected {{totalcount, items}}, got {type(body).__name__}",
        system=SYSTEM,
        body=body,
    )


class StartNumPaging:
    """The ``magsit.paging`` scheme for a Sitoo collection: ``start``/``num`` from offset ``start`` on.

    Reads while ``start < totalcount``: a short page does not end it (Sitoo documents no maximum
    ``num``, §2.2, so a server may serve fewer than asked); only an answer without ``totalcount``
    ends on a short page. An empty page ends it, and so does the previous short page served again
    (a stale totalcount; not handed on twice): a server cannot loop us.
    """

    system = SYSTEM

    def __init__(self, size: int, what: str, start: int = 0) -> None:
        self.size = size
        self.what = what
        self.start = start
        self.short: list[Any] | None = None  # the previous page, if it was short

    def first(self) -> int:
        return self.start

    def step(self, page: Page[int]) -> Step[int]:
        items = page.items
        if self.short is not None and items and items == self.short:
            log.warning("sitoo: %s served its last page again at start=%d (totalcount %s); stopped there",
                        self.what, page.request, page.total)  # fmt: skip
            return Step([], None)
        start = page.request + len(items)
        if not items or (start >= page.total if page.total is not None else len(items) < self.size):
            return Step(items, None)
        self.short = items if len(items) < self.size else None
        return Step(items, start)


class SitooClient:
    """One Sitoo account + site (eshopid). Thread-safe for reads via ``parallel_map``."""

    def __init__(
        self, settings: SitooSettings, http_settings: HttpSettings | None = None, *, read_only: bool = False
    ) -> None:
        self.settings = settings
        self.site_id = settings.site_id
        self.page_size = settings.page_size
        # The password stays a SecretStr in settings; requests keeps it in the auth object only,
        # which is sent as a header and never logged (HttpSession logs the redacted URL).
        auth = HTTPBasicAuth(settings.api_id, settings.password.get_secret_value())
        self.http = HttpSession(
            SYSTEM,
            settings.base_url,
            settings=http_settings,
            auth=auth,
            headers={"Content-Type": "application/json"},
            error_parser=sitoo_error_text,
            read_only=read_only,  # every call but GET is refused (dry runs)
        )

    def __repr__(self) -> str:
        return f"SitooClient(base_url={self.settings.base_url!r}, api_id={self.settings.api_id!r}, site_id={self.site_id})"

    @property
    def calls(self) -> Any:
        """Calls per endpoint (``GET /sites/{id}/products.json`` …), for run reports and tests."""
        return self.http.calls

    # -- paths and low-level helpers -------------------------------------------------------------
    def _site(self, path: str) -> str:
        return f"/sites/{self.site_id}{path}"

    def _get(self, path: str, pairs: Sequence[tuple[str, Any]] = ()) -> Any:
        query = _query(pairs)
        return self.http.get(path, params=query or None)

    def _pages(
        self,
        path: str,
        pairs: Sequence[tuple[str, Any]] = (),
        fields: Sequence[str] | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, page by page (the stop rules of ``StartNumPaging``)."""
        yield from read_rows(*self._paged(path, pairs, fields, page_size or self.page_size))

    def _paged(
        self, path: str, pairs: Sequence[tuple[str, Any]], fields: Sequence[str] | None, size: int
    ) -> tuple[Callable[[int], Page[int]], StartNumPaging]:
        """The page reader of a collection and a fresh paging scheme for one read of it."""
        base = [*pairs, ("fields", ",".join(fields))] if fields else list(pairs)

        def fetch(start: int) -> Page[int]:
            return Page(start, *_envelope(self._get(path, [*base, ("start", start), ("num", size)]), f"GET {path}"))

        return fetch, StartNumPaging(size, f"GET {path}")

    def _batch(
        self,
        method: str,
        path: str,
        records: Sequence[Any],
        chunk: int,
        *,
        retry: bool | None = None,
    ) -> list[BatchResult]:
        """Send ``records`` as array bodies of ≤ chunk and return one BatchResult per record.

        A whole call that fails raises (ApiError from HttpSession); a failed element does not.
        """
        results: list[BatchResult] = []
        for offset in range(0, len(records), chunk):
            part = [to_api(r) for r in records[offset : offset + chunk]]
            try:
                body = self.http.request(method, path, json=part, retry=retry)
            except ApiError as exc:
                # A 4xx whose body is itself the per-element envelope: Sitoo's overall status for a
                # partly failed batch is undocumented (§2.3), so read the elements, not the status.
                if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429 and _is_envelope(exc.body, len(part)):
                    body = exc.body
                else:
                    raise
            results.extend(_batch_results(body, len(part), offset, f"{method} {path}"))
        return results

    # -- account and site structure --------------------------------------------------------------
    def list_warehouses(self, fields: Sequence[str] | None = WAREHOUSE_FIELDS) -> list[dict[str, Any]]:
        return list(self._pages(self._site("/warehouses.json"), fields=fields))

    # -- stock -----------------------------------------------------------------------------------
    def iter_warehouse_items(
        self,
        warehouse_id: int,
        modified_from: int | Any = None,
        modified_to: int | Any = None,
        skus: Iterable[str] | None = None,
        fields: Sequence[str] | None = WAREHOUSE_ITEM_FIELDS,
    ) -> Iterator[dict[str, Any]]:
        """Warehouse items, optionally changed in [modified_from, modified_to] or for given SKUs.

        ``modified_*`` take epoch ints or aware datetimes (``datelastmodifiedfrom/to``).
        """
        path = self._site(f"/warehouses/{int(warehouse_id)}/warehouseitems.json")
        pairs: list[tuple[str, Any]] = [
            ("datelastmodifiedfrom", to_epoch(modified_from)),
            ("datelastmodifiedto", to_epoch(modified_to)),
        ]
        if skus is None:
            yield from self._pages(path, pairs, fields)
            return
        for chunk in chunk_values(skus):
            yield from self._pages(path, [*pairs, ("sku", chunk)], fields)

    # Name used by magsit/sync/stock.py.
    warehouse_items = iter_warehouse_items

    def iter_warehouse_transactions(
        self,
        warehouse_id: int | None = None,
        id_from: int | None = None,
        date_from: int | Any = None,
        date_to: int | Any = None,
        transaction_type: int | None = None,
        fields: Sequence[str] | None = TRANSACTION_FIELDS,
    ) -> Iterator[dict[str, Any]]:
        """Site-wide transactions sorted by id (the monotonic cursor); ``id_from`` is inclusive."""
        pairs = [
            ("warehouseid", warehouse_id),
            ("warehousetransactionidfrom", id_from),
            ("datecreatedfrom", to_epoch(date_from)),
            ("datecreatedto", to_epoch(date_to)),
            ("transactiontype", transaction_type),
            ("sort", "warehousetransactionid"),
        ]
        yield from self._pages(self._site("/warehousetransactions.json"), pairs, fields)

    # -- products --------------------------------------------------------------------------------
    def iter_products(
        self,
        modified_after: int | Any = None,
        skus: Iterable[str] | None = None,
        include_inactive: bool = False,
        fields: Sequence[str] | None = PRODUCT_FIELDS,
    ) -> Iterator[dict[str, Any]]:
        # includeinactive is a string enum ["true", "false"] in the spec (§12), not a JSON bool.
        pairs: list[tuple[str, Any]] = [
            ("includeinactive", "true" if include_inactive else "false"),
            ("datelastmodified", to_epoch(modified_after)),
        ]
        path = self._site("/products.json")
        if skus is None:
            yield from self._pages(path, pairs, fields)
            return
        for chunk in chunk_values(skus):
            yield from self._pages(path, [*pairs, ("sku", chunk)], fields)

    def get_products_by_skus(
        self, skus: Iterable[str], fields: Sequence[str] | None = PRODUCT_FIELDS, include_inactive: bool = True
    ) -> list[dict[str, Any]]:
        """Products for the given SKUs. Inactive ones are included by default: a lookup that
        missed an inactive product would lead a caller to create a duplicate."""
        return list(self.iter_products(skus=list(skus), include_inactive=include_inactive, fields=fields))

    # -- users -----------------------------------------------------------------------------------
    def find_users_by_email(
        self, emails: Iterable[str], fields: Sequence[str] | None = USER_FIELDS
    ) -> dict[str, list[dict[str, Any]]]:
        """Users whose e-mail matches, per e-mail as given.

        One call per address: the spec types ``email`` as a single string (no comma list), and
        whether the match is exact or case-insensitive is unknown (§7), so the caller normalises
        and compares. Runs with [sitoo].concurrency.
        """
        wanted = list(dict.fromkeys(e for e in emails if e))
        path = self._site("/users.json")
        if len(wanted) > USER_SCAN_THRESHOLD:
            # Many addresses: reading the whole user list may take fewer calls than one per address.
            scanned = self._users_by_scan(path, wanted, fields)
            if scanned is not None:
                return scanned

        def one(email: str) -> tuple[str, list[dict[str, Any]]]:
            return email, list(self._pages(path, [("email", email)], fields))

        return dict(parallel_map(one, wanted, self.settings.concurrency))

    def _users_by_scan(
        self, path: str, wanted: list[str], fields: Sequence[str] | None
    ) -> dict[str, list[dict[str, Any]]] | None:
        """Users per wanted e-mail from a read of every user, or None when that would cost more calls
        than the per-address lookups (decided on page 1's totalcount; then page 1 is the only extra call).

        Matching is trimmed and case-insensitive (a superset of the server's ``email`` filter, whose
        exactness is unknown); callers compare the addresses themselves.
        """
        wanted_fields = None if fields is None else list(dict.fromkeys([*fields, "email"]))
        pages = read_pages(*self._paged(path, (), wanted_fields, self.page_size))
        first = next(pages)
        total = len(first.items) if first.total is None else first.total
        # totalcount, not a short first page, says whether more follow (Sitoo may serve fewer than num).
        pages_left = max(0, -(-(total - len(first.items)) // self.page_size)) if first.items else 0
        if pages_left >= len(wanted):
            return None  # the rest of `pages` is never read
        index: dict[str, list[dict[str, Any]]] = {}
        keys = {email: email.strip().casefold() for email in wanted}
        needed = set(keys.values())
        for page in chain([first], pages):
            for user in page.items:
                key = str(user.get("email") or "").strip().casefold()
                if key in needed:
                    index.setdefault(key, []).append(user if fields is None or "email" in fields else
                                                     {k: v for k, v in user.items() if k in fields})
        return {email: index.get(key, []) for email, key in keys.items()}

    def iter_users(self, fields: Sequence[str] | None = USER_FIELDS) -> Iterator[dict[str, Any]]:
        """All users (customers and staff; customers have ``role`` null). No modified-since filter exists."""
        yield from self._pages(self._site("/users.json"), fields=fields)

    def add_users(self, users: Sequence[Mapping[str, Any]]) -> list[BatchResult]:
        """Batch POST; each ok result's value is the new userid (a GUID string)."""
        return self._batch("POST", self._site("/users.json"), list(users), WRITE_BATCH)

    def add_user(self, user: Mapping[str, Any]) -> str:
        """Create one user and return its userid. Sent as a one-element batch (the spec's body is
        an array); a rejected element raises ApiError with Sitoo's errortext."""
        result = self.add_users([user])[0]
        if not result.ok:
            raise ApiError(
                f"{SYSTEM}: user {user.get('email')!r} was not created: {result.error}",
                system=SYSTEM,
                status=result.status,
                method="POST",
                url=self._site("/users.json"),
            )
        return str(result.value)

    def update_user(self, userid: str, fields: Mapping[str, Any]) -> bool:
        """Partial PUT of one user; True on success."""
        path = self._site(f"/users/{quote(str(userid), safe='')}.json")
        return self._expect_true(self.http.put(path, json=to_api(fields)), "PUT", path)

    # -- orders ----------------------------------------------------------------------------------
    def create_order(self, order: Mapping[str, Any]) -> int:
        """POST one order and return its orderid.

        Never resent (retry=False): a 5xx, timeout or dropped connection raises ApiError with
        ``outcome_unknown=True`` and the caller must look the externalid up before trying again
        (DESIGN "No order … is created twice"). Only a 429 (not processed) is retried.
        """
        path = self._site("/orders.json")
        body = self.http.post(path, json=order_write_payload(order), retry=False)
        return _new_id(body, "POST", path)

    def find_orders_by_externalid(
        self, externalids: Iterable[str], fields: Sequence[str] | None = ORDER_FIELDS
    ) -> list[dict[str, Any]]:
        """Orders whose externalid is one of ``externalids`` (account-level ``GET /orders.json``)."""
        found: list[dict[str, Any]] = []
        for chunk in chunk_values(externalids):
            found.extend(self._pages("/orders.json", [("externalid", chunk)], fields))
        return found

    def get_orders(self, orderids: Iterable[int], fields: Sequence[str] | None = ORDER_FIELDS) -> list[dict[str, Any]]:
        """Several orders by id in few calls (``orderid`` comma list)."""
        found: list[dict[str, Any]] = []
        for chunk in chunk_values(int(o) for o in orderids):
            found.extend(self._pages("/orders.json", [("orderid", chunk)], fields))
        return found

    def get_order(self, orderid: int) -> dict[str, Any]:
        """One order with items, payments and log items."""
        return self.http.get(self._site(f"/orders/{int(orderid)}.json"))

    def iter_orders(
        self,
        orderid_from: int | None = None,
        orderdate_from: int | Any = None,
        orderdate_to: int | Any = None,
        eshopid: int | None = None,
        fields: Sequence[str] | None = ORDER_FIELDS,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Orders of this site sorted by orderid (a unique key, so paging is stable).

        ``orderid_from`` is inclusive (``orderidfrom``); extra ``filters`` (``orderstate=[0, 10]``,
        ``ordertype=10`` …) are sent as given, lists comma-joined.
        """
        pairs: list[tuple[str, Any]] = [
            ("eshopid", self.site_id if eshopid is None else eshopid),
            ("orderidfrom", orderid_from),
            ("orderdatefrom", to_epoch(orderdate_from)),
            ("orderdateto", to_epoch(orderdate_to)),
            *filters.items(),
            ("sort", "orderid"),
        ]
        yield from self._pages("/orders.json", pairs, fields)

    def update_order(self, orderid: int, fields: Mapping[str, Any]) -> bool:
        """Partial PUT of an order (e.g. ``{"orderstateid": 20}`` to cancel); True on success."""
        path = self._site(f"/orders/{int(orderid)}.json")
        return self._expect_true(self.http.put(path, json=to_api(fields)), "PUT", path)

    def list_deliveries(self, orderid: int) -> list[dict[str, Any]]:
        path = self._site(f"/orders/{int(orderid)}/orderdeliveries.json")
        items, _ = _envelope(self.http.get(path), f"GET {path}")
        return items

    def add_delivery(
        self,
        orderid: int,
        warehouseid: int,
        items: Iterable[tuple[int, int] | Mapping[str, Any]],
        ref: str | None = None,
        ignorestock: bool | None = None,
    ) -> int:
        """POST an order delivery and return its id. ``items``: (orderitemid, quantity) pairs or dicts.

        Not retried on an unknown outcome: look for ``ref`` in ``list_deliveries`` first.
        """
        lines = [
            dict(i) if isinstance(i, Mapping) else {"orderitemid": int(i[0]), "quantity": int(i[1])} for i in items
        ]
        body: dict[str, Any] = {"warehouseid": int(warehouseid), "orderdeliveryitems": lines}
        if ref:
            body["orderdeliveryref"] = ref
        path = self._site(f"/orders/{int(orderid)}/orderdeliveries.json")
        query = _query([("ignorestock", ignorestock)])
        result = self.http.request("POST", path, params=query or None, json=to_api(body), retry=False)
        return _new_id(result, "POST", path)

    # -- internals -------------------------------------------------------------------------------
    @staticmethod
    def _expect_true(body: Any, method: str, path: str) -> bool:
        if body is True or body == "true":
            return True
        raise ApiError(
            f"{SYSTEM}: {method} {path} answered {str(body)[:80]!r} instead of true; the change may not be saved",
            system=SYSTEM,
            method=method,
            url=path,
            body=body,
        )


def _is_envelope(body: Any, expected: int) -> bool:
    return (
        isinstance(body, list)
        and len(body) == expected
        and all(isinstance(e, Mapping) and "statuscode" in e for e in body)
    )


def _batch_results(body: Any, sent: int, offset: int, what: str) -> list[BatchResult]:
    """Per-element results of a batch answer, indexed into the caller's full list."""
    if not isinstance(body, list):
        if sent == 1 and body is not None and body is not False:
            # "Returns productid or a batch envelope": a bare id/true for a one-element call.
            return [BatchResult(offset, True, body, None, 200)]
        raise ApiError(
            f"{SYSTEM}: unexpected answer to {what}: expected a batch envelope of {sent} results, got {str(body)[:80]!r}",
            system=SYSTEM,
            body=body,
            outcome_unknown=True,
        )
    if len(body) != sent:
        # Results cannot be matched to records; some may have been applied.
        raise ApiError(
            f"{SYSTEM}: {what} returned {len(body)} results for {sent} records; cannot tell which were saved",
            system=SYSTEM,
            body=body,
            outcome_unknown=True,
        )
    results = []
    for i, element in enumerate(body):
        index = offset + i
        if isinstance(element, Mapping):
            try:
                status = int(element.get("statuscode", 0))
            except (TypeError, ValueError):
                status = 0
            if 200 <= status < 300:
                results.append(BatchResult(index, True, element.get("return"), None, status))
            else:
                text = str(element.get("errortext") or f"statuscode {element.get('statuscode')!r}")
                results.append(BatchResult(index, False, None, text, status or None))
        elif element is None or element is False:
            results.append(BatchResult(index, False, None, "no result for this element", None))
        else:
            results.append(BatchResult(index, True, element, None, None))
    return results


def _new_id(body: Any, method: str, path: str) -> int:
    """The id a create answered with (a bare JSON value; tolerate a one-element envelope)."""
    value = body
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], Mapping):
        if 200 <= int(body[0].get("statuscode") or 0) < 300:
            value = body[0].get("return")
        else:
            raise ApiError(
                f"{SYSTEM}: {method} {path} failed: {body[0].get('errortext') or body[0].get('statuscode')}",
                system=SYSTEM,
                status=int(body[0].get("statuscode") or 0) or None,
                method=method,
                url=path,
                body=body,
            )
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError, OverflowError):
        # Something was probably created, but we do not know its id: same handling as a timeout.
        raise ApiError(
            f"{SYSTEM}: {method} {path} answered {str(body)[:80]!r}, not a new id",
            system=SYSTEM,
            method=method,
            url=path,
            body=body,
            outcome_unknown=True,
        ) from None
