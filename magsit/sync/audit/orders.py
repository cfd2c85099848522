"""Orders: pushable web orders Sitoo does not have, Sitoo web orders without their Magento order,
and the state file's order mappings that point at records that no longer exist."""

from __future__ import annotations

from datetime import timedelta

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import parse_magento_time
from magsit.sync.audit.snapshot import AuditSnapshot, externalid_for, increment_id_of, is_web_order


def orders(snap: AuditSnapshot, config: Config) -> list[Finding]:
    reported: set[str] = set()  # increment ids with a finding already: no second one for their mapping
    out = _not_in_sitoo(snap, config, reported)
    out += _without_magento_order(snap, config, reported)
    out += _stale_order_mappings(snap, reported)
    return out


def _not_in_sitoo(snap: AuditSnapshot, config: Config, reported: set[str]) -> list[Finding]:
    out: list[Finding] = []
    statuses = set(config.orders.statuses)
    cutoff = snap.now - timedelta(minutes=config.audit.order_age_minutes)
    for order in sorted(snap.magento_orders, key=lambda o: str(o.get("increment_id"))):
        increment_id = str(order.get("increment_id") or "")
        created = parse_magento_time(order.get("created_at"))
        if not increment_id or order.get("status") not in statuses or created is None or created > cutoff:
            continue
        externalid = externalid_for(config, increment_id)
        if externalid in snap.sitoo_externalids:
            continue
        reported.add(increment_id)
        age = int((snap.now - created).total_seconds() // 60)
        out.append(
            finding(
                "order_not_in_sitoo",
                increment_id,
                f"Magento order {increment_id} is '{order.get('status')}' since {order.get('created_at')} UTC ({age} min) "
                f"but Sitoo has no order with externalid {externalid}: no store will fulfil it.",
                magento={"entity_id": order.get("entity_id"), "status": order.get("status"), "created_at": order.get("created_at")},
                sitoo={"externalid": externalid},
            )
        )
    return out


def _without_magento_order(snap: AuditSnapshot, config: Config, reported: set[str]) -> list[Finding]:
    out: list[Finding] = []
    by_orderid = {str(m["other_id"]): str(m["external_id"]) for m in snap.order_mappings if m.get("other_id")}
    for order in sorted(snap.sitoo_web_orders, key=lambda o: int(o.get("orderid") or 0)):
        if not is_web_order(order):
            continue
        increment_id = increment_id_of(config, order, by_orderid)
        if increment_id is None or increment_id in snap.magento_increment_ids:
            continue
        reported.add(increment_id)
        out.append(
            finding(
                "sitoo_order_without_magento_order",
                increment_id,
                f"Sitoo web order {order.get('orderid')} (externalid {order.get('externalid')}) has no Magento order {increment_id}.",
                magento={"increment_id": increment_id},
                sitoo={"orderid": order.get("orderid"), "externalid": order.get("externalid"), "orderstateid": order.get("orderstateid")},
            )
        )
    return out


def _stale_order_mappings(snap: AuditSnapshot, reported: set[str]) -> list[Finding]:
    out: list[Finding] = []
    for mapping in snap.order_mappings:
        increment_id, other = str(mapping.get("external_id")), mapping.get("other_id")
        if not other or increment_id in reported:
            continue  # an in-flight intent (no Sitoo id yet) points at nothing by design
        gone = []
        if increment_id not in snap.magento_increment_ids:
            gone.append(f"Magento order {increment_id}")
        try:
            if int(other) not in snap.sitoo_orderids:
                gone.append(f"Sitoo order {other}")
        except (TypeError, ValueError):
            gone.append(f"Sitoo order {other!r} (not a number)")
        if gone:
            out.append(
                finding(
                    "stale_mapping",
                    f"order {increment_id}",
                    f"The state file maps Magento order {increment_id} to Sitoo order {other} ({mapping.get('status')}), "
                    f"but {' and '.join(gone)} does not exist.",
                    magento={"increment_id": increment_id, "exists": increment_id in snap.magento_increment_ids},
                    sitoo={"orderid": other},
                )
            )
    return out
