"""Magento 2.4 admin REST API emulator (Open Source + MSI), written from the API reference alone.

It deliberately imports nothing from magsit's clients or flows (see DESIGN.md "The sandbox"): a
misreading of the API in the client must not be silently repeated here. Section numbers (§n) refer
to ``magento-api.md``. Behaviours the reference marks as inferred are emulated as described there.

Routing is done on the *raw* request URI rather than Flask's URL map: Magento splits the path on
``/`` first and then ``urldecode()``s each segment, so ``%2F`` stays inside a SKU and a raw ``+``
becomes a space (§13). Werkzeug decodes ``PATH_INFO`` before routing, which would lose both.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from flask import Flask, Response, request
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import escape as oauth_escape

from magsit.sandbox.common import Control, ControlledApp, LoopbackServer

JSON = Any
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
NO_ROUTE = "Request does not match any route."
NO_PRODUCT = "The product that was requested doesn't exist. Verify the product and try again."
NO_ENTITY = "The entity that was requested doesn't exist. Verify the entity and try again."
REQUIRED = '"%fieldName" is required. Enter and try again.'
BAD_TYPE = "The \"%value\" value's type is invalid. The \"%type\" type was expected. Verify and try again."
MASKED = "Internal Error. Details are available in Magento log file. Report ID: webapi-%s"


class ApiError(Exception):
    """An error answered with Magento's error body (§4): raw message, placeholders unsubstituted."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: list[Any] | dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            out["parameters"] = self.parameters
        if self.errors:
            out["errors"] = self.errors
        return out


def masked_error() -> ApiError:
    """Any non-Localized PHP exception is masked in production mode (§4)."""
    return ApiError(500, MASKED % secrets.token_hex(7)[:13])


def not_found_entity() -> ApiError:
    return ApiError(404, NO_ENTITY)


def money(value: Any) -> float:
    return float(Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def num(value: Any) -> int | float:
    """Integral numbers as ints so that JSON reads like Magento's (``"quantity": 1000``)."""
    f = float(value)
    return int(f) if f.is_integer() else f


# ---------------------------------------------------------------------------------------------
# Request body schemas. Compact copy of the object definitions reachable from the request bodies
# of the implemented write routes, taken from admin-schema-2.4.7.json (§15). Codes: s string,
# i integer, n number, b boolean, * any, @def nested object, [x array of x. The sandbox must run
# without ../shared, so this is embedded rather than loaded. Magento answers an unknown key with a
# masked 500 (NameFinder "does not have accessor method", §4), hence the whitelist.
# ---------------------------------------------------------------------------------------------
_DEFS: dict[str, dict[str, str]] = {
    "catalog-data-product": {"id": "i", "sku": "s", "name": "s", "attribute_set_id": "i", "price": "n", "status": "i", "visibility": "i", "type_id": "s", "created_at": "s", "updated_at": "s", "weight": "n", "extension_attributes": "@catalog-data-product-extension", "product_links": "[@catalog-data-product-link", "options": "[@catalog-data-product-custom-option", "media_gallery_entries": "[@catalog-data-product-attribute-media-gallery-entry", "tier_prices": "[@catalog-data-product-tier-price", "custom_attributes": "[@framework-attribute"},
    "catalog-data-product-extension": {"website_ids": "[i", "category_links": "[@catalog-data-category-link", "discounts": "[@sales-rule-data-rule-discount", "bundle_product_options": "[@bundle-data-option", "stock_item": "@catalog-inventory-data-stock-item", "downloadable_product_links": "[@downloadable-data-link", "downloadable_product_samples": "[@downloadable-data-sample", "giftcard_amounts": "[@gift-card-data-giftcard-amount", "configurable_product_options": "[@configurable-product-data-option", "configurable_product_links": "[i"},
    "catalog-data-category-link": {"position": "i", "category_id": "s", "extension_attributes": "@catalog-data-category-link-extension"},
    "catalog-data-category-link-extension": {},
    "sales-rule-data-rule-discount": {"discount_data": "@sales-rule-data-discount-data", "rule_label": "s", "rule_i_d": "i"},
    "sales-rule-data-discount-data": {"amount": "n", "base_amount": "n", "original_amount": "n", "base_original_amount": "n"},
    "bundle-data-option": {"option_id": "i", "title": "s", "required": "b", "type": "s", "position": "i", "sku": "s", "product_links": "[@bundle-data-link", "extension_attributes": "@bundle-data-option-extension"},
    "bundle-data-link": {"id": "s", "sku": "s", "option_id": "i", "qty": "n", "position": "i", "is_default": "b", "price": "n", "price_type": "i", "can_change_quantity": "i", "extension_attributes": "@bundle-data-link-extension"},
    "bundle-data-link-extension": {},
    "bundle-data-option-extension": {},
    "catalog-inventory-data-stock-item": {"item_id": "i", "product_id": "i", "stock_id": "i", "qty": "n", "is_in_stock": "b", "is_qty_decimal": "b", "show_default_notification_message": "b", "use_config_min_qty": "b", "min_qty": "n", "use_config_min_sale_qty": "i", "min_sale_qty": "n", "use_config_max_sale_qty": "b", "max_sale_qty": "n", "use_config_backorders": "b", "backorders": "i", "use_config_notify_stock_qty": "b", "notify_stock_qty": "n", "use_config_qty_increments": "b", "qty_increments": "n", "use_config_enable_qty_inc": "b", "enable_qty_increments": "b", "use_config_manage_stock": "b", "manage_stock": "b", "low_stock_date": "s", "is_decimal_divided": "b", "stock_status_changed_auto": "i", "extension_attributes": "@catalog-inventory-data-stock-item-extension"},
    "catalog-inventory-data-stock-item-extension": {},
    "downloadable-data-link": {"id": "i", "title": "s", "sort_order": "i", "is_shareable": "i", "price": "n", "number_of_downloads": "i", "link_type": "s", "link_file": "s", "link_file_content": "@downloadable-data-file-content", "link_url": "s", "sample_type": "s", "sample_file": "s", "sample_file_content": "@downloadable-data-file-content", "sample_url": "s", "extension_attributes": "@downloadable-data-link-extension"},
    "downloadable-data-file-content": {"file_data": "s", "name": "s", "extension_attributes": "@downloadable-data-file-content-extension"},
    "downloadable-data-file-content-extension": {},
    "downloadable-data-link-extension": {},
    "downloadable-data-sample": {"id": "i", "title": "s", "sort_order": "i", "sample_type": "s", "sample_file": "s", "sample_file_content": "@downloadable-data-file-content", "sample_url": "s", "extension_attributes": "@downloadable-data-sample-extension"},
    "downloadable-data-sample-extension": {},
    "gift-card-data-giftcard-amount": {"attribute_id": "i", "website_id": "i", "value": "n", "website_value": "n", "extension_attributes": "@gift-card-data-giftcard-amount-extension"},
    "gift-card-data-giftcard-amount-extension": {},
    "configurable-product-data-option": {"id": "i", "attribute_id": "s", "label": "s", "position": "i", "is_use_default": "b", "values": "[@configurable-product-data-option-value", "extension_attributes": "@configurable-product-data-option-extension", "product_id": "i"},
    "configurable-product-data-option-value": {"value_index": "i", "extension_attributes": "@configurable-product-data-option-value-extension"},
    "configurable-product-data-option-value-extension": {},
    "configurable-product-data-option-extension": {},
    "catalog-data-product-link": {"sku": "s", "link_type": "s", "linked_product_sku": "s", "linked_product_type": "s", "position": "i", "extension_attributes": "@catalog-data-product-link-extension"},
    "catalog-data-product-link-extension": {"qty": "n"},
    "catalog-data-product-custom-option": {"product_sku": "s", "option_id": "i", "title": "s", "type": "s", "sort_order": "i", "is_require": "b", "price": "n", "price_type": "s", "sku": "s", "file_extension": "s", "max_characters": "i", "image_size_x": "i", "image_size_y": "i", "values": "[@catalog-data-product-custom-option-values", "extension_attributes": "@catalog-data-product-custom-option-extension"},
    "catalog-data-product-custom-option-values": {"title": "s", "sort_order": "i", "price": "n", "price_type": "s", "sku": "s", "option_type_id": "i"},
    "catalog-data-product-custom-option-extension": {},
    "catalog-data-product-attribute-media-gallery-entry": {"id": "i", "media_type": "s", "label": "s", "position": "i", "disabled": "b", "types": "[s", "file": "s", "content": "@framework-data-image-content", "extension_attributes": "@catalog-data-product-attribute-media-gallery-entry-extension"},
    "framework-data-image-content": {"base64_encoded_data": "s", "type": "s", "name": "s"},
    "catalog-data-product-attribute-media-gallery-entry-extension": {"video_content": "@framework-data-video-content"},
    "framework-data-video-content": {"media_type": "s", "video_provider": "s", "video_url": "s", "video_title": "s", "video_description": "s", "video_metadata": "s"},
    "catalog-data-product-tier-price": {"customer_group_id": "i", "qty": "n", "value": "n", "extension_attributes": "@catalog-data-product-tier-price-extension"},
    "catalog-data-product-tier-price-extension": {"percentage_value": "n", "website_id": "i"},
    "framework-attribute": {"attribute_code": "s", "value": "*"},
    "catalog-data-base-price": {"price": "n", "store_id": "i", "sku": "s", "extension_attributes": "@catalog-data-base-price-extension"},
    "catalog-data-base-price-extension": {},
    "inventory-api-data-source-item": {"sku": "s", "source_code": "s", "quantity": "n", "status": "i", "extension_attributes": "@inventory-api-data-source-item-extension"},
    "inventory-api-data-source-item-extension": {},
    "sales-data-order-status-history": {"comment": "s", "created_at": "s", "entity_id": "i", "entity_name": "s", "is_customer_notified": "i", "is_visible_on_front": "i", "parent_id": "i", "status": "s", "extension_attributes": "@sales-data-order-status-history-extension"},
    "sales-data-order-status-history-extension": {},
    "sales-data-shipment-item-creation": {"extension_attributes": "@sales-data-shipment-item-creation-extension", "order_item_id": "i", "qty": "n"},
    "sales-data-shipment-item-creation-extension": {},
    "sales-data-shipment-comment-creation": {"extension_attributes": "@sales-data-shipment-comment-creation-extension", "comment": "s", "is_visible_on_front": "i"},
    "sales-data-shipment-comment-creation-extension": {},
    "sales-data-shipment-track-creation": {"extension_attributes": "@sales-data-shipment-track-creation-extension", "track_number": "s", "title": "s", "carrier_code": "s"},
    "sales-data-shipment-track-creation-extension": {},
    "sales-data-shipment-package-creation": {"extension_attributes": "@sales-data-shipment-package-creation-extension"},
    "sales-data-shipment-package-creation-extension": {},
    "sales-data-shipment-creation-arguments": {"extension_attributes": "@sales-data-shipment-creation-arguments-extension"},
    "sales-data-shipment-creation-arguments-extension": {"source_code": "s"},
    "sales-data-invoice-item-creation": {"extension_attributes": "@sales-data-invoice-item-creation-extension", "order_item_id": "i", "qty": "n"},
    "sales-data-invoice-item-creation-extension": {},
    "sales-data-invoice-comment-creation": {"extension_attributes": "@sales-data-invoice-comment-creation-extension", "comment": "s", "is_visible_on_front": "i"},
    "sales-data-invoice-comment-creation-extension": {},
    "sales-data-invoice-creation-arguments": {"extension_attributes": "@sales-data-invoice-creation-arguments-extension"},
    "sales-data-invoice-creation-arguments-extension": {},
    "sales-data-creditmemo-item-creation": {"extension_attributes": "@sales-data-creditmemo-item-creation-extension", "order_item_id": "i", "qty": "n"},
    "sales-data-creditmemo-item-creation-extension": {},
    "sales-data-creditmemo-comment-creation": {"extension_attributes": "@sales-data-creditmemo-comment-creation-extension", "comment": "s", "is_visible_on_front": "i"},
    "sales-data-creditmemo-comment-creation-extension": {},
    "sales-data-creditmemo-creation-arguments": {"shipping_amount": "n", "adjustment_positive": "n", "adjustment_negative": "n", "extension_attributes": "@sales-data-creditmemo-creation-arguments-extension"},
    "sales-data-creditmemo-creation-arguments-extension": {"return_to_stock_items": "[i"},
    "customer-data-customer": {"id": "i", "group_id": "i", "default_billing": "s", "default_shipping": "s", "confirmation": "s", "created_at": "s", "updated_at": "s", "created_in": "s", "dob": "s", "email": "s", "firstname": "s", "lastname": "s", "middlename": "s", "prefix": "s", "suffix": "s", "gender": "i", "store_id": "i", "taxvat": "s", "website_id": "i", "addresses": "[@customer-data-address", "disable_auto_group_change": "i", "extension_attributes": "@customer-data-customer-extension", "custom_attributes": "[@framework-attribute"},
    "customer-data-address": {"id": "i", "customer_id": "i", "region": "@customer-data-region", "region_id": "i", "country_id": "s", "street": "[s", "company": "s", "telephone": "s", "fax": "s", "postcode": "s", "city": "s", "firstname": "s", "lastname": "s", "middlename": "s", "prefix": "s", "suffix": "s", "vat_id": "s", "default_shipping": "b", "default_billing": "b", "extension_attributes": "@customer-data-address-extension", "custom_attributes": "[@framework-attribute"},
    "customer-data-region": {"region_code": "s", "region": "s", "region_id": "i", "extension_attributes": "@customer-data-region-extension"},
    "customer-data-region-extension": {},
    "customer-data-address-extension": {},
    "customer-data-customer-extension": {"company_attributes": "@company-data-company-customer", "is_subscribed": "b", "assistance_allowed": "i"},
    "company-data-company-customer": {"customer_id": "i", "company_id": "i", "job_title": "s", "status": "i", "telephone": "s", "is_default": "b", "extension_attributes": "@company-data-company-customer-extension"},
    "company-data-company-customer-extension": {},
}

# Top-level request bodies per route (method, route pattern) -> {key: type code}.
_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "products"): {"product": "@catalog-data-product", "saveOptions": "b"},
    ("PUT", "products/{sku}"): {"product": "@catalog-data-product", "saveOptions": "b"},
    ("POST", "products/base-prices"): {"prices": "[@catalog-data-base-price"},
    ("POST", "products/base-prices-information"): {"skus": "[s"},
    ("POST", "inventory/source-items"): {"sourceItems": "[@inventory-api-data-source-item"},
    ("POST", "inventory/source-items-delete"): {"sourceItems": "[@inventory-api-data-source-item"},
    ("PUT", "products/{sku}/stockItems/{itemId}"): {"stockItem": "@catalog-inventory-data-stock-item"},
    ("POST", "orders/{id}/comments"): {"statusHistory": "@sales-data-order-status-history"},
    ("POST", "orders/{id}/cancel"): {},
    ("POST", "order/{id}/ship"): {
        "items": "[@sales-data-shipment-item-creation",
        "notify": "b",
        "appendComment": "b",
        "comment": "@sales-data-shipment-comment-creation",
        "tracks": "[@sales-data-shipment-track-creation",
        "packages": "[@sales-data-shipment-package-creation",
        "arguments": "@sales-data-shipment-creation-arguments",
    },
    ("POST", "order/{id}/invoice"): {
        "capture": "b",
        "items": "[@sales-data-invoice-item-creation",
        "notify": "b",
        "appendComment": "b",
        "comment": "@sales-data-invoice-comment-creation",
        "arguments": "@sales-data-invoice-creation-arguments",
    },
    ("POST", "order/{id}/refund"): {
        "items": "[@sales-data-creditmemo-item-creation",
        "notify": "b",
        "appendComment": "b",
        "comment": "@sales-data-creditmemo-comment-creation",
        "arguments": "@sales-data-creditmemo-creation-arguments",
    },
    ("POST", "customers"): {"customer": "@customer-data-customer", "password": "s", "redirectUrl": "s"},
    ("PUT", "customers/{id}"): {"customer": "@customer-data-customer", "passwordHash": "s"},
    ("POST", "customers/isEmailAvailable"): {"customerEmail": "s", "websiteId": "i"},
    ("POST", "integration/admin/token"): {"username": "s", "password": "s"},
}

