"""Sitoo v2 wire encoding for writes, and the batch envelope's per-element result.

Wire types (sitoo-api.md §2.1): ``money*`` fields are strings with two decimals ("123.50"),
``decimal*`` fields strings with three ("5.000"), ``date*`` fields epoch seconds (int). Money is
``Decimal`` and never goes through float. The client's readers return raw ``dict``s (one bad
record never breaks an iteration); the flows read the fields they need themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
MILLI = Decimal("0.001")

# Writable fields of an order / order item / payment (spysystem order-write.yaml, as bundled in
# the project's Sitoo OpenAPI file). Anything else is read-only and is dropped from a write body
# rather than sent: Sitoo's reaction to unknown keys is undocumented.
ORDER_WRITE_FIELDS = frozenset(
    ["externalid", "creditorderid", "email", "namefirst", "namelast", "personalid", "company", "phone", "invoice_address", "invoice_address2", "invoice_zip", "invoice_city", "invoice_state", "invoice_countryid", "delivery_address", "delivery_address2", "delivery_zip", "delivery_city", "delivery_state", "delivery_countryid", "comment", "commentinternal", "customerref", "checkoutref", "orderdate", "orderstateid", "paymentstateid", "ordertypeid", "warehouseid", "datereserved", "currencycode", "additionaldata", "orderitems", "payments", "reservedpayments"]
)
ORDERITEM_WRITE_FIELDS = frozenset(
    ["orderitemtype", "productname", "sku", "productattributes", "externalinput", "externalinputtitle", "unitlabel", "quantity", "decimalunitquantity", "moneypriceorg", "vatvalue", "deliveryinfo", "vouchercode", "vouchername", "vouchercomment", "vouchervalue", "salestaxes", "additionaldata", "moneyrowprice", "moneyrowdiscount"]
)
PAYMENT_WRITE_FIELDS = frozenset(
    ["name", "moneyamount", "externalid", "reftype", "refid", "cardissuer", "additionaldata", "reservedpaymentid"]
)


# -- encoding for writes --------------------------------------------------------------------------
def to_epoch(value: datetime | int | None) -> int | None:
    """Aware datetime (or epoch int) -> epoch seconds. Naive datetimes are refused: ambiguous."""
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime to convert to a Sitoo date")
    return int(value.timestamp())


def _as_dict(value: Any) -> Any:
    # PHP serialises an empty object as [] (pitfalls P45): accept it where an object is expected.
    if value is None or value == []:
        return {}
    return value


def format_money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def format_decimal(value: Decimal) -> str:
    return str(value.quantize(MILLI, rounding=ROUND_HALF_UP))


def to_api(value: Any, key: str = "") -> Any:
    """Make a payload JSON-ready by Sitoo's type rules, recursively.

    Decimals under ``money*`` keys become 2-place strings, under ``decimal*`` keys 3-place strings;
    datetimes under ``date*`` keys become epoch ints. A Decimal under any other key (e.g. the
    numeric ``vatvalue``) becomes an int when whole, else a float, since those fields are JSON
    numbers. Non-finite Decimals raise ValueError naming the key.
    """
    if isinstance(value, Mapping):
        return {k: to_api(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_api(v, key) for v in value]
    if isinstance(value, datetime):
        return to_epoch(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{key or 'value'}: not a finite number: {value}")
        lowered = key.lower()
        if lowered.startswith("money"):
            return format_money(value)
        if lowered.startswith("decimal"):
            return format_decimal(value)
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def order_write_payload(order: Mapping[str, Any]) -> dict[str, Any]:
    """An order (Decimals and datetimes allowed) -> a POST/PUT body with writable fields only.

    Read-only fields (orderid, totals, orderitemid …) are dropped; money/decimal/date values are
    encoded by ``to_api``; ``additionaldata`` values are stringified because Sitoo only allows
    string values for properties it does not define (order-additionaldata-read.yaml).
    """
    body: dict[str, Any] = {k: v for k, v in order.items() if k in ORDER_WRITE_FIELDS and v is not None}
    if "additionaldata" in body:
        body["additionaldata"] = _string_map(body["additionaldata"])
    if "orderitems" in body:
        items = []
        for item in body["orderitems"] or []:
            clean = {k: v for k, v in dict(item).items() if k in ORDERITEM_WRITE_FIELDS and v is not None}
            if "additionaldata" in clean:
                clean["additionaldata"] = _string_map(clean["additionaldata"])
            items.append(clean)
        body["orderitems"] = items
    if "payments" in body:
        pays = []
        for pay in body["payments"] or []:
            clean = {k: v for k, v in dict(pay).items() if k in PAYMENT_WRITE_FIELDS and v is not None}
            if "additionaldata" in clean:
                clean["additionaldata"] = _string_map(clean["additionaldata"])
            pays.append(clean)
        body["payments"] = pays
    if not body.get("ordertypeid"):
        raise ValueError("ordertypeid: required for an order write (10 = order)")
    return to_api(body)


def _string_map(value: Any) -> dict[str, str]:
    value = _as_dict(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"additionaldata: expected an object, got {type(value).__name__}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        out[str(k)] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


@dataclass(frozen=True)
class BatchResult:
    """One element of a Sitoo batch envelope, at ``index`` in the list the caller sent."""

    index: int
    ok: bool
    value: Any = None  # the element's "return" (an id, a GUID, true)
    error: str | None = None  # the element's errortext when not ok
    status: int | None = None  # the element's statuscode
