"""Sitoo v2 records as tolerant pydantic models, plus the wire encoding rules.

Wire types (sitoo-api.md §2.1): ``money*`` fields are strings with two decimals ("123.50"),
``decimal*`` fields strings with three ("5.000"), ``date*`` fields epoch seconds (int). Money is
parsed to ``Decimal`` and never goes through float. The models accept missing fields, ``null``
and unknown keys (kept as extras) because Sitoo adds fields over time and ``fields=`` projections
return subsets; garbage in a typed field (``"abc"`` as a decimal) raises a ``ValueError``
(pydantic's ``ValidationError``) naming the field, which the flows turn into a per-record
exception instead of aborting the batch.

The client returns raw ``dict``s from its readers so that one bad record never breaks an
iteration; flows call ``Model.from_api(raw)`` per record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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


# -- scalar parsing -------------------------------------------------------------------------------
def parse_decimal(value: Any) -> Decimal | None:
    """A Sitoo money/decimal value -> Decimal; None/"" -> None; anything else non-numeric raises.

    Floats are accepted (a hand-made payload or a lenient emulator) but go through ``str`` so that
    0.1 stays 0.1; bools are refused (``True`` is an int in Python, never a quantity in Sitoo).
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a decimal string, got {value!r}")
    elif isinstance(value, int | float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value[:40]!r}") from None
    else:
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def parse_epoch(value: Any) -> int | None:
    """A Sitoo date (epoch seconds, sometimes a numeric string) -> int; None/""/0-length -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected epoch seconds, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected epoch seconds, got {str(value)[:40]!r}")


def from_epoch(value: int | None) -> datetime | None:
    """Epoch seconds -> aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


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


def _as_list(value: Any) -> Any:
    return [] if value is None else value


Dec = Annotated[Decimal | None, BeforeValidator(parse_decimal)]
Epoch = Annotated[int | None, BeforeValidator(parse_epoch)]
StrMap = Annotated[dict[str, Any], BeforeValidator(_as_dict)]


# -- encoding for writes --------------------------------------------------------------------------
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
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
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


# -- models ---------------------------------------------------------------------------------------
M = TypeVar("M", bound="SitooModel")


