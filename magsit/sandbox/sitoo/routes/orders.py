"""Orders (sitoo-api.md §6): the filtered list (account level and its deprecated site twin), create,
read, partial update, deliveries and order log items."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from magsit.sandbox.sitoo.constants import ORDER_DEFAULT_FIELDS
from magsit.sandbox.sitoo.errors import found
from magsit.sandbox.sitoo.http import BASE, SITE, Routes, json_response, read_body
from magsit.sandbox.sitoo.query import collection, in_range, int_arg, multi, multi_int, single, sort_rows
from magsit.sandbox.sitoo.state import SitooState

routes = Routes()


@routes.get(BASE + "/orders.json")
def orders(state: SitooState, accountid: int) -> Response:
    with state.lock:
        id_low, id_high = int_arg("orderidfrom"), int_arg("orderidto")
        d_low, d_high = int_arg("orderdatefrom"), int_arg("orderdateto")
        states, pstates, otypes = (
            multi_int("orderstate"),
            multi_int("paymentstate"),
            multi_int("ordertype"),
        )
        externalids, ids, eshops = multi("externalid"), multi_int("orderid"), multi_int("eshopid")
        creditorderid, warehouseid = int_arg("creditorderid"), int_arg("warehouseid")
        receiptid, email = request.args.get("receiptid"), request.args.get("email")
        if creditorderid is not None:
            ids = None  # "If this parameter is used, it will override the orderid parameter."
        ext_set = None if externalids is None else set(externalids)
        id_set = None if ids is None else set(ids)
        rows = [
            o
            for oid, o in state.orders.items()
            if in_range(oid, id_low, id_high)
            and in_range(o["orderdate"], d_low, d_high)
            and (states is None or o["orderstateid"] in states)
            and (pstates is None or o["paymentstateid"] in pstates)
            and (otypes is None or o["ordertypeid"] in otypes)
            and (ext_set is None or o["externalid"] in ext_set)
            and (id_set is None or oid in id_set)
            and (eshops is None or o["eshopid"] in eshops)
            and (creditorderid is None or o["creditorderid"] == creditorderid)
            and (warehouseid is None or o["warehouseid"] == warehouseid)
            and (receiptid is None or o["additionaldata"].get("pos-receiptid") == receiptid)
            and (email is None or o["email"] == email)
        ]
        # Filter and sort the stored orders, render only the page (the same answer, far less copying).
        return collection(
            state,
            sort_rows(rows, "orderid"),
            ORDER_DEFAULT_FIELDS,
            render=lambda o: state.render_order(o["orderid"]),
        )


@routes.get(SITE + "/orders.json")
def site_orders(state: SitooState, accountid: int, siteid: int) -> Response:
    return orders(state, accountid)  # deprecated twin of GET /orders.json (§3)


@routes.post(SITE + "/orders.json")
def orders_post(state: SitooState, accountid: int, siteid: int) -> Response:
    return json_response(state.create_order(read_body()))


def _order(state: SitooState, orderid: int) -> dict[str, Any]:
    return found(state.orders, orderid, "Order")


@routes.get(SITE + "/orders/<int:orderid>.json")
def order_one(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    with state.lock:
        _order(state, orderid)
        return single(state.render_order(orderid))


@routes.put(SITE + "/orders/<int:orderid>.json")
def order_put(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    state.update_order(orderid, read_body())
    return json_response(True)


@routes.get(SITE + "/orders/<int:orderid>/orderdeliveries.json")
def deliveries(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    with state.lock:
        _order(state, orderid)
        rows = [d for k, d in sorted(state.deliveries.items()) if d["orderid"] == orderid]
        return collection(state, rows)


@routes.post(SITE + "/orders/<int:orderid>/orderdeliveries.json")
def deliveries_post(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    ignorestock = request.args.get("ignorestock", "false") == "true"
    return json_response(state.add_delivery(orderid, read_body(), ignorestock=ignorestock))


@routes.get(SITE + "/orders/<int:orderid>/orderlogitems.json")
def logitems(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    with state.lock:
        _order(state, orderid)
        return collection(state, list(state.orderlogitems.get(orderid, [])))


@routes.post(SITE + "/orders/<int:orderid>/orderlogitems.json")
def logitems_post(state: SitooState, accountid: int, siteid: int, orderid: int) -> Response:
    state.add_orderlogitem(orderid, read_body())
    return json_response(True)
