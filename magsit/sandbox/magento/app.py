"""The emulator as a Flask app with the control and scenario API, and on a loopback port."""

from __future__ import annotations

import json
import secrets

from flask import Flask, Response, request

from magsit.sandbox.common import Control, ControlledApp, LoopbackServer
from magsit.sandbox.magento.control import add_control_routes, json_response
from magsit.sandbox.magento.dispatch import handle_rest, raw_target
from magsit.sandbox.magento.errors import MASKED, NO_ROUTE, ApiError, masked_error
from magsit.sandbox.magento.state import MagentoState


def _fault_body(status: int, text: str) -> bytes:
    """Bodies of injected faults, shaped like Magento's own."""
    if status == 500:
        return json.dumps({"message": MASKED % secrets.token_hex(7)[:13]}).encode()
    if status == 429:
        return json.dumps({"message": "Too Many Requests", "trace": None}).encode()
    return json.dumps({"message": text}).encode()


APACHE_404 = ("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n"
              "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n")

def create_app(state: MagentoState, control: Control) -> ControlledApp:
    """The emulator as a WSGI app, wrapped in the fault/log/latency middleware."""
    app = Flask("magsit.sandbox.magento")
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]

    @app.route("/rest", methods=methods, defaults={"rest": ""})
    @app.route("/rest/<path:rest>", methods=methods)
    def rest_api(rest: str) -> Response:
        if not state.allow_encoded_slashes and "%2f" in raw_target(request.environ)[0].lower():
            # Apache's default (AllowEncodedSlashes Off) answers 404 itself, before Magento runs
            # (magento-api.md §13: "%2F survives only if … NoDecode, else Apache 404"; GH#8615, GH#21179).
            return Response(APACHE_404, status=404, content_type="text/html; charset=iso-8859-1")
        try:
            with state.lock:
                status, payload = handle_rest(state, request.environ, request.get_data())
                # Encoded under the lock: the answer is a snapshot of the state without a deep copy.
                encoded = json.dumps(payload)
            return Response(encoded, status=status, content_type="application/json; charset=utf-8")
        except ApiError as exc:
            return json_response(exc.status, exc.body())
        except Exception:  # a bug in a handler looks like a PHP fatal: masked 500
            app.logger.exception("magento sandbox handler failed")
            return json_response(500, masked_error().body())

    @app.errorhandler(404)
    @app.errorhandler(405)
    def no_route(_exc: Exception) -> Response:
        return json_response(404, {"message": NO_ROUTE})

    add_control_routes(app, state, control)
    return ControlledApp(app, control, _fault_body)


class MagentoSandbox:
    """The emulator on a loopback port. ``url`` has no ``/rest`` suffix."""

    def __init__(self, state: MagentoState | None = None, control: Control | None = None, port: int = 0) -> None:
        self.state = state or MagentoState()
        self.control = control or Control()
        self.app = create_app(self.state, self.control)
        self.server = LoopbackServer(self.app, port=port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> MagentoSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> MagentoSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
