"""Request and response plumbing: JSON bodies in and out, the batch envelope, and ``Routes``, which
binds plain route functions to the objects they serve (the state, the control)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, Response, request

from magsit.sandbox.sitoo.errors import ApiError

# URL rules: account-level paths, and site-level ones under the account's one site (§1, §3).
BASE = "/v2/accounts/<int:accountid>"
SITE = BASE + "/sites/<int:siteid>"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def read_body() -> Any:
    raw = request.get_data()
    if not raw:
        raise ApiError(400, "A JSON request body is required")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Invalid JSON in request body") from None


def batch(items: Any, handle: Callable[[Any], Any]) -> Response:
    """Array in, batch envelope out: one ``{"statuscode","return"|"errortext"}`` per item, in order."""
    results = []
    for item in items:
        try:
            results.append({"statuscode": 200, "return": handle(item)})
        except ApiError as exc:
            results.append({"statuscode": exc.status, "errortext": exc.text})
    return json_response(results)


def one_or_batch(body: Any, handle: Callable[[Any], Any]) -> Response:
    """A POST of one object answers ``handle``'s result; of an array, the batch envelope."""
    return batch(body, handle) if isinstance(body, list) else json_response(handle(body))


def batch_update(body: Any, what: str, id_field: str, update: Callable[[Any, dict[str, Any]], Any]) -> Response:
    """A batch PUT: an array of objects, each naming the record it changes in ``id_field``."""
    if not isinstance(body, list):
        raise ApiError(400, f"The request body must be an array of {what}")

    def put_one(raw: Any) -> Any:
        if not isinstance(raw, dict) or id_field not in raw:
            raise ApiError(400, f"{id_field} must be added as a field for each item")
        return update(raw[id_field], raw)

    return batch(body, put_one)


class Routes:
    """Route functions of one module, collected by decorator and bound to an app later.

    ``@routes.get(rule)`` on ``def handler(state, **view_args)``; ``routes.bind(app, state)`` serves
    ``handler`` with ``state`` as its first argument, so a handler sees its state explicitly.
    """

    def __init__(self) -> None:
        self.rules: list[tuple[str, str, Callable[..., Response]]] = []

    def route(self, method: str, rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def add(handler: Callable[..., Response]) -> Callable[..., Response]:
            self.rules.append((method, rule, handler))
            return handler

        return add

    def get(self, rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("GET", rule)

    def post(self, rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("POST", rule)

    def put(self, rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("PUT", rule)

    def delete(self, rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("DELETE", rule)

    def bind(self, app: Flask, served: Any) -> None:
        for method, rule, handler in self.rules:
            endpoint = f"{handler.__module__}.{handler.__name__}"
            app.add_url_rule(rule, endpoint, partial(handler, served), methods=[method])