_PHP_TYPES = {"s": "string", "i": "int", "n": "float", "b": "bool"}


def php_interface(defname: str) -> str:
    """PHP interface named in `Maximum items of type "%type"` (§5.1), e.g. for source items
    ``\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface``."""
    if defname == "framework-attribute":
        return "\\Magento\\Framework\\Api\\AttributeInterface"
    module, _, rest = defname.partition("-data-")
    camel = "".join(p.capitalize() for p in module.split("-"))
    name = "".join(p.capitalize() for p in rest.split("-"))
    return f"\\Magento\\{camel}\\Api\\Data\\{name}Interface"


def _check_scalar(value: Any, code: str) -> None:
    if value is None or code == "*":
        return
    ok = True
    if code in ("i", "n"):
        if isinstance(value, (bool, dict | list)):
            ok = False
        elif isinstance(value, str):
            try:
                float(value)
            except ValueError:
                ok = False
    elif code == "b":
        ok = isinstance(value, bool) or value in (0, 1, "0", "1", "true", "false", "")
    elif code == "s":
        ok = not isinstance(value, dict | list)
    if not ok:
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        raise ApiError(400, BAD_TYPE, {"value": shown, "type": _PHP_TYPES.get(code, code)})


def validate_body(value: Any, code: str, limit: int | None) -> None:
    """Type-check ``value`` against a type code; unknown keys -> masked 500, bad scalars -> 400,
    arrays of objects longer than ``limit`` -> 400 (input limits on, §5.1)."""
    if code.startswith("["):
        if value is None:
            return
        if not isinstance(value, list):
            raise ApiError(400, BAD_TYPE, {"value": str(value), "type": _PHP_TYPES.get(code[1:], code[1:]) + "[]"})
        inner = code[1:]
        if inner.startswith("@") and limit is not None and len(value) > limit:
            raise ApiError(400, 'Maximum items of type "%type" is %max', {"type": php_interface(inner[1:]), "max": limit})
        for element in value:
            validate_body(element, inner, limit)
        return
    if code.startswith("@"):
        if value is None:
            return
        if not isinstance(value, dict):
            raise ApiError(400, BAD_TYPE, {"value": str(value), "type": php_interface(code[1:])})
        validate_object(value, _DEFS[code[1:]], limit)
        return
    _check_scalar(value, code)


def validate_object(value: dict[str, Any], props: dict[str, str], limit: int | None) -> None:
    for key, item in value.items():
        if key not in props:
            raise masked_error()
        validate_body(item, props[key], limit)


# ---------------------------------------------------------------------------------------------
# searchCriteria (§3)
# ---------------------------------------------------------------------------------------------
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(key: str) -> str:
    """Magento converts every key through snakeCaseToUpperCamelCase, so both spellings work."""
    return _CAMEL.sub(r"_\1", key).lower()


def nested_query(pairs: Iterable[tuple[str, str]], root: str) -> dict[str, Any]:
    """``root[a][0][b]=v`` pairs -> nested dicts (list indices stay dict keys, sorted later)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if not key.startswith(root + "["):
            continue
        parts = re.findall(r"\[([^\]]*)\]", key[len(root) :])
        node = out
        for part in parts[:-1]:
            node = node.setdefault(snake(part), {})
            if not isinstance(node, dict):
                break
        else:
            if parts:
                node[snake(parts[-1])] = value
    return out


def _ordered(node: Any) -> list[Any]:
    if isinstance(node, dict):
        try:
            return [node[k] for k in sorted(node, key=lambda k: int(k))]
        except ValueError:
            return list(node.values())
    return []


@dataclass
class Criteria:
    groups: list[list[dict[str, str]]]
    sort_orders: list[dict[str, str]]
    page_size: int | None
    current_page: int | None

    def echo(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filter_groups": [{"filters": [dict(f) for f in g]} for g in self.groups],
        }
        if self.sort_orders:
            out["sort_orders"] = [dict(s) for s in self.sort_orders]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


def _int_param(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise ApiError(400, BAD_TYPE, {"value": str(value), "type": "int"}) from None


def parse_criteria(pairs: list[tuple[str, str]]) -> Criteria:
    raw = nested_query(pairs, "searchCriteria")
    groups = []
    for group in _ordered(raw.get("filter_groups")):
        filters = []
        for f in _ordered(group.get("filters") if isinstance(group, dict) else None):
            if not isinstance(f, dict):
                continue
            entry = {"field": f.get("field", ""), "value": f.get("value", "")}
            entry["condition_type"] = f.get("condition_type") or "eq"
            filters.append(entry)
        groups.append(filters)
    sorts = []
    for s in _ordered(raw.get("sort_orders")):
        if isinstance(s, dict) and s.get("field"):
            sorts.append({"field": s["field"], "direction": (s.get("direction") or "DESC").upper()})
    return Criteria(groups, sorts, _int_param(raw.get("page_size"), "pageSize"), _int_param(raw.get("current_page"), "currentPage"))


def _cmp_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare like MySQL would with a numeric column: numerically when both sides are numbers,
    else as case-insensitive strings (utf8 general collation)."""
    try:
        if not isinstance(a, bool) and a is not None:
            return float(a), float(b)
    except (TypeError, ValueError):
        pass
    return str("" if a is None else a).lower(), str(b).lower()


def _like(pattern: str) -> re.Pattern[str]:
    out = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{out}$", re.IGNORECASE | re.DOTALL)


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def match_filter(row_value: Any, cond: str, value: str) -> bool:
    cond = cond.lower()
    if cond == "null":
        return row_value is None or row_value == ""
    if cond == "notnull":
        return not (row_value is None or row_value == "")
    if cond in ("finset", "nfinset"):
        members = row_value if isinstance(row_value, list) else str(row_value or "").split(",")
        hit = str(value).strip() in [str(m).strip() for m in members]
        return hit if cond == "finset" else not hit
    if row_value is None:
        # SQL: NULL compared with anything is not true (neq/nin included).
        return False
    row_value = _scalar(row_value)
    if cond in ("in", "nin"):
        values = [v.strip() for v in str(value).split(",")]
        hit = any(_cmp_pair(row_value, v)[0] == _cmp_pair(row_value, v)[1] for v in values)
        return hit if cond == "in" else not hit
    if cond in ("like", "nlike"):
        hit = bool(_like(str(value)).match(str(row_value)))
        return hit if cond == "like" else not hit
    a, b = _cmp_pair(row_value, value)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda x, y: x == y,
        "neq": lambda x, y: x != y,
        "gt": lambda x, y: x > y,
        "gteq": lambda x, y: x >= y,
        "moreq": lambda x, y: x >= y,
        "from": lambda x, y: x >= y,
        "lt": lambda x, y: x < y,
        "lteq": lambda x, y: x <= y,
        "to": lambda x, y: x <= y,
    }
    if cond not in ops:
        # Unknown condition type ends in an SQL error -> masked 500 (§3).
        raise masked_error()
    return ops[cond](a, b)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compile_filter(cond: str, value: str) -> Callable[[Any], bool]:
    """``match_filter`` for one (condition, value), prepared once per search: ``in``/``nin`` (and
    ``eq``/``neq``) become set lookups, so a 300-value ``sku in`` over 50,000 products costs 50,000
    lookups instead of 15 million comparisons. Same answers as ``match_filter`` (tested)."""
    kind = cond.lower()
    if kind not in ("in", "nin", "eq", "neq"):
        return lambda row_value: match_filter(row_value, cond, value)
    values = [v.strip() for v in str(value).split(",")] if kind in ("in", "nin") else [value]
    # _cmp_pair: numeric when both sides parse as numbers, else case-insensitive text.
    numbers = {n for n in (_float(v) for v in values) if n is not None}
    texts = {str(v).lower() for v in values if _float(v) is None}
    all_texts = {str(v).lower() for v in values}
    negate = kind in ("nin", "neq")

    def predicate(row_value: Any) -> bool:
        if row_value is None:
            return False  # SQL: NULL compared with anything is not true (neq/nin included)
        row_value = _scalar(row_value)
        number = _text_number(row_value) if isinstance(row_value, str) else _float(row_value)
        if number is None:
            hit = str(row_value).lower() in all_texts
        else:
            hit = number in numbers or str(row_value).lower() in texts
        return hit != negate

    return predicate


def search(
    rows: list[dict[str, Any]],
    pairs: list[tuple[str, str]],
    state: MagentoState,
    id_field: str,
    fields: set[str] | None = None,
    getter: Callable[[dict[str, Any], str], Any] | None = None,
) -> dict[str, Any]:
    """Apply searchCriteria to ``rows`` the way a Magento collection does (§3).

    ``fields`` = filterable columns (None: any); an unknown column is an SQL error -> masked 500.
    """
    crit = parse_criteria(pairs)
    out = _select(rows, crit, id_field, fields, getter)
    page, total = _paginate(out, crit, state)
    return {"items": page, "search_criteria": crit.echo(), "total_count": total}


def _select(
    rows: list[Any],
    crit: Criteria,
    id_field: str,
    fields: set[str] | None = None,
    getter: Callable[[Any, str], Any] | None = None,
) -> list[Any]:
    """The filtered, sorted rows of a search (before paging)."""
    get = getter or (lambda row, field: row.get(field))
    for group in crit.groups:
        for f in group:
            if fields is not None and f["field"] not in fields:
                raise masked_error()
    groups = [[(f["field"], compile_filter(f["condition_type"], f["value"])) for f in g] for g in crit.groups if g]
    out = [r for r in rows if all(any(test(get(r, name)) for name, test in g) for g in groups)]
    sorts = crit.sort_orders or [{"field": id_field, "direction": "DESC"}]
    for s in reversed(sorts):
        if fields is not None and s["field"] not in fields:
            raise masked_error()
        out.sort(key=lambda r, fld=s["field"]: _sort_key(get(r, fld)), reverse=s["direction"] != "ASC")
    return out


