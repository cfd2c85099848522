"""Prices and tax classes of the products both sides have under exactly the same SKU."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from magsit.config import Config
from magsit.sync.audit.catalogue import magento_by_sku, sitoo_active_by_sku
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import (
    active_special_price,
    custom_attribute,
    decimal_or_none,
    gross,
    magento_is_sellable,
)
from magsit.sync.audit.snapshot import AuditSnapshot


def prices(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    website = config.magento.website_id
    magento = magento_by_sku(snap)
    tolerance = config.audit.price_tolerance
    tax_classes = {str(k): int(v) for k, v in config.products.tax_classes.items()}
    unmapped: dict[str, list[str]] = defaultdict(list)
    for sku, sp in sorted(sitoo_active_by_sku(snap, config).items()):
        mp = magento.get(sku)
        if mp is None or not magento_is_sellable(mp, website):
            continue
        out += price(sku, mp, sp, snap.now, tolerance, config.products.magento_prices_include_tax)
        if tax_classes:
            vatid = sp.get("vatid")
            wanted = tax_classes.get(str(vatid))
            if wanted is None:
                unmapped[str(vatid)].append(sku)
            else:
                out += _tax_class(sku, mp, sp, wanted)
    for vatid, skus in sorted(unmapped.items()):
        out.append(
            finding(
                "unmapped_vat_group",
                f"vatid {vatid}",
                f"Sitoo VAT group {vatid} is not in [products].tax_classes; {len(skus)} product(s) use it, e.g. {', '.join(skus[:5])}.",
                sitoo={"vatid": vatid, "skus": skus[:20], "count": len(skus)},
            )
        )
    return out


def _tax_class(sku: str, mp: Mapping[str, Any], sp: Mapping[str, Any], wanted: int) -> list[Finding]:
    vatid = sp.get("vatid")
    actual = custom_attribute(mp, "tax_class_id")
    if str(actual) == str(wanted):
        return []
    return [
        finding(
            "tax_class_mismatch",
            sku,
            f"{sku}: Sitoo VAT group {vatid} ({sp.get('vatvalue')}%) maps to Magento tax class {wanted}, "
            f"but the Magento product has tax class {actual}: the web shop charges a different VAT than the till.",
            magento={"tax_class_id": actual},
            sitoo={"vatid": vatid, "vatvalue": sp.get("vatvalue"), "expected_tax_class_id": wanted},
        )
    ]


def price(sku: str, mp: Mapping[str, Any], sp: Mapping[str, Any], now: datetime, tolerance: Decimal, incl_tax: bool) -> list[Finding]:
    sitoo_price = decimal_or_none(sp.get("moneyprice"))
    base = decimal_or_none(mp.get("price"))
    vat = decimal_or_none(sp.get("vatvalue"))
    if sitoo_price is None or base is None or (vat is None and not incl_tax):
        return []  # nothing comparable; sync-products reports unusable prices
    special = active_special_price(mp, now)
    effective = min(base, special) if special is not None else base
    compared = effective if incl_tax else gross(effective, vat or Decimal(0))
    if abs(compared - sitoo_price) <= tolerance:
        return []
    which = "special price" if special is not None and special <= base else "price"
    basis = "incl. VAT" if incl_tax else f"net, {vat}% VAT added"
    return [
        finding(
            "price_mismatch",
            sku,
            f"{sku}: Sitoo sells at {sitoo_price} (gross), Magento's {which} is {effective} ({basis}: {compared}); "
            f"difference {compared - sitoo_price} is above the tolerance {tolerance}.",
            magento={"price": base, "special_price": special, "compared_gross": compared},
            sitoo={"moneyprice": sitoo_price, "vatvalue": vat},
        )
    ]
