"""The control and scenario API of the emulator (``/_sandbox/...``): faults, request log, latency,
config knobs, and shortcuts that put orders, products, customers and stock into the shop. Neither
logged nor faulted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from magsit.sandbox.common import Control
from magsit.sandbox.magento.errors import ApiError
from magsit.sandbox.magento.state import MagentoState

CONFIG_KNOBS = ("token", "bearer_enabled", "allow_encoded_slashes", "input_limits", "list_limit", "max_page_size", "default_page_size", "allow_backorders", "currency",
                "shipping_display_incl_tax")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json; charset=utf-8", headers=headers)


def add_control_routes(app: Flask, state: MagentoState, control: Control) -> None:
    """Register the ``/_sandbox`` routes on ``app``."""

    def payload() -> Any:
        return request.get_json(silent=True) or {}

    def guarded(fn: Callable[[], Any]) -> Response:
        try:
            with state.lock:
                return json_response(200, fn())
        except (KeyError, TypeError, ValueError, ApiError) as exc:
            return json_response(400, {"message": str(exc)})

    @app.post("/_sandbox/faults")
    def add_fault() -> Response:
        return guarded(lambda: control.add_fault(**payload()).__dict__)

    @app.delete("/_sandbox/faults")
    def clear_faults() -> Response:
        control.clear_faults()
        return json_response(200, True)

    @app.get("/_sandbox/requests")
    def list_requests() -> Response:
        return json_response(200, [r.as_dict() for r in control.calls()])

    @app.delete("/_sandbox/requests")
    def clear_requests() -> Response:
        control.clear_log()
        return json_response(200, True)

    @app.post("/_sandbox/latency")
    def set_latency() -> Response:
        control.latency = float(payload().get("seconds") or 0)
        return json_response(200, {"seconds": control.latency})

    @app.post("/_sandbox/config")
    def set_config() -> Response:
        def apply() -> Any:
            data = payload()
            for key, value in data.items():
                if key == "store_codes":
                    state.store_codes = set(value)
                elif key in CONFIG_KNOBS:
                    setattr(state, key, value)
                else:
                    raise KeyError(f"unknown knob {key!r}")
            return {k: getattr(state, k) for k in CONFIG_KNOBS}

        return guarded(apply)

    @app.post("/_sandbox/orders")
    def scenario_order() -> Response:
        return guarded(lambda: state.place_order(**payload()))

    @app.post("/_sandbox/source-items")
    def scenario_source_items() -> Response:
        def apply() -> Any:
            data = payload()
            rows = data if isinstance(data, list) else [data]
            return [state.set_source_item(**row) for row in rows]

        return guarded(apply)

    @app.post("/_sandbox/products")
    def scenario_product() -> Response:
        return guarded(lambda: {"id": state.add_product(**payload())})

    @app.post("/_sandbox/customers")
    def scenario_customer() -> Response:
        return guarded(lambda: {"id": state.add_customer(**payload())})

    @app.post("/_sandbox/sources")
    def scenario_source() -> Response:
        return guarded(lambda: state.add_source(**payload()))

    @app.get("/_sandbox/state")
    def summary() -> Response:
        return guarded(state.summary)

    @app.get("/_sandbox/inventory")
    def inventory() -> Response:
        def view() -> Any:
            skus = sorted({i["sku"] for i in state.source_items.values()} | set(state.products))
            return {
                "source_items": list(state.source_items.values()),
                "reservations": state.reservations,
                "salable": {sku: state.salable_qty(sku) for sku in skus},
                "orphans": state.orphan_source_items(),
            }

        return guarded(view)
