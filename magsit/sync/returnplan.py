"""sync-returns, pure part: which Sitoo orders are store returns of pushed web orders, the Magento
credit memo each becomes, and the Sitoo refund order a Magento credit memo becomes. No I/O.

Facts used (references): a Sitoo refund is a normal order with negative quantities and amounts
that names the original sale in ``creditorderid`` and/or ``additionaldata.pos-originalsales-orderid``,
per line ``additionaldata.pos-originalsales-orderitemid`` (sitoo-api §8). A Magento offline credit
memo (``POST /V1/order/{id}/refund``) names *parent* order items (P18), always carries
``arguments.shipping_amount`` (omitted = all remaining shipping refunded, P39) and puts nothing back
to stock (Sitoo owns stock, P40).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from magsit.errors import RecordError
from magsit.sync.orderpayload import fmt_money, money, sanitise_externalid, vat_number
from magsit.values import additional_data

# Order-level additionaldata key on Sitoo refund orders magsit creates from Magento credit memos:
# the store-return sweep skips them (P49: no echo back into Magento as a second credit memo).
EXPORT_MARKER = "web-creditmemo-id"
# Text in the comment of credit memos magsit creates: found again by the check-before-create, and
# the Magento -> Sitoo direction skips them (P49).
MEMO_MARKER = "magsit: Sitoo refund order"
CENT = Decimal("0.01")


def memo_comment(refund_orderid: int, receipt: str | None = None) -> str:
    tail = f" (receipt {receipt})" if receipt else ""
    return f"Returned in store. {MEMO_MARKER} {int(refund_orderid)}{tail}"


def original_orderid(order: dict[str, Any]) -> int | None:
    """The sale a Sitoo refund order refunds: ``creditorderid``, else ``pos-originalsales-orderid``."""
    for value in (order.get("creditorderid"), additional_data(order).get("pos-originalsales-orderid")):
        try:
            if value not in (None, "", 0, "0"):
                return int(value)
        except (TypeError, ValueError, OverflowError):
            continue
    return None


def is_store_return(order: dict[str, Any]) -> bool:
    """A refund order made in Sitoo (not one magsit exported from a Magento credit memo)."""
    if EXPORT_MARKER in additional_data(order):
        return False
    if original_orderid(order) is None:
        return False
    return any(_int(item.get("quantity")) < 0 for item in order.get("orderitems") or [])


@dataclass
class CreditMemoPlan:
    refund_orderid: int
    increment_id: str
    entity_id: int
    items: dict[int, int]  # Magento parent order_item_id -> qty
    shipping_amount: Decimal
    comment: str
    part: int = 0  # 0: the whole return in one credit memo; k: the k-th memo of a return split by the input limit

    def describe(self) -> dict[str, Any]:
        return {
            "action": "creditmemo",
            "sitoo_refund_orderid": self.refund_orderid,
            "increment_id": self.increment_id,
            "items": {str(k): v for k, v in self.items.items()},
            "shipping_amount": str(self.shipping_amount),
        }


def part_label(part: int) -> str:
    return f"(part {part})"


def next_memo_part(plan: CreditMemoPlan, done: list[dict[str, Any]], limit: int) -> CreditMemoPlan | None:
    """The next credit memo of a store return, given the parts already in Magento (``done``: their
    ``items`` and ``shipping``), or None when the return is refunded in full.

    Magento refuses body arrays over the shop's input list limit (magento-api.md §5.1), so a return
    of more lines becomes several credit memos of at most ``limit`` items (lowest item ids first),
    each labelled "(part k)". Shipping goes with the first part only, so the memos add up to what one
    memo would have refunded.
    """
    left = dict(plan.items)
    for part in done:
        for item_id, qty in (part.get("items") or {}).items():
            left[int(item_id)] = left.get(int(item_id), 0) - int(qty)
    left = {item_id: qty for item_id, qty in sorted(left.items()) if qty > 0}
    shipping = Decimal(0) if any(Decimal(str(p.get("shipping") or 0)) > 0 for p in done) else plan.shipping_amount
    if not left and not shipping:
        return None
    size = max(1, limit)
    chunk = dict(list(left.items())[:size])
    number = len(done) + 1
    split = number > 1 or len(left) > size
    return CreditMemoPlan(plan.refund_orderid, plan.increment_id, plan.entity_id, chunk, shipping,
                          f"{plan.comment} {part_label(number)}" if split else plan.comment,
                          number if split else 0)  # fmt: skip


def plan_creditmemo(
    refund: dict[str, Any],
    increment_id: str,
    order_data: dict[str, Any],
    *,
    shipping_sku: str = "SHIPPING",
    shipping_left: Decimal | None = None,
) -> CreditMemoPlan | RecordError | None:
    """The credit memo for one store return of the pushed order ``increment_id``.

    ``order_data`` is the order mapping's data (entity_id, lines with item_id / ship_item_id /
    per_parent / sku / qty / sitoo_orderitemid). ``shipping_left`` is the remaining refundable
    shipping when ``[returns].refund_shipping`` is on, else None (shipping_amount 0).
    Returns None when the return holds nothing Magento can refund (e.g. only a service line).
    """
    refund_id = int(refund["orderid"])
    key = f"sitoo-refund-{refund_id}"
    lines = list(order_data.get("lines") or [])
    by_sitoo = {str(line.get("sitoo_orderitemid")): line for line in lines if line.get("sitoo_orderitemid") is not None}
    child_units: dict[int, int] = {}  # Magento item_id -> returned units
    for item in refund.get("orderitems") or []:
        qty = -_int(item.get("quantity"))
        if qty <= 0:
            continue  # an exchange's new purchase on the same receipt is not part of the return
        extra = item.get("additionaldata")
        source = extra.get("pos-originalsales-orderitemid") if isinstance(extra, dict) else None
        line = by_sitoo.get(str(source)) if source is not None else None
        if line is None and item.get("sku"):
            # Manual return (no original receipt line): the SKU on the original order, if unambiguous.
            same = [ln for ln in lines if str(ln.get("sku")) == str(item["sku"])]
            line = same[0] if len(same) == 1 else None
        if line is None:
            if str(item.get("sku") or "") == shipping_sku or additional_data(item).get("web-line") == "shipping":
                continue  # shipping is governed by [returns].refund_shipping, not by the line
            return RecordError(
                "refund_unmapped_item",
                "finance",
                key,
                f"store return {refund_id} of web order {increment_id} holds {item.get('productname') or item.get('sku')!r} "
                f"(sku {item.get('sku')!r}), which is not a line of the order magsit pushed; refund that line in the "
                "Magento admin by hand, then resolve this exception",
                {"orderitem": {k: item.get(k) for k in ("orderitemid", "sku", "quantity", "additionaldata")}},
            )
        item_id = int(line["item_id"])
        child_units[item_id] = child_units.get(item_id, 0) + qty
    parents: dict[int, int] = {}
    for line in lines:
        units = child_units.get(int(line["item_id"]))
        if not units:
            continue
        per_parent = max(1, _int(line.get("per_parent")) or 1)
        parent = int(line.get("ship_item_id") or line["item_id"])
        if units % per_parent:
            return RecordError(
                "refund_unmapped_item",
                "finance",
                key,
                f"store return {refund_id} of web order {increment_id} returns {units} unit(s) of bundle part "
                f"{line.get('sku')!r}, which is not a whole number of bundles ({per_parent} per bundle); Magento "
                "refunds bundles only whole: refund it by hand in the Magento admin, then resolve this exception",
            )
        # Every part of a bundle says the same parent quantity; take it once, not once per part.
        parents[parent] = max(parents.get(parent, 0), units // per_parent)
    shipping = max(Decimal(0), shipping_left) if shipping_left is not None else Decimal(0)
    if not parents and not shipping:
        return None
    receipt = additional_data(refund).get("pos-receiptid")
    return CreditMemoPlan(refund_id, increment_id, int(order_data["entity_id"]), parents, shipping,
                          memo_comment(refund_id, receipt))  # fmt: skip


def memo_matches(memo: dict[str, Any], plan: CreditMemoPlan) -> bool:
    """Is this existing credit memo the one an earlier, unconfirmed attempt created?

    The comment marker decides when the memo carries comments; a list read may omit them, so
    otherwise the exact item quantities (and the caller restricts to memos magsit has not mapped).
    """
    comments = " ".join(str(c.get("comment") or "") for c in memo.get("comments") or [] if isinstance(c, dict))
    if MEMO_MARKER in comments:
        labelled = part_label(plan.part) in comments if plan.part else "(part " not in comments
        return f"{MEMO_MARKER} {plan.refund_orderid}" in comments and labelled
    quantities: dict[int, int] = {}
    for item in memo.get("items") or []:
        qty = _int(item.get("qty"))
        if qty and int(item.get("order_item_id") or 0) in plan.items:
            quantities[int(item["order_item_id"])] = quantities.get(int(item["order_item_id"]), 0) + qty
    return quantities == plan.items


def is_magsit_memo(memo: dict[str, Any]) -> bool:
    return any(MEMO_MARKER in str(c.get("comment") or "") for c in memo.get("comments") or [] if isinstance(c, dict))


# -- Magento credit memo -> Sitoo refund order --------------------------------------------------
@dataclass
class SitooRefundPlan:
    creditmemo_id: int
    creditmemo_increment: str
    increment_id: str  # the order's
    externalid: str
    payload: dict[str, Any]
    deliver: list[tuple[int, int]] = field(default_factory=list)  # (orderitem index, qty) to put back to stock

    def describe(self) -> dict[str, Any]:
        return {
            "action": "sitoo_refund",
            "creditmemo": self.creditmemo_increment,
            "increment_id": self.increment_id,
            "externalid": self.externalid,
            "return_to_stock": bool(self.deliver),
            "lines": [
                {"sku": i.get("sku"), "quantity": i["quantity"], "moneyrowprice": i["moneyrowprice"]}
                for i in self.payload["orderitems"]
            ],
        }


def creditmemo_externalid(prefix: str, memo_increment: str) -> str:
    """``<orders prefix>CM-<creditmemo increment_id>`` fitted to ``[A-Za-z0-9_-]{1,40}`` (P17).

    ``CM-`` keeps it apart from the order externalids (order and credit memo increment ids are
    separate sequences that overlap: both start at 000000001)."""
    return sanitise_externalid(f"{prefix}CM-", str(memo_increment))


def _gross(item: dict[str, Any]) -> Decimal:
    if item.get("row_total_incl_tax") is not None:
        gross = money(item.get("row_total_incl_tax"))
    else:
        gross = money(item.get("row_total")) + money(item.get("tax_amount"))
    return gross - money(item.get("discount_amount"))


def _rate(net: Decimal, tax: Decimal) -> Decimal:
    return (tax / net * 100).quantize(CENT, ROUND_HALF_UP) if net else Decimal(0)


def plan_sitoo_refund(
    memo: dict[str, Any],
    increment_id: str,
    sitoo_orderid: int,
    order_data: dict[str, Any],
    *,
    externalid_prefix: str = "",
    return_to_stock: bool = False,
) -> SitooRefundPlan | RecordError:
    memo_id = int(memo["entity_id"])
    memo_inc = str(memo.get("increment_id") or memo_id)
    key = f"creditmemo-{memo_inc}"
    lines = list(order_data.get("lines") or [])
    by_parent: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        by_parent.setdefault(int(line.get("ship_item_id") or line["item_id"]), []).append(line)
    memo_items = {_int(i.get("order_item_id")): i for i in memo.get("items") or []}
    items: list[dict[str, Any]] = []
    deliver: list[tuple[int, int]] = []
    covered: set[int] = set()
    for parent_id, parts in by_parent.items():
        memo_item = memo_items.get(parent_id)
        qty = _int(memo_item.get("qty")) if memo_item else 0
        if qty <= 0:
            continue
        covered.add(parent_id)
        parent_gross = _gross(memo_item) if memo_item else Decimal(0)
        for n, part in enumerate(parts):
            part_id = int(part["item_id"])
            own = memo_items.get(part_id) if part_id != parent_id else None
            if own is not None:
                covered.add(part_id)
            if part_id == parent_id:
                source, gross = memo_item, parent_gross
            elif own is not None and _gross(own):
                source, gross = own, _gross(own)  # dynamic-price bundle: the money is on the part
            else:
                # A part without its own money: the parent's row goes on the first part only.
                source, gross = memo_item, (parent_gross if n == 0 else Decimal(0))
            units = qty * max(1, _int(part.get("per_parent")) or 1)
            entry: dict[str, Any] = {
                "orderitemtype": 10,
                "productname": str((source or {}).get("name") or part.get("sku")),
                "sku": str(part.get("sku")),
                "quantity": -units,
                "moneyrowprice": fmt_money(-gross.quantize(CENT, ROUND_HALF_UP)),
                "vatvalue": vat_number(_rate(money((source or {}).get("row_total")), money((source or {}).get("tax_amount")))),
                "additionaldata": {"web-itemid": str(part["item_id"])},
            }
            if part.get("sitoo_orderitemid") is not None:
                # Sitoo's validated-return logic counts returned units by this key: a store cannot
                # refund these units a second time at the till.
                entry["additionaldata"]["pos-originalsales-orderitemid"] = str(part["sitoo_orderitemid"])
            deliver.append((len(items), -units))
            items.append(entry)
    for order_item_id, memo_item in memo_items.items():
        if order_item_id in covered or _int(memo_item.get("qty")) <= 0:
            continue
        if memo_item.get("parent_item_id") or not _gross(memo_item):
            continue  # a configurable's child row (price 0): its parent line carries the money
        return RecordError(
            "creditmemo_unmapped_item",
            "finance",
            key,
            f"credit memo {memo_inc} of order {increment_id} refunds {memo_item.get('sku')!r} (order item "
            f"{order_item_id}), which is not a line of the order magsit pushed to Sitoo; record this refund in Sitoo "
            "by hand, then resolve this exception",
        )
    ship_net, ship_tax = money(memo.get("shipping_amount")), money(memo.get("shipping_tax_amount"))
    ship_gross = money(memo.get("shipping_incl_tax")) or (ship_net + ship_tax)
    if ship_gross > 0:
        items.append({"orderitemtype": 10, "productname": "Shipping refund", "quantity": -1,
                      "moneyrowprice": fmt_money(-ship_gross), "vatvalue": vat_number(_rate(ship_net, ship_tax)),
                      "additionaldata": {"web-line": "shipping"}})  # fmt: skip
    adjustment = money(memo.get("adjustment_positive")) - money(memo.get("adjustment_negative"))
    if adjustment:
        # Positive = more money back to the customer (a refund line), negative = a fee kept (a charge).
        items.append({"orderitemtype": 10, "productname": "Refund adjustment", "quantity": -1 if adjustment > 0 else 1,
                      "moneyrowprice": fmt_money(-adjustment), "vatvalue": 0,
                      "additionaldata": {"web-line": "adjustment"}})  # fmt: skip
    if not items:
        return RecordError("creditmemo_unmapped_item", "finance", key,
                           f"credit memo {memo_inc} of order {increment_id} refunds nothing magsit can show in Sitoo "
                           "(no items, shipping or adjustment); nothing to do — resolve this exception")  # fmt: skip
    externalid = creditmemo_externalid(externalid_prefix, memo_inc)
    additional = {
        EXPORT_MARKER: str(memo_id),
        "web-creditmemo-incrementid": memo_inc,
        "magento-order-id": str(increment_id),
        "weborder": "true",
    }
    if not return_to_stock:
        # Sitoo is the stock master and the goods did not come back through a store: if staff
        # ever deliver this order, it must not move stock.
        additional["delivery-ignore-stock"] = "true"
    payload: dict[str, Any] = {
        "ordertypeid": 10,
        "externalid": externalid,
        "creditorderid": int(sitoo_orderid),
        "paymentstateid": 20,  # the money went back through Magento's payment already
        # Closed at once unless goods go back to stock: then it stays open until its delivery.
        "orderstateid": 0 if return_to_stock else 10,
        "additionaldata": additional,
        "orderitems": items,
        "comment": f"Magento credit memo {memo_inc} of order {increment_id}",
    }
    if order_data.get("warehouse_id") is not None:
        payload["warehouseid"] = int(order_data["warehouse_id"])
    if order_data.get("email"):
        payload["email"] = str(order_data["email"])
    return SitooRefundPlan(memo_id, memo_inc, str(increment_id), externalid, payload,
                           deliver if return_to_stock else [])  # fmt: skip


def _int(value: Any) -> int:
    try:
        return int(Decimal(str(value)))
    except Exception:  # None, "", garbage: no quantity
        return 0
