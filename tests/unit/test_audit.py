"""The pure audit: near-miss SKUs, prices incl. VAT, duplicates, orders, and the runbook contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magsit.config import Config, parse_config
from magsit.errors import ConfigError
from magsit.sync.audit.compute import audit
from magsit.sync.audit.customers import duplicate_emails
from magsit.sync.audit.kinds import KINDS, Finding
from magsit.sync.audit.normalise import email_key, gross, sku_key
from magsit.sync.audit.snapshot import AuditSnapshot, increment_id_of

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def config(**sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "magento": {"base_url": "https://shop.example.com", "token": "t"},
        "sitoo": {"base_url": "https://api.mysitoo.com/v2/accounts/1", "api_id": "1-1", "password": "p"},
        "stock": {"sources": {"1": "default"}},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data)


def m_product(sku: str, price: Any = 100, **extra: Any) -> dict[str, Any]:
    attrs = extra.pop("attrs", {"tax_class_id": "2"})
    return {"sku": sku, "price": price, "status": 1, "type_id": "simple", "extension_attributes": {"website_ids": [1]},
            "custom_attributes": [{"attribute_code": k, "value": v} for k, v in attrs.items()], **extra}  # fmt: skip


def s_product(sku: str, price: str = "125.00", vatid: int = 2, vatvalue: int = 25, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "moneyprice": price, "vatid": vatid, "vatvalue": vatvalue, "active": True, "activepos": True, **extra}


def snapshot(magento: list[dict[str, Any]] = (), sitoo: list[dict[str, Any]] = (), **extra: Any) -> AuditSnapshot:  # type: ignore[assignment]
    base = {"now": NOW, "magento_sources": [{"source_code": "default", "enabled": True}],
            "sitoo_warehouses": [{"warehouseid": 1, "name": "Central"}]}  # fmt: skip
    base.update(extra)
    return AuditSnapshot(magento_products=list(magento), sitoo_products=list(sitoo), **base)


def kinds(findings) -> list[tuple[str, str]]:
    return [(f.kind, f.key) for f in findings]


# -- near-miss SKUs ---------------------------------------------------------------------------------
def test_sku_key_examples():
    assert sku_key(" ab_007 ") == sku_key("AB-7") == "ab-7"
    assert sku_key("Boot 0042") == sku_key("boot42") == "boot42"
    assert sku_key("100") == "100" != sku_key("10")  # inner/trailing zeros matter
    assert sku_key("A0") == "a0" and sku_key("0") == "0" and sku_key("00") == "0"
    assert sku_key("SOCK/42") != sku_key("SOCK42")  # a slash is a real difference


SKU_CHARS = st.sampled_from(list("ABCXYZabcxyz0123456789-_/+"))


@st.composite
def sku_and_variant(draw: st.DrawFn) -> tuple[str, str]:
    sku = draw(st.text(SKU_CHARS, min_size=1, max_size=12).filter(lambda s: s.strip()))
    out = []
    for ch in sku:
        if ch.isalpha() and draw(st.booleans()):
            ch = ch.swapcase()
        elif ch in "-_" and draw(st.booleans()):
            ch = "_" if ch == "-" else "-"
        if draw(st.integers(0, 5)) == 0:
            ch += " "
        out.append(ch)
    variant = "".join(out)
    if draw(st.booleans()):  # pad the first digit run with zeros
        variant = re.sub(r"(?<![0-9])(?=[0-9])", "00", variant, count=1)
    return sku, variant


@given(sku_and_variant())
def test_spelling_variants_meet_and_key_is_idempotent(pair):
    sku, variant = pair
    assert sku_key(sku) == sku_key(variant)
    assert sku_key(sku_key(sku)) == sku_key(sku)


@settings(max_examples=60)
@given(sku_and_variant())
def test_a_near_miss_pair_is_one_finding_and_not_two_missing_products(pair):
    sku, variant = pair
    findings = audit(snapshot([m_product(sku, 100)], [s_product(variant, "125.00")]), config())
    if sku == variant:
        assert findings == []
    else:
        assert [f.kind for f in findings] == ["sku_near_miss"]
        assert findings[0].magento == [sku] and findings[0].sitoo == [variant] and findings[0].owner == "ecommerce"


def test_exact_match_missing_both_ways_and_what_is_not_sellable():
    magento = [
        m_product("BOTH"),
        m_product("WEB-ONLY"),
        m_product("PARENT", type_id="configurable"),
        m_product("DISABLED", status=2),
        m_product("SITE2", extension_attributes={"website_ids": [2]}),
    ]
    sitoo = [s_product("BOTH"), s_product("POS-ONLY"), s_product("RETIRED", activepos=False)]
    assert kinds(audit(snapshot(magento, sitoo), config())) == [
        ("sku_missing_in_sitoo", "WEB-ONLY"),
        ("sku_missing_in_magento", "POS-ONLY"),
    ]
    # status_from = "active" reads the webshop flag instead
    sitoo_web_off = [s_product("BOTH"), s_product("POS-ONLY", active=False)]
    assert kinds(audit(snapshot(magento[:1], sitoo_web_off), config(products={"status_from": "active"}))) == []


# -- prices with VAT --------------------------------------------------------------------------------
def test_net_magento_price_is_compared_with_vat_added():
    cfg = config()
    assert audit(snapshot([m_product("A", 100)], [s_product("A", "125.00")]), cfg) == []
    assert audit(snapshot([m_product("A", "79.99")], [s_product("A", "99.99")]), cfg) == []  # 99.9875 -> 99.99
    [f] = audit(snapshot([m_product("A", 100)], [s_product("A", "129.00")]), cfg)
    assert (f.kind, f.owner, f.magento["compared_gross"], f.sitoo["moneyprice"]) == ("price_mismatch", "ecommerce", Decimal("125.00"), Decimal("129.00"))
    exact = config(audit={"price_tolerance": "0"})
    assert audit(snapshot([m_product("B", 100)], [s_product("B", "106.00", vatid=4, vatvalue=6)]), exact) == []  # the product's own VAT %


def test_gross_magento_prices_are_compared_as_they_are():
    cfg = config(products={"magento_prices_include_tax": True})
    assert audit(snapshot([m_product("A", 125)], [s_product("A", "125.00")]), cfg) == []
    assert kinds(audit(snapshot([m_product("A", 100)], [s_product("A", "125.00")]), cfg)) == [("price_mismatch", "A")]


def test_price_basis_is_the_one_products_setting_not_an_audit_key():
    # sync-products and audit must agree on net/gross: one setting, [products].magento_prices_include_tax
    with pytest.raises(ConfigError, match="magento_prices_include_tax"):
        config(audit={"magento_prices_include_tax": True})


def test_tolerance_boundary():
    cfg = config(audit={"price_tolerance": "0.05"})
    assert audit(snapshot([m_product("A", 100)], [s_product("A", "125.05")]), cfg) == []
    assert kinds(audit(snapshot([m_product("A", 100)], [s_product("A", "125.06")]), cfg)) == [("price_mismatch", "A")]


def test_special_price_counts_only_while_active():
    def special(start: str | None, end: str | None) -> dict[str, Any]:
        attrs = {"tax_class_id": "2", "special_price": "60"}
        if start:
            attrs["special_from_date"] = start
        if end:
            attrs["special_to_date"] = end
        return m_product("G", 80, attrs=attrs)

    sitoo = [s_product("G", "100.00")]
    cfg = config()
    [f] = audit(snapshot([special("2025-03-01 00:00:00", None)], sitoo), cfg)
    assert f.magento["special_price"] == Decimal("60") and f.magento["compared_gross"] == Decimal("75.00")
    assert audit(snapshot([special("2025-03-11 00:00:00", None)], sitoo), cfg) == []  # not started
    assert audit(snapshot([special(None, "2025-03-09 00:00:00")], sitoo), cfg) == []  # ended yesterday
    assert len(audit(snapshot([special(None, "2025-03-10 00:00:00")], sitoo), cfg)) == 1  # to-date is the whole day
    # the Sitoo campaign price agrees with Magento's special price: clean
    assert audit(snapshot([special("2025-03-01", None)], [s_product("G", "75.00")]), cfg) == []


MONEY = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)


@given(MONEY, st.sampled_from([0, 6, 12, 25]), st.booleans())
def test_price_property_gross_of_net_is_clean_and_a_cent_beyond_tolerance_is_not(net, vat, over):
    cfg = config(audit={"price_tolerance": "0.01"})
    sitoo_price = gross(net, Decimal(vat)) + (Decimal("0.02") if over else Decimal(0))
    findings = audit(snapshot([m_product("P", str(net))], [s_product("P", str(sitoo_price), vatvalue=vat)]), cfg)
    assert kinds(findings) == ([("price_mismatch", "P")] if over else [])


def test_tax_class_mismatch_and_unmapped_vat_group():
    cfg = config(products={"tax_classes": {"2": 2}})
    magento = [m_product("OK"), m_product("WRONG", attrs={"tax_class_id": "5"}), m_product("BOOK", 100), m_product("MAG", 100)]
    sitoo = [s_product("OK"), s_product("WRONG"), s_product("BOOK", "106.00", vatid=4, vatvalue=6),
             s_product("MAG", "106.00", vatid=4, vatvalue=6)]  # fmt: skip
    findings = audit(snapshot(magento, sitoo), cfg)
    assert [(f.kind, f.owner, f.key) for f in findings] == [
        ("tax_class_mismatch", "finance", "WRONG"),
        ("unmapped_vat_group", "finance", "vatid 4"),
    ]
    assert findings[1].sitoo["skus"] == ["BOOK", "MAG"]


# -- duplicates -------------------------------------------------------------------------------------
def test_duplicate_customers_per_side_and_website():
    snap = snapshot(
        magento_customers=[
            {"id": 1, "email": "Erik@Example.com", "website_id": 1},
            {"id": 2, "email": " erik@example.com", "website_id": 1},
            {"id": 3, "email": "erik@example.com", "website_id": 2},  # another website may share it
            {"id": 4, "email": "solo@example.com", "website_id": 1},
        ],
        sitoo_users=[
            {"userid": "u1", "email": "LISA@example.com", "role": None},
            {"userid": "u2", "email": "lisa@example.com ", "role": None},
            {"userid": "u3", "email": "lisa@example.com", "role": 1},  # staff
        ],
    )
    findings = audit(snap, config())
    assert [(f.kind, f.key) for f in findings] == [
        ("duplicate_customer", "erik@example.com (magento)"),
        ("duplicate_customer", "lisa@example.com (sitoo)"),
    ]
    assert [r["id"] for r in findings[0].magento] == ["1", "2"]
    assert [r["userid"] for r in findings[1].sitoo] == ["u1", "u2"]


EMAIL = st.builds(lambda user, case, pad: (user.upper() if case else user) + "@example.com" + pad,
                  st.sampled_from(["a", "b", "c", "dd"]), st.booleans(), st.sampled_from(["", " ", "\t"]))  # fmt: skip


@given(st.lists(EMAIL, max_size=12))
def test_duplicate_groups_are_exactly_the_repeated_normalised_emails(emails):
    rows = [{"id": i, "email": e} for i, e in enumerate(emails)]
    groups = duplicate_emails(rows, "id")
    keys = [email_key(e) for e in emails]
    assert set(groups) == {k for k in keys if keys.count(k) > 1}
    assert all(len(v) == keys.count(k) for k, v in groups.items())


# -- stock, sources, orders ---------------------------------------------------------------------------
def test_stock_drift_uses_the_sync_stock_formula():
    cfg = config(stock={"sources": {"1": "default", "2": "default"}, "buffer": 1}, audit={"stock_drift_threshold": "0"})
    snap = snapshot(
        [m_product("A"), m_product("B")], [s_product("A"), s_product("B")],
        sitoo_warehouses=[{"warehouseid": 1}, {"warehouseid": 2}],
        warehouse_items={"1": {"A": "3.000", "B": "-2.000"}, "2": {"A": "2.000", "B": "4.000"}},
        source_items=[{"sku": "A", "source_code": "default", "quantity": 4}, {"sku": "b", "source_code": "default", "quantity": 1}],
        in_flight={("B", "default"): {"2": Decimal(1)}},
    )  # fmt: skip
    # A: 3 + 2 - 1 = 4 (clean); B: 1 in flight + (max(0,-2) + max(0, 4) - 1) = 4, Magento 1 -> drift
    findings = audit(snap, cfg)
    assert kinds(findings) == [("stock_drift", "B@default")]
    assert findings[0].sitoo["expected"] == Decimal(4) and findings[0].magento["quantity"] == Decimal(1)


def test_expected_stock_keeps_sold_units_on_the_source_and_counts_only_what_sitoo_holds():
    # A click & collect order reserved in store 2 with 0 on hand: Sitoo shows -1 there. Magento
    # must keep the sold unit on the source (its shipment deducts it there, issue 16 §1) and offer
    # nothing for sale: expected 1, so the 0 the old clamp-first formula published is drift.
    cfg = config(stock={"sources": {"1": "web", "2": "store"}, "buffer": 1}, audit={"stock_drift_threshold": "0"})
    snap = snapshot(
        [m_product("C")], [s_product("C")],
        sitoo_warehouses=[{"warehouseid": 1}, {"warehouseid": 2}],
        warehouse_items={"1": {"C": "5.000"}, "2": {"C": "-1.000"}},
        source_items=[{"sku": "C", "source_code": "web", "quantity": 4}, {"sku": "C", "source_code": "store", "quantity": 1}],
        in_flight={("C", "store"): {"2": Decimal(1)}},
    )  # fmt: skip
    def drift() -> list[Finding]:
        return [f for f in audit(snap, cfg) if f.kind == "stock_drift"]

    assert drift() == []
    snap.source_items[1]["quantity"] = 0  # what the clamp-before-adding formula published
    [f] = drift()
    assert (f.kind, f.key, f.sitoo["expected"]) == ("stock_drift", "C@store", Decimal(1))
    # Sitoo shows the unit as not reserved (it does not reserve, or the reservation lapsed): it is in
    # Sitoo's available already, so it is not added back a second time.
    snap.warehouse_items["2"]["C"] = "1.000"
    snap.warehouse_reserved = {"2": {"C": "0.000"}}
    snap.source_items[1]["quantity"] = 1
    assert drift() == []  # 1 in flight + max(0, 1 - 1 not held - buffer 1) = 1


def test_orphan_source_item_matches_skus_without_case():
    snap = snapshot([m_product("A")], [s_product("A")],
                    source_items=[{"sku": "a", "source_code": "default", "quantity": 0}, {"sku": "X", "source_code": "default", "quantity": 2}])  # fmt: skip
    assert kinds(audit(snap, config(audit={"stock_drift_threshold": "100"}))) == [("orphan_source_item", "X@default")]


def test_orders_age_status_prefix_and_one_finding_per_order():
    cfg = config(orders={"statuses": ["processing"], "externalid_prefix": "M"}, audit={"order_age_minutes": 30})
    stamp = lambda minutes: (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    snap = snapshot(
        magento_orders=[
            {"increment_id": "100", "status": "processing", "created_at": stamp(60)},  # in Sitoo
            {"increment_id": "101", "status": "processing", "created_at": stamp(60)},  # lost
            {"increment_id": "102", "status": "processing", "created_at": stamp(10)},  # too young
            {"increment_id": "103", "status": "pending", "created_at": stamp(60)},  # not pushable
        ],
        sitoo_externalids={"M100"},
        sitoo_web_orders=[
            {"orderid": 1, "externalid": "M100"},
            {"orderid": 2, "externalid": "M200"},  # Magento order gone
            {"orderid": 3, "externalid": "OTHER-1"},  # not ours (no prefix)
            {"orderid": 4, "externalid": "M300", "registerid": "{TILL}"},  # a POS sale
            {"orderid": 5, "externalid": "M400", "creditorderid": 1},  # a refund order
        ],
        magento_increment_ids={"100", "101"},
        sitoo_orderids={1},
        order_mappings=[
            {"external_id": "100", "other_id": "1", "status": "pushed"},
            {"external_id": "101", "other_id": "9", "status": "pushed"},  # already reported as lost
            {"external_id": "105", "other_id": None, "status": "pending"},  # an intent
            {"external_id": "106", "other_id": "7", "status": "pushed"},  # both sides gone
        ],
    )
    assert kinds(audit(snap, cfg)) == [
        ("order_not_in_sitoo", "101"),
        ("sitoo_order_without_magento_order", "200"),
        ("stale_mapping", "order 106"),
    ]


def test_increment_id_prefers_the_state_mapping():
    cfg = config(orders={"externalid_prefix": "WEB-"})
    assert increment_id_of(cfg, {"orderid": 5, "externalid": "WEB-1-abcdef"}, {"5": "000000001"}) == "000000001"
    assert increment_id_of(cfg, {"orderid": 6, "externalid": "WEB-42"}, {}) == "42"
    assert increment_id_of(cfg, {"orderid": 7, "externalid": "SHOPIFY-1"}, {}) is None


def test_sources_and_warehouses():
    cfg = config(stock={"sources": {"1": "default", "9": "gone"}}, audit={"ignore_sources": ["b2b"], "ignore_warehouses": [3]})
    snap = snapshot(
        magento_sources=[{"source_code": "default"}, {"source_code": "popup"}, {"source_code": "b2b"},
                         {"source_code": "off", "enabled": False}],
        sitoo_warehouses=[{"warehouseid": 1}, {"warehouseid": 2}, {"warehouseid": 3}, {"warehouseid": 4, "sellable": False}],
    )  # fmt: skip
    assert kinds(audit(snap, cfg)) == [
        ("unmapped_magento_source", "popup"),
        ("mapped_source_missing", "gone"),
        ("unmapped_sitoo_warehouse", "warehouse 2"),
        ("mapped_warehouse_missing", "warehouse 9"),
    ]


def test_every_kind_is_documented_in_the_runbook():
    text = (Path(__file__).parents[2] / "docs" / "runbook.md").read_text(encoding="utf-8")
    section = text.split("## audit findings", 1)[1]
    for kind, (owner, _fix) in KINDS.items():
        assert re.search(rf"\| `{kind}` \| {owner} \|", section), kind


def test_drift_without_any_sitoo_record_says_sync_stock_full_heals_it():
    snap = snapshot([m_product("C")], [s_product("C")], warehouse_items={"1": {}},
                    source_items=[{"sku": "C", "source_code": "default", "quantity": 1}])  # fmt: skip
    [f] = audit(snap, config())
    assert f.kind == "stock_drift" and f.sitoo["warehouses"] == {} and f.sitoo["expected"] == 0
    assert "sync-stock --full" in f.message and "sets it to 0" in f.message and "never corrects" not in f.message
