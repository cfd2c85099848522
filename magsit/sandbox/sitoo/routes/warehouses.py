"""Warehouses and their items (sitoo-api.md §5): stock levels read with ``datelastmodified`` and
``sku`` filters; a PUT sets bin location / threshold, and the level only in a Virtual warehouse."""

from __future__ import annotations

from typing import Any

from flask import Response

from magsit.sandbox.sitoo.constants import WAREHOUSE_VIRTUAL
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.formats import item_renderer
from magsit.sandbox.sitoo.http import SITE, Routes, batch, read_body
from magsit.sandbox.sitoo.query import collection, in_range, int_arg, multi, single
from magsit.sandbox.sitoo.state import SitooState
from magsit.sandbox.sitoo.validation import to_decimal

routes = Routes()


def warehouse_or_404(state: SitooState, warehouseid: int) -> dict[str, Any]:
    return found(state.warehouses, warehouseid, "Warehouse")


@routes.get(SITE + "/warehouses.json")
def warehouses(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        return collection(state, [state.warehouses[k] for k in sorted(state.warehouses)])


@routes.get(SITE + "/warehouses/<int:warehouseid>.json")
def warehouse_one(state: SitooState, accountid: int, siteid: int, warehouseid: int) -> Response:
    with state.lock:
        return single(warehouse_or_404(state, warehouseid))


@routes.get(SITE + "/warehouses/<int:warehouseid>/warehouseitems.json")
def warehouseitems(state: SitooState, accountid: int, siteid: int, warehouseid: int) -> Response:
    with state.lock:
        warehouse_or_404(state, warehouseid)
        low, high = int_arg("datelastmodifiedfrom"), int_arg("datelastmodifiedto")
        skus = multi("sku")
        wanted = None if skus is None else set(skus)
        rows = state.items_of(warehouseid)
        if low is not None or high is not None or wanted is not None:
            rows = [
                it for it in rows
                if in_range(it["datelastmodified"], low, high) and (wanted is None or it["sku"] in wanted)
            ]  # fmt: skip
        fields = multi("fields")
        return collection(state, rows, render=state.render_item if fields is None else item_renderer(fields))


@routes.put(SITE + "/warehouses/<int:warehouseid>/warehouseitems.json")
def warehouseitems_put(state: SitooState, accountid: int, siteid: int, warehouseid: int) -> Response:
    body = read_body()
    if not isinstance(body, list):
        raise ApiError(400, "The request body must be an array of warehouse items")
    with state.lock:
        warehouse = warehouse_or_404(state, warehouseid)

        def put_one(raw: Any) -> int:
            if not isinstance(raw, dict) or not raw.get("sku"):
                raise ApiError(400, "sku is required")
            sku = raw["sku"]
            if state.product_by_sku(sku) is None:
                raise ApiError(400, f"Product with sku '{sku}' not found")
            setting_level = "decimaltotal" in raw or "moneytotal" in raw
            if setting_level and warehouse["warehousetype"] != WAREHOUSE_VIRTUAL:
                # "(Read Only if not warehousetype Virtual)"
                raise ApiError(
                    400, "decimaltotal and moneytotal are read only unless warehousetype is Virtual (20)"
                )
            total = to_decimal(raw["decimaltotal"], "decimaltotal") if "decimaltotal" in raw else None
            it = state._item(warehouseid, sku)
            if "binlocation" in raw:
                it["binlocation"] = raw["binlocation"] or ""
            if "decimalthreshold" in raw:
                it["decimalthreshold"] = to_decimal(raw["decimalthreshold"], "decimalthreshold")
            if "moneytotal" in raw:
                it["moneytotal"] = to_decimal(raw["moneytotal"], "moneytotal")
            if total is not None and total != it["decimaltotal"]:
                it["decimaltotal"] = total
                it["datelastmodified"] = state.clock()
            return int(it["warehouseitemid"])

        return batch(body, put_one)
