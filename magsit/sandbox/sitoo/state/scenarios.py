"""What people do in the stores and the back office, as the tests and the demo drive it: till
sales, store returns, staff deliveries and delivery state changes. Each goes through the same
order/delivery code the API uses, so stock, reservations and events follow."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from magsit.sandbox.sitoo.constants import ORDER_OPEN, PAYMENT_SUCCESSFUL
from magsit.sandbox.sitoo.formats import money
from magsit.sandbox.sitoo.state.orders import Orders
from magsit.sandbox.sitoo.validation import order_payment


class Scenarios(Orders):
    """Scenario helpers over the orders layer."""

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

    def lower_lines(self, orderid: int, quantities: dict[int, int]) -> None:
        """Back-office staff lower order lines (``{orderitemid: new quantity}``), as magsit asks ops
        to after a partial refund in Magento. How Backoffice does it is not in the API reference
        (sitoo-api.md §6 documents no line edit), so the sandbox only does what any edit must: the
        line keeps its orderitemid, its totals follow the quantity, the reservation follows the
        undelivered units and an ``order`` update event is sent."""
        with self.lock:
            order = self.orders[orderid]
            delivered = self._delivered.get(orderid, {})
            for item in order["orderitems"]:
                if item["orderitemid"] not in quantities:
                    continue
                new, old = int(quantities[item["orderitemid"]]), int(item["quantity"])
                if new < delivered.get(item["orderitemid"], 0) or new > old:
                    raise ValueError(f"line {item['orderitemid']}: {new} is below what was delivered or above {old}")
                share = Decimal(new) / Decimal(old) if old else Decimal(0)
                for name in ("moneyitemtotal_net", "moneyitemtotal_vat"):
                    item[name] = money(Decimal(item[name]) * share)
                item["quantity"] = new
                item["decimalquantitytotal"] = f"{new}.000"
            self._totals(order)
            self._sync_reservation(orderid)
            self._order_event(order, "update")

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
                    "order_delivery_id": deliveryid
                    if deliveryid is not None
                    else self._next("orderdelivery"),
                    "warehouse_id": delivery["warehouseid"]
                    if delivery
                    else self.orders[order_id].get("warehouseid"),
                    "order_delivery_event_type": "update" if delivery else "add",
                    "order_delivery_state_changed": state,
                },
            )

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
            return self._till_order(body, registerid, payment)

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
            return self._till_order(body, registerid, payment)

    def _till_order(self, body: dict[str, Any], registerid: str, payment: str) -> int:
        """Ring up a till order: created, paid in full with ``payment``, handed over at once."""
        orderid = self.create_order(body, registerid=registerid)
        order = self.orders[orderid]
        order["payments"] = [
            order_payment({"name": payment, "moneyamount": order["moneytotal_gross_all"]}, 0)
        ]
        self.deliver(orderid, warehouseid=body["warehouseid"])
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


def _line(line: Any) -> tuple[str, int, Any]:
    """A scenario line: ``(sku, qty)``, ``(sku, qty, unit_price)`` or ``{"sku","quantity","price"}``."""
    if isinstance(line, dict):
        return line["sku"], int(line.get("quantity", line.get("qty", 1))), line.get("price")
    sku, qty, *rest = line
    return sku, int(qty), rest[0] if rest else None
