"""audit end to end: the real CLI against both emulators; one seeded case of every finding kind."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest

from magsit.state import StateStore
from magsit.sync.audit.kinds import KINDS

pytestmark = pytest.mark.e2e


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def clean_shop(env) -> None:
    """Both sides agree: same SKUs, Sitoo gross = Magento net + 25 % VAT, mapped tax class, a web
    order really pushed by push-orders and stock really published by sync-stock --full."""
    sitoo, magento = env.sitoo.state, env.magento.state
    sitoo.add_warehouse("Central")
    for sku, gross, qty in (("TENT-1", "125.00", 5), ("SOCK/42", "50.00", 10)):
        sitoo.add_product(sku, f"Product {sku}", gross, vatid=2)
        sitoo.set_stock(1, sku, qty)
    sitoo.add_product("RETIRED", "Old thing", "10.00", activepos=False)  # inactive: not expected in Magento
    magento.add_product("TENT-1", "Tent", 100, tax_class_id=2)
    magento.add_product("SOCK/42", "Sock", 40, tax_class_id=2)
    magento.add_product("JACKET", "Jacket", 100, type_id="configurable")  # a parent, not a stock item
    magento.add_product("OLD-WEB", "Disabled", 10, status=2)  # disabled: not expected in Sitoo
    magento.add_source("closed-store", enabled=False)  # disabled sources need no mapping
    magento.add_customer("anna@example.com", "Anna", "Berg")
    magento.place_order([("TENT-1", 1)], customer_email="anna@example.com", created_at=ago(60))
    magento.place_order([("SOCK/42", 1)], customer_email="anna@example.com", status="pending", created_at=ago(90))
    env.configure(products={"tax_classes": {"2": 2}}, orders={"retry_backoff_minutes": 0})
    env.run("push-orders", check_code=0)
    env.run("sync-stock", "--full", check_code=0)
    env.magento.control.clear_log()
    env.sitoo.control.clear_log()


def assert_read_only(env) -> None:
    assert env.magento.control.writes() == []
    assert env.sitoo.control.writes() == []


def test_clean_catalogue_reports_nothing_and_writes_nothing(sandbox):
    clean_shop(sandbox)
    out = sandbox.run_json("audit", check_code=0)
    assert out["findings"] == [] and out["totals"]["total"] == 0
    assert_read_only(sandbox)
    assert sandbox.magento.control.calls("GET") and sandbox.sitoo.control.calls("GET")


def test_each_seeded_gap_is_reported_once_with_its_owner(sandbox, tmp_path):
    clean_shop(sandbox)
    sitoo, magento = sandbox.sitoo.state, sandbox.magento.state
    # catalogue
    magento.add_product("ONLY-WEB", "Web only", 10)
    magento.add_product("OTHER-SITE", "Website 2 only", 10, website_ids=[2])  # not in the mapped website
    sitoo.add_product("ONLY-POS", "POS only", "10.00")
    magento.add_product("BOOT-0042", "Boot", 80)
    sitoo.add_product("boot_42", "Boot", "100.00")
    magento.add_product("GLOVE", "Glove", 80, custom_attributes={  # promotion in Magento only: 60 net = 75 gross
        "special_price": 60, "special_from_date": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d 00:00:00"),
    })  # fmt: skip
    sitoo.add_product("GLOVE", "Glove", "100.00")
    magento.add_product("MUG", "Mug", 50, tax_class_id=5)
    sitoo.add_product("MUG", "Mug", "62.50", vatid=2)
    magento.add_product("BOOK", "Book", 100, tax_class_id=2)
    sitoo.add_product("BOOK", "Book", "106.00", vatid=4)  # 6 % VAT group, not in tax_classes
    # stock and sources
    magento.set_source_item("GHOST", "default", 3)
    magento.add_source("popup")
    sitoo.add_warehouse("Outlet")  # id 2: not mapped
    sitoo.add_warehouse("Returns")  # id 3: ignored on purpose
    magento.set_source_item("TENT-1", "default", 50)  # hand edit: Sitoo says 5
    sandbox.configure(stock={"sources": {"1": "default", "9": "nowhere"}}, audit={"ignore_warehouses": ["3"]})
    # orders and state
    lost = magento.place_order([("SOCK/42", 1)], customer_email="anna@example.com", created_at=ago(120))
    magento.place_order([("SOCK/42", 1)], customer_email="anna@example.com", created_at=ago(5))  # too young
    sitoo.create_order({"ordertypeid": 10, "externalid": "000000999", "orderitems": [
        {"productname": "POS only", "sku": "ONLY-POS", "quantity": 1, "moneyrowprice": "10.00", "vatvalue": 25},
    ]})  # fmt: skip
    # a store return magsit refunded with shipping sent excl. tax, read incl. tax by the shop
    refunded = magento.place_order([("TENT-1", 1)], customer_email="bo@example.com", created_at=ago(60 * 24 * 40),
                                   shipping_amount=40)  # fmt: skip
    magento.shipping_display_incl_tax = True
    memo_id = magento.refund_order(refunded["entity_id"], [{"order_item_id": refunded["items"][0]["item_id"], "qty": 1}],
                                   shipping_amount=40)  # fmt: skip
    memo_no = magento.creditmemos[memo_id]["increment_id"]
    state = StateStore(sandbox.state_path)
    state.put_mapping("order", "magento", "000000777", "424242", {}, "pushed")
    state.put_mapping("refund", "sitoo", "5555", str(memo_id), {"origin": "sitoo", "increment_id": refunded["increment_id"],
                                                                "shipping_amount": "40", "shipping_sent_incl_tax": False}, "done")  # fmt: skip
    state.close()
    # customers
    magento.add_customer("Erik@Example.com", "Erik", "One")
    magento.add_customer(" erik@example.com", "Erik", "Two")
    sitoo.add_user("Lisa@Example.com", "Lisa", "One")
    sitoo.add_user("lisa@example.com ", "Lisa", "Two")
    sitoo.add_user("lisa@example.com", "Lisa", "Staff", role=1)  # staff account: not a customer

    csv_dir, html_file = tmp_path / "csv", tmp_path / "audit.html"
    out = sandbox.run_json("audit", "--csv", str(csv_dir), "--html", str(html_file), check_code=3)
    assert_read_only(sandbox)

    got = sorted((f["kind"], f["owner"], f["key"]) for f in out["findings"])
    expected = sorted([
        ("sku_missing_in_sitoo", "ecommerce", "ONLY-WEB"),
        ("sku_missing_in_magento", "ecommerce", "ONLY-POS"),
        ("sku_near_miss", "ecommerce", "BOOT-0042 / boot_42"),
        ("price_mismatch", "ecommerce", "GLOVE"),
        ("tax_class_mismatch", "finance", "MUG"),
        ("unmapped_vat_group", "finance", "vatid 4"),
        ("orphan_source_item", "ops", "GHOST@default"),
        ("unmapped_magento_source", "ops", "popup"),
        ("mapped_source_missing", "ops", "nowhere"),
        ("unmapped_sitoo_warehouse", "ops", "warehouse 2"),
        ("mapped_warehouse_missing", "ops", "warehouse 9"),
        ("stock_drift", "ops", "TENT-1@default"),
        ("order_not_in_sitoo", "ops", lost["increment_id"]),
        ("sitoo_order_without_magento_order", "ops", "000000999"),
        ("stale_mapping", "ops", "order 000000777"),
        ("duplicate_customer", "ecommerce", "erik@example.com (magento)"),
        ("duplicate_customer", "ecommerce", "lisa@example.com (sitoo)"),
        ("refund_shipping_tax_setting", "finance", f"creditmemo {memo_no}"),
    ])  # fmt: skip
    assert got == expected
    assert {k for k, _, _ in got} == set(KINDS)  # every kind the audit knows is exercised here
    by_key = {f["key"]: f for f in out["findings"]}
    assert by_key["GLOVE"]["magento"]["compared_gross"] == "75.00" and by_key["GLOVE"]["sitoo"]["moneyprice"] == "100.00"
    assert by_key["TENT-1@default"]["magento"]["quantity"] == "50" and by_key["TENT-1@default"]["sitoo"]["expected"] == "5"
    assert all(f["fix"] and f["message"] for f in out["findings"])
    assert out["totals"]["by_owner"] == {"ecommerce": 6, "finance": 3, "ops": 9}

    with (csv_dir / "findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["kind"], r["owner"], r["key"]) for r in rows) == expected
    assert json.loads(next(r for r in rows if r["key"] == "MUG")["magento"]) == {"tax_class_id": "5"}
    assert (csv_dir / "summary.csv").exists()
    page = html_file.read_text(encoding="utf-8")
    assert "GHOST@default" in page and "Findings (18)" in page


def test_rich_output_shows_counts_by_kind_and_owner(sandbox):
    clean_shop(sandbox)
    sandbox.magento.state.add_product("ONLY-WEB", "Web only", 10)
    result = sandbox.run("audit", check_code=3)
    assert "sku_missing_in_sitoo" in result.stdout and "by owner: ecommerce 1" in result.stdout
    assert "ONLY-WEB" in result.stdout
    assert_read_only(sandbox)
