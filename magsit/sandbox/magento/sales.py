"""Orders on the state: checkout, comments, cancel, edit (§8, pitfalls P19)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from magsit.sandbox.magento.errors import not_found_entity
from magsit.sandbox.magento.values import money, num

# Order status -> state (§8).
ORDER_STATES = {
    "pending": "new", "processing": "processing", "complete": "complete", "closed": "closed", "canceled": "canceled",
    "holded": "holded", "pending_payment": "pending_payment", "payment_review": "payment_review", "fraud": "payment_review",
}  # fmt: skip


class OrdersMixin:
    """The order methods of ``MagentoState`` (state.py holds the data; documents.py the invoices,
    shipments and credit memos these methods start)."""

    lock: threading.RLock
    orders: dict[int, dict[str, Any]]
    _item_meta: dict[int, dict[str, Any]]

    def place_order(
        self,
        items: Iterable[Any],
        customer_email: str | None = None,
        customer_id: int | None = None,
        guest: bool = False,
        status: str = "processing",
        shipping_amount: float = 0,
        shipping_method: str = "flatrate_flatrate",
        pickup_location_code: str | None = None,
        address: dict[str, Any] | None = None,
        payment_method: str = "checkmo",
        invoice: bool = True,
        tax_percent: float = 25,
        created_at: str | datetime | None = None,
        store_id: int = 1,
        shipping_description: str | None = None,
    ) -> dict[str, Any]:
        """A storefront checkout: order, MSI reservations, optionally an immediate (paid) invoice.

        Prices are catalog prices excluding tax (Magento's default); ``tax_percent`` applies to
        lines and shipping. ``items``: ``(sku, qty)`` or ``{sku, qty, price?, parent_sku?}``.
        """
        with self.lock:
            eid = self.next_id("order")
            if isinstance(created_at, datetime):
                stamp = (created_at.astimezone(UTC) if created_at.tzinfo else created_at).strftime("%Y-%m-%d %H:%M:%S")
            else:
                stamp = created_at or self.now()
            customer = None
            if not guest:
                if customer_id is not None:
                    customer = self.customers.get(int(customer_id))
                    if customer is None:
                        raise KeyError(f"unknown customer {customer_id}")
                elif customer_email:
                    customer = self.find_customer(customer_email)
            email = customer["email"] if customer else (customer_email or "guest@example.com")
            first = customer["firstname"] if customer else "Guest"
            last = customer["lastname"] if customer else "Shopper"
            rate = float(tax_percent)
            order_items: list[dict[str, Any]] = []
            for line in items:
                spec = {"sku": line[0], "qty": line[1]} if isinstance(line, list | tuple) else dict(line)
                sku, qty = str(spec["sku"]), float(spec["qty"])
                product = self.find_product(sku)
                if product is None and spec.get("price") is None:
                    raise KeyError(f"unknown sku {sku!r}")
                price = float(spec["price"]) if spec.get("price") is not None else float(product["price"])  # type: ignore[index]
                name = product["name"] if product else sku
                if spec.get("parent_sku"):
                    parent = self.find_product(str(spec["parent_sku"]))
                    if parent is None:
                        raise KeyError(f"unknown parent sku {spec['parent_sku']!r}")
                    top = self._order_item(eid, stamp, parent["id"], sku, parent["name"], qty, price, rate, "configurable")
                    kid = self._order_item(eid, stamp, product["id"] if product else None, sku, name, qty, 0, rate, "simple")
                    kid["parent_item_id"] = top["item_id"]
                    kid["tax_percent"] = 0
                    order_items += [top, kid]
                else:
                    kind = product["type_id"] if product else "simple"
                    order_items.append(self._order_item(eid, stamp, product["id"] if product else None, sku, name, qty, price, rate, kind))
            tops = [i for i in order_items if "parent_item_id" not in i]
            subtotal = money(sum(i["row_total"] for i in tops))
            item_tax = money(sum(i["tax_amount"] for i in tops))
            ship = money(shipping_amount)
            ship_tax = money(ship * rate / 100)
            grand = money(subtotal + item_tax + ship + ship_tax)
            addr = {
                "firstname": first, "lastname": last, "street": ["Drottninggatan 1"], "city": "Stockholm",
                "postcode": "11151", "country_id": "SE", "telephone": "0701234567", "email": email,
            }  # fmt: skip
            # Blank address fields fall back to the customer's (a checkout never stores empty names).
            addr.update({k: v for k, v in (address or {}).items() if v not in ("", None)})
            ship_addr = dict(addr, address_type="shipping", entity_id=self.next_id("order_address"), parent_id=eid)
            bill_addr = dict(addr, address_type="billing", entity_id=self.next_id("order_address"), parent_id=eid)
            state = ORDER_STATES.get(status, "processing")
            order: dict[str, Any] = {
                "entity_id": eid,
                "increment_id": f"{eid:09d}",
                "state": state,
                "status": status,
                "created_at": stamp,
                "updated_at": stamp,
                "store_id": store_id,
                "store_name": "Main Website\nMain Website Store\nDefault Store View",
                "quote_id": eid,
                "protect_code": secrets.token_hex(3),
                "customer_email": email,
                "customer_firstname": first,
                "customer_lastname": last,
                "customer_is_guest": 0 if customer else 1,
                "customer_group_id": customer["group_id"] if customer else 0,
                "customer_note_notify": 1,
                "email_sent": 1,
                "is_virtual": 0,
                "order_currency_code": self.currency,
                "base_currency_code": self.currency,
                "global_currency_code": self.currency,
                "store_currency_code": self.currency,
                "base_to_global_rate": 1,
                "base_to_order_rate": 1,
                "store_to_base_rate": 0,
                "store_to_order_rate": 0,
                "subtotal": subtotal,
                "subtotal_incl_tax": money(subtotal + item_tax),
                "tax_amount": money(item_tax + ship_tax),
                "shipping_amount": ship,
                "shipping_tax_amount": ship_tax,
                "shipping_incl_tax": money(ship + ship_tax),
                "shipping_discount_amount": 0,
                "shipping_discount_tax_compensation_amount": 0,
                "discount_amount": 0,
                "discount_tax_compensation_amount": 0,
                "grand_total": grand,
                "total_due": grand,
                "total_qty_ordered": num(sum(i["qty_ordered"] for i in tops)),
                "total_item_count": len(tops),
                "weight": 0,
                "shipping_description": shipping_description or ("In-Store Pickup" if pickup_location_code else "Flat Rate - Fixed"),
                "items": order_items,
                "billing_address": bill_addr,
                "payment": {
                    "entity_id": eid,
                    "parent_id": eid,
                    "method": payment_method,
                    "amount_ordered": grand,
                    "base_amount_ordered": grand,
                    "shipping_amount": ship,
                    "base_shipping_amount": ship,
                    "account_status": None,
                    "additional_information": [payment_method],
                    "cc_last4": None,
                },
                "status_histories": [],
                "extension_attributes": {
                    "shipping_assignments": [
                        {
                            "shipping": {
                                "address": ship_addr,
                                "method": shipping_method,
                                "total": {
                                    "shipping_amount": ship, "base_shipping_amount": ship, "shipping_incl_tax": money(ship + ship_tax),
                                    "base_shipping_incl_tax": money(ship + ship_tax), "shipping_tax_amount": ship_tax,
                                    "base_shipping_tax_amount": ship_tax, "shipping_discount_amount": 0, "base_shipping_discount_amount": 0,
                                },  # fmt: skip
                            },
                            "items": order_items,
                            "stock_id": 1,
                        }
                    ],
                    "payment_additional_info": [{"key": "method_title", "value": payment_method}],
                    "applied_taxes": [{"code": "VAT", "title": "VAT", "percent": num(rate), "amount": money(item_tax + ship_tax), "base_amount": money(item_tax + ship_tax)}],
                    "item_applied_taxes": [],
                    "converting_from_quote": True,
                },
            }
            if customer:
                order["customer_id"] = customer["id"]
            if pickup_location_code:
                order["extension_attributes"]["pickup_location_code"] = pickup_location_code
            sync_base(order)
            self.orders[eid] = order
            # MSI appends one negative reservation per stocked line at placement (§6.4).
            for item in order_items:
                if item["product_type"] == "simple":
                    self.reserve(item["sku"], -item["qty_ordered"], "order_placed", eid)
            if invoice and state not in ("canceled", "holded", "payment_review", "pending_payment"):
                self.invoice_order(eid, bump=False)
            return order

    def _order_item(
        self, order_id: int, stamp: str, product_id: int | None, sku: str, name: str, qty: float, price: float, rate: float, kind: str
    ) -> dict[str, Any]:
        row = money(price * qty)
        tax = money(row * rate / 100)
        item: dict[str, Any] = {
            "item_id": self.next_id("order_item"),
            "order_id": order_id,
            "quote_item_id": self.next_id("quote_item"),
            "created_at": stamp,
            "updated_at": stamp,
            "product_id": product_id,
            "product_type": kind,
            "sku": sku,
            "name": name,
            "store_id": 1,
            "is_virtual": 1 if kind in ("virtual", "downloadable") else 0,
            "qty_ordered": num(qty),
            "qty_invoiced": 0,
            "qty_shipped": 0,
            "qty_refunded": 0,
            "qty_canceled": 0,
            "qty_backordered": None,
            "price": money(price),
            "original_price": money(price),
            "price_incl_tax": money(price * (1 + rate / 100)),
            "row_total": row,
            "row_total_incl_tax": money(row + tax),
            "row_invoiced": 0,
            "tax_amount": tax,
            "tax_invoiced": 0,
            "tax_percent": num(rate),
            "discount_amount": 0,
            "discount_percent": 0,
            "discount_invoiced": 0,
            "discount_tax_compensation_amount": 0,
            "amount_refunded": 0,
            "weight": 0,
            "row_weight": 0,
            "free_shipping": 0,
            "no_discount": 0,
        }
        if product_id is None:
            del item["product_id"]
        del item["qty_backordered"]  # null fields are omitted in responses (§8)
        return item

    def order(self, entity_id: int) -> dict[str, Any]:
        order = self.orders.get(int(entity_id))
        if order is None:
            raise not_found_entity()
        return order

    def _touch(self, order: dict[str, Any]) -> None:
        """Every order save bumps updated_at (§8)."""
        order["updated_at"] = self.now()
        for item in order["items"]:
            item["updated_at"] = order["updated_at"]

    def _resettle(self, order: dict[str, Any]) -> None:
        """Order state after a document: closed when nothing is left, complete when all is shipped
        and invoiced (Magento's state machine, simplified)."""
        if order["state"] in ("canceled", "holded", "payment_review"):
            return
        tops = top_items(order)
        open_qty = [i["qty_ordered"] - i["qty_refunded"] - i["qty_canceled"] for i in tops]
        if all(q <= 0 for q in open_qty) and any(i["qty_refunded"] > 0 for i in tops):
            order["state"] = order["status"] = "closed"
        elif all(
            (i["is_virtual"] or i["qty_shipped"] + self._meta(i)["refunded_unshipped"] >= i["qty_ordered"] - i["qty_canceled"])
            and i["qty_invoiced"] >= i["qty_ordered"] - i["qty_canceled"]
            for i in tops
        ):
            order["state"] = order["status"] = "complete"
        elif order["state"] in ("new", "pending_payment") and any(i["qty_invoiced"] or i["qty_shipped"] for i in tops):
            order["state"] = order["status"] = "processing"
        sync_base(order)

    def _meta(self, item: dict[str, Any]) -> dict[str, Any]:
        return self._item_meta.setdefault(item["item_id"], {"refunded_unshipped": 0.0, "sources": {}})

    def add_comment(
        self, entity_id: int, comment: str, is_customer_notified: int = 0, is_visible_on_front: int = 0, status: str | None = None
    ) -> bool:
        with self.lock:
            order = self.order(entity_id)
            if status:
                order["status"] = status
            order["status_histories"].insert(
                0,
                {
                    "entity_id": self.next_id("history"),
                    "parent_id": order["entity_id"],
                    "comment": comment,
                    "is_customer_notified": int(is_customer_notified or 0),
                    "is_visible_on_front": int(is_visible_on_front or 0),
                    "status": order["status"],
                    "created_at": self.now(),
                    "entity_name": "order",
                },
            )
            if is_customer_notified:
                self.emails_sent.append({"type": "order_comment", "to": order["customer_email"], "order_id": order["entity_id"]})
            self._touch(order)
            return True

    def cancel_order(self, entity_id: int) -> bool:
        """``canCancel()`` false (all invoiced, all shipped, final state) -> False, no error (§8)."""
        with self.lock:
            order = self.order(entity_id)
            tops = top_items(order)
            if order["state"] in ("canceled", "complete", "closed", "holded", "payment_review"):
                return False
            if all(i["qty_invoiced"] >= i["qty_ordered"] - i["qty_refunded"] for i in tops):
                return False
            if all(i["qty_shipped"] >= i["qty_ordered"] for i in tops if not i["is_virtual"]):
                return False
            for top in tops:
                cancel = top["qty_ordered"] - max(top["qty_invoiced"], top["qty_shipped"]) - top["qty_canceled"]
                cancel = max(0, cancel - self._meta(top)["refunded_unshipped"])
                if cancel <= 0:
                    continue
                for item in family_items(order, top):
                    item["qty_canceled"] = num(item["qty_canceled"] + cancel)
                stock = stock_line(order, top)
                if stock is not None:
                    self.reserve(stock["sku"], cancel, "order_canceled", order["entity_id"])
            if not any(i["qty_invoiced"] or i["qty_shipped"] for i in tops):
                order["state"] = order["status"] = "canceled"
                order["total_canceled"] = order["grand_total"]
                order["total_due"] = 0
            self._resettle(order)
            self._touch(order)
            return True

    def edit_order(self, entity_id: int, items: Iterable[Any], **place: Any) -> dict[str, Any]:
        """Admin "Edit" of an order (pitfalls P19): Magento places a new order ``<original>-<n>``
        linked by ``relation_parent_id``/``relation_parent_real_id`` and cancels the original
        (``AdminOrder\\Create::createOrder`` calls ``$oldOrder->cancel()``; an original that cannot
        be cancelled, e.g. invoiced, keeps its state). Returns the new order."""
        with self.lock:
            old = self.order(entity_id)
            base = old.get("original_increment_id") or old["increment_id"]
            edit = int(old.get("edit_increment") or 0) + 1
            place.setdefault("customer_email", old["customer_email"])
            place.setdefault("guest", bool(old.get("customer_is_guest")))
            new = self.place_order(items, **place)
            new.update(increment_id=f"{base}-{edit}", original_increment_id=base, edit_increment=edit,
                       relation_parent_id=old["entity_id"], relation_parent_real_id=old["increment_id"])
            old.update(relation_child_id=new["entity_id"], relation_child_real_id=new["increment_id"])
            self.cancel_order(entity_id)
            return new



def top_items(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Order lines as documents see them: items without a parent (§8)."""
    return [i for i in order["items"] if not i.get("parent_item_id")]


def family_items(order: dict[str, Any], top: dict[str, Any]) -> list[dict[str, Any]]:
    return [top] + [i for i in order["items"] if i.get("parent_item_id") == top["item_id"]]


def stock_line(order: dict[str, Any], top: dict[str, Any]) -> dict[str, Any] | None:
    """The simple item that holds stock for a line (the child of a configurable)."""
    for item in family_items(order, top):
        if item["product_type"] == "simple":
            return item
    return None


def requested(order: dict[str, Any], items: list[dict[str, Any]] | None, default: dict[int, float]) -> dict[int, float]:
    """``[{order_item_id, qty}]`` -> {parent item id: qty}; empty -> ``default`` (all that is left)."""
    if not items:
        return {k: float(v) for k, v in default.items() if v > 0}
    parents = {i["item_id"]: i.get("parent_item_id") for i in order["items"]}
    out: dict[int, float] = {}
    for entry in items:
        item_id = int(entry.get("order_item_id") or 0)
        item_id = parents.get(item_id) or item_id
        out[item_id] = out.get(item_id, 0.0) + float(entry.get("qty") or 0)
    return out



def sync_base(doc: dict[str, Any]) -> None:
    """Base currency = order currency in the sandbox: every money field gets its ``base_`` twin."""
    money_keys = (
        "subtotal", "subtotal_incl_tax", "tax_amount", "shipping_amount", "shipping_tax_amount", "shipping_incl_tax",
        "discount_amount", "grand_total", "total_due", "total_paid", "total_invoiced", "total_refunded", "total_canceled",
        "total_offline_refunded", "subtotal_invoiced", "subtotal_refunded", "tax_invoiced", "tax_refunded", "shipping_invoiced",
        "shipping_refunded", "shipping_discount_amount", "discount_tax_compensation_amount", "adjustment", "adjustment_positive",
        "adjustment_negative", "shipping_tax_invoiced", "shipping_discount_tax_compensation_amount",
    )  # fmt: skip
    for key in money_keys:
        if key in doc:
            doc["base_" + key] = doc[key]
    for item in doc.get("items", []):
        for key in ("price", "original_price", "price_incl_tax", "row_total", "row_total_incl_tax", "row_invoiced", "tax_amount", "tax_invoiced",
                    "discount_amount", "discount_invoiced", "amount_refunded", "discount_tax_compensation_amount"):  # fmt: skip
            if key in item:
                item["base_" + key] = item[key]
    pay = doc.get("payment")
    if isinstance(pay, dict):
        for key in ("amount_paid", "amount_refunded", "shipping_captured"):
            if key in pay:
                pay["base_" + key] = pay[key]