def _paginate(out: list[Any], crit: Criteria, state: MagentoState) -> tuple[list[Any], int]:
    """One page of selected rows and the total count (pageSize limits, last page repeated)."""
    total = len(out)
    size = crit.page_size
    if state.input_limits:
        if size is not None and size > state.max_page_size:
            raise ApiError(400, "Maximum SearchCriteria pageSize is %max", {"max": state.max_page_size})
        if size is None:
            size = state.default_page_size
    if size and size > 0:
        last = max(1, math.ceil(total / size))
        # Collection::getCurPage(): past the end -> last page again, < 1 -> first page (§3).
        page = min(max(crit.current_page or 1, 1), last)
        out = out[(page - 1) * size : page * size]
    return out, total


def _sku_candidates(crit: Criteria) -> set[str] | None:
    """Lower-cased SKUs an AND group of plain ``sku`` eq/in filters can match, or None (no such group).

    Only narrows which rows are looked at: the full filter still runs on them, so results are the same.
    """
    for group in crit.groups:
        if group and all(f["field"] == "sku" and f["condition_type"].lower() in ("eq", "in") for f in group):
            wanted: set[str] = set()
            for f in group:
                parts = str(f["value"]).split(",") if f["condition_type"].lower() == "in" else [str(f["value"])]
                wanted.update(p.strip().lower() for p in parts)
            return wanted
    return None


def _text_number(text: str) -> float | None:
    """``float(text)`` or None. Most SKUs start with a letter float() never accepts there (only
    inf/nan/infinity do), which is decided without raising: sorting 200,000 SKUs stays cheap."""
    first = text.lstrip()[:1]
    if first.isalpha() and first not in "iInN":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _numeric_text(value: str) -> bool:
    return _text_number(value) is not None


class TrackedDict(dict):  # type: ignore[type-arg]
    """A dict whose ``version`` changes whenever a key is added or removed (values may change in place)."""

    version = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self:
            self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.version += 1
        return super().pop(key, *default)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.version += 1
        return super().setdefault(key, default)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    value = _scalar(value)
    if isinstance(value, int | float):
        return (1, float(value))
    text = str(value)
    number = _text_number(text)
    return (2, text.lower()) if number is None else (1, number)


# ---------------------------------------------------------------------------------------------
# fields= partial responses (§3)
# ---------------------------------------------------------------------------------------------
def parse_fields(spec: str) -> dict[str, Any]:
    """``items[a,b[c]],total_count`` -> {"items": {"a": {}, "b": {"c": {}}}, "total_count": {}}."""
    pos = 0

    def parse_level() -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        name = ""
        while pos < len(spec):
            ch = spec[pos]
            pos += 1
            if ch == "[":
                out[name.strip()] = parse_level()
                name = ""
            elif ch == "]":
                break
            elif ch == ",":
                if name.strip():
                    out[name.strip()] = {}
                name = ""
            else:
                name += ch
        if name.strip():
            out[name.strip()] = {}
        return out

    return parse_level()


def project(value: Any, spec: dict[str, Any]) -> Any:
    if not spec:
        return value
    if isinstance(value, list):
        return [project(v, spec) for v in value]
    if isinstance(value, dict):
        return {k: project(value[k], sub) for k, sub in spec.items() if k in value}
    return value


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------
# Product attributes that live at store-view scope: a `/rest/V1` (default store) save writes them
# as store overrides instead of global values (§2, GH#7612). Price is global scope by default.
STORE_SCOPED = {"name", "status", "visibility", "description", "short_description", "url_key", "meta_title", "meta_description", "meta_keyword"}
ORDER_FIELDS = {
    "entity_id", "increment_id", "state", "status", "created_at", "updated_at", "customer_email", "customer_id", "store_id",
    "customer_is_guest", "customer_firstname", "customer_lastname", "grand_total", "base_grand_total", "total_paid", "base_total_paid",
    "total_refunded", "base_total_refunded", "total_due", "quote_id", "shipping_method", "customer_group_id",
}  # fmt: skip
ORDER_STATES = {
    "pending": "new", "processing": "processing", "complete": "complete", "closed": "closed", "canceled": "canceled",
    "holded": "holded", "pending_payment": "pending_payment", "payment_review": "payment_review", "fraud": "payment_review",
}  # fmt: skip


def utc_now() -> datetime:
    return datetime.now(UTC)