class SitooModel(BaseModel):
    # extra="allow": keep fields we do not model (and the ones Sitoo adds later) for payload
    # excerpts and round trips; populate_by_name for the few aliased names.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @classmethod
    def from_api(cls: type[M], raw: Mapping[str, Any]) -> M:
        """Parse one record; raises ValueError (pydantic ValidationError) naming the bad field."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(raw).__name__}")
        return cls.model_validate(dict(raw))

    def to_api(self) -> dict[str, Any]:
        return to_api(self.model_dump(exclude_none=True))


class WarehouseItem(SitooModel):
    warehouseitemid: int | None = None
    warehouseid: int | None = None
    sku: str | None = None
    decimaltotal: Dec = None
    decimalreserved: Dec = None
    decimalavailable: Dec = None
    datelastmodified: Epoch = None

    @property
    def modified_at(self) -> datetime | None:
        return from_epoch(self.datelastmodified)


class Warehouse(SitooModel):
    warehouseid: int | None = None
    warehousetype: int | None = None  # 20 = Virtual (direct PUT of levels); 10 = FIFO (transactions)
    name: str | None = None
    storeid: int | None = None
    externalid: str | None = None
    currencycode: str | None = None


class Product(SitooModel):
    productid: int | None = None
    sku: str | None = None
    title: str | None = None
    moneyprice: Dec = None
    moneypriceorg: Dec = None
    moneypricein: Dec = None
    moneyfinalprice: Dec = None
    vatid: int | None = None
    vatvalue: Dec = None
    active: bool | None = None
    activepos: bool | None = None
    barcode: str | None = None
    barcodealiases: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    variantparentid: int | None = None
    datecreated: Epoch = None
    datemodified: Epoch = None


class User(SitooModel):
    userid: str | None = None  # a GUID string such as "{102DC4AA-...}"
    email: str | None = None
    namefirst: str | None = None
    namelast: str | None = None
    externalid: str | None = None
    customernumber: str | None = None
    company: str | None = None
    phone: str | None = None
    mobile: str | None = None
    address: str | None = None
    address2: str | None = None
    zip: str | None = None
    city: str | None = None
    state: str | None = None
    countryid: str | None = None
    role: int | None = None  # null for customers; staff carry a role
    datecreated: Epoch = None
    datemodified: Epoch = None


class OrderItem(SitooModel):
    orderitemid: int | None = None
    orderitemtype: int | None = None
    productid: int | None = None
    productname: str | None = None
    sku: str | None = None
    quantity: int | None = None
    decimalquantitytotal: Dec = None
    vatvalue: Dec = None
    moneyrowprice: Dec = None
    moneyrowdiscount: Dec = None
    moneynetpriceperunit: Dec = None
    moneyitemtotal_net: Dec = None
    moneyitemtotal_vat: Dec = None
    additionaldata: StrMap = Field(default_factory=dict)


class Payment(SitooModel):
    name: str | None = None
    moneyamount: Dec = None
    externalid: str | None = None
    reftype: str | None = None
    refid: str | None = None
    additionaldata: StrMap = Field(default_factory=dict)


class DeliveryItem(SitooModel):
    orderitemid: int | None = None
    quantity: int | None = None


class Delivery(SitooModel):
    orderdeliveryid: int | None = None
    orderid: int | None = None
    warehouseid: int | None = None
    orderdeliveryref: str | None = None
    datedelivery: Epoch = None
    datecancelled: Epoch = None
    orderdeliveryitems: Annotated[list[DeliveryItem], BeforeValidator(_as_list)] = Field(default_factory=list)


class Order(SitooModel):
    orderid: int | None = None
    externalid: str | None = None
    creditorderid: int | None = None
    ordertypeid: int | None = None
    orderstateid: int | None = None  # 0 open, 10 closed, 20 cancelled, -1 abandoned
    paymentstateid: int | None = None
    warehouseid: int | None = None
    registerid: str | None = None  # set for POS sales, null for web orders
    eshopid: int | None = None
    email: str | None = None
    namefirst: str | None = None
    namelast: str | None = None
    currencycode: str | None = None
    orderdate: Epoch = None
    datereserved: Epoch = None
    moneyfinal_net: Dec = None
    moneyfinal_vat: Dec = None
    moneytotal_gross_all: Dec = None
    moneytotal_gross_roundoff: Dec = None
    additionaldata: StrMap = Field(default_factory=dict)
    orderitems: Annotated[list[OrderItem], BeforeValidator(_as_list)] = Field(default_factory=list)
    payments: Annotated[list[Payment], BeforeValidator(_as_list)] = Field(default_factory=list)

    @property
    def ordered_at(self) -> datetime | None:
        return from_epoch(self.orderdate)

    @property
    def is_pos(self) -> bool:
        return bool(self.registerid)


def order_write_payload(order: Order | Mapping[str, Any]) -> dict[str, Any]:
    """An order (model or dict, Decimals allowed) -> a POST/PUT body with writable fields only.

    Read-only fields (orderid, totals, orderitemid …) are dropped; money/decimal/date values are
    encoded by ``to_api``; ``additionaldata`` values are stringified because Sitoo only allows
    string values for properties it does not define (order-additionaldata-read.yaml).
    """
    raw = order.model_dump(exclude_none=True, exclude_unset=True) if isinstance(order, BaseModel) else dict(order)
    body: dict[str, Any] = {k: v for k, v in raw.items() if k in ORDER_WRITE_FIELDS and v is not None}
    if "additionaldata" in body:
        body["additionaldata"] = _string_map(body["additionaldata"])
    if "orderitems" in body:
        items = []
        for item in body["orderitems"] or []:
            item = item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else dict(item)
            clean = {k: v for k, v in item.items() if k in ORDERITEM_WRITE_FIELDS and v is not None}
            if "additionaldata" in clean:
                clean["additionaldata"] = _string_map(clean["additionaldata"])
            items.append(clean)
        body["orderitems"] = items
    if "payments" in body:
        pays = []
        for pay in body["payments"] or []:
            pay = pay.model_dump(exclude_none=True) if isinstance(pay, BaseModel) else dict(pay)
            clean = {k: v for k, v in pay.items() if k in PAYMENT_WRITE_FIELDS and v is not None}
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
