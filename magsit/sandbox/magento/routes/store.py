"""Store views, websites and the admin token route (§1.2, §2)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.errors import ApiError
from magsit.sandbox.magento.routing import Ctx, route


@route("GET", "store/storeViews", "Magento_Backend::store")
def store_views(ctx: Ctx) -> Any:
    return [{"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0, "is_active": 1}] + [
        {"id": sid, "code": code, "name": code.title(), "website_id": 1, "store_group_id": 1, "is_active": 1}
        for code, sid in ctx.state.store_ids().items()
    ]


@route("GET", "store/websites", "Magento_Backend::store")
def websites(ctx: Ctx) -> Any:
    return [{"id": 0, "code": "admin", "name": "Admin", "default_group_id": 0}] + [
        {"id": wid, "code": code, "name": code.title(), "default_group_id": 1} for wid, code in ctx.state.websites.items()
    ]


@route("POST", "integration/admin/token", "anonymous", anonymous=True)
def admin_token(ctx: Ctx) -> Any:
    # Magento_TwoFactorAuth (on by default in 2.4) never issues a token here (§1.2).
    raise ApiError(401, "Please use the 2fa provider-specific endpoints to obtain a token.", {"active_providers": ["google"]})
