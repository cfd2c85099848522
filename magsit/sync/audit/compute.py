"""``audit(snapshot, config) -> list[Finding]``: every check area over one snapshot, pure."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from magsit.config import Config
from magsit.sync.audit.catalogue import catalogue
from magsit.sync.audit.customers import customers, stale_customer_mappings
from magsit.sync.audit.kinds import KINDS, Finding
from magsit.sync.audit.orders import orders
from magsit.sync.audit.prices import prices
from magsit.sync.audit.refunds import refund_shipping
from magsit.sync.audit.snapshot import AuditSnapshot
from magsit.sync.audit.sources import sources
from magsit.sync.audit.stock import stock


def audit(snapshot: AuditSnapshot, settings: Config) -> list[Finding]:
    """All findings, in a stable order (by kind as listed in KINDS, then record key)."""
    out: list[Finding] = []
    for check in (catalogue, prices, sources, stock, orders, customers, refund_shipping):
        out += check(snapshot, settings)
    out += stale_customer_mappings(snapshot)
    rank = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(out, key=lambda f: (rank.get(f.kind, len(rank)), f.key))


def summarise(findings: list[Finding]) -> dict[str, Any]:
    by_kind: dict[str, int] = defaultdict(int)
    by_owner: dict[str, int] = defaultdict(int)
    for f in findings:
        by_kind[f.kind] += 1
        by_owner[f.owner] += 1
    return {
        "total": len(findings),
        "by_kind": [{"kind": k, "owner": KINDS[k][0], "count": by_kind[k]} for k in KINDS if by_kind.get(k)],
        "by_owner": dict(sorted(by_owner.items())),
    }
