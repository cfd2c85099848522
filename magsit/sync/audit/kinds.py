"""The audit's finding kinds: owner and fix of each, and the ``Finding`` row.

The runbook's "audit findings" table says the same in more words (tests/unit/test_docs.py checks
that every kind here is documented there with its owner).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from magsit.errors import Owner

# kind -> (owner, what to do). The runbook's "audit findings" table says the same in more words.
KINDS: dict[str, tuple[Owner, str]] = {
    "sku_missing_in_sitoo": (
        "ecommerce",
        "Create the product in Sitoo (or the PIM feeding it) with exactly this SKU, or disable it / take it off the website in Magento.",
    ),
    "sku_missing_in_magento": (
        "ecommerce",
        "Create the product in Magento with exactly this SKU (or set [products] create_missing = true), or deactivate it in Sitoo.",
    ),
    "sku_near_miss": (
        "ecommerce",
        "Make the spellings identical on both sides (case, spaces, leading zeros, - vs _): correct the SKU in Sitoo, or in Magento if Sitoo is right.",
    ),
    "price_mismatch": (
        "ecommerce",
        "Correct the price on the wrong side: Sitoo is the price master (sync-products writes it to Magento); an active Magento special price must match the Sitoo campaign price.",
    ),
    "tax_class_mismatch": (
        "finance",
        "Set the Magento tax class to the one mapped for the Sitoo VAT group in [products].tax_classes (or fix the VAT group in Sitoo).",
    ),
    "unmapped_vat_group": (
        "finance",
        'Add "<vatid>" = <Magento tax_class_id> to [products].tax_classes.',
    ),
    "orphan_source_item": (
        "ops",
        "Delete the source item in Magento (POST /V1/inventory/source-items-delete) or create the product; MSI keeps such rows silently.",
    ),
    "unmapped_magento_source": (
        "ops",
        'Map a Sitoo warehouse to it in [stock].sources ("<warehouse id>" = "<source code>"), disable the source, or list it in [audit].ignore_sources.',
    ),
    "mapped_source_missing": (
        "ops",
        "Create the source in Magento or correct [stock].sources: sync-stock fails on an unknown source code.",
    ),
    "unmapped_sitoo_warehouse": (
        "ops",
        'Map it in [stock].sources ("<warehouse id>" = "<source code>") if it should feed the web shop, else list it in [audit].ignore_warehouses.',
    ),
    "mapped_warehouse_missing": (
        "ops",
        "Correct [stock].sources: the Sitoo warehouse id does not exist (or the API user cannot see it).",
    ),
    "stock_drift": (
        "ops",
        "Run `magsit sync-stock --sku <SKU>` (or --full); if it comes back, look for hand edits in Magento or another tool writing stock.",
    ),
    "order_not_in_sitoo": (
        "ops",
        "Check `magsit exceptions list` for the order, fix the cause, then `magsit push-orders --order <increment id>`.",
    ),
    "sitoo_order_without_magento_order": (
        "ops",
        "The Magento order was deleted (or the externalid is wrong): cancel the Sitoo order if nothing should ship, else recreate/restore the Magento order.",
    ),
    "stale_mapping": (
        "ops",
        "The state file points at a record that no longer exists; check the record, then remove or correct the mapping (see runbook: state file recovery).",
    ),
    "duplicate_customer": (
        "ecommerce",
        "Merge the customer records on that side so one e-mail has one account (case and spaces do not make a different customer).",
    ),
    "refund_shipping_tax_setting": (
        "finance",
        "Set [returns].shipping_amount_includes_tax as the message says (it must match Magento's Tax > Orders, Invoices, "
        "Credit Memos Display Settings > Display Shipping Amount), then refund the named difference by hand in Magento.",
    ),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    owner: Owner
    key: str
    message: str
    fix: str
    magento: Any = None
    sitoo: Any = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def finding(kind: str, key: str, message: str, magento: Any = None, sitoo: Any = None) -> Finding:
    owner, fix = KINDS[kind]
    return Finding(kind, owner, key, message, fix, magento, sitoo)
