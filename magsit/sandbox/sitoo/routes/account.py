"""The account's structure (sitoo-api.md §3): sites, stores, cash registers (read only)."""

from __future__ import annotations

from typing import Any

from flask import Response

from magsit.sandbox.sitoo.constants import SITE_GUID
from magsit.sandbox.sitoo.errors import found
from magsit.sandbox.sitoo.http import BASE, SITE, Routes
from magsit.sandbox.sitoo.query import collection, single
from magsit.sandbox.sitoo.state import SitooState

routes = Routes()


def _site(state: SitooState) -> dict[str, Any]:
    """The account's one site."""
    return {
        "siteid": SITE_GUID,
        "protocol": "https",
        "server": "sandbox.mysitoo.com",
        "abspath": "/",
        "siteurl": "https://sandbox.mysitoo.com/",
        "eshopid": state.eshop_id,
    }


def _public(register: dict[str, Any]) -> dict[str, Any]:
    """A cash register without the sandbox's own ``_`` bookkeeping keys."""
    return {k: v for k, v in register.items() if not k.startswith("_")}


@routes.get(BASE + "/sites.json")
def sites(state: SitooState, accountid: int) -> Response:
    return collection(state, [_site(state)])


@routes.get(SITE + ".json")
def site_one(state: SitooState, accountid: int, siteid: int) -> Response:
    return single(_site(state))


@routes.get(SITE + "/stores.json")
def stores(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        return collection(state, [state.stores[k] for k in sorted(state.stores)])


@routes.get(SITE + "/stores/<int:storeid>.json")
def store_one(state: SitooState, accountid: int, siteid: int, storeid: int) -> Response:
    with state.lock:
        return single(found(state.stores, storeid, "Store"))


@routes.get(SITE + "/cashregisters.json")
def registers(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        return collection(state, [_public(r) for r in state.registers.values()])


@routes.get(SITE + "/cashregisters/<registerid>.json")
def register_one(state: SitooState, accountid: int, siteid: int, registerid: str) -> Response:
    with state.lock:
        return single(_public(found(state.registers, registerid, "Cash register")))
