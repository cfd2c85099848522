"""Warehouse items, warehouse transactions and the stock orders reserve (sitoo-api.md §5)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from magsit.sandbox.sitoo.constants import (
    ORDER_OPEN,
    TT_MOVE_IN,
    TT_MOVE_OUT,
    TT_STOCKTAKING,
    WAREHOUSE_VIRTUAL,
)
from magsit.sandbox.sitoo.formats import dec3, money, render_item
from magsit.sandbox.sitoo.state.catalog import Catalog


class Stock(Catalog):
    """Stock levels per (warehouse, sku), the transactions that move them, and reservations."""

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
        return render_item(it)

    def items_of(self, warehouseid: int) -> list[dict[str, Any]]:
        with self.lock:
            self.lapse_reservations()
            return list(self._items_by_warehouse.get(warehouseid, ()))

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
        if (
            self.reserves_orders
            and order["orderstateid"] == ORDER_OPEN
            and wid
            and until is not None
            and until > self.clock()
        ):
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
