"""Sources and warehouses: Magento sources no Sitoo warehouse feeds, and [stock].sources entries
that point at nothing."""

from __future__ import annotations

from collections import defaultdict

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.snapshot import AuditSnapshot


def mapped_sources(config: Config) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for warehouse, source in config.stock.sources.items():
        by_source[source].append(str(warehouse))
    return dict(by_source)


def sources(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    mapping = {str(k): v for k, v in config.stock.sources.items()}
    codes = {str(s.get("source_code")): s for s in snap.magento_sources if s.get("source_code")}
    warehouses = {str(w.get("warehouseid")): w for w in snap.sitoo_warehouses if w.get("warehouseid") is not None}
    mapped_codes = set(mapping.values())
    ignore_sources = set(config.audit.ignore_sources)
    ignore_warehouses = {str(w) for w in config.audit.ignore_warehouses}
    for code, source in sorted(codes.items()):
        if code in mapped_codes or code in ignore_sources or source.get("enabled") is False:
            continue
        out.append(
            finding(
                "unmapped_magento_source",
                code,
                f"Magento source {code} ({source.get('name')}) is enabled but no Sitoo warehouse feeds it in [stock].sources: "
                "its quantities are never corrected by sync-stock.",
                magento={"source_code": code, "name": source.get("name"), "enabled": source.get("enabled")},
            )
        )
    for warehouse, code in sorted(mapping.items()):
        if code not in codes:
            out.append(
                finding(
                    "mapped_source_missing",
                    code,
                    f"[stock].sources maps Sitoo warehouse {warehouse} to Magento source {code}, which does not exist in Magento.",
                    sitoo={"warehouseid": warehouse},
                )
            )
        if warehouse not in warehouses:
            out.append(
                finding(
                    "mapped_warehouse_missing",
                    f"warehouse {warehouse}",
                    f"[stock].sources maps Sitoo warehouse {warehouse} to {code}, but Sitoo has no such warehouse.",
                    magento={"source_code": code},
                )
            )
    for wid, warehouse in sorted(warehouses.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if wid in mapping or wid in ignore_warehouses or warehouse.get("sellable") is False:
            continue
        out.append(
            finding(
                "unmapped_sitoo_warehouse",
                f"warehouse {wid}",
                f"Sitoo warehouse {wid} ({warehouse.get('name')}) is not mapped to a Magento source in [stock].sources: "
                "its stock never reaches the web shop.",
                sitoo={"warehouseid": wid, "name": warehouse.get("name"), "storeid": warehouse.get("storeid")},
            )
        )
    return out
