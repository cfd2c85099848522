"""Sources, stocks, salable quantity and the legacy stockItems routes (§6.1, §6.2, §6.4)."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.magento.errors import NO_PRODUCT, ApiError
from magsit.sandbox.magento.routing import Ctx, body_object, path_int, route
from magsit.sandbox.magento.search import search
from magsit.sandbox.magento.state import MagentoState
from magsit.sandbox.magento.values import num


def write_legacy_stock(state: MagentoState, product: dict[str, Any], stock: dict[str, Any]) -> None:
    """Legacy stock writes are mirrored to the default source only (§6.1)."""
    current = state.source_items.get(("default", product["sku"].lower()))
    qty = float(stock["qty"]) if stock.get("qty") is not None else float(current["quantity"]) if current else 0.0
    if stock.get("is_in_stock") is not None:
        status = 1 if stock["is_in_stock"] in (True, 1, "1", "true") else 0
    else:
        status = current["status"] if current else (1 if qty > 0 else 0)
    state.set_source_item(product["sku"], "default", qty, status)



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



@route("GET", "inventory/get-product-salable-quantity/{sku}/{stockId}", "Magento_InventorySalesApi::stock")
def salable(ctx: Ctx, sku: str, stockId: str) -> Any:  # noqa: N803 - route parameter name
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    if product["type_id"] in ("configurable", "bundle", "grouped"):
        raise ApiError(400, "Can't check requested quantity for products without Source Items support.")
    stock_id = path_int(stockId)
    if stock_id not in ctx.state.stock_sources:
        raise ApiError(404, 'Stock with id "%value" does not exist.', {"value": stock_id})
    return num(ctx.state.salable_qty(sku, stock_id))


@route("GET", "stockItems/{sku}", "Magento_CatalogInventory::cataloginventory")
def stock_item_get(ctx: Ctx, sku: str) -> Any:
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    return ctx.state.stock_item(product, ctx.state.source_items.get(("default", product["sku"].lower())))


@route("PUT", "products/{sku}/stockItems/{itemId}", "Magento_CatalogInventory::cataloginventory")
def stock_item_put(ctx: Ctx, sku: str, itemId: str) -> Any:  # noqa: N803 - route parameter name
    # {itemId} is not an argument of updateStockItemBySku: ignored (§6.1).
    product = ctx.state.find_product(sku)
    if product is None:
        raise ApiError(404, NO_PRODUCT)
    write_legacy_stock(ctx.state, product, body_object(ctx, "stockItem"))
    return product["id"]
