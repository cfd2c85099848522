"""The sandbox's own API under ``/_sandbox/`` (not logged, not faulted): faults, the request log and
latency (bound to the ``Control``), and scenarios (bound to the state): till sales, deliveries,
cancellations, store returns, stock edits, a snapshot of everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Response, request

from magsit.sandbox.common import Control
from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.formats import dec3
from magsit.sandbox.sitoo.http import Routes, json_response
from magsit.sandbox.sitoo.state import SitooState

control_routes = Routes()
scenario_routes = Routes()


def _scenario(fn: Callable[[dict[str, Any]], Any]) -> Response:
    raw = request.get_data()
    payload = json.loads(raw) if raw else {}
    try:
        return json_response(fn(payload))
    except (KeyError, ValueError, TypeError) as exc:
        raise ApiError(400, f"{type(exc).__name__}: {exc}") from None


@control_routes.post("/_sandbox/faults")
def faults_add(control: Control) -> Response:
    def add(p: dict[str, Any]) -> dict[str, Any]:
        fault = control.add_fault(**p)
        return {"kind": fault.kind, "method": fault.method, "path": fault.path, "times": fault.times}

    return _scenario(add)


@control_routes.delete("/_sandbox/faults")
def faults_clear(control: Control) -> Response:
    control.clear_faults()
    return json_response(True)


@control_routes.get("/_sandbox/requests")
def requests_log(control: Control) -> Response:
    with control.lock:
        return json_response([r.as_dict() for r in control.requests])


@control_routes.delete("/_sandbox/requests")
def requests_clear(control: Control) -> Response:
    control.clear_log()
    return json_response(True)


@control_routes.post("/_sandbox/latency")
def latency(control: Control) -> Response:
    return _scenario(lambda p: setattr(control, "latency", float(p.get("seconds", 0))) or True)


@scenario_routes.post("/_sandbox/pos-sale")
def scenario_pos_sale(state: SitooState) -> Response:
    return _scenario(
        lambda p: {
            "orderid": state.pos_sale(
                p["registerid"], p["lines"], p.get("payment", "Card"), p.get("email"), p.get("orderdate")
            )
        }
    )


@scenario_routes.post("/_sandbox/deliver")
def scenario_deliver(state: SitooState) -> Response:
    return _scenario(
        lambda p: {
            "orderdeliveryid": state.deliver(
                p["orderid"],
                [tuple(i) for i in p["items"]] if p.get("items") is not None else None,
                p.get("ref"),
                p.get("warehouseid"),
            )
        }
    )


@scenario_routes.post("/_sandbox/cancel")
def scenario_cancel(state: SitooState) -> Response:
    return _scenario(lambda p: state.cancel_order(p["orderid"]) or True)


@scenario_routes.post("/_sandbox/store-return")
def scenario_return(state: SitooState) -> Response:
    return _scenario(
        lambda p: {
            "orderid": state.store_return(
                p.get("original_orderid", p.get("orderid")),
                p["lines"],
                p.get("registerid"),
                p.get("payment", "Card"),
            )
        }
    )


@scenario_routes.post("/_sandbox/stock")
def scenario_stock(state: SitooState) -> Response:
    def edit(p: dict[str, Any]) -> dict[str, Any]:
        if "total" in p:
            state.set_stock(p["warehouseid"], p["sku"], p["total"])
        else:
            state.adjust_stock(p["warehouseid"], p["sku"], p["delta"], p.get("transactiontype"))
        item = state.item(p["warehouseid"], p["sku"])
        return {k: (dec3(v) if isinstance(v, Decimal) else v) for k, v in item.items()}

    return _scenario(edit)


@scenario_routes.get("/_sandbox/state")
def scenario_state(state: SitooState) -> Response:
    return json_response(state.snapshot())
