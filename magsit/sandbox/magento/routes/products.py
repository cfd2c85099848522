"""Products and base prices (§2, §13)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from magsit.sandbox.magento.errors import NO_PRODUCT, REQUIRED, ApiError
from magsit.sandbox.magento.routes.sources import write_legacy_stock
from magsit.sandbox.magento.routing import Ctx, body_object, route
from magsit.sandbox.magento.search import numeric_text, parse_criteria, search, sku_candidates
from magsit.sandbox.magento.state import custom_attribute, set_custom_attribute
from magsit.sandbox.magento.values import num

# Product attributes that live at store-view scope: a `/rest/V1` (default store) save writes them
# as store overrides instead of global values (§2, GH#7612). Price is global scope by default.
STORE_SCOPED = {"name", "status", "visibility", "description", "short_description", "url_key", "meta_title", "meta_description", "meta_keyword"}


def _product_field(row: dict[str, Any], field: str) -> Any:
    if field == "entity_id":
        field = "id"
    if field in row:
        return row[field]
    if field in ("website_id", "website_ids"):
        return row["extension_attributes"].get("website_ids")
    return custom_attribute(row, field)


@route("GET", "products", "Magento_Catalog::products")
def products_list(ctx: Ctx) -> Any:
    products: Iterable[dict[str, Any]] = ctx.state.products.values()
    wanted = sku_candidates(parse_criteria(ctx.query))
    if wanted is not None:
        # Render only products a sku filter can match (SKUs that look numeric compare as numbers: keep them).
        products = [p for p in products if p["sku"].lower() in wanted or numeric_text(p["sku"])]
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
        product = state.new_product(str(sku), data)
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
            set_custom_attribute(product, code, attr.get("value"))
    ext = data.get("extension_attributes") or {}
    for key in ("website_ids", "category_links", "configurable_product_links"):
        if ext.get(key) is not None:
            product["extension_attributes"][key] = [int(v) for v in ext[key]] if key != "category_links" else ext[key]
    stock = ext.get("stock_item")
    if stock:
        write_legacy_stock(state, product, stock)
    product["updated_at"] = state.now()
    return state.render_product(product, ctx.store)




@route("POST", "products", "Magento_Catalog::products")
def product_create(ctx: Ctx) -> Any:
    return _save_product(ctx, body_object(ctx, "product"))


@route("PUT", "products/{sku}", "Magento_Catalog::products")
def product_put(ctx: Ctx, sku: str) -> Any:
    # PUT to a missing SKU creates it (§13).
    return _save_product(ctx, body_object(ctx, "product"), sku)


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
    for row in body_object(ctx, "prices"):
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
    skus = body_object(ctx, "skus")
    found = [ctx.state.find_product(str(s)) for s in skus]
    missing = [str(s) for s, p in zip(skus, found, strict=True) if p is None]
    if missing:
        raise ApiError(404, "Requested products don't exist: %sku", {"sku": ", ".join(missing)})
    return [{"price": p["price"], "store_id": 0, "sku": p["sku"]} for p in found if p is not None]
