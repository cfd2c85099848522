"""Invoices, shipments and credit memos on the state (§9, §10, §11)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from magsit.sandbox.magento.errors import ApiError
from magsit.sandbox.magento.sales import family_items, requested, stock_line, sync_base, top_items
from magsit.sandbox.magento.values import money, num


class DocumentsMixin:
    """Invoice, ship and refund on ``MagentoState``: each validates like Magento's document
    validators, then writes the document, the order totals and the stock effects."""

    lock: threading.RLock
    shipping_display_incl_tax: bool

    def invoice_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        capture: bool = True,
        notify: bool = False,
        comment: str | None = None,
        bump: bool = True,
    ) -> int:
        """Invoice (marks paid: offline methods just record the payment, §10). Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = top_items(order)
            to_invoice = {i["item_id"]: i["qty_ordered"] - i["qty_invoiced"] - i["qty_canceled"] for i in tops}
            errors = []
            if order["state"] in ("payment_review", "holded", "canceled", "complete", "closed"):
                errors.append(f"An invoice cannot be created when an order has a status of {order['state']}")
            elif all(q <= 0 for q in to_invoice.values()):
                errors.append("The order does not allow an invoice to be created.")
            wanted = requested(order, items, to_invoice) if not errors else {}
            if not errors:
                by_id = {i["item_id"]: i for i in order["items"]}
                for item_id, qty in wanted.items():
                    item = by_id.get(item_id)
                    if item is None:
                        errors.append("The invoice contains one or more items that are not part of the original order.")
                    elif qty > to_invoice.get(item_id, 0) + 1e-9:
                        errors.append(f'The quantity to invoice must not be greater than the uninvoiced quantity for product SKU "{item["sku"]}".')
                if not errors and sum(wanted.values()) <= 0:
                    errors.append("You can't create an invoice without products.")
            _refuse("Invoice", errors)
            inv_id = self.next_id("invoice")
            lines, subtotal, tax = [], 0.0, 0.0
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                row, line_tax = line_amounts(top, qty)
                subtotal, tax = subtotal + row, tax + line_tax
                for item in family_items(order, top):
                    item["qty_invoiced"] = num(item["qty_invoiced"] + qty)
                top["row_invoiced"] = money(top["row_invoiced"] + row)
                top["tax_invoiced"] = money(top["tax_invoiced"] + line_tax)
                lines.append(self._document_line("invoice_item", inv_id, top, qty))
            ship = ship_tax = 0.0
            if not order.get("shipping_invoiced"):
                ship, ship_tax = order["shipping_amount"], order["shipping_tax_amount"]
                order["shipping_invoiced"] = ship
                order["shipping_tax_invoiced"] = ship_tax
            grand = money(subtotal + tax + ship + ship_tax)
            stamp = self.now()
            invoice = {
                "entity_id": inv_id, "increment_id": f"{inv_id:09d}", "order_id": order["entity_id"], "state": 2,
                "store_id": order["store_id"], "created_at": stamp, "updated_at": stamp,
                **self._document_totals(subtotal, tax, ship, ship_tax),
                "grand_total": grand, "total_qty": num(sum(line["qty"] for line in lines)),
                "billing_address_id": order["billing_address"]["entity_id"], "email_sent": 1 if notify else 0,
                "items": lines, "comments": first_comment(comment, inv_id, stamp),
            }  # fmt: skip
            sync_base(invoice)
            self.invoices[inv_id] = invoice
            add_money(order, total_invoiced=grand, total_paid=grand, subtotal_invoiced=subtotal, tax_invoiced=tax + ship_tax)
            order["total_due"] = money(order["grand_total"] - order["total_paid"])
            add_money(order["payment"], amount_paid=grand)
            order["payment"]["shipping_captured"] = order["shipping_invoiced"]
            if notify:
                self._email("invoice", order, inv_id)
            self._resettle(order)
            if bump:
                self._touch(order)
            return inv_id

    def ship_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        tracks: list[dict[str, Any]] | None = None,
        source_code: str | None = None,
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """Create a shipment (§9): deducts the source, compensates the reservation. Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = [i for i in top_items(order) if not i["is_virtual"]]
            # Magento's Order\Item::getSimpleQtyToShip() is ordered - shipped - refunded - canceled (floored
            # at 0): every refunded unit counts against what is left to ship, even one that was shipped and
            # came back. refunded_unshipped is the part of the refunds that lowers it (the rest would take it
            # below 0), so this gives the same answer.
            to_ship = {i["item_id"]: i["qty_ordered"] - i["qty_shipped"] - i["qty_canceled"] - self._meta(i)["refunded_unshipped"] for i in tops}
            errors: list[str] = []
            if order["state"] in ("payment_review", "holded", "canceled"):
                errors.append(f"A shipment cannot be created when an order has a status of {order['state']}")
            elif all(q <= 0 for q in to_ship.values()):
                errors.append("The order does not allow a shipment to be created.")
            if not errors:
                by_id = {i["item_id"]: i for i in order["items"]}
                if items:
                    wanted = requested(order, items, {})
                else:
                    # Omitted items ship the full qty_ordered, not what is left (ShipmentDocumentFactory, §9).
                    wanted = {i["item_id"]: float(i["qty_ordered"]) for i in tops}
                for item_id, qty in wanted.items():
                    item = by_id.get(item_id)
                    if item is None:
                        errors.append(f'We can not found item "{item_id}" in order.')
                    elif qty < 0 or qty > to_ship.get(item_id, 0) + 1e-9:
                        errors.append(f'We found an invalid quantity to ship for item "{item["name"]}".')
                if not errors and sum(wanted.values()) <= 0:
                    errors.append("You can't create a shipment without products.")
                for track in tracks or []:
                    if not str(track.get("track_number") or "").strip():
                        errors.append("Please enter a tracking number.")
            _refuse("Shipment", errors)
            links = self.stock_sources.get(1, [])
            code = source_code or (links[0] if len(links) == 1 else "default")
            # Source deduction runs inside the shipment save; any failure rolls back (§9, §6.4).
            deductions: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                stock = stock_line(order, top)
                if qty <= 0 or stock is None:
                    continue
                src = self.source_items.get((code, stock["sku"].lower()))
                if code not in self.sources or src is None or (not self.allow_backorders and float(src["quantity"]) < qty):
                    raise ApiError(400, "Could not save a shipment, see error log for details")
                deductions.append((top, src, qty))
            ship_id = self.next_id("shipment")
            stamp = self.now()
            lines = []
            for top, src, qty in deductions:
                src["quantity"] = num(float(src["quantity"]) - qty)
                stock = stock_line(order, top)
                self.reserve(stock["sku"], qty, "shipment_created", order["entity_id"])  # type: ignore[index]
                sources = self._meta(top)["sources"]
                sources[code] = sources.get(code, 0) + qty
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                for item in family_items(order, top):
                    item["qty_shipped"] = num(item["qty_shipped"] + qty)
                lines.append(
                    {"entity_id": self.next_id("shipment_item"), "parent_id": ship_id, "order_item_id": top["item_id"],
                     "sku": top["sku"], "name": top["name"], "qty": num(qty), "price": top["price"], "weight": 0,
                     "product_id": top.get("product_id")}  # fmt: skip
                )
            shipment = {
                "entity_id": ship_id, "increment_id": f"{ship_id:09d}", "order_id": order["entity_id"], "store_id": order["store_id"],
                "created_at": stamp, "updated_at": stamp, "total_qty": num(sum(line["qty"] for line in lines)),
                "billing_address_id": order["billing_address"]["entity_id"],
                "shipping_address_id": order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["entity_id"],
                "email_sent": 1 if notify else 0, "items": lines, "packages": [], "comments": first_comment(comment, ship_id, stamp),
                "tracks": [
                    {"entity_id": self.next_id("track"), "order_id": order["entity_id"], "parent_id": ship_id,
                     "track_number": t.get("track_number"), "title": t.get("title"), "carrier_code": t.get("carrier_code"),
                     "created_at": stamp, "updated_at": stamp, "qty": None, "weight": None, "description": None}
                    for t in tracks or []
                ],
                "extension_attributes": {"source_code": code},
            }  # fmt: skip
            self.shipments[ship_id] = shipment
            if notify:
                self._email("shipment", order, ship_id)
            self._resettle(order)
            self._touch(order)
            return ship_id

    def _document_line(self, kind: str, parent_id: int, top: dict[str, Any], qty: float) -> dict[str, Any]:
        """An invoice or credit memo item: ``qty`` units of order line ``top``."""
        row, line_tax = line_amounts(top, qty)
        return {
            "entity_id": self.next_id(kind), "parent_id": parent_id, "order_item_id": top["item_id"], "sku": top["sku"],
            "name": top["name"], "qty": num(qty), "price": top["price"], "price_incl_tax": top["price_incl_tax"],
            "row_total": row, "row_total_incl_tax": money(row + line_tax), "tax_amount": line_tax, "base_price": top["price"],
            "base_row_total": row, "base_tax_amount": line_tax, "base_cost": 0,
        }  # fmt: skip

    def _document_totals(self, subtotal: float, tax: float, ship: float, ship_tax: float) -> dict[str, Any]:
        """The money fields an invoice and a credit memo share (their tax_amount includes shipping tax)."""
        return {
            "order_currency_code": self.currency, "base_currency_code": self.currency,
            "subtotal": money(subtotal), "subtotal_incl_tax": money(subtotal + tax), "tax_amount": money(tax + ship_tax),
            "shipping_amount": ship, "shipping_tax_amount": ship_tax, "shipping_incl_tax": money(ship + ship_tax),
            "discount_amount": 0,
        }  # fmt: skip

    def _email(self, document: str, order: dict[str, Any], document_id: int) -> None:
        """The customer notification a document with ``notify`` sends (recorded, never sent)."""
        self.emails_sent.append(
            {"type": document, "to": order["customer_email"], "order_id": order["entity_id"], f"{document}_id": document_id}
        )

    def _refund_shipping(self, order: dict[str, Any], shipping_amount: float | None) -> float:
        """The net shipping amount a credit memo refunds, or the 400 for more than is left."""
        ship_left = money(order.get("shipping_invoiced", 0) - order.get("shipping_refunded", 0))
        # Omitted shipping_amount refunds all remaining shipping (Creditmemo/Total/Shipping.php).
        ship = ship_left if shipping_amount is None else money(shipping_amount)
        if shipping_amount is not None and self.shipping_display_incl_tax and order["shipping_amount"]:
            # isSuppliedShippingAmountInclTax(): a store showing shipping incl. tax reads the
            # supplied amount as gross and converts it to net (magento-api.md §11).
            rate = order["shipping_incl_tax"] / order["shipping_amount"]
            left_incl = money(ship_left * rate)
            if ship > left_incl + 0.0001:
                raise ApiError(400, "Maximum shipping amount allowed to refund is: %1", [f"{left_incl:.2f}"])
            ship = min(ship_left, money(ship / rate))
        if ship > ship_left + 0.0001:
            raise ApiError(400, "Maximum shipping amount allowed to refund is: %1", [f"{ship_left:.2f}"])
        return ship

    def refund_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        shipping_amount: float | None = None,
        adjustment_positive: float = 0,
        adjustment_negative: float = 0,
        return_to_stock_items: Iterable[int] = (),
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """Offline credit memo (§11). Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = top_items(order)
            refundable = {i["item_id"]: i["qty_invoiced"] - i["qty_refunded"] for i in tops}
            errors: list[str] = []
            if order["state"] in ("payment_review", "holded", "canceled", "closed"):
                errors.append(f"A creditmemo can not be created when an order has a status of {order['state']}")
            elif order.get("total_paid", 0) - order.get("total_refunded", 0) <= 0.0001:
                errors.append("We can't create creditmemo for the order.")
            _refuse("Creditmemo", errors)
            by_id = {i["item_id"]: i for i in order["items"]}
            wanted = requested(order, items, refundable)
            for item_id, qty in wanted.items():
                item = by_id.get(item_id)
                if item is None:
                    errors.append(f'The creditmemo contains product SKU "{item_id}" that is not part of the original order.')
                elif qty > refundable.get(item_id, 0) + 1e-9:
                    errors.append(f'The quantity to creditmemo must not be greater than the unrefunded quantity for product SKU "{item["sku"]}".')
            ship = self._refund_shipping(order, shipping_amount)
            subtotal = tax = 0.0
            for item_id, qty in wanted.items():
                top = by_id.get(item_id)
                if top is not None and qty > 0:
                    row, line_tax = line_amounts(top, qty)
                    subtotal, tax = subtotal + row, tax + line_tax
            ship_tax = money(ship * order["shipping_tax_amount"] / order["shipping_amount"]) if order["shipping_amount"] else 0.0
            grand = money(subtotal + tax + ship + ship_tax + float(adjustment_positive or 0) - float(adjustment_negative or 0))
            if not errors:
                if sum(wanted.values()) <= 0 and ship <= 0:
                    errors.append("You can't create a creditmemo without products.")
                elif grand <= 0:
                    errors.append("The credit memo's total must be positive.")
                elif grand > money(order.get("total_paid", 0) - order.get("total_refunded", 0)) + 0.0001:
                    errors.append(f"The most money available to refund is {money(order['total_paid'] - order.get('total_refunded', 0)):.2f}.")
            _refuse("Creditmemo", errors)
            back = {int(i) for i in return_to_stock_items or []}
            memo_id = self.next_id("creditmemo")
            stamp = self.now()
            lines = []
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                row = line_amounts(top, qty)[0]
                family = family_items(order, top)
                for item in family:
                    item["qty_refunded"] = num(item["qty_refunded"] + qty)
                top["amount_refunded"] = money(top["amount_refunded"] + row)
                meta = self._meta(top)
                unshipped = max(0.0, top["qty_ordered"] - top["qty_shipped"] - top["qty_canceled"] - meta["refunded_unshipped"])
                compensate = min(qty, unshipped)
                meta["refunded_unshipped"] += compensate
                stock = stock_line(order, top)
                if stock is not None:
                    # Units never shipped give their reservation back; shipped units go back to
                    # their source only when listed in return_to_stock_items (§11, MSI).
                    if compensate > 0:
                        self.reserve(stock["sku"], compensate, "creditmemo_created", order["entity_id"])
                    returned = qty - compensate
                    if returned > 0 and any(i["item_id"] in back for i in family):
                        code = next(iter(meta["sources"]), "default")
                        src = self.source_items.get((code, stock["sku"].lower()))
                        if src is None:
                            src = self.set_source_item(stock["sku"], code, 0, 1)
                        src["quantity"] = num(float(src["quantity"]) + returned)
                        if float(src["quantity"]) > 0:
                            src["status"] = 1
                lines.append({**self._document_line("creditmemo_item", memo_id, top, qty), "product_id": top.get("product_id")})
            adj_pos, adj_neg = money(adjustment_positive), money(adjustment_negative)
            last_invoice = max((i for i, inv in self.invoices.items() if inv["order_id"] == order["entity_id"]), default=None)
            memo = {
                "entity_id": memo_id, "increment_id": f"{memo_id:09d}", "order_id": order["entity_id"], "invoice_id": last_invoice,
                "state": 2, "creditmemo_status": None, "store_id": order["store_id"], "created_at": stamp, "updated_at": stamp,
                **self._document_totals(subtotal, tax, ship, ship_tax),
                "adjustment": money(adj_pos - adj_neg), "adjustment_positive": adj_pos,
                "adjustment_negative": adj_neg, "grand_total": grand, "email_sent": 1 if notify else 0,
                "billing_address_id": order["billing_address"]["entity_id"], "items": lines,
                "comments": first_comment(comment, memo_id, stamp),
            }  # fmt: skip
            if memo["invoice_id"] is None:
                del memo["invoice_id"]
            del memo["creditmemo_status"]
            sync_base(memo)
            self.creditmemos[memo_id] = memo
            add_money(order, total_refunded=grand, total_offline_refunded=grand)
            order.setdefault("total_online_refunded", 0)  # offline credit memo: no gateway involved
            order.setdefault("base_total_online_refunded", 0)
            add_money(
                order, subtotal_refunded=subtotal, tax_refunded=tax + ship_tax, shipping_refunded=ship, shipping_tax_refunded=ship_tax
            )
            order["base_shipping_tax_refunded"] = order["shipping_tax_refunded"]
            add_money(order, adjustment_positive=adj_pos, adjustment_negative=adj_neg)
            add_money(order["payment"], amount_refunded=grand)
            if notify:
                self._email("creditmemo", order, memo_id)
            self._resettle(order)
            self._touch(order)
            return memo_id


def line_amounts(top: dict[str, Any], qty: float) -> tuple[float, float]:
    """Row total and tax of ``qty`` units of an order line: tax is the line's tax prorated by quantity."""
    return money(top["price"] * qty), money(top["tax_amount"] / top["qty_ordered"] * qty)


def first_comment(comment: str | None, parent_id: int, stamp: str) -> list[dict[str, Any]]:
    """A new document's comments: the one given with the request, if any."""
    return [{"comment": comment, "parent_id": parent_id, "created_at": stamp}] if comment else []


def add_money(totals: dict[str, Any], **amounts: float) -> None:
    """Add to running money totals (an order's or its payment's), starting from 0 where there is none."""
    for key, amount in amounts.items():
        totals[key] = money(totals.get(key, 0) + amount)


def _refuse(document: str, errors: list[str]) -> None:
    """Magento's document validators answer all the rules a request broke in one 400."""
    if errors:
        raise ApiError(400, f"{document} Document Validation Error(s):\n" + "\n".join(errors))