class MagentoState:
    """All data of one emulated shop, in memory. Every access goes through ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Config knobs (tests change them directly).
        self.token = "sandbox-token"
        self.oauth = {
            "consumer_key": "sandbox-consumer-key",
            "consumer_secret": "sandbox-consumer-secret",
            "access_token": "sandbox-access-token",
            "access_token_secret": "sandbox-access-token-secret",
        }
        self.bearer_enabled = True
        # A default Apache refuses any path holding %2F (SKUs with "/" in /V1/products/{sku}); True =
        # a web server set to AllowEncodedSlashes NoDecode (magento-api.md §13).
        self.allow_encoded_slashes = False
        # Web API input limits (magento-api.md §5.1): always on in 2.4.3/2.3.7-p1, a store setting
        # since (off by default there). On here: pageSize > 300 refused, > 20 objects per body array
        # refused, pageSize omitted = 20 — the strictest shop magsit must work with.
        self.input_limits = True
        self.list_limit = 20
        self.max_page_size = 300
        self.default_page_size = 20
        self.store_codes: set[str] = {"default"}
        self.websites: dict[int, str] = {1: "base"}
        self.currency = "SEK"
        # Stores > Configuration > Sales > Tax > Orders, Invoices, Credit Memos Display Settings >
        # Display Shipping Amount: Magento's default is "Excluding Tax"; "Including Tax"/"Both" make
        # a credit memo's arguments.shipping_amount gross (Creditmemo/Total/Shipping.php, §11).
        self.shipping_display_incl_tax = False
        self.allow_backorders = False  # source deduction may not go below 0 (MSI SourceDeductionService)
        self.clock: Callable[[], datetime] = utc_now
        # Data.
        self.sources: dict[str, dict[str, Any]] = {}
        self.stock_sources: dict[int, list[str]] = {1: []}
        self.products: dict[str, dict[str, Any]] = {}  # sku -> stored (global) product
        self.store_overrides: dict[str, dict[str, dict[str, Any]]] = {}  # store code -> sku -> attr -> value
        self.source_items: dict[tuple[str, str], dict[str, Any]] = TrackedDict()  # (source_code, sku.lower()) -> item
        # Order of source-item keys for the last search on sku/source_code only (big catalogues are
        # paged hundreds of times with the same criteria): (signature, keys).
        self._source_item_order: tuple[Any, list[tuple[str, str]]] | None = None
        self.reservations: list[dict[str, Any]] = []
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        self.emails_sent: list[dict[str, Any]] = []
        self.nonces: set[str] = set()
        self._ids: dict[str, int] = {}
        # Per order item: how much of a refund was taken from the unshipped part, and where shipped.
        self._item_meta: dict[int, dict[str, Any]] = {}
        self.add_source("default", "Default Source")

    # -- helpers ------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    def now(self) -> str:
        """UTC ``YYYY-MM-DD HH:MM:SS`` like every Magento timestamp (§8)."""
        moment = self.clock()
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def store_ids(self) -> dict[str, int]:
        codes = ["default"] + sorted(c for c in self.store_codes if c != "default")
        return {code: i + 1 for i, code in enumerate(codes)}

    def find_product(self, sku: str) -> dict[str, Any] | None:
        """SKU lookups are case-insensitive (MySQL collation, §6.3)."""
        with self.lock:
            if sku in self.products:
                return self.products[sku]
            low = sku.lower()
            return next((p for s, p in self.products.items() if s.lower() == low), None)

    def product_by_id(self, product_id: int) -> dict[str, Any] | None:
        return next((p for p in self.products.values() if p["id"] == product_id), None)

    # -- catalog ------------------------------------------------------------------------------
    def add_source(self, code: str, name: str | None = None, enabled: bool = True, stock_id: int = 1) -> dict[str, Any]:
        with self.lock:
            src = {
                "source_code": code,
                "name": name or code,
                "enabled": bool(enabled),
                "country_id": "SE",
                "postcode": "11122",
                "use_default_carrier_config": True,
            }
            self.sources[code] = src
            links = self.stock_sources.setdefault(stock_id, [])
            if code not in links:
                links.append(code)
            return src

    def add_product(
        self,
        sku: str,
        name: str,
        price: float,
        type_id: str = "simple",
        status: int = 1,
        tax_class_id: int = 2,
        website_ids: Iterable[int] = (1,),
        custom_attributes: dict[str, Any] | None = None,
        children: Iterable[str] | None = None,
        visibility: int = 4,
    ) -> int:
        with self.lock:
            attrs = {"tax_class_id": str(tax_class_id)}
            attrs.update({k: v for k, v in (custom_attributes or {}).items()})
            product = self._new_product(sku, {"name": name, "price": price, "type_id": type_id, "status": status, "visibility": visibility})
            product["extension_attributes"]["website_ids"] = [int(w) for w in website_ids]
            product["custom_attributes"] = [{"attribute_code": k, "value": v} for k, v in attrs.items()]
            if children:
                ids = []
                for child in children:
                    kid = self.find_product(child)
                    if kid is None:
                        raise KeyError(f"child sku {child!r} does not exist")
                    ids.append(kid["id"])
                product["extension_attributes"]["configurable_product_links"] = ids
            return int(product["id"])

    def _new_product(self, sku: str, data: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        product: dict[str, Any] = {
            "id": self.next_id("product"),
            "sku": sku,
            "name": data.get("name") or sku,
            "attribute_set_id": int(data.get("attribute_set_id") or 4),
            "price": num(data.get("price") or 0),
            "status": int(data.get("status") or 1),
            "visibility": int(data.get("visibility") or 4),
            "type_id": data.get("type_id") or "simple",
            "created_at": now,
            "updated_at": now,
            "extension_attributes": {"website_ids": [1], "category_links": []},
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            "custom_attributes": [],
        }
        if data.get("weight") is not None:
            product["weight"] = num(data["weight"])
        self.products[sku] = product
        return product

    def render_product(self, product: dict[str, Any], store: str) -> dict[str, Any]:
        out = copy.deepcopy(product)
        for key, value in self.store_overrides.get(store, {}).get(product["sku"], {}).items():
            if key in out or key in ("name", "status", "visibility"):
                out[key] = value
            else:
                _set_custom(out, key, value)
        ext = out["extension_attributes"]
        if out["type_id"] == "configurable":
            ext.setdefault("configurable_product_links", [])
        else:
            ext.pop("configurable_product_links", None)
            item = self.source_items.get(("default", product["sku"].lower()))
            ext["stock_item"] = self._stock_item(product, item)
        return out

    def _stock_item(self, product: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        qty = item["quantity"] if item else 0
        return {
            "item_id": product["id"], "product_id": product["id"], "stock_id": 1, "qty": num(qty),
            "is_in_stock": bool(item and item["status"] == 1), "is_qty_decimal": False,
            "show_default_notification_message": False, "use_config_min_qty": True, "min_qty": 0,
            "use_config_min_sale_qty": 1, "min_sale_qty": 1, "use_config_max_sale_qty": True, "max_sale_qty": 10000,
            "use_config_backorders": True, "backorders": 0, "use_config_notify_stock_qty": True, "notify_stock_qty": 1,
            "use_config_qty_increments": True, "qty_increments": 0, "use_config_enable_qty_inc": True,
            "enable_qty_increments": False, "use_config_manage_stock": True, "manage_stock": True, "low_stock_date": None,
            "is_decimal_divided": False, "stock_status_changed_auto": 0,
        }  # fmt: skip

    # -- inventory ----------------------------------------------------------------------------
    def set_source_item(self, sku: str, source_code: str, quantity: float, status: int | None = None) -> dict[str, Any]:
        """Hand edit on the Magento side (admin grid): no validation, unknown SKUs become orphans."""
        with self.lock:
            if source_code not in self.sources:
                raise KeyError(f"unknown source {source_code!r}")
            if status is None:
                status = 1 if float(quantity) > 0 else 0
            key = (source_code, sku.lower())
            existing = self.source_items.get(key)
            item = {"sku": existing["sku"] if existing else sku, "source_code": source_code, "quantity": num(quantity), "status": int(status)}
            self.source_items[key] = item
            return item

    def source_quantity(self, sku: str, source_code: str) -> float:
        with self.lock:
            item = self.source_items.get((source_code, sku.lower()))
            return float(item["quantity"]) if item else 0.0

    def orphan_source_items(self) -> list[dict[str, Any]]:
        """Source items whose SKU is no product (saved silently by MSI, §6.3)."""
        with self.lock:
            return [dict(i) for i in self.source_items.values() if self.find_product(i["sku"]) is None]

    def salable_qty(self, sku: str, stock_id: int = 1) -> float:
        """Sum of in-stock quantities of the stock's enabled sources + reservations (§6.4)."""
        with self.lock:
            codes = [c for c in self.stock_sources.get(stock_id, []) if self.sources.get(c, {}).get("enabled")]
            low = sku.lower()
            qty = sum(
                float(i["quantity"])
                for (code, s), i in self.source_items.items()
                if s == low and code in codes and i["status"] == 1
            )
            if qty <= 0:
                # The stock index marks the SKU not salable: the answer is 0, whatever is reserved.
                return 0.0
            qty += sum(float(r["quantity"]) for r in self.reservations if r["sku"].lower() == low and r["stock_id"] == stock_id)
            return qty

    def reserve(self, sku: str, quantity: float, event: str, order_id: int) -> None:
        self.reservations.append(
            {
                "reservation_id": self.next_id("reservation"),
                "stock_id": 1,
                "sku": sku,
                "quantity": num(quantity),
                "metadata": {"event_type": event, "object_type": "order", "object_id": str(order_id)},
            }
        )

    # -- customers ----------------------------------------------------------------------------
    def find_customer(self, email: str, website_id: int | None = None) -> dict[str, Any] | None:
        low = email.strip().lower()
        for c in self.customers.values():
            if c["email"].lower() == low and (website_id is None or int(c["website_id"]) == int(website_id)):
                return c
        return None

    def add_customer(self, email: str, firstname: str, lastname: str, website_id: int = 1, **extra: Any) -> int:
        with self.lock:
            now = self.now()
            cid = self.next_id("customer")
            customer: dict[str, Any] = {
                "id": cid,
                "group_id": 1,
                "created_at": now,
                "updated_at": now,
                "created_in": "Default Store View",
                "email": email,
                "firstname": firstname,
                "lastname": lastname,
                "store_id": 1,
                "website_id": int(website_id),
                "addresses": [],
                "disable_auto_group_change": 0,
                "extension_attributes": {"is_subscribed": False},
            }
            addresses = extra.pop("addresses", None)
            customer.update(extra)
            self.customers[cid] = customer
            if addresses:
                self._set_addresses(customer, addresses)
            return cid

    def _set_addresses(self, customer: dict[str, Any], addresses: list[dict[str, Any]]) -> None:
        """Replace the address set (unlisted addresses are deleted, §12)."""
        out = []
        customer.pop("default_billing", None)
        customer.pop("default_shipping", None)
        for address in addresses:
            a = dict(address)
            a["id"] = int(a.get("id") or self.next_id("address"))
            a["customer_id"] = customer["id"]
            if a.get("default_billing"):
                customer["default_billing"] = str(a["id"])
            if a.get("default_shipping"):
                customer["default_shipping"] = str(a["id"])
            out.append(a)
        customer["addresses"] = out

    # -- orders -------------------------------------------------------------------------------
    def place_order(
        self,
        items: Iterable[Any],
        customer_email: str | None = None,
        customer_id: int | None = None,
        guest: bool = False,
        status: str = "processing",
        shipping_amount: float = 0,
        shipping_method: str = "flatrate_flatrate",
        pickup_location_code: str | None = None,
        address: dict[str, Any] | None = None,
        payment_method: str = "checkmo",
        invoice: bool = True,
        tax_percent: float = 25,
        created_at: str | datetime | None = None,
        store_id: int = 1,
        shipping_description: str | None = None,
    ) -> dict[str, Any]:
        """A storefront checkout: order, MSI reservations, optionally an immediate (paid) invoice.

        Prices are catalog prices excluding tax (Magento's default); ``tax_percent`` applies to
        lines and shipping. ``items``: ``(sku, qty)`` or ``{sku, qty, price?, parent_sku?}``.
        """
        with self.lock:
            eid = self.next_id("order")
            if isinstance(created_at, datetime):
                stamp = (created_at.astimezone(UTC) if created_at.tzinfo else created_at).strftime("%Y-%m-%d %H:%M:%S")
            else:
                stamp = created_at or self.now()
            customer = None
            if not guest:
                if customer_id is not None:
                    customer = self.customers.get(int(customer_id))
                    if customer is None:
                        raise KeyError(f"unknown customer {customer_id}")
                elif customer_email:
                    customer = self.find_customer(customer_email)
            email = customer["email"] if customer else (customer_email or "guest@example.com")
            first = customer["firstname"] if customer else "Guest"
            last = customer["lastname"] if customer else "Shopper"
            rate = float(tax_percent)
            order_items: list[dict[str, Any]] = []
            for line in items:
                spec = {"sku": line[0], "qty": line[1]} if isinstance(line, list | tuple) else dict(line)
                sku, qty = str(spec["sku"]), float(spec["qty"])
                product = self.find_product(sku)
                if product is None and spec.get("price") is None:
                    raise KeyError(f"unknown sku {sku!r}")
                price = float(spec["price"]) if spec.get("price") is not None else float(product["price"])  # type: ignore[index]
                name = product["name"] if product else sku
                if spec.get("parent_sku"):
                    parent = self.find_product(str(spec["parent_sku"]))
                    if parent is None:
                        raise KeyError(f"unknown parent sku {spec['parent_sku']!r}")
                    top = self._order_item(eid, stamp, parent["id"], sku, parent["name"], qty, price, rate, "configurable")
                    kid = self._order_item(eid, stamp, product["id"] if product else None, sku, name, qty, 0, rate, "simple")
                    kid["parent_item_id"] = top["item_id"]
                    kid["tax_percent"] = 0
                    order_items += [top, kid]
                else:
                    kind = product["type_id"] if product else "simple"
                    order_items.append(self._order_item(eid, stamp, product["id"] if product else None, sku, name, qty, price, rate, kind))
            tops = [i for i in order_items if "parent_item_id" not in i]
            subtotal = money(sum(i["row_total"] for i in tops))
            item_tax = money(sum(i["tax_amount"] for i in tops))
            ship = money(shipping_amount)
            ship_tax = money(ship * rate / 100)
            grand = money(subtotal + item_tax + ship + ship_tax)
            addr = {
                "firstname": first, "lastname": last, "street": ["Drottninggatan 1"], "city": "Stockholm",
                "postcode": "11151", "country_id": "SE", "telephone": "0701234567", "email": email,
            }  # fmt: skip
            # Blank address fields fall back to the customer's (a checkout never stores empty names).
            addr.update({k: v for k, v in (address or {}).items() if v not in ("", None)})
            ship_addr = dict(addr, address_type="shipping", entity_id=self.next_id("order_address"), parent_id=eid)
            bill_addr = dict(addr, address_type="billing", entity_id=self.next_id("order_address"), parent_id=eid)
            state = ORDER_STATES.get(status, "processing")
            order: dict[str, Any] = {
                "entity_id": eid,
                "increment_id": f"{eid:09d}",
                "state": state,
                "status": status,
                "created_at": stamp,
                "updated_at": stamp,
                "store_id": store_id,
                "store_name": "Main Website\nMain Website Store\nDefault Store View",
                "quote_id": eid,
                "protect_code": secrets.token_hex(3),
                "customer_email": email,
                "customer_firstname": first,
                "customer_lastname": last,
                "customer_is_guest": 0 if customer else 1,
                "customer_group_id": customer["group_id"] if customer else 0,
                "customer_note_notify": 1,
                "email_sent": 1,
                "is_virtual": 0,
                "order_currency_code": self.currency,
                "base_currency_code": self.currency,
                "global_currency_code": self.currency,
                "store_currency_code": self.currency,
                "base_to_global_rate": 1,
                "base_to_order_rate": 1,
                "store_to_base_rate": 0,
                "store_to_order_rate": 0,
                "subtotal": subtotal,
                "subtotal_incl_tax": money(subtotal + item_tax),
                "tax_amount": money(item_tax + ship_tax),
                "shipping_amount": ship,
                "shipping_tax_amount": ship_tax,
                "shipping_incl_tax": money(ship + ship_tax),
                "shipping_discount_amount": 0,
                "shipping_discount_tax_compensation_amount": 0,
                "discount_amount": 0,
                "discount_tax_compensation_amount": 0,
                "grand_total": grand,
                "total_due": grand,
                "total_qty_ordered": num(sum(i["qty_ordered"] for i in tops)),
                "total_item_count": len(tops),
                "weight": 0,
                "shipping_description": shipping_description or ("In-Store Pickup" if pickup_location_code else "Flat Rate - Fixed"),
                "items": order_items,
                "billing_address": bill_addr,
                "payment": {
                    "entity_id": eid,
                    "parent_id": eid,
                    "method": payment_method,
                    "amount_ordered": grand,
                    "base_amount_ordered": grand,
                    "shipping_amount": ship,
                    "base_shipping_amount": ship,
                    "account_status": None,
                    "additional_information": [payment_method],
                    "cc_last4": None,
                },
                "status_histories": [],
                "extension_attributes": {
                    "shipping_assignments": [
                        {
                            "shipping": {
                                "address": ship_addr,
                                "method": shipping_method,
                                "total": {
                                    "shipping_amount": ship, "base_shipping_amount": ship, "shipping_incl_tax": money(ship + ship_tax),
                                    "base_shipping_incl_tax": money(ship + ship_tax), "shipping_tax_amount": ship_tax,
                                    "base_shipping_tax_amount": ship_tax, "shipping_discount_amount": 0, "base_shipping_discount_amount": 0,
                                },  # fmt: skip
                            },
                            "items": order_items,
                            "stock_id": 1,
                        }
                    ],
                    "payment_additional_info": [{"key": "method_title", "value": payment_method}],
                    "applied_taxes": [{"code": "VAT", "title": "VAT", "percent": num(rate), "amount": money(item_tax + ship_tax), "base_amount": money(item_tax + ship_tax)}],
                    "item_applied_taxes": [],
                    "converting_from_quote": True,
                },
            }
            if customer:
                order["customer_id"] = customer["id"]
            if pickup_location_code:
                order["extension_attributes"]["pickup_location_code"] = pickup_location_code
            _sync_base(order)
            self.orders[eid] = order
            # MSI appends one negative reservation per stocked line at placement (§6.4).
            for item in order_items:
                if item["product_type"] == "simple":
                    self.reserve(item["sku"], -item["qty_ordered"], "order_placed", eid)
            if invoice and state not in ("canceled", "holded", "payment_review", "pending_payment"):
                self.invoice_order(eid, bump=False)
            return order

    def _order_item(
        self, order_id: int, stamp: str, product_id: int | None, sku: str, name: str, qty: float, price: float, rate: float, kind: str
    ) -> dict[str, Any]:
        row = money(price * qty)
        tax = money(row * rate / 100)
        item: dict[str, Any] = {
            "item_id": self.next_id("order_item"),
            "order_id": order_id,
            "quote_item_id": self.next_id("quote_item"),
            "created_at": stamp,
            "updated_at": stamp,
            "product_id": product_id,
            "product_type": kind,
            "sku": sku,
            "name": name,
            "store_id": 1,
            "is_virtual": 1 if kind in ("virtual", "downloadable") else 0,
            "qty_ordered": num(qty),
            "qty_invoiced": 0,
            "qty_shipped": 0,
            "qty_refunded": 0,
            "qty_canceled": 0,
            "qty_backordered": None,
            "price": money(price),
            "original_price": money(price),
            "price_incl_tax": money(price * (1 + rate / 100)),
            "row_total": row,
            "row_total_incl_tax": money(row + tax),
            "row_invoiced": 0,
            "tax_amount": tax,
            "tax_invoiced": 0,
            "tax_percent": num(rate),
            "discount_amount": 0,
            "discount_percent": 0,
            "discount_invoiced": 0,
            "discount_tax_compensation_amount": 0,
            "amount_refunded": 0,
            "weight": 0,
            "row_weight": 0,
            "free_shipping": 0,
            "no_discount": 0,
        }
        if product_id is None:
            del item["product_id"]
        del item["qty_backordered"]  # null fields are omitted in responses (§8)
        return item

    def order(self, entity_id: int) -> dict[str, Any]:
        order = self.orders.get(int(entity_id))
        if order is None:
            raise not_found_entity()
        return order

    def _touch(self, order: dict[str, Any]) -> None:
        """Every order save bumps updated_at (§8)."""
        order["updated_at"] = self.now()
        for item in order["items"]:
            item["updated_at"] = order["updated_at"]

    def _resettle(self, order: dict[str, Any]) -> None:
        """Order state after a document: closed when nothing is left, complete when all is shipped
        and invoiced (Magento's state machine, simplified)."""
        if order["state"] in ("canceled", "holded", "payment_review"):
            return
        tops = _tops(order)
        open_qty = [i["qty_ordered"] - i["qty_refunded"] - i["qty_canceled"] for i in tops]
        if all(q <= 0 for q in open_qty) and any(i["qty_refunded"] > 0 for i in tops):
            order["state"] = order["status"] = "closed"
        elif all(
            (i["is_virtual"] or i["qty_shipped"] + self._meta(i)["refunded_unshipped"] >= i["qty_ordered"] - i["qty_canceled"])
            and i["qty_invoiced"] >= i["qty_ordered"] - i["qty_canceled"]
            for i in tops
        ):
            order["state"] = order["status"] = "complete"
        elif order["state"] in ("new", "pending_payment") and any(i["qty_invoiced"] or i["qty_shipped"] for i in tops):
            order["state"] = order["status"] = "processing"
        _sync_base(order)

    def _meta(self, item: dict[str, Any]) -> dict[str, Any]:
        return self._item_meta.setdefault(item["item_id"], {"refunded_unshipped": 0.0, "sources": {}})

    def add_comment(
        self, entity_id: int, comment: str, is_customer_notified: int = 0, is_visible_on_front: int = 0, status: str | None = None
    ) -> bool:
        with self.lock:
            order = self.order(entity_id)
            if status:
                order["status"] = status
            order["status_histories"].insert(
                0,
                {
                    "entity_id": self.next_id("history"),
                    "parent_id": order["entity_id"],
                    "comment": comment,
                    "is_customer_notified": int(is_customer_notified or 0),
                    "is_visible_on_front": int(is_visible_on_front or 0),
                    "status": order["status"],
                    "created_at": self.now(),
                    "entity_name": "order",
                },
            )
            if is_customer_notified:
                self.emails_sent.append({"type": "order_comment", "to": order["customer_email"], "order_id": order["entity_id"]})
            self._touch(order)
            return True

    def cancel_order(self, entity_id: int) -> bool:
        """``canCancel()`` false (all invoiced, all shipped, final state) -> False, no error (§8)."""
        with self.lock:
            order = self.order(entity_id)
            tops = _tops(order)
            if order["state"] in ("canceled", "complete", "closed", "holded", "payment_review"):
                return False
            if all(i["qty_invoiced"] >= i["qty_ordered"] - i["qty_refunded"] for i in tops):
                return False
            if all(i["qty_shipped"] >= i["qty_ordered"] for i in tops if not i["is_virtual"]):
                return False
            for top in tops:
                cancel = top["qty_ordered"] - max(top["qty_invoiced"], top["qty_shipped"]) - top["qty_canceled"]
                cancel = max(0, cancel - self._meta(top)["refunded_unshipped"])
                if cancel <= 0:
                    continue
                for item in _family(order, top):
                    item["qty_canceled"] = num(item["qty_canceled"] + cancel)
                stock = _stock_item(order, top)
                if stock is not None:
                    self.reserve(stock["sku"], cancel, "order_canceled", order["entity_id"])
            if not any(i["qty_invoiced"] or i["qty_shipped"] for i in tops):
                order["state"] = order["status"] = "canceled"
                order["total_canceled"] = order["grand_total"]
                order["total_due"] = 0
            self._resettle(order)
            self._touch(order)
            return True

    def edit_order(self, entity_id: int, items: Iterable[Any], **place: Any) -> dict[str, Any]:
        """Admin "Edit" of an order (pitfalls P19): Magento places a new order ``<original>-<n>``
        linked by ``relation_parent_id``/``relation_parent_real_id`` and cancels the original
        (``AdminOrder\\Create::createOrder`` calls ``$oldOrder->cancel()``; an original that cannot
        be cancelled, e.g. invoiced, keeps its state). Returns the new order."""
        with self.lock:
            old = self.order(entity_id)
            base = old.get("original_increment_id") or old["increment_id"]
            edit = int(old.get("edit_increment") or 0) + 1
            place.setdefault("customer_email", old["customer_email"])
            place.setdefault("guest", bool(old.get("customer_is_guest")))
            new = self.place_order(items, **place)
            new.update(increment_id=f"{base}-{edit}", original_increment_id=base, edit_increment=edit,
                       relation_parent_id=old["entity_id"], relation_parent_real_id=old["increment_id"])
            old.update(relation_child_id=new["entity_id"], relation_child_real_id=new["increment_id"])
            self.cancel_order(entity_id)
            return new

    def invoice_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        capture: bool = True,
        notify: bool = False,
        comment: str | None = None,
        bump: bool = True,
    ) -> int:
        """Invoice (marks paid: offline methods just record the payment, §10). Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = _tops(order)
            to_invoice = {i["item_id"]: i["qty_ordered"] - i["qty_invoiced"] - i["qty_canceled"] for i in tops}
            errors = []
            if order["state"] in ("payment_review", "holded", "canceled", "complete", "closed"):
                errors.append(f"An invoice cannot be created when an order has a status of {order['state']}")
            elif all(q <= 0 for q in to_invoice.values()):
                errors.append("The order does not allow an invoice to be created.")
            wanted = _requested(order, items, to_invoice) if not errors else {}
            if not errors:
                by_id = {i["item_id"]: i for i in order["items"]}
                for item_id, qty in wanted.items():
                    item = by_id.get(item_id)
                    if item is None:
                        errors.append("The invoice contains one or more items that are not part of the original order.")
                    elif qty > to_invoice.get(item_id, 0) + 1e-9:
                        errors.append(f'The quantity to invoice must not be greater than the uninvoiced quantity for product SKU "{item["sku"]}".')
                if not errors and sum(wanted.values()) <= 0:
                    errors.append("You can't create an invoice without products.")
            if errors:
                raise ApiError(400, "Invoice Document Validation Error(s):\n" + "\n".join(errors))
            inv_id = self.next_id("invoice")
            lines, subtotal, tax = [], 0.0, 0.0
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                row = money(top["price"] * qty)
                line_tax = money(top["tax_amount"] / top["qty_ordered"] * qty)
                subtotal, tax = subtotal + row, tax + line_tax
                for item in _family(order, top):
                    item["qty_invoiced"] = num(item["qty_invoiced"] + qty)
                top["row_invoiced"] = money(top["row_invoiced"] + row)
                top["tax_invoiced"] = money(top["tax_invoiced"] + line_tax)
                lines.append(
                    {"entity_id": self.next_id("invoice_item"), "parent_id": inv_id, "order_item_id": top["item_id"], "sku": top["sku"],
                     "name": top["name"], "qty": num(qty), "price": top["price"], "price_incl_tax": top["price_incl_tax"],
                     "row_total": row, "row_total_incl_tax": money(row + line_tax), "tax_amount": line_tax, "base_price": top["price"],
                     "base_row_total": row, "base_tax_amount": line_tax, "base_cost": 0}  # fmt: skip
                )
            ship = ship_tax = 0.0
            if not order.get("shipping_invoiced"):
                ship, ship_tax = order["shipping_amount"], order["shipping_tax_amount"]
                order["shipping_invoiced"] = ship
                order["shipping_tax_invoiced"] = ship_tax
            grand = money(subtotal + tax + ship + ship_tax)
            stamp = self.now()
            invoice = {
                "entity_id": inv_id, "increment_id": f"{inv_id:09d}", "order_id": order["entity_id"], "state": 2,
                "store_id": order["store_id"], "created_at": stamp, "updated_at": stamp,
                "order_currency_code": self.currency, "base_currency_code": self.currency,
                "subtotal": money(subtotal), "subtotal_incl_tax": money(subtotal + tax), "tax_amount": money(tax + ship_tax),
                "shipping_amount": ship, "shipping_tax_amount": ship_tax, "shipping_incl_tax": money(ship + ship_tax),
                "discount_amount": 0, "grand_total": grand, "total_qty": num(sum(line["qty"] for line in lines)),
                "billing_address_id": order["billing_address"]["entity_id"], "email_sent": 1 if notify else 0,
                "items": lines, "comments": [],
            }  # fmt: skip
            if comment:
                invoice["comments"].append({"comment": comment, "parent_id": inv_id, "created_at": stamp})
            _sync_base(invoice)
            self.invoices[inv_id] = invoice
            order["total_invoiced"] = money(order.get("total_invoiced", 0) + grand)
            order["total_paid"] = money(order.get("total_paid", 0) + grand)
            order["subtotal_invoiced"] = money(order.get("subtotal_invoiced", 0) + subtotal)
            order["tax_invoiced"] = money(order.get("tax_invoiced", 0) + tax + ship_tax)
            order["total_due"] = money(order["grand_total"] - order["total_paid"])
            pay = order["payment"]
            pay["amount_paid"] = money(pay.get("amount_paid", 0) + grand)
            pay["shipping_captured"] = order["shipping_invoiced"]
            if notify:
                self.emails_sent.append({"type": "invoice", "to": order["customer_email"], "order_id": order["entity_id"], "invoice_id": inv_id})
            self._resettle(order)
            if bump:
                self._touch(order)
            return inv_id

    def ship_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        tracks: list[dict[str, Any]] | None = None,
        source_code: str | None = None,
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """Create a shipment (§9): deducts the source, compensates the reservation. Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = [i for i in _tops(order) if not i["is_virtual"]]
            to_ship = {i["item_id"]: i["qty_ordered"] - i["qty_shipped"] - i["qty_canceled"] - self._meta(i)["refunded_unshipped"] for i in tops}
            errors: list[str] = []
            if order["state"] in ("payment_review", "holded", "canceled"):
                errors.append(f"A shipment cannot be created when an order has a status of {order['state']}")
            elif all(q <= 0 for q in to_ship.values()):
                errors.append("The order does not allow a shipment to be created.")
            if not errors:
                by_id = {i["item_id"]: i for i in order["items"]}
                if items:
                    wanted = _requested(order, items, {})
                else:
                    # Omitted items ship the full qty_ordered, not what is left (ShipmentDocumentFactory, §9).
                    wanted = {i["item_id"]: float(i["qty_ordered"]) for i in tops}
                for item_id, qty in wanted.items():
                    item = by_id.get(item_id)
                    if item is None:
                        errors.append(f'We can not found item "{item_id}" in order.')
                    elif qty < 0 or qty > to_ship.get(item_id, 0) + 1e-9:
                        errors.append(f'We found an invalid quantity to ship for item "{item["name"]}".')
                if not errors and sum(wanted.values()) <= 0:
                    errors.append("You can't create a shipment without products.")
                for track in tracks or []:
                    if not str(track.get("track_number") or "").strip():
                        errors.append("Please enter a tracking number.")
            if errors:
                raise ApiError(400, "Shipment Document Validation Error(s):\n" + "\n".join(errors))
            links = self.stock_sources.get(1, [])
            code = source_code or (links[0] if len(links) == 1 else "default")
            # Source deduction runs inside the shipment save; any failure rolls back (§9, §6.4).
            deductions: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                stock = _stock_item(order, top)
                if qty <= 0 or stock is None:
                    continue
                src = self.source_items.get((code, stock["sku"].lower()))
                if code not in self.sources or src is None or (not self.allow_backorders and float(src["quantity"]) < qty):
                    raise ApiError(400, "Could not save a shipment, see error log for details")
                deductions.append((top, src, qty))
            ship_id = self.next_id("shipment")
            stamp = self.now()
            lines = []
            for top, src, qty in deductions:
                src["quantity"] = num(float(src["quantity"]) - qty)
                stock = _stock_item(order, top)
                self.reserve(stock["sku"], qty, "shipment_created", order["entity_id"])  # type: ignore[index]
                sources = self._meta(top)["sources"]
                sources[code] = sources.get(code, 0) + qty
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                for item in _family(order, top):
                    item["qty_shipped"] = num(item["qty_shipped"] + qty)
                lines.append(
                    {"entity_id": self.next_id("shipment_item"), "parent_id": ship_id, "order_item_id": top["item_id"],
                     "sku": top["sku"], "name": top["name"], "qty": num(qty), "price": top["price"], "weight": 0,
                     "product_id": top.get("product_id")}  # fmt: skip
                )
            shipment = {
                "entity_id": ship_id, "increment_id": f"{ship_id:09d}", "order_id": order["entity_id"], "store_id": order["store_id"],
                "created_at": stamp, "updated_at": stamp, "total_qty": num(sum(line["qty"] for line in lines)),
                "billing_address_id": order["billing_address"]["entity_id"],
                "shipping_address_id": order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["entity_id"],
                "email_sent": 1 if notify else 0, "items": lines, "packages": [], "comments": [],
                "tracks": [
                    {"entity_id": self.next_id("track"), "order_id": order["entity_id"], "parent_id": ship_id,
                     "track_number": t.get("track_number"), "title": t.get("title"), "carrier_code": t.get("carrier_code"),
                     "created_at": stamp, "updated_at": stamp, "qty": None, "weight": None, "description": None}
                    for t in tracks or []
                ],
                "extension_attributes": {"source_code": code},
            }  # fmt: skip
            if comment:
                shipment["comments"].append({"comment": comment, "parent_id": ship_id, "created_at": stamp})
            self.shipments[ship_id] = shipment
            if notify:
                self.emails_sent.append({"type": "shipment", "to": order["customer_email"], "order_id": order["entity_id"], "shipment_id": ship_id})
            self._resettle(order)
            self._touch(order)
            return ship_id

    def refund_order(
        self,
        entity_id: int,
        items: list[dict[str, Any]] | None = None,
        shipping_amount: float | None = None,
        adjustment_positive: float = 0,
        adjustment_negative: float = 0,
        return_to_stock_items: Iterable[int] = (),
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """Offline credit memo (§11). Returns its id."""
        with self.lock:
            order = self.order(entity_id)
            tops = _tops(order)
            refundable = {i["item_id"]: i["qty_invoiced"] - i["qty_refunded"] for i in tops}
            errors: list[str] = []
            if order["state"] in ("payment_review", "holded", "canceled", "closed"):
                errors.append(f"A creditmemo can not be created when an order has a status of {order['state']}")
            elif order.get("total_paid", 0) - order.get("total_refunded", 0) <= 0.0001:
                errors.append("We can't create creditmemo for the order.")
            if errors:
                raise ApiError(400, "Creditmemo Document Validation Error(s):\n" + "\n".join(errors))
            by_id = {i["item_id"]: i for i in order["items"]}
            wanted = _requested(order, items, refundable)
            for item_id, qty in wanted.items():
                item = by_id.get(item_id)
                if item is None:
                    errors.append(f'The creditmemo contains product SKU "{item_id}" that is not part of the original order.')
                elif qty > refundable.get(item_id, 0) + 1e-9:
                    errors.append(f'The quantity to creditmemo must not be greater than the unrefunded quantity for product SKU "{item["sku"]}".')
            ship_left = money(order.get("shipping_invoiced", 0) - order.get("shipping_refunded", 0))
            # Omitted shipping_amount refunds all remaining shipping (Creditmemo/Total/Shipping.php).
            ship = ship_left if shipping_amount is None else money(shipping_amount)
            if shipping_amount is not None and self.shipping_display_incl_tax and order["shipping_amount"]:
                # isSuppliedShippingAmountInclTax(): a store showing shipping incl. tax reads the
                # supplied amount as gross and converts it to net (magento-api.md §11).
                rate = order["shipping_incl_tax"] / order["shipping_amount"]
                left_incl = money(ship_left * rate)
                if ship > left_incl + 0.0001:
                    raise ApiError(400, "Maximum shipping amount allowed to refund is: %1", [f"{left_incl:.2f}"])
                ship = min(ship_left, money(ship / rate))
            if ship > ship_left + 0.0001:
                raise ApiError(400, "Maximum shipping amount allowed to refund is: %1", [f"{ship_left:.2f}"])
            subtotal = tax = 0.0
            for item_id, qty in wanted.items():
                top = by_id.get(item_id)
                if top is not None and qty > 0:
                    subtotal += money(top["price"] * qty)
                    tax += money(top["tax_amount"] / top["qty_ordered"] * qty)
            ship_tax = money(ship * order["shipping_tax_amount"] / order["shipping_amount"]) if order["shipping_amount"] else 0.0
            grand = money(subtotal + tax + ship + ship_tax + float(adjustment_positive or 0) - float(adjustment_negative or 0))
            if not errors:
                if sum(wanted.values()) <= 0 and ship <= 0:
                    errors.append("You can't create a creditmemo without products.")
                elif grand <= 0:
                    errors.append("The credit memo's total must be positive.")
                elif grand > money(order.get("total_paid", 0) - order.get("total_refunded", 0)) + 0.0001:
                    errors.append(f"The most money available to refund is {money(order['total_paid'] - order.get('total_refunded', 0)):.2f}.")
            if errors:
                raise ApiError(400, "Creditmemo Document Validation Error(s):\n" + "\n".join(errors))
            back = {int(i) for i in return_to_stock_items or []}
            memo_id = self.next_id("creditmemo")
            stamp = self.now()
            lines = []
            for top in tops:
                qty = wanted.get(top["item_id"], 0)
                if qty <= 0:
                    continue
                row = money(top["price"] * qty)
                line_tax = money(top["tax_amount"] / top["qty_ordered"] * qty)
                family = _family(order, top)
                for item in family:
                    item["qty_refunded"] = num(item["qty_refunded"] + qty)
                top["amount_refunded"] = money(top["amount_refunded"] + row)
                meta = self._meta(top)
                unshipped = max(0.0, top["qty_ordered"] - top["qty_shipped"] - top["qty_canceled"] - meta["refunded_unshipped"])
                compensate = min(qty, unshipped)
                meta["refunded_unshipped"] += compensate
                stock = _stock_item(order, top)
                if stock is not None:
                    # Units never shipped give their reservation back; shipped units go back to
                    # their source only when listed in return_to_stock_items (§11, MSI).
                    if compensate > 0:
                        self.reserve(stock["sku"], compensate, "creditmemo_created", order["entity_id"])
                    returned = qty - compensate
                    if returned > 0 and any(i["item_id"] in back for i in family):
                        code = next(iter(meta["sources"]), "default")
                        src = self.source_items.get((code, stock["sku"].lower()))
                        if src is None:
                            src = self.set_source_item(stock["sku"], code, 0, 1)
                        src["quantity"] = num(float(src["quantity"]) + returned)
                        if float(src["quantity"]) > 0:
                            src["status"] = 1
                lines.append(
                    {"entity_id": self.next_id("creditmemo_item"), "parent_id": memo_id, "order_item_id": top["item_id"],
                     "sku": top["sku"], "name": top["name"], "qty": num(qty), "price": top["price"], "base_price": top["price"],
                     "price_incl_tax": top["price_incl_tax"], "row_total": row, "base_row_total": row,
                     "row_total_incl_tax": money(row + line_tax), "tax_amount": line_tax, "base_tax_amount": line_tax,
                     "base_cost": 0, "product_id": top.get("product_id")}  # fmt: skip
                )
            adj_pos, adj_neg = money(adjustment_positive), money(adjustment_negative)
            last_invoice = max((i for i, inv in self.invoices.items() if inv["order_id"] == order["entity_id"]), default=None)
            memo = {
                "entity_id": memo_id, "increment_id": f"{memo_id:09d}", "order_id": order["entity_id"], "invoice_id": last_invoice,
                "state": 2, "creditmemo_status": None, "store_id": order["store_id"], "created_at": stamp, "updated_at": stamp,
                "order_currency_code": self.currency, "base_currency_code": self.currency,
                "subtotal": money(subtotal), "subtotal_incl_tax": money(subtotal + tax), "tax_amount": money(tax + ship_tax),
                "shipping_amount": ship, "shipping_tax_amount": ship_tax, "shipping_incl_tax": money(ship + ship_tax),
                "discount_amount": 0, "adjustment": money(adj_pos - adj_neg), "adjustment_positive": adj_pos,
                "adjustment_negative": adj_neg, "grand_total": grand, "email_sent": 1 if notify else 0,
                "billing_address_id": order["billing_address"]["entity_id"], "items": lines, "comments": [],
            }  # fmt: skip
            if memo["invoice_id"] is None:
                del memo["invoice_id"]
            del memo["creditmemo_status"]
            if comment:
                memo["comments"].append({"comment": comment, "parent_id": memo_id, "created_at": stamp})
            _sync_base(memo)
            self.creditmemos[memo_id] = memo
            order["total_refunded"] = money(order.get("total_refunded", 0) + grand)
            order["total_offline_refunded"] = money(order.get("total_offline_refunded", 0) + grand)
            order.setdefault("total_online_refunded", 0)  # offline credit memo: no gateway involved
            order.setdefault("base_total_online_refunded", 0)
            order["subtotal_refunded"] = money(order.get("subtotal_refunded", 0) + subtotal)
            order["tax_refunded"] = money(order.get("tax_refunded", 0) + tax + ship_tax)
            order["shipping_refunded"] = money(order.get("shipping_refunded", 0) + ship)
            order["shipping_tax_refunded"] = money(order.get("shipping_tax_refunded", 0) + ship_tax)
            order["base_shipping_tax_refunded"] = order["shipping_tax_refunded"]
            order["adjustment_positive"] = money(order.get("adjustment_positive", 0) + adj_pos)
            order["adjustment_negative"] = money(order.get("adjustment_negative", 0) + adj_neg)
            order["payment"]["amount_refunded"] = money(order["payment"].get("amount_refunded", 0) + grand)
            if notify:
                self.emails_sent.append({"type": "creditmemo", "to": order["customer_email"], "order_id": order["entity_id"], "creditmemo_id": memo_id})
            self._resettle(order)
            self._touch(order)
            return memo_id

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "products": len(self.products),
                "sources": len(self.sources),
                "source_items": len(self.source_items),
                "orphan_source_items": len(self.orphan_source_items()),
                "reservations": len(self.reservations),
                "customers": len(self.customers),
                "orders": len(self.orders),
                "invoices": len(self.invoices),
                "shipments": len(self.shipments),
                "creditmemos": len(self.creditmemos),
                "emails_sent": len(self.emails_sent),
                "store_overrides": {code: sorted(skus) for code, skus in self.store_overrides.items()},
            }


