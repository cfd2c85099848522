"""The account's structure (sitoo-api.md §3): sites, stores, cash registers (read only)."""

from __future__ import annotations

from flask import Response

from magsit.sandbox.sitoo.constants import SITE_GUID
from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.http import BASE, SITE, Routes
from magsit.sandbox.sitoo.query import collection, single
from magsit.sandbox.sitoo.state import SitooState

routes = Routes()


@routes.get(BASE + "/sites.json")
def sites(state: SitooState, accountid: int) -> Response:
    row = {
        "siteid": SITE_GUID,
        "protocol": "https",
        "server": "sandbox.mysitoo.com",
        "abspath": "/",
        "siteurl": "https://sandbox.mysitoo.com/",
        "eshopid": state.eshop_id,
    }
    return collection(state, [row])


@routes.get(SITE + ".json")
def site_one(state: SitooState, accountid: int, siteid: int) -> Response:
    return single(
        {"siteid": SITE_GUID, "protocol": "https", "server": "sandbox.mysitoo.com", "abspath": "/",
         "siteurl": "https://sandbox.mysitoo.com/", "eshopid": state.eshop_id}
    )  # fmt: skip


@routes.get(SITE + "/stores.json")
def stores(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        return collection(state, [state.stores[k] for k in sorted(state.stores)])


@routes.get(SITE + "/stores/<int:storeid>.json")
def store_one(state: SitooState, accountid: int, siteid: int, storeid: int) -> Response:
    with state.lock:
        if storeid not in state.stores:
            raise ApiError(404, f"Store {storeid} not found")
        return single(state.stores[storeid])


@routes.get(SITE + "/cashregisters.json")
def registers(state: SitooState, accountid: int, siteid: int) -> Response:
    with state.lock:
        rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in state.registers.values()]
        return collection(state, rows)


@routes.get(SITE + "/cashregisters/<registerid>.json")
def register_one(state: SitooState, accountid: int, siteid: int, registerid: str) -> Response:
    with state.lock:
        if registerid not in state.registers:
            raise ApiError(404, f"Cash register {registerid} not found")
        return single({k: v for k, v in state.registers[registerid].items() if not k.startswith("_")})
