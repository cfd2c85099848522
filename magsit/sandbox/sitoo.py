"""A runnable HTTP emulator of the Sitoo REST API v2 (plus an Events SPI sender).

Written from ``reference/sitoo-api.md`` alone; it imports nothing from magsit's clients or flows so a
misreading in a client is not silently repeated here. Where the reference marks a behaviour as
inferred ([I]) the emulator picks the documented guess and says so in a comment.

Layout: ``SitooState`` is the in-memory account (thread-safe, one RLock) with scenario helpers the
tests and the demo drive directly (POS sales, deliveries, store returns, hand edits of stock);
``create_app`` serves it over Flask with Sitoo's paths, Basic auth, envelopes and error bodies;
``SitooSandbox`` runs that app on a loopback port.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import requests
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from magsit.sandbox.common import Control, ControlledApp, LoopbackServer

log = logging.getLogger(__name__)

ACCOUNT_ID = 90001
ESHOP_ID = 1
API_ID = "90001-56"
PASSWORD = "sandbox-password"
SITE_GUID = "{5A1D0B7E-0000-4000-8000-000000090001}"

WAREHOUSE_FIFO = 10
WAREHOUSE_VIRTUAL = 20

TT_MOVE_IN = 10
TT_MOVE_OUT = 20
TT_SALES = 30  # [I] has orderdeliveryid + negative qty in the official example
TT_REFUND = 40  # [I] has orderdeliveryid + positive qty
TT_STOCKTAKING = 50
READ_ONLY_TRANSACTION_TYPES = (
    TT_SALES,
    TT_REFUND,
    TT_STOCKTAKING,
)  # "Sales, Refund and StockTaking are read only"

ORDER_OPEN, ORDER_CLOSED, ORDER_CANCELLED = 0, 10, 20
ORDER_STATE_NAMES = {ORDER_OPEN: "open", ORDER_CLOSED: "closed", ORDER_CANCELLED: "cancelled"}
PAYMENT_SUCCESSFUL = 20

# Default field sets of list endpoints, per the reference (§2.2, §7): fields not listed are only
# returned when asked for with ``fields=`` -- a client that forgets to ask must see them missing.
ORDER_DEFAULT_FIELDS = [
    "orderid",
    "email",
    "namefirst",
    "namelast",
    "company",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_roundoff",
    "moneytotal_gross_all",
    "checkouttypename",
    "deliverytypename",
    "orderdate",
    "orderstateid",
    "paymentstateid",
    "ordertypeid",
    "registerid",
    "warehouseid",
    "datereserved",
    "orderitems",
    "payments",
]
PRODUCT_DEFAULT_FIELDS = [
    "productid",
    "sku",
    "datemodified",
    "active",
    "activepos",
    "vatid",
    "manufacturerid",
    "stockcountenable",
    "stockallowbackorder",
    "barcode",
    "moneyprice",
    "moneyfinalprice",
]
USER_DEFAULT_FIELDS = ["userid", "email", "namefirst", "namelast", "company", "datecreated", "datemodified"]

# Scalar fields of the order-write schema (§6) a partial PUT may change.
ORDER_WRITABLE_SCALARS = frozenset(
    [
        "ordertypeid",
        "externalid",
        "creditorderid",
        "email",
        "namefirst",
        "namelast",
        "personalid",
        "company",
        "phone",
        "invoice_address",
        "invoice_address2",
        "invoice_zip",
        "invoice_city",
        "invoice_state",
        "invoice_countryid",
        "delivery_address",
        "delivery_address2",
        "delivery_zip",
        "delivery_city",
        "delivery_state",
        "delivery_countryid",
        "comment",
        "commentinternal",
        "customerref",
        "checkoutref",
        "orderdate",
        "orderstateid",
        "paymentstateid",
        "warehouseid",
        "datereserved",
        "currencycode",
        "reservedpayments",
    ]
)
EXTERNALID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
SKU_RE = re.compile(r"^[A-Za-z0-9_+\-/]+$")
MAX_TRANSACTION_BATCH = 1000
EVENT_BATCH = 10  # "an array which can contain up to 10 items"
RETRYABLE_EVENT_STATUSES = (429, 503, 504)

# VAT per product group (vatid); 2 is the default group on every system [C:CAT]; rates are Nordic.
VAT_RATES = {1: Decimal("0"), 2: Decimal("25"), 3: Decimal("12"), 4: Decimal("6")}

CENT = Decimal("0.01")
MILLI = Decimal("0.001")


# --------------------------------------------------------------------------------------------------
# data types


def money(value: Any) -> str:
    """Sitoo money: a string with two decimals."""
    return _quantized(value, CENT) if type(value) in _CACHEABLE else _quantize(value, CENT)


def dec3(value: Any) -> str:
    """Sitoo decimal: a string with three decimals."""
    return _quantized(value, MILLI) if type(value) in _CACHEABLE else _quantize(value, MILLI)


# Warehouse item fields as GET warehouseitems renders them (render_item), one function each.
_ITEM_VIEW: dict[str, Callable[[dict[str, Any]], Any]] = {
    "warehouseitemid": lambda it: it["warehouseitemid"],
    "warehouseid": lambda it: it["warehouseid"],
    "sku": lambda it: it["sku"],
    "binlocation": lambda it: it["binlocation"],
    "decimalthreshold": lambda it: dec3(it["decimalthreshold"]),
    "decimaltotal": lambda it: dec3(it["decimaltotal"]),
    "moneytotal": lambda it: money(it["moneytotal"]),
    "datelastmodified": lambda it: it["datelastmodified"],
    "datelaststocktaking": lambda it: it["datelaststocktaking"],
    "decimalreserved": lambda it: dec3(it["decimalreserved"]),
    "decimalavailable": lambda it: dec3(it["decimaltotal"] - it["decimalreserved"]),
}


def item_renderer(fields: Collection[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """render_item for a fields= read: only those fields are computed (only the page is rendered,
    but a --full stock read renders 1000-item pages 200 times)."""
    views = [(name, _ITEM_VIEW[name]) for name in fields if name in _ITEM_VIEW]
    return lambda it: {name: view(it) for name, view in views}


def _quantize(value: Any, exp: Decimal) -> str:
    return str(Decimal(str(value)).quantize(exp, rounding=ROUND_HALF_UP))


# A page of 1,000 warehouse items renders 5,000 amounts with few distinct values: each is formatted
# once. typed=True keeps 1, 1.0 and Decimal("1") apart (equal keys of one type format alike).
_CACHEABLE = {Decimal, int, str}
_quantized = lru_cache(maxsize=16384, typed=True)(_quantize)


def to_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ApiError(400, f"{what} must be a decimal value")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApiError(400, f"{what} is not a valid decimal: {value!r}") from None
    if not result.is_finite():
        raise ApiError(400, f"{what} is not a valid decimal: {value!r}")
    return result


class ApiError(Exception):
    """Answered as Sitoo's error body ``{"statuscode": N, "errortext": "..."}``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def error_body(status: int, text: str) -> bytes:
    return json.dumps({"statuscode": status, "errortext": text}).encode()


# --------------------------------------------------------------------------------------------------
# state