def _tops(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Order lines as documents see them: items without a parent (§8)."""
    return [i for i in order["items"] if not i.get("parent_item_id")]


def _family(order: dict[str, Any], top: dict[str, Any]) -> list[dict[str, Any]]:
    return [top] + [i for i in order["items"] if i.get("parent_item_id") == top["item_id"]]


def _stock_item(order: dict[str, Any], top: dict[str, Any]) -> dict[str, Any] | None:
    """The simple item that holds stock for a line (the child of a configurable)."""
    for item in _family(order, top):
        if item["product_type"] == "simple":
            return item
    return None


def _requested(order: dict[str, Any], items: list[dict[str, Any]] | None, default: dict[int, float]) -> dict[int, float]:
    """``[{order_item_id, qty}]`` -> {parent item id: qty}; empty -> ``default`` (all that is left)."""
    if not items:
        return {k: float(v) for k, v in default.items() if v > 0}
    parents = {i["item_id"]: i.get("parent_item_id") for i in order["items"]}
    out: dict[int, float] = {}
    for entry in items:
        item_id = int(entry.get("order_item_id") or 0)
        item_id = parents.get(item_id) or item_id
        out[item_id] = out.get(item_id, 0.0) + float(entry.get("qty") or 0)
    return out


_BASE_SKIP = {"base_currency_code", "base_to_global_rate", "base_to_order_rate", "base_cost"}


def _sync_base(doc: dict[str, Any]) -> None:
    """Base currency = order currency in the sandbox: every money field gets its ``base_`` twin."""
    money_keys = (
        "subtotal", "subtotal_incl_tax", "tax_amount", "shipping_amount", "shipping_tax_amount", "shipping_incl_tax",
        "discount_amount", "grand_total", "total_due", "total_paid", "total_invoiced", "total_refunded", "total_canceled",
        "total_offline_refunded", "subtotal_invoiced", "subtotal_refunded", "tax_invoiced", "tax_refunded", "shipping_invoiced",
        "shipping_refunded", "shipping_discount_amount", "discount_tax_compensation_amount", "adjustment", "adjustment_positive",
        "adjustment_negative", "shipping_tax_invoiced", "shipping_discount_tax_compensation_amount",
    )  # fmt: skip
    for key in money_keys:
        if key in doc:
            doc["base_" + key] = doc[key]
    for item in doc.get("items", []):
        for key in ("price", "original_price", "price_incl_tax", "row_total", "row_total_incl_tax", "row_invoiced", "tax_amount", "tax_invoiced",
                    "discount_amount", "discount_invoiced", "amount_refunded", "discount_tax_compensation_amount"):  # fmt: skip
            if key in item:
                item["base_" + key] = item[key]
    pay = doc.get("payment")
    if isinstance(pay, dict):
        for key in ("amount_paid", "amount_refunded", "shipping_captured"):
            if key in pay:
                pay["base_" + key] = pay[key]


def _set_custom(product: dict[str, Any], code: str, value: Any) -> None:
    for attr in product["custom_attributes"]:
        if attr["attribute_code"] == code:
            attr["value"] = value
            return
    product["custom_attributes"].append({"attribute_code": code, "value": value})


def _custom(product: dict[str, Any], code: str) -> Any:
    return next((a["value"] for a in product.get("custom_attributes", []) if a["attribute_code"] == code), None)


# ---------------------------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    state: MagentoState
    store: str  # store view code, or "all" (admin store, id 0)
    method: str
    body: Any
    query: list[tuple[str, str]]


Handler = Callable[..., Any]


@dataclass
class Route:
    method: str
    pattern: str
    parts: tuple[str, ...]
    handler: Handler
    acl: str
    anonymous: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.parts):
            return None
        params = {}
        for part, seg in zip(self.parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part != seg:
                return None
        return params


ROUTES: list[Route] = []


def route(method: str, pattern: str, acl: str, anonymous: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, tuple(pattern.split("/")), fn, acl, anonymous))
        # Literal segments win over parameters (customers/search before customers/{id}).
        ROUTES.sort(key=lambda r: sum(p.startswith("{") for p in r.parts))
        return fn

    return register


def _id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, BAD_TYPE, {"value": value, "type": "int"}) from None


def _body_obj(ctx: Ctx, key: str) -> dict[str, Any]:
    value = (ctx.body or {}).get(key)
    if value is None:
        raise ApiError(400, REQUIRED, {"fieldName": key})
    return value


# -- store ----------------------------------------------------------------------------------
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


# -- products -------------------------------------------------------------------------------
def _product_field(row: dict[str, Any], field: str) -> Any:
    if field == "entity_id":
        field = "id"
    if field in row:
        return row[field]
    if field in ("website_id", "website_ids"):
        return row["extension_attributes"].get("website_ids")
    return _custom(row, field)


@route("GET", "products", "Magento_Catalog::products")
def products_list(ctx: Ctx) -> Any:
    products: Iterable[dict[str, Any]] = ctx.state.products.values()
    wanted = _sku_candidates(parse_criteria(ctx.query))
    if wanted is not None:
        # Render only products a sku filter can match (SKUs that look numeric compare as numbers: keep them).
        products = [p for p in products if p["sku"].lower() in wanted or _numeric_text(p["sku"])]
    rows = [ctx.state.render_product(p, ctx.store) for p in products]
    return search(rows, ctx.query, ctx.state, "id", getter=_product_field)


@route("GET", "products/{sku}", "Magento_Catalog::products")
def product_get(ctx: Ctx, sku: str) -> Any:
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    return ctx.state.render_product(product, ctx.store)


def _save_product(ctx: Ctx, data: dict[str, Any], path_sku: str | None = None) -> dict[str, Any]:
    state = ctx.state
    sku = path_sku or data.get("sku")
    if not sku:
        raise ApiError(400, REQUIRED, {"fieldName": "sku"})
    product = state.find_product(str(sku))
    # Without a store code a create is global, an update writes the default store view (§2).
    scoped = product is not None and ctx.store != "all"
    overrides = state.store_overrides.setdefault(ctx.store, {}) if scoped else {}
    if product is None:
        product = state._new_product(str(sku), data)
    else:
        for key in ("name", "price", "status", "visibility", "type_id", "attribute_set_id", "weight"):
            if key not in data or data[key] is None:
                continue
            value = data[key]
            value = num(value) if key in ("price", "weight") else int(value) if key in ("status", "visibility", "attribute_set_id") else value
            if scoped and key in STORE_SCOPED:
                overrides.setdefault(product["sku"], {})[key] = value
            else:
                product[key] = value
    for attr in data.get("custom_attributes") or []:
        code = attr.get("attribute_code")
        if not code:
            continue
        if scoped and code in STORE_SCOPED:
            overrides.setdefault(product["sku"], {})[code] = attr.get("value")
        else:
            _set_custom(product, code, attr.get("value"))
    ext = data.get("extension_attributes") or {}
    for key in ("website_ids", "category_links", "configurable_product_links"):
        if ext.get(key) is not None:
            product["extension_attributes"][key] = [int(v) for v in ext[key]] if key != "category_links" else ext[key]
    stock = ext.get("stock_item")
    if stock:
        _write_legacy_stock(state, product, stock)
    product["updated_at"] = state.now()
    return state.render_product(product, ctx.store)


def _write_legacy_stock(state: MagentoState, product: dict[str, Any], stock: dict[str, Any]) -> None:
    """Legacy stock writes are mirrored to the default source only (§6.1)."""
    current = state.source_items.get(("default", product["sku"].lower()))
    qty = float(stock["qty"]) if stock.get("qty") is not None else float(current["quantity"]) if current else 0.0
    if stock.get("is_in_stock") is not None:
        status = 1 if stock["is_in_stock"] in (True, 1, "1", "true") else 0
    else:
        status = current["status"] if current else (1 if qty > 0 else 0)
    state.set_source_item(product["sku"], "default", qty, status)


@route("POST", "products", "Magento_Catalog::products")
def product_create(ctx: Ctx) -> Any:
    return _save_product(ctx, _body_obj(ctx, "product"))


@route("PUT", "products/{sku}", "Magento_Catalog::products")
def product_put(ctx: Ctx, sku: str) -> Any:
    # PUT to a missing SKU creates it (§13).
    return _save_product(ctx, _body_obj(ctx, "product"), sku)


@route("DELETE", "products/{sku}", "Magento_Catalog::products")
def product_delete(ctx: Ctx, sku: str) -> Any:
    state = ctx.state
    product = state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    del state.products[product["sku"]]
    for overrides in state.store_overrides.values():
        overrides.pop(product["sku"], None)
    for key in [k for k in state.source_items if k[1] == product["sku"].lower()]:
        del state.source_items[key]
    return True


@route("POST", "products/base-prices", "Magento_Catalog::products")
def base_prices(ctx: Ctx) -> Any:
    """Partial success: valid rows saved, invalid rows reported, HTTP 200 (§13)."""
    state = ctx.state
    store_ids = {0, *state.store_ids().values()}
    errors = []
    for row in _body_obj(ctx, "prices"):
        sku, price, store_id = row.get("sku"), row.get("price"), row.get("store_id")
        product = state.find_product(str(sku)) if sku else None
        if product is None or product["type_id"] not in ("simple", "virtual", "downloadable", "bundle"):
            errors.append({"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["SKU", str(sku)]})
            continue
        if price is None or float(price) < 0:
            errors.append({"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": ["Price", str(price)]})
            continue
        if store_id is None or int(store_id) not in store_ids:
            errors.append(
                {"message": "Requested store is not found. Row ID: SKU = %SKU, Store ID: %storeId.", "parameters": [str(sku), str(store_id)]}
            )
            continue
        # Global price scope (the default) stores every row at store 0.
        product["price"] = num(price)
        product["updated_at"] = state.now()
    return errors


@route("POST", "products/base-prices-information", "Magento_Catalog::products")
def base_prices_info(ctx: Ctx) -> Any:
    skus = _body_obj(ctx, "skus")
    found = [ctx.state.find_product(str(s)) for s in skus]
    missing = [str(s) for s, p in zip(skus, found, strict=True) if p is None]
    if missing:
        raise ApiError(404, "Requested products don't exist: %sku", {"sku": ", ".join(missing)})
    return [{"price": p["price"], "store_id": 0, "sku": p["sku"]} for p in found if p is not None]


# -- inventory ------------------------------------------------------------------------------
@route("GET", "inventory/sources", "Magento_InventoryApi::source")
def sources_list(ctx: Ctx) -> Any:
    return search([dict(s) for s in ctx.state.sources.values()], ctx.query, ctx.state, "source_code")


@route("GET", "inventory/sources/{code}", "Magento_InventoryApi::source")
def source_get(ctx: Ctx, code: str) -> Any:
    source = ctx.state.sources.get(code)
    if source is None:
        raise ApiError(404, 'Source with code "%value" does not exist.', {"value": code})
    return dict(source)


@route("GET", "inventory/stocks", "Magento_InventoryApi::stock")
def stocks_list(ctx: Ctx) -> Any:
    rows = [
        {"stock_id": sid, "name": "Default Stock" if sid == 1 else f"Stock {sid}",
         "extension_attributes": {"sales_channels": [{"type": "website", "code": "base"}] if sid == 1 else []}}
        for sid in ctx.state.stock_sources
    ]  # fmt: skip
    return search(rows, ctx.query, ctx.state, "stock_id")


@route("GET", "inventory/source-items", "Magento_InventoryApi::source")
def source_items_list(ctx: Ctx) -> Any:
    state = ctx.state
    columns = {"sku", "source_code", "quantity", "status"}
    crit = parse_criteria(ctx.query)
    used = {f["field"] for g in crit.groups for f in g} | {s["field"] for s in crit.sort_orders}
    if not used <= {"sku", "source_code"}:
        rows = [dict(i) for i in state.source_items.values()]
        return search(rows, ctx.query, state, "sku", fields=columns)
    # Filters and sorts on sku/source_code only: their order changes only when items come or go, so
    # the selection is kept between page reads (same answers, without re-sorting every call).
    items = state.source_items
    signature = (getattr(items, "version", None), id(items), repr(crit.groups), repr(crit.sort_orders))
    if getattr(items, "version", None) is None or state._source_item_order is None or state._source_item_order[0] != signature:
        light = [{"sku": i["sku"], "source_code": i["source_code"], "_key": k} for k, i in items.items()]
        keys = [r["_key"] for r in _select(light, crit, "sku", columns)]
        state._source_item_order = (signature, keys)
    page, total = _paginate(state._source_item_order[1], crit, state)
    return {"items": [dict(items[k]) for k in page], "search_criteria": crit.echo(), "total_count": total}


def _source_item_errors(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The MSI source item validators (Inventory/etc/di.xml, §6.3)."""
    errors = []
    sku = item.get("sku")
    if sku is None or str(sku).strip() == "":
        errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "sku"}})
    elif str(sku) != str(sku).strip():
        errors.append({"message": '"%field" can not contain leading or trailing spaces.', "parameters": {"field": "sku"}})
    code = item.get("source_code")
    if code is None or str(code).strip() == "":
        errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "source_code"}})
    elif re.search(r"\s", str(code)):
        errors.append({"message": '"%field" can not contain whitespaces.', "parameters": {"field": "source_code"}})
    if not _numeric(item.get("quantity")):
        errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}})
    status = item.get("status")
    if not _numeric(status):
        errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "status"}})
    elif int(float(status)) not in (0, 1):
        errors.append({"message": '"%field" should a known status.', "parameters": {"field": "status"}})
    return errors


