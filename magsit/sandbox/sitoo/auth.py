"""Basic auth with the account's API id and password, then the account and site in the path must be
this account's (sitoo-api.md §1); runs before every ``/v2/`` request, ahead of the route."""

from __future__ import annotations

import base64

from flask import request

from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.state import SitooState


def check(state: SitooState) -> None:
    """Refuse a request without the right credentials or for another account or site."""
    if not request.path.startswith("/v2/"):
        return
    header = request.headers.get("Authorization", "")
    ok = False
    if header.startswith("Basic "):
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
            ok = user == state.api_id and pw == state.password
        except (ValueError, UnicodeDecodeError):
            ok = False
    if not ok:
        raise ApiError(401, "Unauthorized. Authorization failed.")
    args = request.view_args or {}
    if args.get("accountid", state.account_id) != state.account_id:
        raise ApiError(404, "Resource not found. The url is invalid.")
    if args.get("siteid", state.eshop_id) != state.eshop_id:
        raise ApiError(404, f"Site {args.get('siteid')} not found")
