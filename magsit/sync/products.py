"""sync-products: Sitoo product master data -> Magento, one way.

pull (Sitoo products changed since the ``datelastmodified`` cursor, or all with --full, or the
--sku ones; the same SKUs from Magento in batches) -> plan (pure, magsit.sync.productplan) ->
push (product fields via ``/rest/all/V1`` so no store-view overrides appear; base prices via
``POST /V1/products/base-prices`` store 0, whose per-row errors come back in an HTTP 200 list).
Sitoo's gross prices become net Magento prices unless ``[products].magento_prices_include_tax``
(see productplan.magento_price).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from magsit.config import Config
from magsit.errors import ApiError, MagsitError
from magsit.flow import Doing, Preview, would, would_counts
from magsit.runner import JobContext, JobResult
from magsit.state.cursor import SitooEpoch
from magsit.sync.productplan import ProductChange, ProductPlan, price_key, tax_key
from magsit.sync.productplan import plan as plan_products
from magsit.values import as_int, chunked

log = logging.getLogger("magsit.sync.products")

JOB = "sync-products"
SKU_CHUNK = 50
RETRY = timedelta(minutes=30)
STREAM = "products"


@dataclass
class Pulled:
    sitoo: list[dict[str, Any]] = field(default_factory=list)
    magento: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursor: int | None = None
    held: set[str] = field(default_factory=set)  # record keys a person told magsit to leave alone


@dataclass
class Plan:
    products: ProductPlan
    cursor: int | None  # where the next run starts; moved only when push completes

    def doings(self) -> tuple[Doing, ...]:
        changes = self.products.changes
        return (("to_create", sum(1 for c in changes if c.action == "create"), "create", "product"),
                ("to_update", sum(1 for c in changes if c.action != "create"), "update", "product"),
                ("to_price", sum(1 for c in changes if c.price is not None), "set", "base price"))  # fmt: skip

    def preview(self) -> Preview:
        rows = [change.as_dict() for change in self.products.changes]
        return Preview(rows, [would(*self.doings())], [p.as_error() for p in self.products.problems],
                       would_counts(*self.doings()))


def pull(ctx: JobContext) -> Pulled:
    settings = ctx.config.products
    pulled = Pulled(held=ctx.held_keys())
    chosen = [s for s in (ctx.options.get("skus") or []) if s]
    full = bool(ctx.options.get("full"))
    run_start = int(ctx.started_at.timestamp())
    by_sku: dict[str, dict[str, Any]] = {}
    if chosen:
        for chunk in chunked(sorted(set(chosen)), SKU_CHUNK):
            for product in ctx.sitoo.iter_products(skus=chunk, include_inactive=True):
                by_sku.setdefault(str(product.get("sku")), product)
    else:
        stored = None if full else ctx.state.get_cursor(JOB, STREAM, SitooEpoch)
        since = None if stored is None else stored.seconds
        max_seen = None
        # inactive products too: a product switched off in Sitoo must be disabled in Magento
        # Sitoo's filter is "modified after" (exclusive): ask from one second earlier so products
        # stamped in the cursor's own second are re-read (boundary rows are de-duplicated by SKU).
        after = since - 1 if since is not None else None
        for product in ctx.sitoo.iter_products(modified_after=after, include_inactive=True):
            by_sku.setdefault(str(product.get("sku")), product)
            seen = as_int(product.get("datemodified"))
            if seen is not None and (max_seen is None or seen > max_seen):
                max_seen = seen
        if max_seen is not None:
            pulled.cursor = max(since or 0, min(max_seen, run_start - settings.lookback_seconds))
        else:
            pulled.cursor = max(since or 0, run_start - settings.lookback_seconds) if (full or since is None) else since
        retry = sorted(ctx.due_skus() - set(by_sku))
        for chunk in chunked(retry, SKU_CHUNK):
            for product in ctx.sitoo.iter_products(skus=chunk, include_inactive=True):
                by_sku.setdefault(str(product.get("sku")), product)
    pulled.sitoo = list(by_sku.values())
    skus = sorted({p.get("sku") for p in pulled.sitoo if isinstance(p.get("sku"), str) and p.get("sku")})
    for chunk in chunked(skus, SKU_CHUNK):
        for product in ctx.magento.products_by_sku(chunk):
            if isinstance(product.get("sku"), str):
                pulled.magento[product["sku"].lower()] = product
    ctx.counts["read"] += len(pulled.sitoo)
    # counted here so a dry run shows them too; plan() leaves the same products out
    ctx.counts["held"] += sum(1 for product in pulled.sitoo if _held(product, pulled.held))
    return pulled


def _held(product: Mapping[str, Any], held: set[str]) -> bool:
    """A SKU with an ignored exception (product, price or tax class) is left alone."""
    sku = str(product.get("sku"))
    return bool(held) and not {sku, price_key(sku), tax_key(sku)}.isdisjoint(held)


def plan(pulled: Pulled, config: Config, now: datetime) -> Plan:
    kept = [product for product in pulled.sitoo if not _held(product, pulled.held)]
    return Plan(plan_products(kept, pulled.magento, config.products, config.magento.website_id), pulled.cursor)


def _price_failures(result: Any, batch: list[dict[str, Any]]) -> dict[str, str]:
    """Per-row errors of base-prices (HTTP 200 + list) -> {sku: message}. Unattributable rows hit all."""
    failures: dict[str, str] = {}
    if not isinstance(result, list):
        return failures
    skus = [row["sku"] for row in batch]
    for entry in result:
        if not isinstance(entry, Mapping):
            continue
        message = str(entry.get("text") or entry.get("message") or "price rejected")
        params = entry.get("parameters")
        values = list(params.values()) if isinstance(params, Mapping) else list(params or [])
        for i, value in enumerate(values, start=1):
            message = message.replace(f"%{i}", str(value))
        if isinstance(params, Mapping):
            for name in sorted(params, key=len, reverse=True):
                message = message.replace(f"%{name}", str(params[name]))
        hits = [s for s in skus if s in [str(v) for v in values]] or [s for s in skus if s in message]
        for sku in hits or skus:
            failures[sku] = message
    return failures


def push(ctx: JobContext, planned: Plan) -> JobResult:
    _write(ctx, planned.products, planned.cursor)
    changes = planned.products.changes
    return JobResult(summary=[f"{len(changes)} products changed, {len(planned.products.unchanged)} already right"],
                     details={"changes": [change.as_dict() for change in changes]})


def _write(ctx: JobContext, the_plan: ProductPlan, cursor: int | None) -> None:
    for problem in the_plan.problems:
        retry = RETRY if problem.kind in ("product_missing_in_magento", "unmapped_tax_class", "missing_vat_rate") else None
        payload = problem.payload or None
        ctx.fail(problem.kind, problem.owner, problem.key, problem.message, payload, retry_after=retry)
    done: list[str] = []
    failed: set[str] = set()
    prices: list[dict[str, Any]] = []
    error: BaseException | None = None
    try:
        for change in the_plan.changes:
            if ctx.should_stop():
                break
            if not _write_product(ctx, change):
                failed.add(change.sku)
                continue
            if change.price is not None:
                prices.append({"price": float(change.price), "store_id": 0, "sku": change.sku})
            else:
                done.append(change.sku)
            ctx.counts["created" if change.action == "create" else "updated"] += 1
        size = max(1, ctx.config.magento.input_list_limit)
        for batch in chunked(prices, size):
            bad = _price_failures(ctx.magento.save_base_prices(batch, store_code="all"), batch)
            for row in batch:
                if row["sku"] in bad:
                    ctx.fail(
                        "price_rejected",
                        "ecommerce",
                        price_key(row["sku"]),
                        f"Magento refused base price {row['price']} for SKU {row['sku']}: {bad[row['sku']]}. "
                        "Check the product type/price in Magento (configurable products have no own price).",
                        {"sku": row["sku"], "price": str(row["price"])},
                        retry_after=RETRY,
                    )
                else:
                    done.append(row["sku"])
                    ctx.counts["prices"] += 1
                    ctx.succeeded(price_key(row["sku"]))
    except (MagsitError, KeyboardInterrupt) as exc:
        error = exc
    with ctx.state.transaction():
        for sku in done + the_plan.unchanged:
            ctx.succeeded(sku)
        for sku in the_plan.clean_tax:
            if sku not in failed:
                ctx.succeeded(tax_key(sku))
        for sku in the_plan.clean_price:  # Magento already has the right price: its price exceptions resolve
            ctx.succeeded(price_key(sku))
        if error is None and cursor is not None:
            ctx.state.set_cursor(JOB, STREAM, SitooEpoch(cursor))
    ctx.counts["unchanged"] += len(the_plan.unchanged)
    if error is not None:
        raise error


def _write_product(ctx: JobContext, change: ProductChange) -> bool:
    if not change.product:
        return True  # price-only change
    try:
        if change.action == "create":
            ctx.magento.create_product(change.product, store_code="all")
        else:
            ctx.magento.update_product(change.sku, change.product, store_code="all")
    except ApiError as exc:
        if exc.retryable or exc.outcome_unknown or exc.status is None or exc.status >= 500:
            # Not about this record (or a create that may have landed): the run fails and the next
            # run reads Magento again, so a landed create is only updated (the SKU is unique).
            raise
        ctx.fail(
            "product_rejected",
            "ecommerce",
            change.sku,
            f"Magento refused the {change.action} of SKU {change.sku}: {exc.message}. Fix the data in Sitoo or Magento.",
            {"sku": change.sku, "product": change.product},
            retry_after=RETRY,
        )
        return False
    return True