def _numeric(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _render(message: str, parameters: dict[str, Any] | list[Any]) -> str:
    if isinstance(parameters, dict):
        for key in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{key}", str(parameters[key]))
    else:
        for i, value in enumerate(parameters, 1):
            message = message.replace(f"%{i}", str(value))
    return message


@route("POST", "inventory/source-items", "Magento_InventoryApi::stock_source_item_assign")
def source_items_save(ctx: Ctx) -> Any:
    state = ctx.state
    items = _body_obj(ctx, "sourceItems")
    if not items:
        raise ApiError(400, "Input data is empty")
    # All items are validated first; one invalid item fails the whole batch (§6.3).
    errors = [e for item in items for e in _source_item_errors(item)]
    if errors:
        first = _render(errors[0]["message"], errors[0]["parameters"])
        raise ApiError(400, f"Validation Failed: {first}", errors=errors)
    # Unknown source code = FK violation of the multi-row insert -> nothing saved.
    if any(str(i["source_code"]) not in state.sources for i in items):
        raise ApiError(400, "Could not save Source Item")
    for item in items:
        # No product check: unknown SKUs are stored as orphans (§6.3).
        state.set_source_item(str(item["sku"]), str(item["source_code"]), float(item["quantity"]), int(float(item["status"])))
    return []


@route("POST", "inventory/source-items-delete", "Magento_InventoryApi::source_item_delete")
def source_items_delete(ctx: Ctx) -> Any:
    items = _body_obj(ctx, "sourceItems")
    if not items:
        raise ApiError(400, "Input data is empty")
    for item in items:
        ctx.state.source_items.pop((str(item.get("source_code")), str(item.get("sku", "")).lower()), None)
    return []


@route("GET", "inventory/get-product-salable-quantity/{sku}/{stockId}", "Magento_InventorySalesApi::stock")
def salable(ctx: Ctx, sku: str, stockId: str) -> Any:  # noqa: N803 - route parameter name
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    if product["type_id"] in ("configurable", "bundle", "grouped"):
        raise ApiError(400, "Can't check requested quantity for products without Source Items support.")
    stock_id = _id(stockId)
    if stock_id not in ctx.state.stock_sources:
        raise ApiError(404, 'Stock with id "%value" does not exist.', {"value": stock_id})
    return num(ctx.state.salable_qty(sku, stock_id))


@route("GET", "stockItems/{sku}", "Magento_CatalogInventory::cataloginventory")
def stock_item_get(ctx: Ctx, sku: str) -> Any:
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    return ctx.state._stock_item(product, ctx.state.source_items.get(("default", product["sku"].lower())))


@route("PUT", "products/{sku}/stockItems/{itemId}", "Magento_CatalogInventory::cataloginventory")
def stock_item_put(ctx: Ctx, sku: str, itemId: str) -> Any:  # noqa: N803 - route parameter name
    # {itemId} is not an argument of updateStockItemBySku: ignored (§6.1).
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    _write_legacy_stock(ctx.state, product, _body_obj(ctx, "stockItem"))
    return product["id"]


# -- orders ---------------------------------------------------------------------------------
@route("GET", "orders", "Magento_Sales::actions_view")
def orders_list(ctx: Ctx) -> Any:
    return search(list(ctx.state.orders.values()), ctx.query, ctx.state, "entity_id", fields=ORDER_FIELDS)


@route("GET", "orders/items", "Magento_Sales::actions_view")
def order_items_list(ctx: Ctx) -> Any:
    rows = [item for order in ctx.state.orders.values() for item in order["items"]]
    return search(rows, ctx.query, ctx.state, "item_id")


@route("GET", "orders/{id}", "Magento_Sales::actions_view")
def order_get(ctx: Ctx, id: str) -> Any:  # noqa: A002 - route parameter name
    return ctx.state.order(_id(id))


@route("GET", "orders/{id}/comments", "Magento_Sales::actions_view")
def order_comments(ctx: Ctx, id: str) -> Any:  # noqa: A002
    return search(list(ctx.state.order(_id(id))["status_histories"]), ctx.query, ctx.state, "entity_id")


@route("POST", "orders/{id}/comments", "Magento_Sales::comment")
def order_comment_add(ctx: Ctx, id: str) -> Any:  # noqa: A002
    history = _body_obj(ctx, "statusHistory")
    return ctx.state.add_comment(
        _id(id),
        str(history.get("comment") or ""),
        int(history.get("is_customer_notified") or 0),
        int(history.get("is_visible_on_front") or 0),
        history.get("status"),
    )


@route("POST", "orders/{id}/cancel", "Magento_Sales::cancel")
def order_cancel(ctx: Ctx, id: str) -> Any:  # noqa: A002
    return ctx.state.cancel_order(_id(id))


def _comment(body: dict[str, Any]) -> str | None:
    comment = body.get("comment") or {}
    return comment.get("comment") if isinstance(comment, dict) else None


@route("POST", "order/{id}/ship", "Magento_Sales::ship")
def order_ship(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    args = body.get("arguments") or {}
    source = (args.get("extension_attributes") or {}).get("source_code")
    return ctx.state.ship_order(_id(id), body.get("items"), body.get("tracks"), source, bool(body.get("notify")), _comment(body))


@route("POST", "order/{id}/invoice", "Magento_Sales::invoice")
def order_invoice(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    return ctx.state.invoice_order(_id(id), body.get("items"), bool(body.get("capture", True)), bool(body.get("notify")), _comment(body))


@route("POST", "order/{id}/refund", "Magento_Sales::creditmemo")
def order_refund(ctx: Ctx, id: str) -> Any:  # noqa: A002
    body = ctx.body or {}
    args = body.get("arguments") or {}
    ext = args.get("extension_attributes") or {}
    return ctx.state.refund_order(
        _id(id),
        body.get("items"),
        args.get("shipping_amount"),
        float(args.get("adjustment_positive") or 0),
        float(args.get("adjustment_negative") or 0),
        ext.get("return_to_stock_items") or [],
        bool(body.get("notify")),
        _comment(body),
    )


def _document_routes(plural: str, singular: str, attr: str, acl: str) -> None:
    def list_docs(ctx: Ctx) -> Any:
        return search(list(getattr(ctx.state, attr).values()), ctx.query, ctx.state, "entity_id")

    def get_doc(ctx: Ctx, id: str) -> Any:  # noqa: A002
        doc = getattr(ctx.state, attr).get(_id(id))
        if doc is None:
            raise not_found_entity()
        return doc

    route("GET", plural, acl)(list_docs)
    route("GET", f"{singular}/{{id}}", acl)(get_doc)


_document_routes("shipments", "shipment", "shipments", "Magento_Sales::shipment")
_document_routes("invoices", "invoices", "invoices", "Magento_Sales::sales_invoice")
_document_routes("creditmemos", "creditmemo", "creditmemos", "Magento_Sales::sales_creditmemo")


# -- customers ------------------------------------------------------------------------------
def _customer(state: MagentoState, customer_id: str) -> dict[str, Any]:
    customer = state.customers.get(_id(customer_id))
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
    data = dict(_body_obj(ctx, "customer"))
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
    data = dict(_body_obj(ctx, "customer"))
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
        state._set_addresses(customer, addresses)
    return customer


@route("POST", "customers/isEmailAvailable", "Magento_Customer::customer", anonymous=True)
def customer_email_available(ctx: Ctx) -> Any:
    body = ctx.body or {}
    email = str(_body_obj(ctx, "customerEmail"))
    website_id = int(body.get("websiteId") or 1)
    return ctx.state.find_customer(email, website_id) is None


# -- auth -----------------------------------------------------------------------------------
def authenticate(state: MagentoState, environ: dict[str, Any], raw_path: str, raw_query: str) -> bool:
    """True for an authorized caller; False = guest; ApiError for a broken OAuth request (§1)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer":
        # An integration token as Bearer only works with the 2.4.4+ flag on; otherwise it is
        # silently treated as a guest -> the ACL-looking 401 (§1.3).
        tokens = (state.token, state.oauth["access_token"])
        return state.bearer_enabled and any(hmac.compare_digest(credential.strip(), t) for t in tokens)
    if scheme.lower() == "oauth":
        verify_oauth(state, environ, header, raw_path, raw_query)
        return True
    return False


def verify_oauth(state: MagentoState, environ: dict[str, Any], header: str, raw_path: str, raw_query: str) -> None:
    """OAuth 1.0a (Framework/Oauth/Oauth.php): base string over METHOD, URL without query, and the
    oauth_* + decoded query parameters; the JSON body is not signed."""
    params = dict(oauth_signature.collect_parameters(headers={"Authorization": header}, exclude_oauth_signature=False))
    for field in ("oauth_consumer_key", "oauth_signature_method", "oauth_signature", "oauth_nonce", "oauth_timestamp", "oauth_token"):
        if not params.get(field):
            raise ApiError(401, REQUIRED, {"fieldName": field})
    method = params["oauth_signature_method"]
    if method not in ("HMAC-SHA1", "HMAC-SHA256"):
        raise ApiError(401, "Signature method %1 is not supported", [method])
    try:
        stamp = int(params["oauth_timestamp"])
    except ValueError:
        stamp = -1
    if stamp <= 0 or stamp > time.time() + 600:
        raise ApiError(401, "Incorrect timestamp value in the oauth_timestamp parameter")
    keys = state.oauth
    if params["oauth_consumer_key"] != keys["consumer_key"]:
        raise ApiError(401, "A consumer having the specified key does not exist")
    nonce = params["oauth_nonce"]
    if nonce in state.nonces:
        raise ApiError(401, "The nonce is already being used by the consumer with ID %1", ["1"])
    signed = oauth_signature.collect_parameters(uri_query=raw_query, headers={"Authorization": header})
    normalized = oauth_signature.normalize_parameters(signed)
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    scheme = environ.get("wsgi.url_scheme", "http")
    base_uri = oauth_signature.base_string_uri(f"{scheme}://{host}{raw_path}")
    base = oauth_signature.signature_base_string(environ.get("REQUEST_METHOD", "GET").upper(), base_uri, normalized)
    token_secret = keys["access_token_secret"] if params["oauth_token"] == keys["access_token"] else ""
    # key = rawurlencode(consumer_secret)&rawurlencode(token_secret); signature = base64(HMAC).
    key = f"{oauth_escape(keys['consumer_secret'])}&{oauth_escape(token_secret)}"
    digest = hashlib.sha256 if method == "HMAC-SHA256" else hashlib.sha1
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), digest).digest()).decode()
    if params["oauth_token"] != keys["access_token"] or not hmac.compare_digest(expected, params["oauth_signature"]):
        raise ApiError(401, "The signature is invalid. Verify and try again.")
    state.nonces.add(nonce)


# -- dispatch -------------------------------------------------------------------------------
def _raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The request target as sent (werkzeug's server keeps it in REQUEST_URI / RAW_URI)."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not raw:
        from urllib.parse import quote

        raw = quote(environ.get("PATH_INFO", "")) + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
    if "://" in raw:
        parts = urlsplit(raw)
        raw = parts.path + ("?" + parts.query if parts.query else "")
    path, _, query = raw.partition("?")
    return path, query


def handle_rest(state: MagentoState, environ: dict[str, Any], raw_body: bytes) -> tuple[int, Any]:
    path, query = _raw_target(environ)
    segments = path.split("/")[1:]
    if len(segments) < 2 or segments[0] != "rest":
        raise ApiError(404, NO_ROUTE)
    # PathProcessor: a known store code or "all" selects the store, anything else stays part of
    # the route and the default store is used (§2).
    if segments[1] == "all":
        store, rest = "all", segments[2:]
    elif segments[1] in state.store_codes:
        store, rest = segments[1], segments[2:]
    else:
        store, rest = "default", segments[1:]
    if not rest or rest[0] != "V1":
        raise ApiError(404, NO_ROUTE)
    # Route::match splits on "/" first, then urldecode()s each segment: %2F stays inside, "+" = space.
    decoded = [unquote_plus(s) for s in rest[1:]]
    method = environ.get("REQUEST_METHOD", "GET").upper()
    for candidate in ROUTES:
        if candidate.method != method:
            continue
        params = candidate.match(decoded)
        if params is not None:
            break
    else:
        raise ApiError(404, NO_ROUTE)
    if not authenticate(state, environ, path, query) and not candidate.anonymous:
        raise ApiError(401, NOT_AUTHORIZED, {"resources": candidate.acl})
    body: Any = None
    if raw_body.strip():
        try:
            body = json.loads(raw_body)
        except ValueError:
            raise ApiError(400, "Decoding error.") from None
    spec = _BODIES.get((method, candidate.pattern))
    if spec is not None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, BAD_TYPE, {"value": str(body)[:80], "type": "object"})
        validate_object(body, spec, state.list_limit if state.input_limits else None)
    pairs = parse_qsl(query, keep_blank_values=True)
    ctx = Ctx(state, store, method, body, pairs)
    result = candidate.handler(ctx, **params)
    fields = next((v for k, v in pairs if k == "fields"), None)
    if fields:  # project first: only what is sent is encoded (project shares, never changes, values)
        result = project(result, parse_fields(fields))
    return 200, result  # may share the state's objects: the caller encodes it before releasing the lock


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json; charset=utf-8", headers=headers)


def _fault_body(status: int, text: str) -> bytes:
    """Bodies of injected faults, shaped like Magento's own."""
    if status == 500:
        return json.dumps({"message": MASKED % secrets.token_hex(7)[:13]}).encode()
    if status == 429:
        return json.dumps({"message": "Too Many Requests", "trace": None}).encode()
    return json.dumps({"message": text}).encode()


APACHE_404 = ("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n"
              "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n")

CONFIG_KNOBS = ("token", "bearer_enabled", "allow_encoded_slashes", "input_limits", "list_limit", "max_page_size", "default_page_size", "allow_backorders", "currency",
                "shipping_display_incl_tax")


def create_app(state: MagentoState, control: Control) -> ControlledApp:
    """The emulator as a WSGI app, wrapped in the fault/log/latency middleware."""
    app = Flask("magsit.sandbox.magento")
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]

    @app.route("/rest", methods=methods, defaults={"rest": ""})
    @app.route("/rest/<path:rest>", methods=methods)
    def rest_api(rest: str) -> Response:
        if not state.allow_encoded_slashes and "%2f" in _raw_target(request.environ)[0].lower():
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
            return _json_response(exc.status, exc.body())
        except Exception:  # a bug in a handler looks like a PHP fatal: masked 500
            app.logger.exception("magento sandbox handler failed")
            return _json_response(500, masked_error().body())

    @app.errorhandler(404)
    @app.errorhandler(405)
    def no_route(_exc: Exception) -> Response:
        return _json_response(404, {"message": NO_ROUTE})

    # -- control and scenario API (neither logged nor faulted) ---------------------------------
    def payload() -> Any:
        return request.get_json(silent=True) or {}

    def guarded(fn: Callable[[], Any]) -> Response:
        try:
            with state.lock:
                return _json_response(200, fn())
        except (KeyError, TypeError, ValueError, ApiError) as exc:
            return _json_response(400, {"message": str(exc)})

    @app.post("/_sandbox/faults")
    def add_fault() -> Response:
        return guarded(lambda: control.add_fault(**payload()).__dict__)

    @app.delete("/_sandbox/faults")
    def clear_faults() -> Response:
        control.clear_faults()
        return _json_response(200, True)

    @app.get("/_sandbox/requests")
    def list_requests() -> Response:
        return _json_response(200, [r.as_dict() for r in control.calls()])

    @app.delete("/_sandbox/requests")
    def clear_requests() -> Response:
        control.clear_log()
        return _json_response(200, True)

    @app.post("/_sandbox/latency")
    def set_latency() -> Response:
        control.latency = float(payload().get("seconds") or 0)
        return _json_response(200, {"seconds": control.latency})

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
