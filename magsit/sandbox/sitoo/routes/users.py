"""Users, i.e. customers (sitoo-api.md §7): filters (e-mail match per ``state.email_match``),
add, update, delete."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Response, request

from magsit.sandbox.sitoo.constants import USER_DEFAULT_FIELDS
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.http import SITE, Routes, batch_update, json_response, one_or_batch, read_body
from magsit.sandbox.sitoo.query import collection, multi, single
from magsit.sandbox.sitoo.state import SitooState

routes = Routes()


def _user_add(state: SitooState, raw: Any) -> str:
    if not isinstance(raw, dict) or not raw.get("email"):
        raise ApiError(400, "email is required")
    if state.user_by_email(raw["email"]) is not None:
        raise ApiError(400, f"A user with email {raw['email']} already exists")
    fields = {k: v for k, v in raw.items() if k not in ("email", "namefirst", "namelast")}
    return state.add_user(raw["email"], raw.get("namefirst", ""), raw.get("namelast", ""), **fields)


def _user_update(state: SitooState, userid: Any, raw: dict[str, Any]) -> bool:
    state.update_user(userid, raw)
    return True


@routes.get(SITE + "/users.json")
def users(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        filters = {k: request.args.get(k) for k in ("email", "customernumber", "personalid", "mobile")}
        ids = multi("userid")
        rows = [
            u
            for u in state.users.values()
            if all(
                v is None or (state.email_matches(u.get(k), v) if k == "email" else u.get(k) == v)
                for k, v in filters.items()
            )
            and (ids is None or u["userid"] in ids)
        ]
        return collection(state, rows, USER_DEFAULT_FIELDS)


@routes.post(SITE + "/users.json")
def users_post(state: SitooState, accountid: int, siteid: int) -> Response:
    body = read_body()
    with state.lock:
        return one_or_batch(body, partial(_user_add, state))


@routes.put(SITE + "/users.json")
def users_put(state: SitooState, accountid: int, siteid: int) -> Response:
    body = read_body()
    with state.lock:
        return batch_update(body, "users", "userid", partial(_user_update, state))


@routes.get(SITE + "/users/<userid>.json")
def user_one(state: SitooState, accountid: int, siteid: int, userid: str) -> Response:
    with state.lock:
        return single(found(state.users, userid, "User"))


@routes.put(SITE + "/users/<userid>.json")
def user_put(state: SitooState, accountid: int, siteid: int, userid: str) -> Response:
    body = read_body()
    if not isinstance(body, dict):
        raise ApiError(400, "The user must be a JSON object")
    return json_response(_user_update(state, userid, body))


@routes.delete(SITE + "/users/<userid>.json")
def user_delete(state: SitooState, accountid: int, siteid: int, userid: str) -> Response:
    with state.lock:
        if state.users.pop(userid, None) is None:
            raise ApiError(404, f"User {userid} not found")
        return json_response(True)
