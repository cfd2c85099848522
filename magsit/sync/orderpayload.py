"""Magento order (detail GET shape) -> Sitoo order POST body. Pure: no I/O, no state.

Facts used (references): lines come from items with ``parent_item_id == null`` (P18); a configurable
parent carries price and tax, its simple child the stocked SKU; bundles keep their children
(the stock lives on the children; a dynamic-price bundle's money is on the children). Money is
``base_*`` and Decimal. Sitoo ``moneyrowprice`` is the GROSS row total before discount and
``moneyrowdiscount`` the gross discount; ``vatvalue`` is a percent. Click & collect (BOPIS) orders
carry no delivery address — an address would turn them into ship-from-store (BOSFS).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from magsit.config import OrderSettings
from magsit.errors import RecordError

CENT = Decimal("0.01")
EXTERNALID_MAX = 40
_EXTERNALID_BAD = re.compile(r"[^A-Za-z0-9_-]+")
PICKUP_METHODS = ("instore_pickup", "instore")  # Magento In-Store Pickup carrier (MSI)

ORDER_TYPE_ORDER = 10
PAYMENT_PENDING = 10
PAYMENT_SUCCESSFUL = 20


def normalise_email(email: str | None) -> str:
    """The merge key for customers on both sides: trimmed and casefolded."""
    return (email if isinstance(email, str) else "").strip().casefold()  # a non-text e-mail is no e-mail


def order_email(order: dict[str, Any]) -> str:
    """The order's customer e-mail, normalised ('' for none): the key of its Sitoo customer link.
    Never raises on garbage (pull reads it before the order's data is checked)."""
    billing = order.get("billing_address")
    return normalise_email(order.get("customer_email") or (billing.get("email") if isinstance(billing, dict) else None))


def sanitise_externalid(prefix: str, increment_id: str) -> str:
    """prefix + increment id, fitted to Sitoo's ``[A-Za-z0-9_-]{1,40}`` (P17).

    Valid ids stay as they are so the increment id is readable in Sitoo. Runs of other characters
    become ``-``; a result longer than 40 keeps its head and ends in a hash of the raw id, so two
    different long ids never collide.
    """
    raw = f"{prefix}{increment_id}"
    text = _EXTERNALID_BAD.sub("-", raw) or "x"
    if len(text) > EXTERNALID_MAX:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        text = f"{text[: EXTERNALID_MAX - 9]}-{digest}"
    return text


def money(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def fmt_money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def vat_number(percent: Decimal) -> int | float:
    """Sitoo ``vatvalue`` is a JSON number; whole percents go as integers."""
    percent = percent.quantize(Decimal("0.0001")).normalize()
    return int(percent) if percent == percent.to_integral_value() else float(percent)


@dataclass
class PlannedLine:
    """One Sitoo order line and where it came from in Magento."""

    item_id: int  # the Magento item this line is (child item for bundle children)
    ship_item_id: int  # the Magento item a shipment names (the top-level item; P18)
    sku: str
    name: str
    qty: int
    row_gross: Decimal
    row_discount: Decimal
    vat: Decimal
    unit_gross: Decimal
    per_parent: int = 1  # bundle child units per bundle unit
    is_service: bool = False

    def sitoo_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "orderitemtype": 10,
            "productname": self.name or self.sku,
            "sku": self.sku,
            "quantity": self.qty,
            "moneyrowprice": fmt_money(self.row_gross),
            "vatvalue": vat_number(self.vat),
            "additionaldata": {"web-itemid": str(self.item_id)},
        }
        if self.row_discount:
            item["moneyrowdiscount"] = fmt_money(self.row_discount)
        if self.ship_item_id != self.item_id:
            item["additionaldata"]["web-parent-itemid"] = str(self.ship_item_id)
        if self.is_service:
            item["additionaldata"] = {"web-line": "shipping"}
        return item

    def mapping_line(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "ship_item_id": self.ship_item_id,
            "per_parent": self.per_parent,
            "sku": self.sku,
            "qty": self.qty,
            "sitoo_orderitemid": None,
            "shipped": 0,
            "canceled": 0,
        }


@dataclass
class OrderPlan:
    increment_id: str
    entity_id: int
    externalid: str
    warehouse_id: int
    bopis: bool
    email: str
    lines: list[PlannedLine]
    payload: dict[str, Any]
    warnings: list[RecordError] = field(default_factory=list)
    email_as_given: str = ""  # trimmed, original case: Sitoo's e-mail filter may be exact-match (sitoo-api.md §7)

    @property
    def product_lines(self) -> list[PlannedLine]:
        return [line for line in self.lines if not line.is_service]

    def mapping_data(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "externalid": self.externalid,
            "warehouse_id": self.warehouse_id,
            "bopis": self.bopis,
            "email": self.email,
            "lines": [line.mapping_line() for line in self.product_lines],
        }


def _qty(item: dict[str, Any], key: str = "qty_ordered") -> int:
    value = money(item.get(key))
    if value != value.to_integral_value():
        raise RecordError(
            "unsupported_quantity",
            "ecommerce",
            str(item.get("sku")),
            f"item {item.get('sku')} has a fractional quantity {value}; Sitoo order lines take whole units",
        )
    return int(value)


def _tax_percent(item: dict[str, Any]) -> Decimal:
    if item.get("tax_percent") not in (None, ""):
        return money(item["tax_percent"])
    net = money(item.get("base_row_total"))
    tax = money(item.get("base_tax_amount"))
    return (tax / net * 100).quantize(Decimal("0.01")) if net else Decimal(0)


def _row_money(item: dict[str, Any], qty: int) -> tuple[Decimal, Decimal, Decimal]:
    """(gross row before discount, gross discount, gross unit price) from Magento's base_* item fields."""
    rate = _tax_percent(item)
    if item.get("base_row_total_incl_tax") not in (None, ""):
        gross = money(item["base_row_total_incl_tax"])
    elif item.get("base_price_incl_tax") not in (None, ""):
        gross = money(item["base_price_incl_tax"]) * qty
    elif item.get("base_price") not in (None, ""):
        gross = money(item.get("base_price")) * qty * (1 + rate / 100)
    else:  # no price at all: never push the line as free
        raise ValueError(f"order item {item.get('sku')!r} has no price")
    discount = money(item.get("base_discount_amount"))
    if discount:
        # What the customer paid for the row, gross, whichever "apply discount on prices incl./excl. tax"
        # setting the shop uses: net row + tax + hidden discount tax - discount.
        paid = (
            money(item.get("base_row_total"))
            + money(item.get("base_tax_amount"))
            + money(item.get("base_discount_tax_compensation_amount"))
            - discount
        )
        gross_discount = discount if item.get("base_row_total") in (None, "") else gross - paid
    else:
        gross_discount = Decimal(0)
    unit = money(item.get("base_price_incl_tax")) if item.get("base_price_incl_tax") not in (None, "") else (
        gross / qty if qty else Decimal(0)
    )
    return gross.quantize(CENT, ROUND_HALF_UP), max(gross_discount, Decimal(0)).quantize(CENT, ROUND_HALF_UP), unit


def build_lines(order: dict[str, Any], settings: OrderSettings) -> list[PlannedLine]:
    items = order.get("items") or []
    children: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        parent = item.get("parent_item_id")
        if parent:
            children.setdefault(int(parent), []).append(item)
    lines: list[PlannedLine] = []
    for item in items:
        if item.get("parent_item_id"):
            continue
        if item.get("is_virtual") and item.get("product_type") in ("virtual", "downloadable"):
            continue  # nothing for a store to hand over
        item_id = int(item["item_id"])
        qty = _qty(item)
        kind = item.get("product_type") or "simple"
        kids = children.get(item_id, [])
        if kind == "bundle" and kids:
            lines.extend(_bundle_lines(item, kids, qty))
            continue
        sku = str(item.get("sku") or "")
        if kind == "configurable" and kids and settings.merge_configurable:
            sku = str(kids[0].get("sku") or sku)  # the stocked simple; the parent's money
        gross, discount, unit = _row_money(item, qty)
        lines.append(
            PlannedLine(
                item_id=item_id,
                ship_item_id=item_id,
                sku=sku,
                name=str(item.get("name") or sku),
                qty=qty,
                row_gross=gross,
                row_discount=discount,
                vat=_tax_percent(item),
                unit_gross=unit,
            )
        )
    return lines


def _bundle_lines(parent: dict[str, Any], kids: list[dict[str, Any]], parent_qty: int) -> list[PlannedLine]:
    parent_id = int(parent["item_id"])
    kid_money = [(_row_money(kid, _qty(kid)), kid) for kid in kids]
    dynamic = any(gross for (gross, _, _), _ in kid_money)
    lines: list[PlannedLine] = []
    if dynamic:
        for (gross, discount, unit), kid in kid_money:
            qty = _qty(kid)
            lines.append(_kid_line(kid, parent_id, qty, parent_qty, gross, discount, unit, _tax_percent(kid)))
        return lines
    # Fixed-price bundle: the money is on the parent; spread it over the children by quantity, the
    # last child taking the rounding remainder, so the order total stays exact.
    p_gross, p_discount, _ = _row_money(parent, parent_qty)
    total_qty = sum(_qty(kid) for kid in kids) or 1
    left_gross, left_discount = p_gross, p_discount
    for index, kid in enumerate(kids):
        qty = _qty(kid)
        if index == len(kids) - 1:
            gross, discount = left_gross, left_discount
        else:
            gross = (p_gross * qty / total_qty).quantize(CENT, ROUND_HALF_UP)
            discount = (p_discount * qty / total_qty).quantize(CENT, ROUND_HALF_UP)
        left_gross -= gross
        left_discount -= discount
        unit = gross / qty if qty else Decimal(0)
        lines.append(_kid_line(kid, parent_id, qty, parent_qty, gross, discount, unit, _tax_percent(parent)))
    return lines


def _kid_line(
    kid: dict[str, Any],
    parent_id: int,
    qty: int,
    parent_qty: int,
    gross: Decimal,
    discount: Decimal,
    unit: Decimal,
    vat: Decimal,
) -> PlannedLine:
    per_parent = max(1, qty // parent_qty) if parent_qty else 1
    sku = str(kid.get("sku") or "")
    return PlannedLine(
        item_id=int(kid["item_id"]),
        ship_item_id=parent_id,
        sku=sku,
        name=str(kid.get("name") or sku),
        qty=qty,
        row_gross=gross,
        row_discount=discount,
        vat=vat,
        unit_gross=unit,
        per_parent=per_parent,
    )


def shipping_line(order: dict[str, Any], settings: OrderSettings) -> PlannedLine | None:
    gross = money(order.get("base_shipping_incl_tax"))
    net = money(order.get("base_shipping_amount"))
    tax = money(order.get("base_shipping_tax_amount"))
    if not gross:
        gross = net + tax
    if not gross:
        return None
    rate = (tax / net * 100).quantize(Decimal("0.01")) if net else Decimal(0)
    discount = money(order.get("base_shipping_discount_amount"))
    return PlannedLine(
        item_id=0,
        ship_item_id=0,
        sku=settings.shipping_sku,
        name=str(order.get("shipping_description") or "Shipping"),
        qty=1,
        row_gross=gross.quantize(CENT, ROUND_HALF_UP),
        row_discount=discount.quantize(CENT, ROUND_HALF_UP),
        vat=rate,
        unit_gross=gross,
        is_service=True,
    )


def shipping_info(order: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    """(shipping address, shipping method, pickup location code) from the detail GET."""
    ext = order.get("extension_attributes") or {}
    assignments = ext.get("shipping_assignments") or []
    shipping = (assignments[0].get("shipping") if assignments else None) or {}
    address = shipping.get("address") or {}
    method = str(shipping.get("method") or order.get("shipping_method") or "")
    pickup = ext.get("pickup_location_code")
    return address, method, (str(pickup) if pickup else None)


def is_pickup(order: dict[str, Any]) -> bool:
    """Click & collect: a pickup location or an in-store pickup shipping method."""
    _, method, pickup = shipping_info(order)
    return bool(pickup) or method.split("_", 1)[0] in PICKUP_METHODS or method in PICKUP_METHODS


def fulfilling_warehouse(order: dict[str, Any], settings: OrderSettings) -> tuple[int, bool]:
    """(Sitoo warehouse, is click & collect). Pickup location first, then shipping method, then the default."""
    increment_id = str(order.get("increment_id"))
    _, method, pickup = shipping_info(order)
    bopis = is_pickup(order)
    if pickup:
        if pickup not in settings.pickup_location_warehouses:
            raise RecordError(
                "unknown_pickup_location",
                "ops",
                increment_id,
                f"order {increment_id} is click & collect at pickup location '{pickup}', which has no Sitoo "
                f"warehouse: add it to [orders].pickup_location_warehouses in magsit.toml, then retry the order",
            )
        return settings.pickup_location_warehouses[pickup], True
    if method in settings.shipping_method_warehouses:
        return settings.shipping_method_warehouses[method], bopis
    return settings.warehouse_id, bopis


def _street(address: dict[str, Any]) -> tuple[str, str]:
    street = address.get("street") or []
    if isinstance(street, str):
        street = [street]
    street = [str(s).strip() for s in street if str(s).strip()]
    return (street[0] if street else ""), ", ".join(street[1:])


def _region(address: dict[str, Any]) -> str:
    region = address.get("region")
    if isinstance(region, dict):
        return str(region.get("region") or region.get("region_code") or "")
    return str(region or "")


def payment_state(order: dict[str, Any]) -> int:
    """20 (Successful) when Magento captured or authorised the money, else 10 (Pending)."""
    grand = money(order.get("base_grand_total"))
    paid = money(order.get("base_total_paid"))
    payment = order.get("payment") or {}
    authorised = money(payment.get("base_amount_authorized")) or money(payment.get("base_amount_paid"))
    if grand <= 0 or paid >= grand or authorised >= grand:
        return PAYMENT_SUCCESSFUL
    return PAYMENT_PENDING


def _epoch(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.strptime(str(text)[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def build_order(
    order: dict[str, Any],
    settings: OrderSettings,
    *,
    now: datetime,
    sitoo_prices: dict[str, Decimal] | None = None,
    userid: str | None = None,
    warehouse_externalids: dict[int, str] | None = None,
) -> OrderPlan:
    """The Sitoo order for one Magento order, or RecordError (kind, owner, actionable message).

    ``sitoo_prices`` (SKU -> Sitoo gross price) enables the promotion price check; a difference
    beyond ``price_tolerance`` is a ``price_mismatch``: with policy ``block`` it is raised, with
    ``warn`` the plan carries it in ``warnings`` and the order still goes.
    """
    increment_id = str(order["increment_id"])
    entity_id = int(order["entity_id"])
    externalid = sanitise_externalid(settings.externalid_prefix, increment_id)
    warehouse_id, bopis = fulfilling_warehouse(order, settings)
    lines = build_lines(order, settings)
    if not lines:
        raise RecordError(
            "no_shippable_items",
            "ecommerce",
            increment_id,
            f"order {increment_id} has no physical items for a store to hand over; it is not pushed to Sitoo "
            "(resolve or ignore this exception)",
        )
    warnings: list[RecordError] = []
    if sitoo_prices is not None:
        mismatches = []
        for line in lines:
            price = sitoo_prices.get(line.sku)
            if price is None or line.qty == 0:
                continue
            if abs(line.unit_gross - price) > settings.price_tolerance:
                mismatches.append(f"{line.sku}: Magento {fmt_money(line.unit_gross)}, Sitoo {fmt_money(price)}")
        if mismatches:
            error = RecordError(
                "price_mismatch",
                "finance",
                increment_id,
                f"order {increment_id}: unit price differs from Sitoo beyond {settings.price_tolerance} "
                f"({'; '.join(mismatches)}) — check whether a web promotion is missing in Sitoo's price list"
                + ("; the order is held until prices agree or the exception is ignored" if settings.price_policy == "block"
                   else "; the order was pushed with the Magento price the customer paid"),
                {"lines": mismatches},
            )
            if settings.price_policy == "block":
                raise error
            warnings.append(error)

    billing = order.get("billing_address") or {}
    ship_address, method, pickup = shipping_info(order)
    email = order_email(order)
    first = order.get("customer_firstname") or billing.get("firstname") or ship_address.get("firstname") or ""
    last = order.get("customer_lastname") or billing.get("lastname") or ship_address.get("lastname") or ""
    additional: dict[str, str] = {
        "weborder": "true",
        "magento-order-id": str(entity_id),
        "magento-increment-id": increment_id,
    }
    if userid:
        additional["sitoo-userid"] = str(userid)
    if order.get("customer_id") and not order.get("customer_is_guest"):
        additional["magento-customer-id"] = str(order["customer_id"])
    payment = order.get("payment") or {}
    if payment.get("method"):
        additional["payment-method"] = str(payment["method"])
    body: dict[str, Any] = {
        "ordertypeid": ORDER_TYPE_ORDER,
        "externalid": externalid,
        "orderstateid": 0,
        "paymentstateid": payment_state(order),
        "warehouseid": warehouse_id,
        "datereserved": int((now + timedelta(days=settings.reservation_days)).timestamp()),
        "currencycode": str(order.get("base_currency_code") or order.get("order_currency_code") or "") or None,
        "email": email or None,
        "namefirst": str(first) or None,
        "namelast": str(last) or None,
        "phone": str(billing.get("telephone") or ship_address.get("telephone") or "") or None,
        "orderdate": _epoch(order.get("created_at")),
        "customerref": increment_id,
    }
    if billing:
        street1, street2 = _street(billing)
        body.update(
            {
                "invoice_address": street1 or None,
                "invoice_address2": street2 or None,
                "invoice_zip": str(billing.get("postcode") or "") or None,
                "invoice_city": str(billing.get("city") or "") or None,
                "invoice_state": _region(billing) or None,
                "invoice_countryid": str(billing.get("country_id") or "") or None,
                "company": str(billing.get("company") or "") or None,
            }
        )
    if bopis:
        # No delivery_* fields: Sitoo would treat the order as a delivery (BOSFS), not a pickup.
        additional["weborder-bopis"] = "true"
        additional["delivery-pickup-warehouseid"] = str(warehouse_id)
        # "External ID for the Warehouse where the pickup should be made" (sitoo-api.md §6): the Sitoo
        # warehouse's own externalid, not the Magento pickup location code; left out when it has none.
        pickup_externalid = (warehouse_externalids or {}).get(warehouse_id)
        if pickup_externalid:
            additional["delivery-pickup-externalid"] = pickup_externalid
    else:
        street1, street2 = _street(ship_address)
        missing = [
            name
            for name, value in (
                ("street", street1),
                ("postcode", ship_address.get("postcode")),
                ("city", ship_address.get("city")),
                ("country", ship_address.get("country_id")),
            )
            if not value
        ]
        if missing:
            raise RecordError(
                "missing_address",
                "ops",
                increment_id,
                f"order {increment_id} ships from a store but its shipping address lacks {', '.join(missing)}; "
                "complete the address in Magento (Sales > Orders > edit address), then retry the order",
            )
        additional["weborder-bosfs"] = "true"
        body.update(
            {
                "delivery_address": street1,
                "delivery_address2": street2 or None,
                "delivery_zip": str(ship_address["postcode"]),
                "delivery_city": str(ship_address["city"]),
                "delivery_state": _region(ship_address) or None,
                "delivery_countryid": str(ship_address["country_id"]),
            }
        )
    if method:
        additional["shipping-method"] = method
    all_lines = list(lines)
    ship = shipping_line(order, settings)
    if ship is not None:
        if settings.shipping_as == "line":
            all_lines.append(ship)
        else:
            additional["delivery-moneygross"] = fmt_money(ship.row_gross - ship.row_discount)
            additional["delivery-vatvalue"] = str(vat_number(ship.vat))
            body["comment"] = f"Shipping: {ship.name} {fmt_money(ship.row_gross - ship.row_discount)}"
    body["additionaldata"] = additional
    body["orderitems"] = [line.sitoo_item() for line in all_lines]
    body = {key: value for key, value in body.items() if value is not None}
    return OrderPlan(
        increment_id=increment_id,
        entity_id=entity_id,
        externalid=externalid,
        warehouse_id=warehouse_id,
        bopis=bopis,
        email=email,
        lines=all_lines,
        payload=body,
        warnings=warnings,
        email_as_given=str(order.get("customer_email") or billing.get("email") or "").strip(),
    )
