"""The account's data: one Sitoo account with one site, its stores, warehouses and registers.

``Account`` holds every collection of the in-memory account (the layers above add behaviour, not
data, except the event sender's queue) and hands out ids.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from magsit.sandbox.sitoo.constants import ACCOUNT_ID, API_ID, ESHOP_ID, PASSWORD, WAREHOUSE_FIFO


def blank_address(countryid: str = "SE") -> dict[str, str]:
    """The address fields of a store, warehouse, register or user, empty (the sandbox account is
    Swedish; a user has no country until one is given)."""
    return {"address": "", "address2": "", "zip": "", "city": "", "state": "", "countryid": countryid}


class Account:
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
                **blank_address(),
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
            if storeid is not None:
                self._store(storeid)
            warehouseid = self._next("warehouse")
            self.warehouses[warehouseid] = {
                "warehouseid": warehouseid,
                "warehousetype": warehousetype,
                "usetype": 10,
                "storeid": storeid,
                "sellable": True,
                "currencycode": self.currencycode,
                "name": name,
                **blank_address(),
                "externalid": externalid,
                **extra,
            }
            return warehouseid

    def add_register(self, storeid: int, warehouseid: int, name: str) -> str:
        with self.lock:
            self._store(storeid)
            self._warehouse(warehouseid)
            number = self._next("register")
            registerid = "{" + str(uuid.uuid4()).upper() + "}"
            self.registers[registerid] = {
                "registerid": registerid,
                "manufacturerid": f"SANDBOX{number:04d}",
                "registerkey": f"SII{self.account_id:07d}{number:05d}",
                "company": self._store(storeid)["name"],
                "companyid": "",
                **blank_address(),
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

    def _store(self, storeid: int) -> dict[str, Any]:
        if storeid not in self.stores:
            raise KeyError(f"store {storeid} not found")
        return self.stores[storeid]

    def _warehouse(self, warehouseid: int) -> dict[str, Any]:
        if warehouseid not in self.warehouses:
            raise KeyError(f"warehouse {warehouseid} not found")
        return self.warehouses[warehouseid]

    def _register(self, registerid: str) -> dict[str, Any]:
        if registerid not in self.registers:
            raise KeyError(f"register {registerid} not found")
        return self.registers[registerid]
