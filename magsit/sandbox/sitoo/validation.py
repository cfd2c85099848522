"""Checks on write bodies, with Sitoo's error texts: externalid and sku patterns, decimals,
``additionaldata``, order lines, payments and product fields (sitoo-api.md §4, §6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from magsit.sandbox.sitoo.constants import CENT, VAT_RATES
from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.formats import dec3, money

EXTERNALID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
SKU_RE = re.compile(r"^[A-Za-z0-9_+\-/]+$")


def to_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ApiError(400, f"{what} must be a decimal value")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApiError(400, f"{what} is not a valid decimal: {value!r}") from None
    if not result.is_finite():
        raise ApiError(400, f"{what} is not a valid decimal: {value!r}")
    return result


def check_additionaldata(data: Any, what: str) -> None:
    # "any other properties are allowed as long as their values are of type string"
    if not isinstance(data, dict):
        raise ApiError(400, f"{what} must be an object")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ApiError(400, f"{what}.{key} must be a string")


def check_externalid(externalid: Any) -> None:
    """The order ``externalid`` pattern ("can only contain [A-Za-z0-9_-] with a length of 1-40", §6)."""
    if not isinstance(externalid, str) or not EXTERNALID_RE.match(externalid):
        raise ApiError(400, "externalid can only contain [A-Za-z0-9_-] with a length of 1-40 characters")


def order_item(
    index: int, raw: dict[str, Any], product_by_sku: Callable[[str], dict[str, Any] | None]
) -> dict[str, Any]:
    """One line of an order-write body as the order read model stores it (sitoo-api.md §6)."""
    if not isinstance(raw, dict):
        raise ApiError(400, f"orderitems[{index}] must be an object")
    if not raw.get("productname"):
        raise ApiError(400, f"orderitems[{index}]: productname is required")
    qty = raw.get("quantity")
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise ApiError(400, f"orderitems[{index}]: quantity is required and must be an integer")
    sku = raw.get("sku")
    productid = None
    if sku:
        product = product_by_sku(sku)
        if product is None:
            raise ApiError(400, f"orderitems[{index}]: Product with sku '{sku}' not found")
        productid = product["productid"]
        default_vat = product["vatvalue"]
    else:
        default_vat = 25
    vat = to_decimal(raw.get("vatvalue", default_vat), f"orderitems[{index}].vatvalue")
    rowprice = to_decimal(raw.get("moneyrowprice", "0"), f"orderitems[{index}].moneyrowprice")
    rowdiscount = to_decimal(raw.get("moneyrowdiscount", "0"), f"orderitems[{index}].moneyrowdiscount")
    additional = raw.get("additionaldata") or {}
    check_additionaldata(additional, f"orderitems[{index}].additionaldata")
    # moneyrowprice is the gross row total before discount, moneyrowdiscount a gross amount
    # (the reference derives this from the official example arithmetic, §6).
    divisor = 1 + vat / 100
    gross = rowprice - rowdiscount
    net = (gross / divisor).quantize(CENT, rounding=ROUND_HALF_UP)
    net_before = (rowprice / divisor).quantize(CENT, rounding=ROUND_HALF_UP)
    per = Decimal(abs(qty)) if qty else Decimal(1)
    item = {
        "orderitemid": index,
        "orderitemtype": raw.get("orderitemtype", 10),
        "productid": productid,
        "productname": raw["productname"],
        "sku": sku,
        "productattributes": raw.get("productattributes", ""),
        "externalinput": raw.get("externalinput", ""),
        "externalinputtitle": raw.get("externalinputtitle", ""),
        "unitlabel": raw.get("unitlabel", ""),
        "quantity": qty,
        "decimalunitquantity": raw.get("decimalunitquantity"),
        "moneynetpriceperunit": money(abs(net) / per),
        "moneypriceorg": money(raw.get("moneypriceorg", "0")),
        "vatvalue": int(vat) if vat == vat.to_integral_value() else float(vat),
        "deliveryinfo": raw.get("deliveryinfo", ""),
        "moneyitemtotal_net": money(net),
        "moneyitemtotal_vat": money(gross - net),
        "voucherid": 0,
        "vouchercode": raw.get("vouchercode", ""),
        "vouchername": raw.get("vouchername", ""),
        "moneyoriginalprice": money(abs(net_before) / per),
        "moneydiscountedprice": money(abs(net) / per) if rowdiscount else "0.00",
        "moneydiscount": money(abs(net_before - net) / per),
        "salestaxes": raw.get("salestaxes", []),
        "additionaldata": dict(additional),
        "decimalquantitytotal": dec3(qty),
        "moneynetpriceperquantity": money(abs(net) / per),
    }
    if rowdiscount:
        item["additionaldata"].setdefault("orderitem-moneyrowdiscount", money(rowdiscount))
    return item


def order_payment(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ApiError(400, f"payments[{index}]: name and moneyamount are required")
    additional = raw.get("additionaldata") or {}
    check_additionaldata(additional, f"payments[{index}].additionaldata")
    return {
        "name": raw["name"],
        "moneyamount": money(to_decimal(raw.get("moneyamount", "0"), f"payments[{index}].moneyamount")),
        "externalid": raw.get("externalid"),
        "reftype": raw.get("reftype"),
        "refid": raw.get("refid"),
        "cardissuer": raw.get("cardissuer"),
        "additionaldata": dict(additional),
        "reservedpaymentid": raw.get("reservedpaymentid"),
    }


def product_changes(
    raw: dict[str, Any], productid: int | None, product_by_sku: Callable[[str], dict[str, Any] | None]
) -> dict[str, Any]:
    """The stored fields a product POST/PUT body sets (read-only ones dropped, money normalised)."""
    changes = {
        k: v
        for k, v in raw.items()
        if k not in ("productid", "datecreated", "datemodified", "moneyfinalprice")
    }
    if "sku" in changes:
        sku = changes["sku"]
        if not isinstance(sku, str) or not SKU_RE.match(sku):
            raise ApiError(400, "sku should only contain [A-Za-z0-9_+-/]")
        other = product_by_sku(sku)
        if other is not None and other["productid"] != productid:
            raise ApiError(400, f"A product with sku '{sku}' already exists")
    for key in ("moneyprice", "moneypriceorg", "moneypricein"):
        if key in changes:
            changes[key] = money(to_decimal(changes[key], key))
    if "moneyprice" in changes:
        changes["moneyfinalprice"] = changes["moneyprice"]
    if "vatid" in changes:
        changes["vatvalue"] = int(VAT_RATES.get(changes["vatid"], Decimal(25)))
    return changes
