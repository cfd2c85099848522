"""Catalogue: SKUs one side sells and the other does not have, and near-miss spellings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import magento_is_sellable, sitoo_is_active, sku_key, sku_of
from magsit.sync.audit.snapshot import AuditSnapshot


def near_miss_groups(magento_skus: Iterable[str], sitoo_skus: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Normalised key -> (Magento spellings, Sitoo spellings) for keys with more than one spelling."""
    groups: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for sku in magento_skus:
        groups[sku_key(sku)][0].add(sku)
    for sku in sitoo_skus:
        groups[sku_key(sku)][1].add(sku)
    out = {}
    for key, (m, s) in groups.items():
        # Any second spelling is a near miss: across the sides (an order line with one spelling
        # does not find the other product) and within one side (two products one typo apart).
        if len(m | s) > 1:
            out[key] = (sorted(m), sorted(s))
    return out


def magento_by_sku(snap: AuditSnapshot) -> dict[str, dict[str, Any]]:
    return {sku: p for p in snap.magento_products if (sku := sku_of(p.get("sku")))}


def sitoo_by_sku(snap: AuditSnapshot) -> dict[str, dict[str, Any]]:
    return {sku: p for p in snap.sitoo_products if (sku := sku_of(p.get("sku")))}


def sitoo_active_by_sku(snap: AuditSnapshot, config: Config) -> dict[str, dict[str, Any]]:
    status_from = config.products.status_from
    return {sku: p for sku, p in sitoo_by_sku(snap).items() if sitoo_is_active(p, status_from)}


def catalogue(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    website = config.magento.website_id
    magento = magento_by_sku(snap)
    sitoo_all = sitoo_by_sku(snap)
    sitoo_active = sitoo_active_by_sku(snap, config)

    near: set[str] = set()
    for key, (m_skus, s_skus) in sorted(near_miss_groups(magento, sitoo_active).items()):
        near.add(key)
        spellings = " / ".join(dict.fromkeys(m_skus + s_skus))
        out.append(
            finding(
                "sku_near_miss",
                spellings,
                f"SKUs that differ only in case, spaces, leading zeros or -/_: Magento {m_skus or 'none'}, "
                f"Sitoo {s_skus or 'none'}. Order lines with one spelling do not find the other product.",
                magento=m_skus,
                sitoo=s_skus,
            )
        )

    for sku, product in sorted(magento.items()):
        if not magento_is_sellable(product, website) or sku in sitoo_all or sku_key(sku) in near:
            continue
        out.append(
            finding(
                "sku_missing_in_sitoo",
                sku,
                f"Magento sells {sku} (enabled {product.get('type_id')} product in website {website}) but Sitoo has no product "
                "with this SKU: its web orders cannot be fulfilled and it gets no stock.",
                magento={"type_id": product.get("type_id"), "status": product.get("status"), "price": product.get("price")},
            )
        )
    magento_fold = {sku.casefold() for sku in magento}
    for sku, product in sorted(sitoo_active.items()):
        if sku.casefold() in magento_fold or sku_key(sku) in near:
            continue
        out.append(
            finding(
                "sku_missing_in_magento",
                sku,
                f"Sitoo product {sku} is active but Magento has no product with this SKU: it cannot be sold online.",
                sitoo={"productid": product.get("productid"), "title": product.get("title"), "moneyprice": product.get("moneyprice")},
            )
        )
    return out
