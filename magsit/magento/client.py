"""Magento 2 admin REST client (magento-api.md; section numbers below refer to it).

- Two base URLs: ``/rest/<store_code>/V1`` for orders, customers, inventory (``.http``) and
  ``/rest/all/V1`` for product master data (``.http_all``): a product write through a store code
  creates store-view overrides (§2, P16). Product reads also use ``all`` so the diff compares the
  values magsit writes.
- Every list read pages with ``search.OffsetPaging`` (pageSize always sent, unique sort, stop on
  total_count, repeat detection, pageSize-limit adaptation) or, for the cursor flows,
  ``sync.keyset.KeysetPaging``; both are ``magsit.paging`` schemes.
- Body arrays are chunked to the input list limit (default 20); ``Maximum items of type "…" is N``
  lowers the limit for the rest of the client's life and the chunk is resent split (§5.1).
- Document creates (ship, invoice, refund, customer, comments, cancel) are sent with
  ``retry=False``: a 5xx/timeout raises with ``outcome_unknown`` and the flow checks before retrying.
  Absolute-value upserts (source items, base prices) are idempotent and sent with ``retry=True``.
- SKUs in paths are ``quote(sku, safe="")``-encoded, but reads prefer ``sku in`` searches (P12, P13),
  and product writes of SKUs with ``/`` or ``&`` go to ``POST /V1/products`` (no SKU in the path).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from magsit.config import HttpSettings, MagentoSettings
from magsit.errors import ApiError
from magsit.http import HttpSession, parallel_map
from magsit.magento import messages
from magsit.magento.auth import make_auth
from magsit.magento.models import (
    CUSTOMER_KEYS,
    PRICE_KEYS,
    PRODUCT_KEYS,
    SOURCE_ITEM_KEYS,
    ItemQuantities,
    Number,
    Track,
    check_keys,
    item_lines,
    jsonable,
    to_decimal,
    to_number,
)
from magsit.magento.search import (
    OAUTH_ARRAY_LIMIT,
    Filter,
    PageKey,
    PageSizeLimitError,
    Params,
    SearchCriteria,
    chunk_values,
    in_group,
    item_fields,
    iter_items,
    iter_items_parallel,
    keyset_criteria,
    page_fetcher,
)

log = logging.getLogger("magsit.magento")

SYSTEM = "magento"

ENTITY = PageKey.of("entity_id")
BY_ID = PageKey.of("entity_id", "id")  # products and customers sort on entity_id, answer "id"
SOURCE_ITEM = PageKey.of(("sku", "source_code"))  # no id: (source_code, sku) is the unique key
SOURCE = PageKey.of("source_code")

# Fields of the product pre-check/diff reads (P22): enough for the flows, small responses.
PRODUCT_FIELDS = ("id", "sku", "name", "price", "status", "type_id", "visibility", "attribute_set_id", "updated_at",
                  "extension_attributes[website_ids]", "custom_attributes")  # fmt: skip
FILTER_CHARS = 4000  # encoded chars of one `in` value: keeps URLs under ~6 KB with the rest of the query


class MagentoClient:
    def __init__(
        self, settings: MagentoSettings, http_settings: HttpSettings | None = None, *, read_only: bool = False
    ) -> None:
        self.settings = settings
        self.read_only = read_only  # every session refuses anything but GET (dry runs)
        self._auth = make_auth(settings)
        self.http = self._session(settings.store_code, http_settings)
        # Product master data must be written to the "all" scope (§2); share the session when the
        # configured store code already is "all".
        self.http_all = self.http if settings.store_code == "all" else self._session("all", http_settings)
        self._http_settings = http_settings
        self._extra: dict[str, HttpSession] = {}
        self.page_size = settings.page_size  # lowered when the shop says "Maximum SearchCriteria pageSize is N"
        self.list_limit = settings.input_list_limit  # lowered on 'Maximum items of type "…" is N'
        self._lock = threading.Lock()

    def _session(self, store_code: str, http_settings: HttpSettings | None) -> HttpSession:
        return HttpSession(
            SYSTEM,
            f"{self.settings.base_url}/rest/{quote(store_code, safe='')}/V1",
            settings=http_settings,
            auth=self._auth,
            headers={"Content-Type": "application/json"},
            error_parser=messages.describe_error,
            read_only=self.read_only,
        )

    def session_for(self, store_code: str) -> HttpSession:
        """The session of a store code: ``all`` and the configured code are shared, others made once."""
        if store_code == "all":
            return self.http_all
        if store_code == self.settings.store_code:
            return self.http
        with self._lock:
            if store_code not in self._extra:
                self._extra[store_code] = self._session(store_code, self._http_settings)
            return self._extra[store_code]

    @property
    def calls(self) -> Counter[str]:
        """Calls per endpoint over all sessions of this client (``all``-scope ones prefixed)."""
        total: Counter[str] = Counter(self.http.calls)
        if self.http_all is not self.http:
            total.update({f"[all] {k}": v for k, v in self.http_all.calls.items()})
        for code, session in self._extra.items():
            total.update({f"[{code}] {k}": v for k, v in session.calls.items()})
        return total

    # -- plumbing ----------------------------------------------------------------------------------
    def _fetcher(self, session: HttpSession, path: str) -> Callable[[Params], Any]:
        def fetch(params: Params) -> Any:
            try:
                return session.get(path, params=params)
            except ApiError as exc:
                limit = messages.page_size_limit(exc.body) if exc.status == 400 else None
                if limit is None:
                    raise
                with self._lock:
                    if limit < self.page_size:
                        log.warning("magento: shop limits pageSize to %d (was %d); using that from now on", limit, self.page_size)
                        self.page_size = limit
                raise PageSizeLimitError(exc, limit) from None

        return fetch

    def _signable(self, criteria: SearchCriteria) -> list[SearchCriteria]:
        """``criteria`` as the searches to send: under OAuth 1.0a no array may reach index 10
        (``OAUTH_ARRAY_LIMIT``), so a longer OR group becomes several searches. Bearer shops sign
        nothing and keep one call."""
        return criteria.split(OAUTH_ARRAY_LIMIT) if self.settings.uses_oauth else [criteria]

    def _one_search(self, criteria: SearchCriteria) -> SearchCriteria:
        """The single search a keyset or page-at-a-time reader sends: its page cannot be merged from
        several searches, so criteria that would need splitting are a programming error."""
        parts = self._signable(criteria)
        if len(parts) > 1:
            raise ValueError(f"a one-page search may hold at most {OAUTH_ARRAY_LIMIT} filters per group under OAuth")
        return parts[0]

    def _read_parts(
        self, criteria: SearchCriteria, key: PageKey, read: Callable[[SearchCriteria], Iterable[dict[str, Any]]]
    ) -> Iterator[dict[str, Any]]:
        parts = self._signable(criteria)
        if len(parts) == 1:
            yield from read(parts[0])
            return
        seen: set[tuple[Any, ...]] = set()
        for part in parts:
            for row in read(part):
                value = key.value(row)
                if value in seen:  # a row matching filters of two parts
                    continue
                if None not in value:  # a fields= answer without the key cannot be told apart
                    seen.add(value)
                yield row

    def _search(
        self, path: str, criteria: SearchCriteria | None, key: PageKey, *, session: HttpSession | None = None
    ) -> Iterator[dict[str, Any]]:
        fetch = self._fetcher(session or self.http, path)
        return self._read_parts(
            criteria or SearchCriteria(), key,
            lambda part: iter_items(fetch, part, key=key, page_size=self.page_size, what=path),
        )  # fmt: skip

    def search_page(
        self, path: str, criteria: SearchCriteria, *, session: HttpSession | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One search call (criteria used as given, pageSize limit adapted once): items, total_count.
        The keyset readers' fetch (``sync.keyset.KeysetPaging`` asks for page 1 of a window)."""
        criteria = self._one_search(criteria)
        fetch = self._fetcher(session or self.http, path)
        first = (criteria.current_page or 1) == 1
        if criteria.page_size is None or (first and criteria.page_size > self.page_size):
            # Keyset readers ask for their configured size on every page 1; once the shop has
            # named a lower maximum, asking above it again would cost a refused call per page.
            criteria = criteria.page(self.page_size, criteria.current_page or 1)
        page = page_fetcher(fetch, path)(criteria)
        return page.items, page.total or 0

    def _post_list(
        self,
        path: str,
        list_key: str,
        rows: Sequence[Any],
        *,
        session: HttpSession | None = None,
        retry: bool = True,
    ) -> list[Any]:
        """POST ``{list_key: rows}`` in chunks of the input list limit; collects list answers.

        Only for idempotent bodies (retry=True): after a limit error the same rows are resent split.
        """
        session = session or self.http
        results: list[Any] = []
        pending = list(rows)
        while pending:
            size = max(1, self.list_limit)
            chunk, pending = pending[:size], pending[size:]
            try:
                answer = session.post(path, json={list_key: chunk}, retry=retry)
            except ApiError as exc:
                if not self.adapt_list_limit(exc, len(chunk)):
                    raise
                pending = chunk + pending  # rejected as a whole: nothing of it was saved
                continue
            if isinstance(answer, list):
                results.extend(answer)
        return results

    def adapt_list_limit(self, error: ApiError, sent: int) -> bool:
        """True when ``error`` is the shop's ``Maximum items of type "…" is N`` refusal of a body
        array of ``sent`` rows (§5.1): the whole request was refused, nothing of it saved, and
        ``list_limit`` is lowered to N for the rest of the client's life. Callers resend split."""
        limit = messages.list_limit(error.body) if error.status == 400 else None
        if limit is None or limit >= sent or limit < 1:
            return False
        with self._lock:
            if limit < self.list_limit:
                log.warning("magento: shop limits body arrays to %d items (was %d); using that from now on", limit, self.list_limit)
                self.list_limit = limit
        return True

    # -- orders (§8) ---------------------------------------------------------------------------------
    def search_orders(self, criteria: SearchCriteria | None = None) -> Iterator[dict[str, Any]]:
        """``GET /V1/orders`` paged (list rows lack extension attributes: use ``get_order`` for detail)."""
        return self._search("/orders", criteria, ENTITY)

    def search_orders_page(
        self, filters: Sequence[tuple[str, Any, str]], page_size: int | None = None, *, fields: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Keyset primitive for ``magsit.sync.keyset``: page 1, one AND group per filter, sorted
        ``updated_at ASC, entity_id ASC``; returns ``(items, total_count)``."""
        criteria = keyset_criteria(filters, page_size or self.page_size, fields=fields)
        return self.search_page("/orders", criteria)

    def orders_by(self, field_name: str, values: Iterable[Any], *, fields: str | None = None) -> list[dict[str, Any]]:
        """Orders whose ``field_name`` is one of ``values`` (e.g. increment_id, entity_id)."""
        return self._search_in("/orders", field_name, values, ENTITY, fields=fields)

    def get_order(self, entity_id: int) -> dict[str, Any]:
        """``GET /V1/orders/{entity_id}`` — never the increment id."""
        return self.http.get(f"/orders/{int(entity_id)}")

    def add_order_comment(
        self, order_id: int, comment: str, *, notify: bool = False, visible_on_front: bool = False, status: str | None = None
    ) -> bool:
        history: dict[str, Any] = {
            "comment": comment,
            "is_customer_notified": 1 if notify else 0,
            "is_visible_on_front": 1 if visible_on_front else 0,
            "parent_id": int(order_id),
        }
        if status:
            history["status"] = status
        return self.http.post(f"/orders/{int(order_id)}/comments", json={"statusHistory": history}, retry=False) is True

    def cancel_order(self, order_id: int) -> bool:
        """True if cancelled; Magento answers HTTP 200 ``false`` for a non-cancellable order (§8)."""
        return self.http.post(f"/orders/{int(order_id)}/cancel", retry=False) is True

    def ship(
        self,
        order_id: int,
        items: ItemQuantities,
        tracks: Iterable[Track | Mapping[str, Any]] = (),
        *,
        notify: bool = True,
        source_code: str | None = None,
        comment: str | None = None,
    ) -> int:
        """``POST /V1/order/{id}/ship`` with explicit items (omitted items would ship the full
        qty_ordered, §9); returns the shipment entity_id."""
        lines = item_lines(items)
        if not lines:
            raise ValueError("ship needs explicit items with qty > 0 (no items = ship everything ordered)")
        body: dict[str, Any] = {"items": lines, "notify": bool(notify)}
        track_rows = [Track.coerce(t).to_json() for t in tracks]
        if track_rows:
            body["tracks"] = track_rows
        if comment:
            body["appendComment"] = True
            body["comment"] = {"comment": comment, "is_visible_on_front": 0}
        if source_code:
            body["arguments"] = {"extension_attributes": {"source_code": source_code}}
        return int(self.http.post(f"/order/{int(order_id)}/ship", json=body, retry=False))

    def invoice(
        self, order_id: int, *, capture: bool = True, notify: bool = False, items: ItemQuantities | None = None
    ) -> int:
        """``POST /V1/order/{id}/invoice``; ``items`` None = invoice everything (§10). Returns the invoice id."""
        body: dict[str, Any] = {"capture": bool(capture), "notify": bool(notify)}
        if items is not None:
            body["items"] = item_lines(items)
        return int(self.http.post(f"/order/{int(order_id)}/invoice", json=body, retry=False))

    def refund_offline(
        self,
        order_id: int,
        items: ItemQuantities,
        shipping_amount: Number,
        adjustment_positive: Number = 0,
        adjustment_negative: Number = 0,
        return_to_stock_items: Sequence[int] | None = None,
        *,
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """Offline credit memo ``POST /V1/order/{id}/refund`` (no gateway call, §11).

        ``shipping_amount`` is always sent (omitted = all remaining shipping refunded). Sitoo owns
        stock, so ``return_to_stock_items`` defaults to none (P40). Returns the credit memo id.
        """
        lines = item_lines(items)
        arguments: dict[str, Any] = {
            "shipping_amount": to_number(shipping_amount),
            "adjustment_positive": to_number(adjustment_positive),
            "adjustment_negative": to_number(adjustment_negative),
        }
        if return_to_stock_items:
            arguments["extension_attributes"] = {"return_to_stock_items": [int(i) for i in return_to_stock_items]}
        body: dict[str, Any] = {"items": lines, "notify": bool(notify), "arguments": arguments}
        if comment:
            body["appendComment"] = True
            body["comment"] = {"comment": comment, "is_visible_on_front": 0}
        return int(self.http.post(f"/order/{int(order_id)}/refund", json=body, retry=False))

    # -- sales documents -----------------------------------------------------------------------------
    def search_creditmemos(self, criteria: SearchCriteria | None = None) -> Iterator[dict[str, Any]]:
        return self._search("/creditmemos", criteria, ENTITY)

    def get_creditmemo(self, creditmemo_id: int) -> dict[str, Any]:
        return self.http.get(f"/creditmemo/{int(creditmemo_id)}")

    def search_invoices(self, criteria: SearchCriteria | None = None) -> Iterator[dict[str, Any]]:
        return self._search("/invoices", criteria, ENTITY)

    # -- customers (§12) -----------------------------------------------------------------------------
    def search_customers(self, criteria: SearchCriteria | None = None) -> Iterator[dict[str, Any]]:
        return self._search("/customers/search", criteria, BY_ID)

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        return self.http.get(f"/customers/{int(customer_id)}")

    def create_customer(self, customer: Mapping[str, Any], password: str | None = None) -> dict[str, Any]:
        """``POST /V1/customers`` — also sends Magento's welcome e-mail. Never retried blindly: on
        ``outcome_unknown`` search by e-mail first. Duplicate e-mail = 400 'already exists in an
        associated website'."""
        check_keys("customer", customer, CUSTOMER_KEYS)
        body: dict[str, Any] = {"customer": jsonable(dict(customer))}
        body["customer"].setdefault("website_id", self.settings.website_id)
        if password:
            body["password"] = password
        return self.http.post("/customers", json=body, retry=False)

    def update_customer(
        self, customer_id: int, changes: Mapping[str, Any], *, addresses: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """GET -> merge -> PUT of the whole customer. ``addresses`` is left out unless given: sending
        it replaces the set and deletes unlisted addresses (§12, P47)."""
        check_keys("customer", changes, CUSTOMER_KEYS - {"addresses"})
        current = self.get_customer(customer_id)
        merged = {k: v for k, v in current.items() if k in CUSTOMER_KEYS and k != "addresses"}
        if "extension_attributes" not in changes:
            # Read-back extension attributes may hold Adobe-only or read-only parts; do not echo them.
            merged.pop("extension_attributes", None)
        merged.update(jsonable(dict(changes)))
        merged["id"] = int(customer_id)
        if addresses is not None:
            merged["addresses"] = jsonable(addresses)
        return self.http.put(f"/customers/{int(customer_id)}", json={"customer": merged})

    # -- products (§13) ------------------------------------------------------------------------------
    def search_products(self, criteria: SearchCriteria | None = None) -> Iterator[dict[str, Any]]:
        """``GET /V1/products`` at the ``all`` scope (the values magsit writes)."""
        return self._search("/products", criteria, BY_ID, session=self.http_all)

    def get_products_by_skus(self, skus: Iterable[str], *, fields: Sequence[str] | None = PRODUCT_FIELDS) -> list[dict[str, Any]]:
        """Products for these SKUs via ``sku in`` searches (no SKU in the path, P12), chunked so the
        URL stays under ~6 KB. ``fields=None`` returns whole rows."""
        wanted = item_fields(*fields) if fields else None
        return self._search_in("/products", "sku", skus, BY_ID, fields=wanted, session=self.http_all)

    products_by_sku = get_products_by_skus  # the name the sync flows call

    def existing_skus(self, skus: Iterable[str]) -> list[str]:
        """The SKUs of ``skus`` that exist as products (Magento spelling; matching is case-insensitive)."""
        return [str(p["sku"]) for p in self.get_products_by_skus(skus, fields=("id", "sku")) if p.get("sku")]

    def sku_lookup_chunks(self, skus: Iterable[str]) -> list[list[str]]:
        """``skus`` cut as ``existing_skus`` sends them: each chunk is one call (for callers that
        act on each answer as it comes)."""
        return self._in_chunks(skus)

    def _in_chunks(self, values: Iterable[Any]) -> list[list[str]]:
        unique = list(dict.fromkeys(str(v) for v in values))
        return list(chunk_values(unique, max_chars=FILTER_CHARS, max_count=self.page_size))

    def update_product(
        self, sku: str, product: Mapping[str, Any], *, store_code: str = "all", save_options: bool | None = None
    ) -> dict[str, Any]:
        """``PUT /V1/products/{sku}`` ``{"product": {...}}``, by default at ``/rest/all/V1`` (§2).

        A SKU that cannot travel in a path segment (``/`` → ``%2F``: 404 from a default Apache;
        ``/`` or ``&`` break the OAuth signature, GH#37913) is written with ``POST /V1/products``
        instead: both routes are ``ProductRepositoryInterface::save`` (SCHEMA: PostV1Products and
        PutV1ProductsSku), which updates the product the body's ``sku`` names (§13)."""
        check_keys("product", product, PRODUCT_KEYS)
        body_product = jsonable(dict(product))
        body_product.setdefault("sku", sku)
        body: dict[str, Any] = {"product": body_product}
        if save_options is not None:
            body["saveOptions"] = save_options
        if not sku_fits_path(sku):
            body_product["sku"] = sku  # the body names the product: never another SKU than the one meant
            return self.session_for(store_code).post("/products", json=body)
        return self.session_for(store_code).put(f"/products/{quote_sku(sku)}", json=body)

    def create_product(self, product: Mapping[str, Any], *, store_code: str = "all") -> dict[str, Any]:
        """``POST /V1/products``. Not retried on 5xx/timeout (a POST); the SKU is unique, so the flow
        re-reads and updates if it landed."""
        check_keys("product", product, PRODUCT_KEYS)
        if not product.get("sku"):
            raise ValueError("product.sku is required")
        return self.session_for(store_code).post("/products", json={"product": jsonable(dict(product))})

    def save_base_prices(self, prices: Iterable[Mapping[str, Any]], *, store_code: str = "all") -> list[dict[str, Any]]:
        """``POST /V1/products/base-prices``. HTTP 200 with per-row failures (P35): the returned list
        is empty when every row was saved; each failure is ``{"message", "parameters"}`` plus a
        filled-in ``text``."""
        rows = []
        for price in prices:
            check_keys("base price", price, PRICE_KEYS)
            rows.append({"price": to_number(price["price"]), "store_id": int(price.get("store_id", 0)), "sku": str(price["sku"])})
        failures = self._post_list("/products/base-prices", "prices", rows, session=self.session_for(store_code))
        return [{**f, "text": messages.format_body(f)} if isinstance(f, dict) else {"text": str(f)} for f in failures]

    # -- inventory: MSI (§6.2) -----------------------------------------------------------------------
    def list_sources(self) -> list[dict[str, Any]]:
        return list(self._search("/inventory/sources", None, SOURCE))

    def search_source_items(
        self, skus: Iterable[str] | None = None, source_code: str | Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /V1/inventory/source-items``, paged on ``(sku, source_code)``; quantities as Decimal."""
        criteria = SearchCriteria()
        if source_code is not None:
            codes = [source_code] if isinstance(source_code, str) else list(source_code)
            criteria = criteria.any_of(*in_group("source_code", codes)) if codes else criteria
        if skus is None:
            # A full read of a big catalogue: pages fetched [magento].concurrency at a time.
            rows = list(self._source_items_parallel(criteria))
        else:
            rows = self._search_in("/inventory/source-items", "sku", skus, SOURCE_ITEM, base=criteria)
        for row in rows:
            if "quantity" in row:
                row["quantity"] = to_decimal(row["quantity"])
        return rows

    def iter_source_items(self, *, source_codes: Iterable[str] | None = None, decimals: bool = True) -> Iterator[dict[str, Any]]:
        """Every source item (of these sources), streamed: pages are read [magento].concurrency at a
        time and yielded in order; quantities as Decimal (``decimals=False``: as sent, for a caller
        that parses each distinct value once)."""
        criteria = SearchCriteria()
        codes = list(source_codes) if source_codes is not None else []
        if codes:
            criteria = criteria.any_of(*in_group("source_code", codes))
        for row in self._source_items_parallel(criteria):
            if decimals and "quantity" in row:
                row["quantity"] = to_decimal(row["quantity"])
            yield row

    def _source_items_parallel(self, criteria: SearchCriteria) -> Iterator[dict[str, Any]]:
        fetch = self._fetcher(self.http, "/inventory/source-items")
        return self._read_parts(
            criteria, SOURCE_ITEM,
            lambda part: iter_items_parallel(
                fetch, part, key=SOURCE_ITEM, page_size=self.page_size, workers=self.settings.concurrency,
                what="/inventory/source-items",
            ),
        )  # fmt: skip

    def source_items(self, *, source_codes: Iterable[str] | None = None, skus: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The name the stock flow calls: source items of these sources (and SKUs)."""
        return self.search_source_items(skus=skus, source_code=list(source_codes) if source_codes is not None else None)

    def save_source_items(self, items: Iterable[Mapping[str, Any]]) -> None:
        """``POST /V1/inventory/source-items`` in chunks of the list limit. Absolute values, so a
        resend is harmless (retry=True). Any bad row fails its whole chunk with 400 (P23): the flow
        bisects. Unknown SKUs are *saved* as orphans (P22): pre-check with ``existing_skus``."""
        rows = []
        for item in items:
            check_keys("source item", item, SOURCE_ITEM_KEYS)
            rows.append(
                {
                    "sku": str(item["sku"]),
                    "source_code": str(item["source_code"]),
                    "quantity": to_number(item["quantity"]),
                    "status": int(item["status"]),
                }
            )
        if rows:  # an empty array is a 400 "Input data is empty"
            self._post_list("/inventory/source-items", "sourceItems", rows, retry=True)

    # -- inventory: legacy CatalogInventory (naive benchmark baseline only, §6.1) ---------------------
    def get_stock_item(self, sku: str) -> dict[str, Any]:
        return self.http.get(f"/stockItems/{quote_sku(sku)}")

    def update_stock_item(self, sku: str, item_id: int, qty: Number, is_in_stock: bool) -> int:
        """``PUT /V1/products/{sku}/stockItems/{itemId}`` ``{"stockItem": {"qty", "is_in_stock"}}``.

        The service merges this into the stored item (§6.1). The schema lists 23 "required" keys
        (non-nullable getters, some of which Magento itself returns as null), so this minimal body is
        the documented shape, not a schema-complete one. Legacy API: benchmark baseline only (P27).
        """
        stock_item = {"qty": to_number(qty), "is_in_stock": bool(is_in_stock)}
        return int(self.http.put(f"/products/{quote_sku(sku)}/stockItems/{int(item_id)}", json={"stockItem": stock_item}))

    # -- helpers -------------------------------------------------------------------------------------
    def _search_in(
        self,
        path: str,
        field_name: str,
        values: Iterable[Any],
        key: PageKey,
        *,
        fields: str | None = None,
        base: SearchCriteria | None = None,
        session: HttpSession | None = None,
    ) -> list[dict[str, Any]]:
        chunks = self._in_chunks(values)

        def one(chunk: list[str]) -> list[dict[str, Any]]:
            criteria = (base or SearchCriteria()).any_of(*in_group(field_name, chunk)).only(fields)
            return list(self._search(path, criteria, key, session=session))

        # Independent reads: [magento].concurrency chunks in flight, results in input order.
        rows: list[dict[str, Any]] = []
        for part in parallel_map(one, chunks, self.settings.concurrency):
            rows.extend(part)
        return rows


def sku_fits_path(sku: str) -> bool:
    """False for SKUs that must not go in a URL path: ``/`` (Apache 404 on %2F unless NoDecode) and
    ``&`` / ``/`` (OAuth 1.0a signature mismatch, GH#37913, GH#37830; magento-api.md §1.3, §13)."""
    return "/" not in sku and "&" not in sku


def quote_sku(sku: str) -> str:
    """One path segment: ``/``->``%2F``, space->``%20``, ``+``->``%2B`` (a raw ``+`` is a space), UTF-8."""
    return quote(sku, safe="")


__all__ = ["Filter", "MagentoClient", "SearchCriteria", "Track", "item_fields", "quote_sku"]
