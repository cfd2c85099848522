"""Orders over the API: create, partial update, cancel, deliveries, order log items, and the
externalid index behind the uniqueness rule (sitoo-api.md §6)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from magsit.sandbox.sitoo.constants import (
    ORDER_CANCELLED,
    ORDER_CLOSED,
    ORDER_OPEN,
    ORDER_STATE_NAMES,
    ORDER_TEXT_FIELDS,
    ORDER_WRITABLE_SCALARS,
    TT_REFUND,
    TT_SALES,
)
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.formats import money
from magsit.sandbox.sitoo.state.stock import Stock
from magsit.sandbox.sitoo.validation import check_additionaldata, check_externalid, order_item, order_payment


class Orders(Stock):
    """Orders and their deliveries; every change re-syncs the order's reservation."""

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

    def create_order(self, body: Any, registerid: str | None = None, emit: bool = True) -> int:
        """``POST /sites/{siteid}/orders.json``: validate the order-write body, store, reserve."""
        if not isinstance(body, dict):
            raise ApiError(400, "The order must be a JSON object")
        with self.lock:
            if "ordertypeid" not in body:
                raise ApiError(400, "ordertypeid is required")
            externalid = body.get("externalid")
            if externalid is not None:
                check_externalid(externalid)
                if self.order_by_externalid(externalid) is not None:
                    raise ApiError(400, f"An order with externalid '{externalid}' already exists")
            creditorderid = body.get("creditorderid")
            if creditorderid is not None:
                found(self.orders, creditorderid, "creditorderid", 400)
            warehouseid = body.get("warehouseid")
            if warehouseid is not None:
                found(self.warehouses, warehouseid, "Warehouse", 400)
            raw_items = body.get("orderitems") or []
            if not isinstance(raw_items, list):
                raise ApiError(400, "orderitems must be an array")
            items = [order_item(i, raw, self.product_by_sku) for i, raw in enumerate(raw_items)]
            payments = [order_payment(p, i) for i, p in enumerate(body.get("payments") or [])]
            additional = body.get("additionaldata") or {}
            check_additionaldata(additional, "additionaldata")
            orderid = self._next("order", start=10001)
            order: dict[str, Any] = {
                "orderid": orderid,
                "eshopid": self.eshop_id,
                "externalid": externalid,
                "creditorderid": creditorderid,
                "checkouttypeid": 0,
                "deliverytypeid": 0,
            }
            for key in ORDER_TEXT_FIELDS:
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
            self._log(orderid, 0)
            self._sync_reservation(orderid)
            if emit:
                self._order_event(order, "add")
            return orderid

    def update_order(self, orderid: int, body: Any) -> None:
        """``PUT /sites/{siteid}/orders/{id}.json``: partial update; state changes release stock."""
        if not isinstance(body, dict):
            raise ApiError(400, "The order must be a JSON object")
        with self.lock:
            order = found(self.orders, orderid, "Order")
            old_state, old_externalid = order["orderstateid"], order["externalid"]
            if "externalid" in body and body["externalid"] != order["externalid"]:
                ext = body["externalid"]
                if ext is not None:
                    check_externalid(ext)
                if ext is not None and self.order_by_externalid(ext) is not None:
                    raise ApiError(400, f"An order with externalid '{ext}' already exists")
            if body.get("warehouseid") is not None:
                found(self.warehouses, body["warehouseid"], "Warehouse", 400)
            if "orderstateid" in body and body["orderstateid"] not in (*ORDER_STATE_NAMES, -1):
                raise ApiError(400, f"Invalid orderstateid {body['orderstateid']}")
            if "orderitems" in body:
                if not isinstance(body["orderitems"], list):
                    raise ApiError(400, "orderitems must be an array")
                if self._delivered.get(orderid):
                    raise ApiError(400, "Order items cannot be changed after a delivery")
                order["orderitems"] = [
                    order_item(i, raw, self.product_by_sku) for i, raw in enumerate(body["orderitems"] or [])
                ]
            if "payments" in body:
                order["payments"] = [order_payment(p, i) for i, p in enumerate(body["payments"] or [])]
            if "additionaldata" in body:
                check_additionaldata(body["additionaldata"] or {}, "additionaldata")
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
            order = found(self.orders, orderid, "Order")
            if order["orderstateid"] == ORDER_CANCELLED:
                raise ApiError(400, f"Order {orderid} is cancelled")
            warehouseid = body.get("warehouseid")
            if warehouseid is None:
                raise ApiError(400, "warehouseid is required")
            found(self.warehouses, warehouseid, "Warehouse", 400)
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

    def add_orderlogitem(self, orderid: int, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "The orderlogitem must be a JSON object")
        with self.lock:
            order = found(self.orders, orderid, "Order")
            kind = body.get("orderlogtypeid")
            # "All types are read only except for 900 (ReadyForPickup) and 910 (PickupRejected)"
            if kind not in (900, 910):
                raise ApiError(400, f"orderlogtypeid {kind} is read only; only 900 and 910 can be added")
            self._log(orderid, kind, body.get("strvalue"), body.get("fvalue"))
            self._order_event(order, "ready-for-pickup" if kind == 900 else "pickup-rejected")

    def _log(self, orderid: int, kind: int, strvalue: Any = None, fvalue: Any = None) -> None:
        """One order log entry (type 0 is the order's creation)."""
        self.orderlogitems.setdefault(orderid, []).append(
            {"datelog": self.clock(), "orderid": orderid, "orderlogtypeid": kind, "strvalue": strvalue, "fvalue": fvalue}
        )

    def render_order(self, orderid: int) -> dict[str, Any]:
        with self.lock:
            order = copy.deepcopy(self.orders[orderid])
            order["orderlogitems"] = copy.deepcopy(self.orderlogitems.get(orderid, []))
            return order
