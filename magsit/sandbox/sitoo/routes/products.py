"""Products (sitoo-api.md §4): list with filters, add and update one or in batches."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Response, request

from magsit.sandbox.sitoo.constants import PRODUCT_DEFAULT_FIELDS
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.http import SITE, Routes, batch_update, json_response, one_or_batch, read_body
from magsit.sandbox.sitoo.query import collection, int_arg, multi, multi_int, single
from magsit.sandbox.sitoo.state import SitooState
from magsit.sandbox.sitoo.validation import product_changes

routes = Routes()


def _product_add(state: SitooState, raw: Any) -> int:
    if not isinstance(raw, dict) or not raw.get("sku"):
        raise ApiError(400, "sku is required")
    changes = product_changes(raw, None, state.product_by_sku)
    sku = changes.pop("sku")
    title = changes.pop("title", "")
    price = changes.pop("moneyprice", "0")
    changes.pop("moneyfinalprice", None)
    return state.add_product(sku, title, price, **changes)


def _product_update(state: SitooState, productid: Any, raw: dict[str, Any]) -> bool:
    product = found(state.products, productid, "Product")
    product.update(product_changes(raw, productid, state.product_by_sku))
    product["datemodified"] = state.clock()
    return True


@routes.get(SITE + "/products.json")
def products(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        inactive = request.args.get("includeinactive", "false")
        if inactive not in ("true", "false"):
            raise ApiError(400, "includeinactive must be true or false")
        skus, ids = multi("sku"), multi_int("productid")
        since = int_arg("datelastmodified")
        rows = [
            state.products[k]
            for k in sorted(state.products)
            if (inactive == "true" or state.products[k]["active"])
            and (skus is None or state.products[k]["sku"] in skus)
            and (ids is None or k in ids)
            # "Include products that have been modified after the timestamp provided."
            and (since is None or state.products[k]["datemodified"] > since)
        ]
        return collection(state, rows, PRODUCT_DEFAULT_FIELDS)


@routes.post(SITE + "/products.json")
def products_post(state: SitooState, accountid: int, siteid: int) -> Response:
    body = read_body()
    with state.lock:
        return one_or_batch(body, partial(_product_add, state))


@routes.put(SITE + "/products.json")
def products_put(state: SitooState, accountid: int, siteid: int) -> Response:
    body = read_body()
    with state.lock:
        return batch_update(body, "products", "productid", partial(_product_update, state))


@routes.get(SITE + "/products/<int:productid>.json")
def product_one(state: SitooState, accountid: int, siteid: int, productid: int) -> Response:
    with state.lock:
        return single(found(state.products, productid, "Product"))


@routes.put(SITE + "/products/<int:productid>.json")
def product_put(state: SitooState, accountid: int, siteid: int, productid: int) -> Response:
    body = read_body()
    if not isinstance(body, dict):
        raise ApiError(400, "The product must be a JSON object")
    with state.lock:
        return json_response(_product_update(state, productid, body))
