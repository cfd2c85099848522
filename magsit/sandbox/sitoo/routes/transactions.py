"""Warehouse transactions (sitoo-api.md §5): the stock history with id/date/type filters, and
POSTs of Move In / Move Out (single or a batch of up to 1000; Sales, Refund and StockTaking are
read only)."""

from __future__ import annotations

from typing import Any

from flask import Response

from magsit.sandbox.sitoo.constants import (
    MAX_TRANSACTION_BATCH,
    READ_ONLY_TRANSACTION_TYPES,
    WAREHOUSE_VIRTUAL,
)
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.http import SITE, Routes, batch, json_response, read_body
from magsit.sandbox.sitoo.query import collection, in_range, int_arg, multi_int, single, sort_rows
from magsit.sandbox.sitoo.routes.warehouses import warehouse_or_404
from magsit.sandbox.sitoo.state import SitooState
from magsit.sandbox.sitoo.validation import to_decimal

routes = Routes()


def _transactions(state: SitooState, rows: list[dict[str, Any]]) -> Response:
    low, high = int_arg("warehousetransactionidfrom"), int_arg("warehousetransactionidto")
    dlow, dhigh = int_arg("datecreatedfrom"), int_arg("datecreatedto")
    ids, types = multi_int("warehousetransactionid"), multi_int("transactiontype")
    rows = [
        t
        for t in rows
        if in_range(t["warehousetransactionid"], low, high)
        and in_range(t["datecreated"], dlow, dhigh)
        and (ids is None or t["warehousetransactionid"] in ids)
        and (types is None or t["transactiontype"] in types)
    ]
    return collection(state, sort_rows(rows, "warehousetransactionid"))


@routes.get(SITE + "/warehousetransactions.json")
def transactions(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        wid = int_arg("warehouseid")
        return _transactions(state, [t for t in state.transactions if wid is None or t["warehouseid"] == wid])


@routes.get(SITE + "/warehouses/<int:warehouseid>/warehousetransactions.json")
def warehouse_transactions(state: SitooState, accountid: int, siteid: int, warehouseid: int) -> Response:
    with state.lock:
        warehouse_or_404(state, warehouseid)
        return _transactions(state, [t for t in state.transactions if t["warehouseid"] == warehouseid])


@routes.get(SITE + "/warehouses/<int:warehouseid>/warehousetransactions/<int:transactionid>.json")
def transaction_one(
    state: SitooState, accountid: int, siteid: int, warehouseid: int, transactionid: int
) -> Response:
    with state.lock:
        for t in state.transactions:
            if t["warehousetransactionid"] == transactionid and t["warehouseid"] == warehouseid:
                return single(t)
        raise ApiError(404, f"Warehouse transaction {transactionid} not found")


@routes.post(SITE + "/warehousetransactions.json")
def transactions_post(state: SitooState, accountid: int, siteid: int) -> Response:
    body = read_body()
    if isinstance(body, list) and len(body) > MAX_TRANSACTION_BATCH:
        raise ApiError(
            400,
            f"The maximum number of items allowed for one request to this endpoint is {MAX_TRANSACTION_BATCH}.",
        )

    def add_one(raw: Any) -> int:
        if not isinstance(raw, dict):
            raise ApiError(400, "A warehouse transaction must be an object")
        wid, ttype = raw.get("warehouseid"), raw.get("transactiontype")
        if found(state.warehouses, wid, "Warehouse", 400)["warehousetype"] == WAREHOUSE_VIRTUAL:
            raise ApiError(400, "Transactions cannot be added to warehouses with warehousetype Virtual (20).")
        if not isinstance(ttype, int) or isinstance(ttype, bool) or ttype <= 0:
            raise ApiError(400, "transactiontype is required")
        if ttype in READ_ONLY_TRANSACTION_TYPES:
            raise ApiError(400, f"transactiontype {ttype} is read only (Sales, Refund and StockTaking)")
        items = raw.get("items")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "items is required")
        lines, prices = [], {}
        for n, row in enumerate(items):
            if not isinstance(row, dict) or not row.get("sku") or "decimalquantity" not in row:
                raise ApiError(400, f"items[{n}]: sku and decimalquantity are required")
            if state.product_by_sku(row["sku"]) is None:
                raise ApiError(400, f"items[{n}]: Product with sku '{row['sku']}' not found")
            lines.append((row["sku"], to_decimal(row["decimalquantity"], f"items[{n}].decimalquantity")))
            if "moneypricein" in row:
                prices[row["sku"]] = to_decimal(row["moneypricein"], f"items[{n}].moneypricein")
        tid = state._transaction(
            wid,
            ttype,
            lines,
            raw.get("description") or "",
            externalid=raw.get("externalid"),
            reasoncode=raw.get("reasoncode"),
            pricein=prices,
        )
        return int(tid or 0)

    with state.lock:
        if isinstance(body, list):
            return batch(body, add_one)
        return json_response(add_one(body))
