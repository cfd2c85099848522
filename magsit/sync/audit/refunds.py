"""Refunds with shipping: whether the shop reads a credit memo's shipping amount the way
[returns].shipping_amount_includes_tax says."""

from __future__ import annotations

from decimal import Decimal

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import decimal_or_none
from magsit.sync.audit.snapshot import AuditSnapshot


def refund_shipping(snap: AuditSnapshot, config: Config) -> list[Finding]:
    """Which way the shop reads a credit memo's ``shipping_amount`` (net, or gross when it displays
    shipping incl. tax, magento-api.md §11), from the memos magsit made: what was sent vs what the
    memo holds. Only memos whose shipping carries tax tell the two apart."""
    out: list[Finding] = []
    tolerance = config.reconcile.tolerance
    for data, memo in snap.refund_memos:
        sent = decimal_or_none(data.get("shipping_amount"))
        net, tax = decimal_or_none(memo.get("shipping_amount")), decimal_or_none(memo.get("shipping_tax_amount")) or Decimal(0)
        if not sent or net is None or not tax:
            continue
        gross = decimal_or_none(memo.get("shipping_incl_tax")) or net + tax
        sent_incl = bool(data.get("shipping_sent_incl_tax"))
        if abs((gross if sent_incl else net) - sent) <= tolerance:
            continue  # the shop read it the way magsit meant
        if abs((net if sent_incl else gross) - sent) <= tolerance:
            needed = "false" if sent_incl else "true"
            reads = "excluding" if sent_incl else "including"
        else:
            needed, reads = None, None
        memo_no = memo.get("increment_id") or memo.get("entity_id")
        message = (f"credit memo {memo_no} (order {data.get('increment_id')}): magsit sent shipping_amount {sent} "
                   f"{'incl.' if sent_incl else 'excl.'} tax; Magento refunded shipping {net} net / {gross} incl. tax")
        if needed:
            message += f". The shop reads shipping_amount {reads} tax: set [returns].shipping_amount_includes_tax = {needed}"
        out.append(finding("refund_shipping_tax_setting", f"creditmemo {memo_no}", message, magento=memo))
    return out
