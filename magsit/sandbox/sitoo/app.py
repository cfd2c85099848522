"""``create_app``: the Flask app serving one ``SitooState`` with Sitoo's paths, auth and error bodies,
wrapped in the shared ``ControlledApp`` (request log, faults, latency)."""

from __future__ import annotations

import logging
from functools import partial

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from magsit.sandbox.common import Control, ControlledApp
from magsit.sandbox.sitoo.auth import check as check_auth
from magsit.sandbox.sitoo.errors import ApiError, error_body
from magsit.sandbox.sitoo.routes import account, orders, products, transactions, users, warehouses
from magsit.sandbox.sitoo.routes.control import control_routes, scenario_routes
from magsit.sandbox.sitoo.state import SitooState

log = logging.getLogger(__name__)

API_ROUTES = (account, warehouses, transactions, products, users, orders)


# Every error leaves as Sitoo's error body; an unknown path is Sitoo's 404 text.
def _api_error(exc: ApiError) -> Response:
    return Response(error_body(exc.status, exc.text), status=exc.status, mimetype="application/json")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    text = {404: "Resource not found. The url is invalid."}.get(status, exc.description or exc.name)
    return Response(error_body(status, text), status=status, mimetype="application/json")


def _crash(exc: Exception) -> Response:
    log.exception("sitoo sandbox crashed")
    return Response(
        error_body(500, f"Internal Server Error. {exc!r}"), status=500, mimetype="application/json"
    )


def create_app(state: SitooState, control: Control) -> ControlledApp:
    app = Flask("magsit.sandbox.sitoo")
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)
    app.before_request(partial(check_auth, state))
    for module in API_ROUTES:
        module.routes.bind(app, state)
    control_routes.bind(app, control)
    scenario_routes.bind(app, state)
    return ControlledApp(app, control, error_body)
