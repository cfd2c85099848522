"""Customers (§12)."""

from __future__ import annotations

import re
from typing import Any

from magsit.sandbox.magento.errors import REQUIRED, ApiError
from magsit.sandbox.magento.routing import Ctx, body_object, path_int, route
from magsit.sandbox.magento.search import search
from magsit.sandbox.magento.state import MagentoState


def _customer(state: MagentoState, customer_id: str) -> dict[str, Any]:
    customer = state.customers.get(path_int(customer_id))
    if customer is None:
        raise ApiError(404, "No such entity with %fieldName = %fieldValue", {"fieldName": "customerId", "fieldValue": customer_id})
    return customer


def _check_customer(state: MagentoState, data: dict[str, Any], website_id: int, own_id: int | None) -> None:
    for field in ("firstname", "lastname", "email"):
        if not str(data.get(field) or "").strip():
            raise ApiError(400, REQUIRED, {"fieldName": field})
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(data["email"]).strip()):
        raise ApiError(400, '"%fieldName" is not a valid email address.', {"fieldName": "email"})
    other = state.find_customer(str(data["email"]), website_id)
    if other is not None and other["id"] != own_id:
        raise ApiError(400, "A customer with the same email address already exists in an associated website.")


@route("GET", "customers/search", "Magento_Customer::customer")
def customers_search(ctx: Ctx) -> Any:
    return search(list(ctx.state.customers.values()), ctx.query, ctx.state, "id", getter=lambda r, f: r.get("id" if f == "entity_id" else f))


@route("GET", "customers/{id}", "Magento_Customer::customer")
def customer_get(ctx: Ctx, id: str) -> Any:  # noqa: A002
    return _customer(ctx.state, id)


@route("POST", "customers", "Magento_Customer::manage", anonymous=True)
def customer_create(ctx: Ctx) -> Any:
    state = ctx.state
    data = dict(body_object(ctx, "customer"))
    website_id = int(data.get("website_id") or 1)
    _check_customer(state, data, website_id, None)
    data.pop("id", None)
    cid = state.add_customer(str(data.pop("email")).strip(), data.pop("firstname"), data.pop("lastname"), website_id=website_id, **{k: v for k, v in data.items() if k != "website_id"})
    # AccountManagement::createAccount sends the new-account e-mail (§12).
    state.emails_sent.append({"type": "new_account", "to": state.customers[cid]["email"], "customer_id": cid})
    return state.customers[cid]


@route("PUT", "customers/{id}", "Magento_Customer::manage")
def customer_put(ctx: Ctx, id: str) -> Any:  # noqa: A002
    state = ctx.state
    customer = _customer(state, id)
    data = dict(body_object(ctx, "customer"))
    website_id = int(data.get("website_id") or customer["website_id"])
    _check_customer(state, data, website_id, customer["id"])
    addresses = data.pop("addresses", None)
    for key in ("id", "created_at"):
        data.pop(key, None)
    customer.update(data)
    customer["website_id"] = website_id
    customer["updated_at"] = state.now()
    # Omitted addresses keep the existing set; sent addresses replace it (§12).
    if addresses is not None:
        state.set_addresses(customer, addresses)
    return customer


@route("POST", "customers/isEmailAvailable", "Magento_Customer::customer", anonymous=True)
def customer_email_available(ctx: Ctx) -> Any:
    body = ctx.body or {}
    email = str(body_object(ctx, "customerEmail"))
    website_id = int(body.get("websiteId") or 1)
    return ctx.state.find_customer(email, website_id) is None
