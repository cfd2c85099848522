"""One order's booked figures on each side, and what kind of Sitoo order it is.

Both sides are brought to the same meaning ("what the customer paid", in the accounting
currency) before anything is compared: Magento's ``base_*`` fields, Sitoo's order money plus the
shipping push-orders may have carried outside Sitoo's totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from magsit.sync.reconcile.money import ZERO, cents, dec

# Sitoo enums (sitoo-api §6).
SITOO_CLOSED = 10
SITOO_CANCELLED = 20
SITOO_ABANDONED = -1
SITOO_GONE = (SITOO_CANCELLED, SITOO_ABANDONED)
# Magento states whose orders are not expected in Sitoo when they are missing there (never paid,
# or cancelled before anyone pushed them). A pushed one is still compared normally.
NOT_FOR_SITOO = frozenset({"canceled", "pending_payment", "payment_review", "new", "holded"})
MAGENTO_DONE = frozenset({"complete", "closed"})


@dataclass(frozen=True)
class Figures:
    grand_total: Decimal
    tax: Decimal
    shipping: Decimal
    discount: Decimal


def _magento_discount(order: dict[str, Any]) -> Decimal:
    """The gross amount the customer did not pay (same rule push-orders uses, whatever "apply
    discount on prices" says): per item where the items are there, else the order's figure."""
    items = [i for i in order.get("items") or [] if not i.get("parent_item_id")]
    if not (items and any(i.get("base_row_total_incl_tax") is not None for i in items)):
        return abs(dec(order.get("base_discount_amount")))
    discount = ZERO
    for item in items:
        off = abs(dec(item.get("base_discount_amount")))
        if not off:
            continue
        paid = (
            dec(item.get("base_row_total"))
            + dec(item.get("base_tax_amount"))
            + dec(item.get("base_discount_tax_compensation_amount"))
            - off
        )
        discount += dec(item.get("base_row_total_incl_tax")) - paid
    return discount + abs(dec(order.get("base_shipping_discount_amount")))


def magento_figures(order: dict[str, Any]) -> Figures:
    """``base_*`` fields (accounting currency). Shipping gross; discount as the gross amount the
    customer did not pay (same rule push-orders uses, whatever "apply discount on prices" says)."""
    shipping = dec(order.get("base_shipping_incl_tax")) or (
        dec(order.get("base_shipping_amount")) + dec(order.get("base_shipping_tax_amount"))
    )
    return Figures(dec(order.get("base_grand_total")), dec(order.get("base_tax_amount")), shipping, _magento_discount(order))


def additional(order: dict[str, Any]) -> dict[str, Any]:
    data = order.get("additionaldata")
    return data if isinstance(data, dict) else {}


def sitoo_figures(order: dict[str, Any]) -> Figures:
    """Sitoo's booked figures of a web order. Shipping is a service line tagged ``web-line=shipping``
    (push-orders ``shipping_as = "line"``), Sitoo's own delivery money, or — ``shipping_as =
    "fields"`` — only ``additionaldata.delivery-moneygross``, which Sitoo does not count in its
    totals; that amount is added here so both sides mean "what the customer paid"."""
    gross = dec(order.get("moneytotal_gross_all"))
    tax = dec(order.get("moneyfinal_vat"))
    shipping = dec(order.get("moneytotal_gross_delivery"))
    discount = ZERO
    for item in order.get("orderitems") or []:
        extra = item.get("additionaldata") if isinstance(item.get("additionaldata"), dict) else {}
        if extra.get("web-line") == "shipping":
            shipping += dec(item.get("moneyitemtotal_net")) + dec(item.get("moneyitemtotal_vat"))
        per_unit = dec(item.get("moneydiscount"))
        if per_unit:
            qty = abs(dec(item.get("quantity")))
            discount += cents(per_unit * qty * (1 + dec(item.get("vatvalue")) / 100))
    added = dec(additional(order).get("delivery-moneygross"))
    if added and not shipping:
        rate = dec(additional(order).get("delivery-vatvalue"))
        gross += added
        tax += added - cents(added / (1 + rate / 100)) if rate else ZERO
        shipping = added
    return Figures(gross, tax, shipping, discount)


def is_web_order(order: dict[str, Any]) -> bool:
    return (
        not order.get("registerid")
        and not order.get("creditorderid")
        and bool(order.get("externalid") or additional(order).get("weborder") == "true")
    )


def payment_names(order: dict[str, Any]) -> list[tuple[str, Decimal]]:
    payments = [p for p in order.get("payments") or [] if isinstance(p, dict)]
    return [(str(p.get("name") or "(unnamed)"), dec(p.get("moneyamount"))) for p in payments]


def state_name(state: Any) -> str | None:
    return {0: "open", 10: "closed", 20: "cancelled", -1: "abandoned"}.get(state, None if state is None else str(state))