class SitooState:
    """One Sitoo account (id 90001) with one site/eshop (1), in memory.

    Every public method takes the one RLock, so the HTTP threads, the event sender and test code
    can share an instance. Stock quantities are kept as ``Decimal``; the read models handed out by
    the HTTP layer carry Sitoo's string formats.
    """

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], int] = clock or (lambda: int(time.time()))
        self.account_id = ACCOUNT_ID
        self.eshop_id = ESHOP_ID
        self.api_id = API_ID
        self.password = PASSWORD
        self.currencycode = "SEK"
        # The reference says reservation-only changes "may not" bump datelastmodified; default to
        # the harsher behaviour so the stock flow's full-scan safety net is exercised.
        self.reservation_bumps_modified = False
        # No public source confirms that Sitoo reserves stock for orders created through the API
        # (sitoo-api.md §5 "Reservations"): False switches reservations off, so a client can be
        # tested against a Sitoo that does not reserve.
        self.reserves_orders = True
        # Largest page a collection answers, whatever ``num`` asks (None = no cap). Sitoo documents
        # no maximum ``num`` (sitoo-api.md §2.2: "Max num undocumented"), so a page may hold fewer
        # items than asked while more follow: only ``totalcount`` says when the collection ends.
        self.max_num: int | None = None
        self.email_match = "exact"  # users' email filter: "exact" (the reference's assumption) | "casefold"

        self.stores: dict[int, dict[str, Any]] = {}
        self.warehouses: dict[int, dict[str, Any]] = {}
        self.registers: dict[str, dict[str, Any]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.deliveries: dict[int, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.orderlogitems: dict[int, list[dict[str, Any]]] = {}
        # (warehouseid, sku) -> item with Decimal decimaltotal / decimalreserved
        self._items: dict[tuple[int, str], dict[str, Any]] = {}
        # warehouseid -> its items in creation (= warehouseitemid) order; items are never removed
        self._items_by_warehouse: dict[int, list[dict[str, Any]]] = {}
        # orderid -> (warehouseid, {sku: reserved quantity}) currently held by that order
        self._reservations: dict[int, tuple[int, dict[str, Decimal]]] = {}
        # orderid -> {orderitemid: delivered quantity}
        self._delivered: dict[int, dict[int, int]] = {}
        # externalid -> orderid, kept in step by create_order / update_order (orders are never
        # deleted) so the uniqueness check does not scan every order; set externalid through them.
        self._order_by_externalid: dict[str, int] = {}
        self._seq: dict[str, int] = {}

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

    # ---- ids ------------------------------------------------------------------------------------

    def _next(self, name: str, start: int = 1) -> int:
        with self.lock:
            value = self._seq.get(name, start - 1) + 1
            self._seq[name] = value
            return value

    # ---- account structure ----------------------------------------------------------------------

    def add_store(self, name: str, externalid: str | None = None, **extra: Any) -> int:
        with self.lock:
            storeid = self._next("store")
            self.stores[storeid] = {
                "storeid": storeid,
                "eshopid": self.eshop_id,
                "storetype": 10,
                "name": name,
                "externalid": externalid,
                "externalgroupid": None,
                "phone": "",
                "email": "",
                "address": "",
                "address2": "",
                "zip": "",
                "city": "",
                "state": "",
                "countryid": "SE",
                "latitude": None,
                "longitude": None,
                "nearby_stores": [],
                "tags": [],
                **extra,
            }
            return storeid

    def add_warehouse(
        self,
        name: str,
        warehousetype: int = WAREHOUSE_FIFO,
        storeid: int | None = None,
        externalid: str | None = None,
        **extra: Any,
    ) -> int:
        with self.lock:
            if storeid is not None and storeid not in self.stores:
                raise KeyError(f"store {storeid} not found")
            warehouseid = self._next("warehouse")
            self.warehouses[warehouseid] = {
                "warehouseid": warehouseid,
                "warehousetype": warehousetype,
                "usetype": 10,
                "storeid": storeid,
                "sellable": True,
                "currencycode": self.currencycode,
                "name": name,
                "address": "",
                "address2": "",
                "zip": "",
                "city": "",
                "state": "",
                "countryid": "SE",
                "externalid": externalid,
                **extra,
            }
            return warehouseid

    def add_register(self, storeid: int, warehouseid: int, name: str) -> str:
        with self.lock:
            if storeid not in self.stores:
                raise KeyError(f"store {storeid} not found")
            if warehouseid not in self.warehouses:
                raise KeyError(f"warehouse {warehouseid} not found")
            number = self._next("register")
            registerid = "{" + str(uuid.uuid4()).upper() + "}"
            self.registers[registerid] = {
                "registerid": registerid,
                "manufacturerid": f"SANDBOX{number:04d}",
                "registerkey": f"SII{self.account_id:07d}{number:05d}",
                "company": self.stores[storeid]["name"],
                "companyid": "",
                "address": "",
                "address2": "",
                "zip": "",
                "city": "",
                "state": "",
                "countryid": "SE",
                "currencycode": self.currencycode,
                "receiptlanguagetag": "sv-SE",
                "storesettingid": storeid,
                "warehouseid": warehouseid,
                "salestaxgroupid": None,
                # Not in the read schema; kept for the scenario helpers (which store a sale is in).
                "_storeid": storeid,
                "_name": name,
            }
            return registerid

    # ---- products -------------------------------------------------------------------------------

    def add_product(
        self,
        sku: str,
        title: str,
        price: Any,
        vatid: int = 2,
        active: bool = True,
        activepos: bool = True,
        barcode: str | None = None,
        variantparentid: int | None = None,
        **extra: Any,
    ) -> int:
        with self.lock:
            if self.product_by_sku(sku) is not None:
                raise ValueError(f"sku {sku} already exists")
            productid = self._next("product")
            now = self.clock()
            product = {
                "productid": productid,
                "sku": sku,
                "skumanufacturer": "",
                "title": title,
                "descriptionshort": "",
                "description": "",
                "moneyprice": money(price),
                "moneypriceorg": "0.00",
                "moneypricein": "0.00",
                "moneyfinalprice": money(price),
                "vatid": vatid,
                "vatvalue": int(VAT_RATES.get(vatid, Decimal(25))),
                "productgrouptype": 0,
                "active": active,
                "activepos": activepos,
                "stockcountenable": True,
                "stockallowbackorder": False,
                "barcode": barcode or "",
                "barcodealiases": [],
                "allowdecimals": False,
                "unitlabel": "",
                "categories": [],
                "defaultcategoryid": None,
                "manufacturerid": None,
                "variantparentid": variantparentid,
                "variant": [],
                "custom1": "",
                "custom2": "",
                "custom3": "",
                "custom4": "",
                "custom5": "",
                "customattributes": {},
                "datecreated": now,
                "datemodified": now,
            }
            product.update(extra)
            if "moneyprice" in extra:
                product["moneyprice"] = product["moneyfinalprice"] = money(extra["moneyprice"])
            self.products[productid] = product
            return productid

    def product_by_sku(self, sku: str) -> dict[str, Any] | None:
        with self.lock:
            for product in self.products.values():
                if product["sku"] == sku:
                    return product
            return None

    # ---- stock ----------------------------------------------------------------------------------

    def _item(self, warehouseid: int, sku: str) -> dict[str, Any]:
        """The warehouse item, created on first touch (as Sitoo lists items once stock has moved)."""
        key = (warehouseid, sku)
        if key not in self._items:
            self._items[key] = {
                "warehouseitemid": self._next("warehouseitem"),
                "warehouseid": warehouseid,
                "sku": sku,
                "binlocation": "",
                "decimalthreshold": Decimal(0),
                "decimaltotal": Decimal(0),
                "decimalreserved": Decimal(0),
                "moneytotal": Decimal(0),
                "datelastmodified": None,
                "datelaststocktaking": None,
            }
            self._items_by_warehouse.setdefault(warehouseid, []).append(self._items[key])
        return self._items[key]

    def item(self, warehouseid: int, sku: str) -> dict[str, Any]:
        """Stock of one SKU: decimaltotal / decimalreserved / decimalavailable as ``Decimal``."""
        with self.lock:
            self.lapse_reservations()
            it = self._item(warehouseid, sku)
            return {
                "warehouseitemid": it["warehouseitemid"],
                "warehouseid": warehouseid,
                "sku": sku,
                "decimaltotal": it["decimaltotal"],
                "decimalreserved": it["decimalreserved"],
                "decimalavailable": it["decimaltotal"] - it["decimalreserved"],
                "datelastmodified": it["datelastmodified"],
            }

    def render_item(self, it: dict[str, Any]) -> dict[str, Any]:
        return {name: view(it) for name, view in _ITEM_VIEW.items()}

    def items_of(self, warehouseid: int) -> list[dict[str, Any]]:
        with self.lock:
            self.lapse_reservations()
            return list(self._items_by_warehouse.get(warehouseid, ()))

    def _warehouse(self, warehouseid: int) -> dict[str, Any]:
        if warehouseid not in self.warehouses:
            raise KeyError(f"warehouse {warehouseid} not found")
        return self.warehouses[warehouseid]

    def _transaction(
        self,
        warehouseid: int,
        transactiontype: int,
        lines: Sequence[tuple[str, Decimal]],
        description: str = "",
        orderdeliveryid: int | None = None,
        externalid: str | None = None,
        reasoncode: str | None = None,
        pricein: dict[str, Decimal] | None = None,
    ) -> int | None:
        """Apply stock deltas. FIFO warehouses record a transaction (and bump datelastmodified);
        Virtual warehouses have no transaction history, so the level just changes."""
        with self.lock:
            warehouse = self._warehouse(warehouseid)
            now = self.clock()
            rows = []
            for sku, delta in lines:
                it = self._item(warehouseid, sku)
                it["decimaltotal"] += delta
                it["datelastmodified"] = now
                if transactiontype == TT_STOCKTAKING:
                    it["datelaststocktaking"] = now
                price = (pricein or {}).get(sku, Decimal(0))
                rows.append(
                    {
                        "decimalquantity": dec3(delta),
                        "decimaltotal": dec3(it["decimaltotal"]),
                        "moneypricein": money(price),
                        "moneytotal": money(it["moneytotal"]),
                        "moneyvalue": money(price * delta),
                        "sku": sku,
                    }
                )
            if warehouse["warehousetype"] == WAREHOUSE_VIRTUAL:
                return None
            transactionid = self._next("warehousetransaction")
            self.transactions.append(
                {
                    "warehousetransactionid": transactionid,
                    "warehouseid": warehouseid,
                    "datecreated": now,
                    "transactiontype": transactiontype,
                    "description": description,
                    "orderdeliveryid": orderdeliveryid,
                    "shipmentid": None,
                    "externalid": externalid,
                    "reasoncode": reasoncode,
                    "items": rows,
                }
            )
            self._event(
                "warehouse-transaction",
                {
                    "eshop_id": self.eshop_id,
                    "warehouse_id": warehouseid,
                    "warehouse_transaction_id": transactionid,
                    "skus": [sku for sku, _ in lines],
                },
            )
            return transactionid

    def set_stock(self, warehouseid: int, sku: str, total: Any) -> None:
        """A hand edit in the back office: recorded like a stocktaking (type 50)."""
        with self.lock:
            delta = Decimal(str(total)) - self._item(warehouseid, sku)["decimaltotal"]
            self._transaction(warehouseid, TT_STOCKTAKING, [(sku, delta)], "Stocktaking has been completed!")

    def adjust_stock(
        self, warehouseid: int, sku: str, delta: Any, transactiontype: int | None = None
    ) -> None:
        """Move In (10) for a positive delta, Move Out (20) for a negative one, unless told."""
        delta = Decimal(str(delta))
        if transactiontype is None:
            transactiontype = TT_MOVE_IN if delta >= 0 else TT_MOVE_OUT
        description = {TT_MOVE_IN: "Move In", TT_MOVE_OUT: "Move Out"}.get(transactiontype, "")
        self._transaction(warehouseid, transactiontype, [(sku, delta)], description)

    def _reserve(self, warehouseid: int, sku: str, delta: Decimal) -> None:
        it = self._item(warehouseid, sku)
        it["decimalreserved"] += delta
        if self.reservation_bumps_modified:
            it["datelastmodified"] = self.clock()

    def _reserved_until(self, order: dict[str, Any]) -> int | None:
        value = order.get("datereserved")
        try:
            return None if value is None or isinstance(value, bool) else int(value)
        except (TypeError, ValueError):
            return None

    def lapse_reservations(self) -> None:
        """Release the reservations whose ``datereserved`` has passed: "the date that a warehouse
        stock reservation is valid until" (sitoo-api.md §5 "Reservations", best reading [I])."""
        with self.lock:
            now = self.clock()
            for orderid in list(self._reservations):
                until = self._reserved_until(self.orders[orderid])
                if until is None or until <= now:
                    self._sync_reservation(orderid)

    def _sync_reservation(self, orderid: int) -> None:
        """Make the stock an order holds match what it should hold now.

        An open order with ``warehouseid`` and a future ``datereserved`` reserves its undelivered
        product quantities in that warehouse [I, §5] until that date; anything else (closed,
        cancelled, no or a past datereserved, ``reserves_orders`` off) holds nothing. A PUT of a
        later ``datereserved`` reserves again (whether real Sitoo does is not documented). Diffing
        old vs wanted covers create, PUT, delivery, cancel and lapse alike.
        """
        order = self.orders[orderid]
        wanted: dict[str, Decimal] = {}
        wid = order.get("warehouseid")
        until = self._reserved_until(order)
        if self.reserves_orders and order["orderstateid"] == ORDER_OPEN and wid and until is not None and until > self.clock():
            delivered = self._delivered.get(orderid, {})
            for item in order["orderitems"]:
                sku, qty = item.get("sku"), item["quantity"]
                left = qty - delivered.get(item["orderitemid"], 0)
                if sku and left > 0:
                    wanted[sku] = wanted.get(sku, Decimal(0)) + Decimal(left)
        held_wid, held = self._reservations.pop(orderid, (0, {}))
        if held_wid == wid:
            for sku in set(held) | set(wanted):
                diff = wanted.get(sku, Decimal(0)) - held.get(sku, Decimal(0))
                if diff:
                    self._reserve(wid, sku, diff)
        else:
            for sku, qty in held.items():
                self._reserve(held_wid, sku, -qty)
            for sku, qty in wanted.items():
                self._reserve(wid, sku, qty)
        if wanted:
            self._reservations[orderid] = (wid, wanted)

    # ---- users ----------------------------------------------------------------------------------

    def email_matches(self, stored: Any, asked: str) -> bool:
        """The ``email`` filter and the "Must be unique" rule: exact or case-insensitive is unstated
        (sitoo-api.md §7, "assume exact"); ``email_match`` switches the sandbox between the two."""
        if self.email_match == "casefold":
            return str(stored or "").strip().casefold() == str(asked or "").strip().casefold()
        return stored == asked

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            for user in self.users.values():
                if self.email_matches(user["email"], email):
                    return user
            return None

    def add_user(self, email: str, namefirst: str = "", namelast: str = "", **extra: Any) -> str:
        with self.lock:
            if not email:
                raise ValueError("email is required")
            if self.user_by_email(email) is not None:
                raise ValueError(f"A user with email {email} already exists")
            userid = "{" + str(uuid.uuid4()).upper() + "}"
            now = self.clock()
            user = {
                "userid": userid,
                "email": email,
                "namefirst": namefirst,
                "namelast": namelast,
                "personalid": "",
                "externalid": None,
                "company": "",
                "department": "",
                "companyid": "",
                "address": "",
                "address2": "",
                "zip": "",
                "city": "",
                "state": "",
                "countryid": "",
                "phone": "",
                "mobile": "",
                "notes": "",
                "customernumber": "",
                "pricelistid": None,
                "role": None,
                "datecreated": now,
                "datemodified": now,
            }
            user.update(
                {k: v for k, v in extra.items() if k not in ("userid", "datecreated", "datemodified", "pin")}
            )
            self.users[userid] = user
            return userid

    def update_user(self, userid: str, changes: dict[str, Any]) -> None:
        with self.lock:
            user = self.users.get(userid)
            if user is None:
                raise ApiError(404, f"User {userid} not found")
            email = changes.get("email")
            if email is not None and email != user["email"]:
                other = self.user_by_email(email)
                if other is not None:
                    raise ApiError(400, f"A user with email {email} already exists")
            for key, value in changes.items():
                if key in ("userid", "datecreated", "datemodified", "pin"):
                    continue
                user[key] = value
            user["datemodified"] = self.clock()

    # ---- orders ---------------------------------------------------------------------------------

    def _build_item(self, index: int, raw: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ApiError(400, f"orderitems[{index}] must be an object")
        if not raw.get("productname"):
            raise ApiError(400, f"orderitems[{index}]: productname is required")
        qty = raw.get("quantity")
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise ApiError(400, f"orderitems[{index}]: quantity is required and must be an integer")
        sku = raw.get("sku")
        productid = None
        if sku:
            product = self.product_by_sku(sku)
            if product is None:
                raise ApiError(400, f"orderitems[{index}]: Product with sku '{sku}' not found")
            productid = product["productid"]
            default_vat = product["vatvalue"]
        else:
            default_vat = 25
        vat = to_decimal(raw.get("vatvalue", default_vat), f"orderitems[{index}].vatvalue")
        rowprice = to_decimal(raw.get("moneyrowprice", "0"), f"orderitems[{index}].moneyrowprice")
        rowdiscount = to_decimal(raw.get("moneyrowdiscount", "0"), f"orderitems[{index}].moneyrowdiscount")
        additional = raw.get("additionaldata") or {}
        _check_additionaldata(additional, f"orderitems[{index}].additionaldata")
        # moneyrowprice is the gross row total before discount, moneyrowdiscount a gross amount
        # (the reference derives this from the official example arithmetic, §6).
        divisor = 1 + vat / 100
        gross = rowprice - rowdiscount
        net = (gross / divisor).quantize(CENT, rounding=ROUND_HALF_UP)
        net_before = (rowprice / divisor).quantize(CENT, rounding=ROUND_HALF_UP)
        per = Decimal(abs(qty)) if qty else Decimal(1)
        item = {
            "orderitemid": index,
            "orderitemtype": raw.get("orderitemtype", 10),
            "productid": productid,
            "productname": raw["productname"],
            "sku": sku,
            "productattributes": raw.get("productattributes", ""),
            "externalinput": raw.get("externalinput", ""),
            "externalinputtitle": raw.get("externalinputtitle", ""),
            "unitlabel": raw.get("unitlabel", ""),
            "quantity": qty,
            "decimalunitquantity": raw.get("decimalunitquantity"),
            "moneynetpriceperunit": money(abs(net) / per),
            "moneypriceorg": money(raw.get("moneypriceorg", "0")),
            "vatvalue": int(vat) if vat == vat.to_integral_value() else float(vat),
            "deliveryinfo": raw.get("deliveryinfo", ""),
            "moneyitemtotal_net": money(net),
            "moneyitemtotal_vat": money(gross - net),
            "voucherid": 0,
            "vouchercode": raw.get("vouchercode", ""),
            "vouchername": raw.get("vouchername", ""),
            "moneyoriginalprice": money(abs(net_before) / per),
            "moneydiscountedprice": money(abs(net) / per) if rowdiscount else "0.00",
            "moneydiscount": money(abs(net_before - net) / per),
            "salestaxes": raw.get("salestaxes", []),
            "additionaldata": dict(additional),
            "decimalquantitytotal": dec3(qty),
            "moneynetpriceperquantity": money(abs(net) / per),
        }
        if rowdiscount:
            item["additionaldata"].setdefault("orderitem-moneyrowdiscount", money(rowdiscount))
        return item

    @staticmethod
    def _totals(order: dict[str, Any]) -> None:
        net = sum((Decimal(i["moneyitemtotal_net"]) for i in order["orderitems"]), Decimal(0))
        vat = sum((Decimal(i["moneyitemtotal_vat"]) for i in order["orderitems"]), Decimal(0))
        delivery_net = Decimal(order.get("moneydelivery_net", "0"))
        delivery_vat = Decimal(order.get("moneydelivery_vat", "0"))
        order["moneytotal_net"] = money(net)
        order["moneytotal_vat"] = money(vat)
        order["moneycheckout_net"] = order.get("moneycheckout_net", "0.00")
        order["moneycheckout_vat"] = order.get("moneycheckout_vat", "0.00")
        order["moneytotal_gross_checkout"] = "0.00"
        order["moneydelivery_net"] = money(delivery_net)
        order["moneydelivery_vat"] = money(delivery_vat)
        order["moneytotal_gross_delivery"] = money(delivery_net + delivery_vat)
        # moneyfinal_net = total_net + checkout_net + delivery_net (§9)
        order["moneyfinal_net"] = money(net + delivery_net)
        order["moneyfinal_vat"] = money(vat + delivery_vat)
        order["moneyfinal_salestax"] = "0.00"
        order["moneytotal_gross_roundoff"] = "0.00"
        order["moneytotal_gross_all"] = money(net + vat + delivery_net + delivery_vat)

    @staticmethod
    def _payment(raw: Any, index: int) -> dict[str, Any]:
        if not isinstance(raw, dict) or "name" not in raw:
            raise ApiError(400, f"payments[{index}]: name and moneyamount are required")
        additional = raw.get("additionaldata") or {}
        _check_additionaldata(additional, f"payments[{index}].additionaldata")
        return {
            "name": raw["name"],
            "moneyamount": money(to_decimal(raw.get("moneyamount", "0"), f"payments[{index}].moneyamount")),
            "externalid": raw.get("externalid"),
            "reftype": raw.get("reftype"),
            "refid": raw.get("refid"),
            "cardissuer": raw.get("cardissuer"),
            "additionaldata": dict(additional),
            "reservedpaymentid": raw.get("reservedpaymentid"),
        }

    def create_order(self, body: Any, registerid: str | None = None, emit: bool = True) -> int:
        """``POST /sites/{siteid}/orders.json``: validate the order-write body, store, reserve."""
        if not isinstance(body, dict):
            raise ApiError(400, "The order must be a JSON object")
        with self.lock:
            if "ordertypeid" not in body:
                raise ApiError(400, "ordertypeid is required")
            externalid = body.get("externalid")
            if externalid is not None:
                if not isinstance(externalid, str) or not EXTERNALID_RE.match(externalid):
                    raise ApiError(
                        400, "externalid can only contain [A-Za-z0-9_-] with a length of 1-40 characters"
                    )
                if self.order_by_externalid(externalid) is not None:
                    raise ApiError(400, f"An order with externalid '{externalid}' already exists")
            creditorderid = body.get("creditorderid")
            if creditorderid is not None and creditorderid not in self.orders:
                raise ApiError(400, f"creditorderid {creditorderid} not found")
            warehouseid = body.get("warehouseid")
            if warehouseid is not None and warehouseid not in self.warehouses:
                raise ApiError(400, f"Warehouse {warehouseid} not found")
            raw_items = body.get("orderitems") or []
            if not isinstance(raw_items, list):
                raise ApiError(400, "orderitems must be an array")
            items = [self._build_item(i, raw) for i, raw in enumerate(raw_items)]
            payments = [self._payment(p, i) for i, p in enumerate(body.get("payments") or [])]
            additional = body.get("additionaldata") or {}
            _check_additionaldata(additional, "additionaldata")
            orderid = self._next("order", start=10001)
            order: dict[str, Any] = {
                "orderid": orderid,
                "eshopid": self.eshop_id,
                "externalid": externalid,
                "creditorderid": creditorderid,
                "checkouttypeid": 0,
                "deliverytypeid": 0,
            }
            for key in [
                "email",
                "namefirst",
                "namelast",
                "personalid",
                "company",
                "phone",
                "invoice_address",
                "invoice_address2",
                "invoice_zip",
                "invoice_city",
                "invoice_state",
                "invoice_countryid",
                "delivery_address",
                "delivery_address2",
                "delivery_zip",
                "delivery_city",
                "delivery_state",
                "delivery_countryid",
                "comment",
                "commentinternal",
                "customerref",
                "checkoutref",
            ]:
                order[key] = body.get(key) or ""
            order.update(
                {
                    "checkouttypename": body.get("checkouttypename", ""),
                    "checkoutmethodid": 0,
                    "checkoutmethodsubid": 0,
                    "deliverytypename": body.get("deliverytypename", ""),
                    "orderdate": body.get("orderdate") or self.clock(),
                    "orderstateid": body.get("orderstateid", ORDER_OPEN),
                    "paymentstateid": body.get("paymentstateid", 0),
                    "ordertypeid": body["ordertypeid"],
                    "userid_staff": None,
                    "registerid": registerid,
                    "warehouseid": warehouseid,
                    "datereserved": body.get("datereserved"),
                    "currencycode": body.get("currencycode") or self.currencycode,
                    "additionaldata": dict(additional),
                    "orderitems": items,
                    "payments": payments,
                    "reservedpayments": body.get("reservedpayments") or [],
                }
            )
            if order["orderstateid"] not in ORDER_STATE_NAMES and order["orderstateid"] != -1:
                raise ApiError(400, f"Invalid orderstateid {order['orderstateid']}")
            self._totals(order)
            self.orders[orderid] = order
            if externalid is not None:
                self._order_by_externalid[externalid] = orderid
            self._delivered[orderid] = {}
            self.orderlogitems[orderid] = [
                {
                    "datelog": self.clock(),
                    "orderid": orderid,
                    "orderlogtypeid": 0,
                    "strvalue": None,
                    "fvalue": None,
                }
            ]
            self._sync_reservation(orderid)
            if emit:
                self._order_event(order, "add")
            return orderid

    def update_order(self, orderid: int, body: Any) -> None:
        """``PUT /sites/{siteid}/orders/{id}.json``: partial update; state changes release stock."""
        if not isinstance(body, dict):
            raise ApiError(400, "The order must be a JSON object")
        with self.lock:
            order = self.orders.get(orderid)
            if order is None:
                raise ApiError(404, f"Order {orderid} not found")
            old_state, old_externalid = order["orderstateid"], order["externalid"]
            if "externalid" in body and body["externalid"] != order["externalid"]:
                ext = body["externalid"]
                if ext is not None and (not isinstance(ext, str) or not EXTERNALID_RE.match(ext)):
                    raise ApiError(
                        400, "externalid can only contain [A-Za-z0-9_-] with a length of 1-40 characters"
                    )
                if ext is not None and self.order_by_externalid(ext) is not None:
                    raise ApiError(400, f"An order with externalid '{ext}' already exists")
            if (
                "warehouseid" in body
                and body["warehouseid"] is not None
                and body["warehouseid"] not in self.warehouses
            ):
                raise ApiError(400, f"Warehouse {body['warehouseid']} not found")
            if "orderstateid" in body and body["orderstateid"] not in (*ORDER_STATE_NAMES, -1):
                raise ApiError(400, f"Invalid orderstateid {body['orderstateid']}")
            if "orderitems" in body:
                if not isinstance(body["orderitems"], list):
                    raise ApiError(400, "orderitems must be an array")
                if self._delivered.get(orderid):
                    raise ApiError(400, "Order items cannot be changed after a delivery")
                order["orderitems"] = [
                    self._build_item(i, raw) for i, raw in enumerate(body["orderitems"] or [])
                ]
            if "payments" in body:
                order["payments"] = [self._payment(p, i) for i, p in enumerate(body["payments"] or [])]
            if "additionaldata" in body:
                _check_additionaldata(body["additionaldata"] or {}, "additionaldata")
                order["additionaldata"] = dict(body["additionaldata"] or {})
            for key, value in body.items():
                if key in ORDER_WRITABLE_SCALARS:  # read-only and unknown keys are ignored
                    order[key] = value
            if order["externalid"] != old_externalid:
                if self._order_by_externalid.get(old_externalid) == orderid:
                    del self._order_by_externalid[old_externalid]
                if order["externalid"] is not None:
                    self._order_by_externalid[order["externalid"]] = orderid
            self._totals(order)
            self._sync_reservation(orderid)
            new_state = order["orderstateid"]
            self._order_event(order, "update", state_changed=new_state != old_state)

    def order_by_externalid(self, externalid: str) -> dict[str, Any] | None:
        """The order carrying ``externalid`` (unique per account, sitoo-api.md §6), from the index."""
        with self.lock:
            orderid = self._order_by_externalid.get(externalid)
            order = None if orderid is None else self.orders.get(orderid)
            # A stale entry (a test or seed rewrote an order's externalid by hand) is no match.
            return order if order is not None and order["externalid"] == externalid else None

    def cancel_order(self, orderid: int) -> None:
        """Sitoo has no DELETE for orders: "set orderstate to cancelled instead"."""
        self.update_order(orderid, {"orderstateid": ORDER_CANCELLED})

    def _order_event(self, order: dict[str, Any], kind: str, state_changed: bool = False) -> None:
        data: dict[str, Any] = {
            "eshop_id": self.eshop_id,
            "order_id": order["orderid"],
            "warehouse_id": order.get("warehouseid"),
            "order_event_type": kind,
        }
        if state_changed and order["orderstateid"] in ORDER_STATE_NAMES:
            data["order_state_changed"] = ORDER_STATE_NAMES[order["orderstateid"]]
        self._event("order", data)

    def add_delivery(self, orderid: int, body: Any, ignorestock: bool = False) -> int:
        """``POST …/orders/{id}/orderdeliveries.json``: deduct stock (type 30), release the reservation."""
        if not isinstance(body, dict):
            raise ApiError(400, "The orderdelivery must be a JSON object")
        with self.lock:
            order = self.orders.get(orderid)
            if order is None:
                raise ApiError(404, f"Order {orderid} not found")
            if order["orderstateid"] == ORDER_CANCELLED:
                raise ApiError(400, f"Order {orderid} is cancelled")
            warehouseid = body.get("warehouseid")
            if warehouseid is None:
                raise ApiError(400, "warehouseid is required")
            if warehouseid not in self.warehouses:
                raise ApiError(400, f"Warehouse {warehouseid} not found")
            raw_items = body.get("orderdeliveryitems")
            if not isinstance(raw_items, list) or not raw_items:
                raise ApiError(400, "orderdeliveryitems is required")
            by_id = {i["orderitemid"]: i for i in order["orderitems"]}
            delivered = self._delivered.setdefault(orderid, {})
            wanted: dict[int, int] = {}
            for n, raw in enumerate(raw_items):
                if not isinstance(raw, dict) or "orderitemid" not in raw or "quantity" not in raw:
                    raise ApiError(400, f"orderdeliveryitems[{n}]: orderitemid and quantity are required")
                oid, qty = raw["orderitemid"], raw["quantity"]
                if oid not in by_id:
                    raise ApiError(
                        400, f"orderdeliveryitems[{n}]: orderitemid {oid} not found in order {orderid}"
                    )
                if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
                    raise ApiError(400, f"orderdeliveryitems[{n}]: quantity must be a non-zero integer")
                wanted[oid] = wanted.get(oid, 0) + qty
            for oid, qty in wanted.items():
                ordered = by_id[oid]["quantity"]
                if abs(delivered.get(oid, 0) + qty) > abs(ordered) or (qty > 0) != (ordered > 0):
                    raise ApiError(
                        400,
                        f"orderitemid {oid}: cannot deliver {qty}, ordered {ordered}, delivered {delivered.get(oid, 0)}",
                    )
            deliveryid = self._next("orderdelivery")
            now = self.clock()
            delivery = {
                "orderdeliveryid": deliveryid,
                "orderid": orderid,
                "warehouseid": warehouseid,
                "orderdeliveryref": body.get("orderdeliveryref") or "",
                "datedelivery": now,
                "datecancelled": None,
                "pluginname": body.get("pluginname") or "",
                "orderdeliveryitems": [
                    {
                        "orderdeliveryitemid": self._next("orderdeliveryitem"),
                        "orderdeliveryid": deliveryid,
                        "orderitemid": oid,
                        "quantity": qty,
                    }
                    for oid, qty in wanted.items()
                ],
            }
            self.deliveries[deliveryid] = delivery
            for oid, qty in wanted.items():
                delivered[oid] = delivered.get(oid, 0) + qty
            ignore = ignorestock or order["additionaldata"].get("delivery-ignore-stock") == "true"
            lines: dict[str, Decimal] = {}
            for oid, qty in wanted.items():
                sku = by_id[oid].get("sku")
                if sku:
                    lines[sku] = lines.get(sku, Decimal(0)) - Decimal(qty)
            self._event(
                "order-delivery",
                {
                    "eshop_id": self.eshop_id,
                    "order_id": orderid,
                    "order_delivery_id": deliveryid,
                    "warehouse_id": warehouseid,
                    "order_delivery_event_type": "add",
                    "order_delivery_state_changed": "delivered",
                },
            )
            if lines and not ignore:
                # Sales deduct (type 30), returns (negative order lines) put back (type 40).
                ttype = TT_REFUND if all(d > 0 for d in lines.values()) else TT_SALES
                self._transaction(warehouseid, ttype, list(lines.items()), "", orderdeliveryid=deliveryid)
            fully = all(
                abs(delivered.get(i["orderitemid"], 0)) >= abs(i["quantity"])
                for i in order["orderitems"]
                if i.get("sku")
            )
            if fully and order["orderstateid"] == ORDER_OPEN:
                order["orderstateid"] = ORDER_CLOSED
                self._order_event(order, "update", state_changed=True)
            self._sync_reservation(orderid)
            return deliveryid

    def deliver(
        self,
        orderid: int,
        items: Iterable[tuple[int, int]] | None = None,
        ref: str | None = None,
        warehouseid: int | None = None,
    ) -> int:
        """Staff deliver (ship / hand over) an order; ``items=None`` delivers everything left."""
        with self.lock:
            order = self.orders[orderid]
            delivered = self._delivered.get(orderid, {})
            if items is None:
                items = [
                    (i["orderitemid"], i["quantity"] - delivered.get(i["orderitemid"], 0))
                    for i in order["orderitems"]
                    if i["quantity"] - delivered.get(i["orderitemid"], 0)
                ]
            wid = warehouseid or order.get("warehouseid")
            if wid is None:
                raise ValueError(f"order {orderid} has no warehouseid; pass warehouseid")
            body = {
                "warehouseid": wid,
                "orderdeliveryref": ref or "",
                "orderdeliveryitems": [{"orderitemid": oid, "quantity": qty} for oid, qty in items],
            }
            return self.add_delivery(orderid, body)

    def cancel_delivery(self, deliveryid: int) -> None:
        """Staff cancel a delivery in Sitoo (back office). The read model then carries
        ``datecancelled`` and an ``order-delivery`` event says ``cancelled`` (sitoo-api.md §6, §10).
        How a cancelled delivery moves stock is undocumented: the sandbox leaves stock as it is
        and frees the quantities for a new delivery."""
        with self.lock:
            delivery = self.deliveries[deliveryid]
            if delivery["datecancelled"] is not None:
                return
            delivery["datecancelled"] = self.clock()
            delivered = self._delivered.setdefault(delivery["orderid"], {})
            for item in delivery["orderdeliveryitems"]:
                delivered[item["orderitemid"]] = delivered.get(item["orderitemid"], 0) - item["quantity"]
            self.delivery_state_event(deliveryid, "cancelled")

    def delivery_state_event(self, deliveryid: int | None, state: str, orderid: int | None = None) -> None:
        """An ``order-delivery`` event for a delivery state change (§10: ``new | ready-to-ship |
        in-transit | arrived | ready-for-pickup | delivered | cancelled``). States before dispatch exist
        in events only: the REST read model has no state field (§6)."""
        with self.lock:
            delivery = self.deliveries.get(deliveryid) if deliveryid is not None else None
            order_id = delivery["orderid"] if delivery else orderid
            self._event(
                "order-delivery",
                {
                    "eshop_id": self.eshop_id,
                    "order_id": order_id,
                    "order_delivery_id": deliveryid if deliveryid is not None else self._next("orderdelivery"),
                    "warehouse_id": delivery["warehouseid"] if delivery else self.orders[order_id].get("warehouseid"),
                    "order_delivery_event_type": "update" if delivery else "add",
                    "order_delivery_state_changed": state,
                },
            )

    def _register(self, registerid: str) -> dict[str, Any]:
        if registerid not in self.registers:
            raise KeyError(f"register {registerid} not found")
        return self.registers[registerid]

    def _pos_additionaldata(self, register: dict[str, Any]) -> dict[str, str]:
        store = self.stores[register["_storeid"]]
        receipt = self._next("receipt", start=10001)
        return {
            "store-externalid": store["externalid"] or "",
            "store-name": store["name"],
            "pos-receiptid": f"{register['registerkey']}{receipt}",
            "pos-timezone": "Europe/Stockholm",
        }

    def pos_sale(
        self,
        registerid: str,
        lines: Iterable[Any],
        payment: str = "Card",
        email: str | None = None,
        orderdate: int | None = None,
    ) -> int:
        """A sale at the till: a closed, paid order with ``registerid`` whose delivery deducts stock
        (type 30) from the register's warehouse. Stock may go negative: the till sells what it has."""
        with self.lock:
            register = self._register(registerid)
            items = []
            for line in lines:
                sku, qty, unit = _line(line)
                product = self.product_by_sku(sku)
                if product is None:
                    raise KeyError(f"sku {sku} not found")
                price = Decimal(str(unit)) if unit is not None else Decimal(product["moneyprice"])
                items.append(
                    {
                        "productname": product["title"],
                        "sku": sku,
                        "quantity": qty,
                        "moneyrowprice": money(price * qty),
                        "vatvalue": product["vatvalue"],
                    }
                )
            body = {
                "ordertypeid": 10,
                "orderstateid": ORDER_OPEN,
                "paymentstateid": PAYMENT_SUCCESSFUL,
                "email": email or "",
                "orderdate": orderdate,
                "warehouseid": register["warehouseid"],
                "checkouttypename": f"Sitoo POS - {payment}",
                "orderitems": items,
                "additionaldata": self._pos_additionaldata(register),
            }
            orderid = self.create_order(body, registerid=registerid)
            order = self.orders[orderid]
            order["payments"] = [
                self._payment({"name": payment, "moneyamount": order["moneytotal_gross_all"]}, 0)
            ]
            self.deliver(orderid, warehouseid=register["warehouseid"])
            return orderid

    def store_return(
        self,
        original_orderid: int,
        lines: Iterable[Any],
        registerid: str | None = None,
        payment: str = "Card",
    ) -> int:
        """A validated return at the till: a refund order with negative lines pointing at the
        original sale (``creditorderid``, ``pos-originalsales-*``); stock goes back (type 40)."""
        with self.lock:
            original = self.orders[original_orderid]
            if registerid is None:
                registerid = original.get("registerid") or next(
                    (
                        r
                        for r, reg in self.registers.items()
                        if reg["warehouseid"] == original.get("warehouseid")
                    ),
                    next(iter(self.registers), None),
                )
            if registerid is None:
                raise ValueError("no register to take the return")
            register = self._register(registerid)
            returned = self._returned_quantities(original_orderid)
            items = []
            for line in lines:
                if isinstance(line, dict) and "orderitemid" in line:
                    src = original["orderitems"][line["orderitemid"]]
                    qty = int(line.get("quantity", 1))
                else:
                    sku, qty, _ = _line(line)
                    src = next(
                        (
                            i
                            for i in original["orderitems"]
                            if i.get("sku") == sku and i["quantity"] - returned.get(i["orderitemid"], 0) > 0
                        ),
                        None,
                    )
                    if src is None:
                        raise ValueError(f"sku {sku} not returnable on order {original_orderid}")
                left = src["quantity"] - returned.get(src["orderitemid"], 0)
                if qty <= 0 or qty > left:
                    raise ValueError(
                        f"cannot return {qty} of orderitem {src['orderitemid']}; {left} returnable"
                    )
                returned[src["orderitemid"]] = returned.get(src["orderitemid"], 0) + qty
                # "prices will reflect the prices on the receipt": per-unit gross of the original line
                unit_gross = (Decimal(src["moneyitemtotal_net"]) + Decimal(src["moneyitemtotal_vat"])) / src[
                    "quantity"
                ]
                items.append(
                    {
                        "productname": src["productname"],
                        "sku": src["sku"],
                        "quantity": -qty,
                        "moneyrowprice": money(-unit_gross * qty),
                        "vatvalue": src["vatvalue"],
                        "additionaldata": {"pos-originalsales-orderitemid": str(src["orderitemid"])},
                    }
                )
            additional = self._pos_additionaldata(register)
            additional["pos-originalsales-orderid"] = str(original_orderid)
            body = {
                "ordertypeid": 10,
                "orderstateid": ORDER_OPEN,
                "paymentstateid": PAYMENT_SUCCESSFUL,
                "creditorderid": original_orderid,
                "email": original.get("email") or "",
                "warehouseid": register["warehouseid"],
                "checkouttypename": f"Sitoo POS - {payment}",
                "orderitems": items,
                "additionaldata": additional,
            }
            orderid = self.create_order(body, registerid=registerid)
            order = self.orders[orderid]
            order["payments"] = [
                self._payment({"name": payment, "moneyamount": order["moneytotal_gross_all"]}, 0)
            ]
            self.deliver(orderid, warehouseid=register["warehouseid"])
            return orderid

    def _returned_quantities(self, original_orderid: int) -> dict[int, int]:
        returned: dict[int, int] = {}
        for order in self.orders.values():
            if order.get("creditorderid") != original_orderid:
                continue
            for item in order["orderitems"]:
                src = item["additionaldata"].get("pos-originalsales-orderitemid")
                if src is not None:
                    returned[int(src)] = returned.get(int(src), 0) - item["quantity"]
        return returned

    def add_orderlogitem(self, orderid: int, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "The orderlogitem must be a JSON object")
        with self.lock:
            order = self.orders.get(orderid)
            if order is None:
                raise ApiError(404, f"Order {orderid} not found")
            kind = body.get("orderlogtypeid")
            # "All types are read only except for 900 (ReadyForPickup) and 910 (PickupRejected)"
            if kind not in (900, 910):
                raise ApiError(400, f"orderlogtypeid {kind} is read only; only 900 and 910 can be added")
            self.orderlogitems.setdefault(orderid, []).append(
                {
                    "datelog": self.clock(),
                    "orderid": orderid,
                    "orderlogtypeid": kind,
                    "strvalue": body.get("strvalue"),
                    "fvalue": body.get("fvalue"),
                }
            )
            self._order_event(order, "ready-for-pickup" if kind == 900 else "pickup-rejected")

    def render_order(self, orderid: int) -> dict[str, Any]:
        with self.lock:
            order = copy.deepcopy(self.orders[orderid])
            order["orderlogitems"] = copy.deepcopy(self.orderlogitems.get(orderid, []))
            return order

    # ---- events ---------------------------------------------------------------------------------

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

    # ---- introspection --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready (for ``GET /_sandbox/state`` and debugging)."""
        with self.lock:
            return {
                "account_id": self.account_id,
                "eshop_id": self.eshop_id,
                "stores": list(self.stores.values()),
                "warehouses": list(self.warehouses.values()),
                "registers": [
                    {k: v for k, v in r.items() if not k.startswith("_")} for r in self.registers.values()
                ],
                "products": list(self.products.values()),
                "users": list(self.users.values()),
                "warehouseitems": [
                    self.render_item(it)
                    for it in sorted(self._items.values(), key=lambda i: i["warehouseitemid"])
                ],
                "orders": [self.render_order(oid) for oid in sorted(self.orders)],
                "deliveries": list(self.deliveries.values()),
                "transactions": self.transactions,
                "events_sent": len(self.events_sent),
                "events_dropped": len(self.events_dropped),
                "events_queued": len(self._event_queue),
            }


def _line(line: Any) -> tuple[str, int, Any]:
    """A scenario line: ``(sku, qty)``, ``(sku, qty, unit_price)`` or ``{"sku","quantity","price"}``."""
    if isinstance(line, dict):
        return line["sku"], int(line.get("quantity", line.get("qty", 1))), line.get("price")
    sku, qty, *rest = line
    return sku, int(qty), rest[0] if rest else None


def _check_additionaldata(data: Any, what: str) -> None:
    # "any other properties are allowed as long as their values are of type string"
    if not isinstance(data, dict):
        raise ApiError(400, f"{what} must be an object")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ApiError(400, f"{what}.{key} must be a string")


# --------------------------------------------------------------------------------------------------
# HTTP layer


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _body() -> Any:
    raw = request.get_data()
    if not raw:
        raise ApiError(400, "A JSON request body is required")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Invalid JSON in request body") from None


def _int_arg(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def _multi(name: str) -> list[str] | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _multi_int(name: str) -> list[int] | None:
    values = _multi(name)
    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ApiError(400, f"{name} must be a comma-separated list of integers") from None


def _in_range(value: Any, low: int | None, high: int | None) -> bool:
    """``*from`` is inclusive, ``*to`` exclusive: the reference documents this for
    warehousetransactionidfrom/to ("from ≥, to <"); the emulator applies it to every range filter."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


def _project(rows: list[dict[str, Any]], default: Sequence[str] | None = None) -> list[dict[str, Any]]:
    fields = _multi("fields") or (list(default) if default else None)
    if not fields:
        return rows
    return [{f: row[f] for f in fields if f in row} for row in rows]


def _collection(
    rows: list[dict[str, Any]],
    default_fields: Sequence[str] | None = None,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """One page of ``rows``; ``render`` (if given) turns the rows of that page into read models."""
    start = _int_arg("start", 0) or 0
    num = _int_arg("num", 10)
    if start < 0 or num is None or num < 0:
        raise ApiError(400, "start and num must be non-negative integers")
    cap = current_app.extensions["sitoo_state"].max_num
    if cap is not None:
        num = min(num, cap)
    page = rows[start : start + num]
    # Rendered rows are fresh objects already; stored rows are copied so the answer never aliases state.
    page = [render(row) for row in page] if render is not None else copy.deepcopy(page)
    return _json({"totalcount": len(rows), "items": _project(page, default_fields)})


def _single(row: dict[str, Any]) -> Response:
    return _json(_project([copy.deepcopy(row)])[0])


def _sort(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    sort = request.args.get("sort") or f"-{key}"
    if sort not in (key, f"-{key}"):
        raise ApiError(400, f"sort must be {key} or -{key}")
    return sorted(rows, key=lambda r: r[key], reverse=sort.startswith("-"))


def _batch(items: Any, handle: Callable[[Any], Any]) -> Response:
    """Array in, batch envelope out: one ``{"statuscode","return"|"errortext"}`` per item, in order."""
    results = []
    for item in items:
        try:
            results.append({"statuscode": 200, "return": handle(item)})
        except ApiError as exc:
            results.append({"statuscode": exc.status, "errortext": exc.text})
    return _json(results)


def create_app(state: SitooState, control: Control) -> ControlledApp:
    app = Flask("magsit.sandbox.sitoo")
    app.extensions["sitoo_state"] = state  # read by the module-level collection helper
    base = "/v2/accounts/<int:accountid>"
    site = base + "/sites/<int:siteid>"

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return Response(error_body(exc.status, exc.text), status=exc.status, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        text = {404: "Resource not found. The url is invalid."}.get(status, exc.description or exc.name)
        return Response(error_body(status, text), status=status, mimetype="application/json")

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        log.exception("sitoo sandbox crashed")
        return Response(
            error_body(500, f"Internal Server Error. {exc!r}"), status=500, mimetype="application/json"
        )

    @app.before_request
    def _auth() -> None:
        if not request.path.startswith("/v2/"):
            return
        header = request.headers.get("Authorization", "")
        ok = False
        if header.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                ok = user == state.api_id and pw == state.password
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            raise ApiError(401, "Unauthorized. Authorization failed.")
        args = request.view_args or {}
        if args.get("accountid", state.account_id) != state.account_id:
            raise ApiError(404, "Resource not found. The url is invalid.")
        if args.get("siteid", state.eshop_id) != state.eshop_id:
            raise ApiError(404, f"Site {args.get('siteid')} not found")

    # ---- account level ------------------------------------------------------------------------

    @app.get(base + "/sites.json")
    def sites(accountid: int) -> Response:
        row = {
            "siteid": SITE_GUID,
            "protocol": "https",
            "server": "sandbox.mysitoo.com",
            "abspath": "/",
            "siteurl": "https://sandbox.mysitoo.com/",
            "eshopid": state.eshop_id,
        }
        return _collection([row])

    @app.get(site + ".json")
    def site_one(accountid: int, siteid: int) -> Response:
        return _single(
            {"siteid": SITE_GUID, "protocol": "https", "server": "sandbox.mysitoo.com", "abspath": "/",
             "siteurl": "https://sandbox.mysitoo.com/", "eshopid": state.eshop_id}
        )  # fmt: skip

    @app.get(site + "/stores.json")
    def stores(accountid: int, siteid: int) -> Response:
        with state.lock:
            return _collection([state.stores[k] for k in sorted(state.stores)])

    @app.get(site + "/stores/<int:storeid>.json")
    def store_one(accountid: int, siteid: int, storeid: int) -> Response:
        with state.lock:
            if storeid not in state.stores:
                raise ApiError(404, f"Store {storeid} not found")
            return _single(state.stores[storeid])

    @app.get(site + "/cashregisters.json")
    def registers(accountid: int, siteid: int) -> Response:
        with state.lock:
            rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in state.registers.values()]
            return _collection(rows)

    @app.get(site + "/cashregisters/<registerid>.json")
    def register_one(accountid: int, siteid: int, registerid: str) -> Response:
        with state.lock:
            if registerid not in state.registers:
                raise ApiError(404, f"Cash register {registerid} not found")
            return _single({k: v for k, v in state.registers[registerid].items() if not k.startswith("_")})

    # ---- warehouses ---------------------------------------------------------------------------

    def _wh(warehouseid: int) -> dict[str, Any]:
        if warehouseid not in state.warehouses:
            raise ApiError(404, f"Warehouse {warehouseid} not found")
        return state.warehouses[warehouseid]

    @app.get(site + "/warehouses.json")
    def warehouses(accountid: int, siteid: int) -> Response:
        with state.lock:
            return _collection([state.warehouses[k] for k in sorted(state.warehouses)])

    @app.get(site + "/warehouses/<int:warehouseid>.json")
    def warehouse_one(accountid: int, siteid: int, warehouseid: int) -> Response:
        with state.lock:
            return _single(_wh(warehouseid))

    @app.get(site + "/warehouses/<int:warehouseid>/warehouseitems.json")
    def warehouseitems(accountid: int, siteid: int, warehouseid: int) -> Response:
        with state.lock:
            _wh(warehouseid)
            low, high = _int_arg("datelastmodifiedfrom"), _int_arg("datelastmodifiedto")
            skus = _multi("sku")
            wanted = None if skus is None else set(skus)
            rows = state.items_of(warehouseid)
            if low is not None or high is not None or wanted is not None:
                rows = [
                    it for it in rows
                    if _in_range(it["datelastmodified"], low, high) and (wanted is None or it["sku"] in wanted)
                ]  # fmt: skip
            fields = _multi("fields")
            return _collection(rows, render=state.render_item if fields is None else item_renderer(fields))

    @app.put(site + "/warehouses/<int:warehouseid>/warehouseitems.json")
    def warehouseitems_put(accountid: int, siteid: int, warehouseid: int) -> Response:
        body = _body()
        if not isinstance(body, list):
            raise ApiError(400, "The request body must be an array of warehouse items")
        with state.lock:
            warehouse = _wh(warehouseid)

            def put_one(raw: Any) -> int:
                if not isinstance(raw, dict) or not raw.get("sku"):
                    raise ApiError(400, "sku is required")
                sku = raw["sku"]
                if state.product_by_sku(sku) is None:
                    raise ApiError(400, f"Product with sku '{sku}' not found")
                setting_level = "decimaltotal" in raw or "moneytotal" in raw
                if setting_level and warehouse["warehousetype"] != WAREHOUSE_VIRTUAL:
                    # "(Read Only if not warehousetype Virtual)"
                    raise ApiError(
                        400, "decimaltotal and moneytotal are read only unless warehousetype is Virtual (20)"
                    )
                total = to_decimal(raw["decimaltotal"], "decimaltotal") if "decimaltotal" in raw else None
                it = state._item(warehouseid, sku)
                if "binlocation" in raw:
                    it["binlocation"] = raw["binlocation"] or ""
                if "decimalthreshold" in raw:
                    it["decimalthreshold"] = to_decimal(raw["decimalthreshold"], "decimalthreshold")
                if "moneytotal" in raw:
                    it["moneytotal"] = to_decimal(raw["moneytotal"], "moneytotal")
                if total is not None and total != it["decimaltotal"]:
                    it["decimaltotal"] = total
                    it["datelastmodified"] = state.clock()
                return int(it["warehouseitemid"])

            return _batch(body, put_one)

    def _transactions(rows: list[dict[str, Any]]) -> Response:
        low, high = _int_arg("warehousetransactionidfrom"), _int_arg("warehousetransactionidto")
        dlow, dhigh = _int_arg("datecreatedfrom"), _int_arg("datecreatedto")
        ids, types = _multi_int("warehousetransactionid"), _multi_int("transactiontype")
        rows = [
            t
            for t in rows
            if _in_range(t["warehousetransactionid"], low, high)
            and _in_range(t["datecreated"], dlow, dhigh)
            and (ids is None or t["warehousetransactionid"] in ids)
            and (types is None or t["transactiontype"] in types)
        ]
        return _collection(_sort(rows, "warehousetransactionid"))

    @app.get(site + "/warehousetransactions.json")
    def transactions(accountid: int, siteid: int) -> Response:
        with state.lock:
            wid = _int_arg("warehouseid")
            return _transactions([t for t in state.transactions if wid is None or t["warehouseid"] == wid])

    @app.get(site + "/warehouses/<int:warehouseid>/warehousetransactions.json")
    def warehouse_transactions(accountid: int, siteid: int, warehouseid: int) -> Response:
        with state.lock:
            _wh(warehouseid)
            return _transactions([t for t in state.transactions if t["warehouseid"] == warehouseid])

    @app.get(site + "/warehouses/<int:warehouseid>/warehousetransactions/<int:transactionid>.json")
    def transaction_one(accountid: int, siteid: int, warehouseid: int, transactionid: int) -> Response:
        with state.lock:
            for t in state.transactions:
                if t["warehousetransactionid"] == transactionid and t["warehouseid"] == warehouseid:
                    return _single(t)
            raise ApiError(404, f"Warehouse transaction {transactionid} not found")

    @app.post(site + "/warehousetransactions.json")
    def transactions_post(accountid: int, siteid: int) -> Response:
        body = _body()
        if isinstance(body, list) and len(body) > MAX_TRANSACTION_BATCH:
            raise ApiError(
                400,
                f"The maximum number of items allowed for one request to this endpoint is {MAX_TRANSACTION_BATCH}.",
            )

        def add_one(raw: Any) -> int:
            if not isinstance(raw, dict):
                raise ApiError(400, "A warehouse transaction must be an object")
            wid, ttype = raw.get("warehouseid"), raw.get("transactiontype")
            if wid not in state.warehouses:
                raise ApiError(400, f"Warehouse {wid} not found")
            if state.warehouses[wid]["warehousetype"] == WAREHOUSE_VIRTUAL:
                raise ApiError(
                    400, "Transactions cannot be added to warehouses with warehousetype Virtual (20)."
                )
            if not isinstance(ttype, int) or isinstance(ttype, bool) or ttype <= 0:
                raise ApiError(400, "transactiontype is required")
            if ttype in READ_ONLY_TRANSACTION_TYPES:
                raise ApiError(400, f"transactiontype {ttype} is read only (Sales, Refund and StockTaking)")
            items = raw.get("items")
            if not isinstance(items, list) or not items:
                raise ApiError(400, "items is required")
            lines, prices = [], {}
            for n, row in enumerate(items):
                if not isinstance(row, dict) or not row.get("sku") or "decimalquantity" not in row:
                    raise ApiError(400, f"items[{n}]: sku and decimalquantity are required")
                if state.product_by_sku(row["sku"]) is None:
                    raise ApiError(400, f"items[{n}]: Product with sku '{row['sku']}' not found")
                lines.append((row["sku"], to_decimal(row["decimalquantity"], f"items[{n}].decimalquantity")))
                if "moneypricein" in row:
                    prices[row["sku"]] = to_decimal(row["moneypricein"], f"items[{n}].moneypricein")
            tid = state._transaction(
                wid,
                ttype,
                lines,
                raw.get("description") or "",
                externalid=raw.get("externalid"),
                reasoncode=raw.get("reasoncode"),
                pricein=prices,
            )
            return int(tid or 0)

        with state.lock:
            if isinstance(body, list):
                return _batch(body, add_one)
            return _json(add_one(body))

    # ---- products -----------------------------------------------------------------------------

    def _product_fields(raw: dict[str, Any], productid: int | None) -> dict[str, Any]:
        changes = {
            k: v
            for k, v in raw.items()
            if k not in ("productid", "datecreated", "datemodified", "moneyfinalprice")
        }
        if "sku" in changes:
            sku = changes["sku"]
            if not isinstance(sku, str) or not SKU_RE.match(sku):
                raise ApiError(400, "sku should only contain [A-Za-z0-9_+-/]")
            other = state.product_by_sku(sku)
            if other is not None and other["productid"] != productid:
                raise ApiError(400, f"A product with sku '{sku}' already exists")
        for key in ("moneyprice", "moneypriceorg", "moneypricein"):
            if key in changes:
                changes[key] = money(to_decimal(changes[key], key))
        if "moneyprice" in changes:
            changes["moneyfinalprice"] = changes["moneyprice"]
        if "vatid" in changes:
            changes["vatvalue"] = int(VAT_RATES.get(changes["vatid"], Decimal(25)))
        return changes

    def _product_add(raw: Any) -> int:
        if not isinstance(raw, dict) or not raw.get("sku"):
            raise ApiError(400, "sku is required")
        changes = _product_fields(raw, None)
        sku = changes.pop("sku")
        title = changes.pop("title", "")
        price = changes.pop("moneyprice", "0")
        changes.pop("moneyfinalprice", None)
        return state.add_product(sku, title, price, **changes)

    def _product_update(productid: Any, raw: dict[str, Any]) -> bool:
        product = state.products.get(productid)
        if product is None:
            raise ApiError(404, f"Product {productid} not found")
        product.update(_product_fields(raw, productid))
        product["datemodified"] = state.clock()
        return True

    @app.get(site + "/products.json")
    def products(accountid: int, siteid: int) -> Response:
        with state.lock:
            inactive = request.args.get("includeinactive", "false")
            if inactive not in ("true", "false"):
                raise ApiError(400, "includeinactive must be true or false")
            skus, ids = _multi("sku"), _multi_int("productid")
            since = _int_arg("datelastmodified")
            rows = [
                state.products[k]
                for k in sorted(state.products)
                if (inactive == "true" or state.products[k]["active"])
                and (skus is None or state.products[k]["sku"] in skus)
                and (ids is None or k in ids)
                # "Include products that have been modified after the timestamp provided."
                and (since is None or state.products[k]["datemodified"] > since)
            ]
            return _collection(rows, PRODUCT_DEFAULT_FIELDS)

    @app.post(site + "/products.json")
    def products_post(accountid: int, siteid: int) -> Response:
        body = _body()
        with state.lock:
            if isinstance(body, list):
                return _batch(body, _product_add)
            return _json(_product_add(body))

    @app.put(site + "/products.json")
    def products_put(accountid: int, siteid: int) -> Response:
        body = _body()
        if not isinstance(body, list):
            raise ApiError(400, "The request body must be an array of products")

        def put_one(raw: Any) -> bool:
            if not isinstance(raw, dict) or "productid" not in raw:
                raise ApiError(400, "productid must be added as a field for each item")
            return _product_update(raw["productid"], raw)

        with state.lock:
            return _batch(body, put_one)

    @app.get(site + "/products/<int:productid>.json")
    def product_one(accountid: int, siteid: int, productid: int) -> Response:
        with state.lock:
            if productid not in state.products:
                raise ApiError(404, f"Product {productid} not found")
            return _single(state.products[productid])

    @app.put(site + "/products/<int:productid>.json")
    def product_put(accountid: int, siteid: int, productid: int) -> Response:
        body = _body()
        if not isinstance(body, dict):
            raise ApiError(400, "The product must be a JSON object")
        with state.lock:
            return _json(_product_update(productid, body))

    # ---- users --------------------------------------------------------------------------------

    def _user_add(raw: Any) -> str:
        if not isinstance(raw, dict) or not raw.get("email"):
            raise ApiError(400, "email is required")
        if state.user_by_email(raw["email"]) is not None:
            raise ApiError(400, f"A user with email {raw['email']} already exists")
        fields = {k: v for k, v in raw.items() if k not in ("email", "namefirst", "namelast")}
        return state.add_user(raw["email"], raw.get("namefirst", ""), raw.get("namelast", ""), **fields)

    @app.get(site + "/users.json")
    def users(accountid: int, siteid: int) -> Response:
        with state.lock:
            filters = {k: request.args.get(k) for k in ("email", "customernumber", "personalid", "mobile")}
            ids = _multi("userid")
            rows = [
                u
                for u in state.users.values()
                if all(v is None or (state.email_matches(u.get(k), v) if k == "email" else u.get(k) == v)
                       for k, v in filters.items())
                and (ids is None or u["userid"] in ids)
            ]
            return _collection(rows, USER_DEFAULT_FIELDS)

    @app.post(site + "/users.json")
    def users_post(accountid: int, siteid: int) -> Response:
        body = _body()
        with state.lock:
            if isinstance(body, list):
                return _batch(body, _user_add)
            return _json(_user_add(body))

    @app.put(site + "/users.json")
    def users_put(accountid: int, siteid: int) -> Response:
        body = _body()
        if not isinstance(body, list):
            raise ApiError(400, "The request body must be an array of users")

        def put_one(raw: Any) -> bool:
            if not isinstance(raw, dict) or "userid" not in raw:
                raise ApiError(400, "userid must be added as a field for each item")
            state.update_user(raw["userid"], raw)
            return True

        with state.lock:
            return _batch(body, put_one)

    @app.get(site + "/users/<userid>.json")
    def user_one(accountid: int, siteid: int, userid: str) -> Response:
        with state.lock:
            if userid not in state.users:
                raise ApiError(404, f"User {userid} not found")
            return _single(state.users[userid])

    @app.put(site + "/users/<userid>.json")
    def user_put(accountid: int, siteid: int, userid: str) -> Response:
        body = _body()
        if not isinstance(body, dict):
            raise ApiError(400, "The user must be a JSON object")
        state.update_user(userid, body)
        return _json(True)

    @app.delete(site + "/users/<userid>.json")
    def user_delete(accountid: int, siteid: int, userid: str) -> Response:
        with state.lock:
            if state.users.pop(userid, None) is None:
                raise ApiError(404, f"User {userid} not found")
            return _json(True)

    # ---- orders -------------------------------------------------------------------------------

    @app.get(base + "/orders.json")
    def orders(accountid: int) -> Response:
        with state.lock:
            id_low, id_high = _int_arg("orderidfrom"), _int_arg("orderidto")
            d_low, d_high = _int_arg("orderdatefrom"), _int_arg("orderdateto")
            states, pstates, otypes = (
                _multi_int("orderstate"),
                _multi_int("paymentstate"),
                _multi_int("ordertype"),
            )
            externalids, ids, eshops = _multi("externalid"), _multi_int("orderid"), _multi_int("eshopid")
            creditorderid, warehouseid = _int_arg("creditorderid"), _int_arg("warehouseid")
            receiptid, email = request.args.get("receiptid"), request.args.get("email")
            if creditorderid is not None:
                ids = None  # "If this parameter is used, it will override the orderid parameter."
            ext_set = None if externalids is None else set(externalids)
            id_set = None if ids is None else set(ids)
            rows = [
                o
                for oid, o in state.orders.items()
                if _in_range(oid, id_low, id_high)
                and _in_range(o["orderdate"], d_low, d_high)
                and (states is None or o["orderstateid"] in states)
                and (pstates is None or o["paymentstateid"] in pstates)
                and (otypes is None or o["ordertypeid"] in otypes)
                and (ext_set is None or o["externalid"] in ext_set)
                and (id_set is None or oid in id_set)
                and (eshops is None or o["eshopid"] in eshops)
                and (creditorderid is None or o["creditorderid"] == creditorderid)
                and (warehouseid is None or o["warehouseid"] == warehouseid)
                and (receiptid is None or o["additionaldata"].get("pos-receiptid") == receiptid)
                and (email is None or o["email"] == email)
            ]
            # Filter and sort the stored orders, render only the page (the same answer, far less copying).
            return _collection(
                _sort(rows, "orderid"), ORDER_DEFAULT_FIELDS, render=lambda o: state.render_order(o["orderid"])
            )

    @app.get(site + "/orders.json")
    def site_orders(accountid: int, siteid: int) -> Response:
        return orders(accountid)  # deprecated twin of GET /orders.json (§3)

    @app.post(site + "/orders.json")
    def orders_post(accountid: int, siteid: int) -> Response:
        return _json(state.create_order(_body()))

    def _order(orderid: int) -> dict[str, Any]:
        if orderid not in state.orders:
            raise ApiError(404, f"Order {orderid} not found")
        return state.orders[orderid]

    @app.get(site + "/orders/<int:orderid>.json")
    def order_one(accountid: int, siteid: int, orderid: int) -> Response:
        with state.lock:
            _order(orderid)
            return _single(state.render_order(orderid))

    @app.put(site + "/orders/<int:orderid>.json")
    def order_put(accountid: int, siteid: int, orderid: int) -> Response:
        state.update_order(orderid, _body())
        return _json(True)

    @app.get(site + "/orders/<int:orderid>/orderdeliveries.json")
    def deliveries(accountid: int, siteid: int, orderid: int) -> Response:
        with state.lock:
            _order(orderid)
            rows = [d for k, d in sorted(state.deliveries.items()) if d["orderid"] == orderid]
            return _collection(rows)

    @app.post(site + "/orders/<int:orderid>/orderdeliveries.json")
    def deliveries_post(accountid: int, siteid: int, orderid: int) -> Response:
        ignorestock = request.args.get("ignorestock", "false") == "true"
        return _json(state.add_delivery(orderid, _body(), ignorestock=ignorestock))

    @app.get(site + "/orders/<int:orderid>/orderlogitems.json")
    def logitems(accountid: int, siteid: int, orderid: int) -> Response:
        with state.lock:
            _order(orderid)
            return _collection(list(state.orderlogitems.get(orderid, [])))

    @app.post(site + "/orders/<int:orderid>/orderlogitems.json")
    def logitems_post(accountid: int, siteid: int, orderid: int) -> Response:
        state.add_orderlogitem(orderid, _body())
        return _json(True)

    # ---- control and scenario API (not logged, not faulted) -----------------------------------

    def _scenario(fn: Callable[[dict[str, Any]], Any]) -> Response:
        raw = request.get_data()
        payload = json.loads(raw) if raw else {}
        try:
            return _json(fn(payload))
        except (KeyError, ValueError, TypeError) as exc:
            raise ApiError(400, f"{type(exc).__name__}: {exc}") from None

    @app.post("/_sandbox/faults")
    def faults_add() -> Response:
        def add(p: dict[str, Any]) -> dict[str, Any]:
            fault = control.add_fault(**p)
            return {"kind": fault.kind, "method": fault.method, "path": fault.path, "times": fault.times}

        return _scenario(add)

    @app.delete("/_sandbox/faults")
    def faults_clear() -> Response:
        control.clear_faults()
        return _json(True)

    @app.get("/_sandbox/requests")
    def requests_log() -> Response:
        with control.lock:
            return _json([r.as_dict() for r in control.requests])

    @app.delete("/_sandbox/requests")
    def requests_clear() -> Response:
        control.clear_log()
        return _json(True)

    @app.post("/_sandbox/latency")
    def latency() -> Response:
        return _scenario(lambda p: setattr(control, "latency", float(p.get("seconds", 0))) or True)

    @app.post("/_sandbox/pos-sale")
    def scenario_pos_sale() -> Response:
        return _scenario(
            lambda p: {
                "orderid": state.pos_sale(
                    p["registerid"], p["lines"], p.get("payment", "Card"), p.get("email"), p.get("orderdate")
                )
            }
        )

    @app.post("/_sandbox/deliver")
    def scenario_deliver() -> Response:
        return _scenario(
            lambda p: {
                "orderdeliveryid": state.deliver(
                    p["orderid"],
                    [tuple(i) for i in p["items"]] if p.get("items") is not None else None,
                    p.get("ref"),
                    p.get("warehouseid"),
                )
            }
        )

    @app.post("/_sandbox/cancel")
    def scenario_cancel() -> Response:
        return _scenario(lambda p: state.cancel_order(p["orderid"]) or True)

    @app.post("/_sandbox/store-return")
    def scenario_return() -> Response:
        return _scenario(
            lambda p: {
                "orderid": state.store_return(
                    p.get("original_orderid", p.get("orderid")),
                    p["lines"],
                    p.get("registerid"),
                    p.get("payment", "Card"),
                )
            }
        )

    @app.post("/_sandbox/stock")
    def scenario_stock() -> Response:
        def edit(p: dict[str, Any]) -> dict[str, Any]:
            if "total" in p:
                state.set_stock(p["warehouseid"], p["sku"], p["total"])
            else:
                state.adjust_stock(p["warehouseid"], p["sku"], p["delta"], p.get("transactiontype"))
            item = state.item(p["warehouseid"], p["sku"])
            return {k: (dec3(v) if isinstance(v, Decimal) else v) for k, v in item.items()}

        return _scenario(edit)

    @app.get("/_sandbox/state")
    def scenario_state() -> Response:
        return _json(state.snapshot())

    return ControlledApp(app, control, error_body)


class SitooSandbox:
    """The emulator on a loopback port: ``with SitooSandbox() as sb: requests.get(sb.base_url + …)``."""

    def __init__(
        self, state: SitooState | None = None, control: Control | None = None, port: int = 0
    ) -> None:
        self.state = state or SitooState()
        self.control = control or Control()
        self._port = port
        self.server: LoopbackServer | None = None

    def start(self) -> SitooSandbox:
        server = LoopbackServer(create_app(self.state, self.control), port=self._port)
        # serve_forever polls for shutdown every 0.5 s by default, which makes every stop() cost
        # half a second; a short poll keeps per-test sandboxes cheap.
        server.thread = threading.Thread(
            target=lambda: server.server.serve_forever(poll_interval=0.02),
            name=server.thread.name,
            daemon=True,
        )
        self.server = server.start()
        return self

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("sandbox not started")
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/accounts/{self.state.account_id}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.state.api_id, self.state.password)

    def stop(self) -> None:
        self.state.stop_events()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> SitooSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
