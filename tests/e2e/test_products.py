"""sync-products end to end: the real CLI against both emulators over HTTP."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e


def seed(env, skus, magento_skus=None):
    """Sitoo's price is gross (vatid 2 = 25 % VAT), Magento's catalogue price net: 125.00 = 100 + VAT."""
    for sku in skus:
        env.sitoo.state.add_product(sku, f"Product {sku}", "125.00", vatid=2, barcode=f"7300{len(sku)}")
    for sku in skus if magento_skus is None else magento_skus:
        env.magento.state.add_product(sku, f"Product {sku}", 100, tax_class_id=2, custom_attributes={"ean": f"7300{len(sku)}"})


def edit(env, sku, **changes):
    product = env.sitoo.state.product_by_sku(sku)
    product.update(changes)
    product["datemodified"] = int(time.time())


def writes(env):
    return env.magento.control.writes()


def test_name_price_status_changes_land_via_rest_all(sandbox):
    seed(sandbox, ["P-1", "P-2"])
    sandbox.configure(products={"tax_classes": {"2": 2}})
    sandbox.run("sync-products", check_code=0)
    assert writes(sandbox) == []  # already equal: nothing written
    edit(sandbox, "P-1", title="Shirt blue", moneyprice="129.00", activepos=False)
    sandbox.run("sync-products", check_code=0)
    product = sandbox.magento.state.find_product("P-1")
    assert (product["name"], product["price"], product["status"]) == ("Shirt blue", 103.2, 2)  # 129.00 / 1.25
    assert sandbox.magento.state.find_product("P-2")["name"] == "Product P-2"
    assert writes(sandbox) and all(w.path.startswith("/rest/all/V1/") for w in writes(sandbox))
    assert not any(sandbox.magento.state.store_overrides.values())  # no store-view overrides
    sandbox.magento.control.clear_log()
    sandbox.run("sync-products", check_code=0)
    assert writes(sandbox) == []


def test_barcode_and_unmapped_tax_class(sandbox):
    seed(sandbox, ["BAR"])
    sandbox.configure(products={"tax_classes": {"2": 2}})
    edit(sandbox, "BAR", barcode="123456", vatid=7)
    out = sandbox.run_json("sync-products", check_code=3)
    assert [(f["kind"], f["owner"]) for f in out["failures"]] == [("unmapped_tax_class", "ecommerce")]
    attrs = {a["attribute_code"]: a["value"] for a in sandbox.magento.state.find_product("BAR")["custom_attributes"]}
    assert attrs["ean"] == "123456" and attrs["tax_class_id"] == "2"


def test_missing_product_is_reported(sandbox):
    seed(sandbox, ["HERE", "NOT-IN-MAGENTO"], magento_skus=["HERE"])
    out = sandbox.run_json("sync-products", check_code=3)
    assert [(f["kind"], f["owner"], f["key"]) for f in out["failures"]] == [
        ("product_missing_in_magento", "ecommerce", "NOT-IN-MAGENTO")
    ]
    assert sandbox.magento.state.find_product("NOT-IN-MAGENTO") is None


def test_create_missing_creates_the_product(sandbox):
    seed(sandbox, ["NEW/1 +x"], magento_skus=[])
    sandbox.configure(products={"create_missing": True, "tax_classes": {"2": 2}})
    sandbox.run("sync-products", check_code=0)
    product = sandbox.magento.state.find_product("NEW/1 +x")
    assert product is not None and product["name"] == "Product NEW/1 +x" and product["price"] == 100
    assert product["extension_attributes"]["website_ids"] == [1]
    sandbox.magento.control.clear_log()
    sandbox.run("sync-products", "--full", check_code=0)
    assert writes(sandbox) == []


def test_price_row_error_becomes_an_exception(sandbox):
    seed(sandbox, ["SIMPLE"], magento_skus=["SIMPLE"])
    sandbox.sitoo.state.add_product("CONF", "Configurable", "50.00", vatid=2)
    sandbox.magento.state.add_product("CONF", "Configurable", 0, type_id="configurable")
    edit(sandbox, "SIMPLE", moneyprice="90.00")
    out = sandbox.run_json("sync-products", check_code=3)
    assert [(f["kind"], f["key"]) for f in out["failures"]] == [("price_rejected", "CONF (price)")]
    assert sandbox.magento.state.find_product("SIMPLE")["price"] == 72  # 90.00 gross at 25 %


def test_dry_run_writes_nothing_and_sku_option(sandbox):
    seed(sandbox, ["D-1", "D-2"])
    edit(sandbox, "D-1", title="New name")
    edit(sandbox, "D-2", title="Other name")
    out = sandbox.run_json("--dry-run", "sync-products", check_code=0)
    assert {row["sku"] for row in out["plan"]} == {"D-1", "D-2"}
    assert writes(sandbox) == []
    sandbox.run("sync-products", "--sku", "D-2", check_code=0)
    assert sandbox.magento.state.find_product("D-2")["name"] == "Other name"
    assert sandbox.magento.state.find_product("D-1")["name"] == "Product D-1"


def test_gross_sitoo_prices_become_net_magento_prices_and_stay_put(sandbox):
    """Sitoo's moneyprice includes VAT; Magento's default catalogue prices exclude it."""
    sandbox.sitoo.state.add_product("NET-25", "Shirt", "399.00", vatid=2)  # 25 %
    sandbox.sitoo.state.add_product("NET-12", "Food", "99.99", vatid=3)  # 12 %
    sandbox.sitoo.state.add_product("NET-0", "Book", "120.00", vatid=1)  # 0 %
    for sku in ("NET-25", "NET-12", "NET-0"):
        sandbox.magento.state.add_product(sku, sku, 1)
    before = sandbox.run_json("audit", check_code=None)
    assert {f["key"] for f in before["findings"] if f["kind"] == "price_mismatch"} == {"NET-25", "NET-12", "NET-0"}
    sandbox.run("sync-products", "--full", check_code=0)
    prices = {s: sandbox.magento.state.find_product(s)["price"] for s in ("NET-25", "NET-12", "NET-0")}
    assert prices == {"NET-25": 319.2, "NET-12": 89.28, "NET-0": 120}
    sandbox.magento.control.clear_log()
    sandbox.run("sync-products", "--full", check_code=0)
    assert writes(sandbox) == []  # compared at cent precision: no endless re-writes
    audit = sandbox.run_json("audit", check_code=None)
    assert not [f for f in audit["findings"] if f["kind"] == "price_mismatch"]  # audit agrees (same setting)


def test_prices_including_tax_are_copied_as_is(sandbox):
    seed(sandbox, ["GROSS"])
    sandbox.configure(products={"magento_prices_include_tax": True})
    sandbox.run("sync-products", check_code=0)
    assert sandbox.magento.state.find_product("GROSS")["price"] == 125


def test_sku_with_a_slash_is_written_without_the_sku_in_the_path(sandbox):
    # A default Apache answers 404 to any path holding %2F (magento-api.md §13); OAuth signatures
    # break on it too (GH#37913). The sandbox refuses such paths like Apache does.
    seed(sandbox, ["SOCK/42", "A&B", "PLAIN-1"])
    sandbox.configure(products={"tax_classes": {"2": 2}})
    for sku in ("SOCK/42", "A&B", "PLAIN-1"):
        edit(sandbox, sku, title=f"Renamed {sku}")
    sandbox.run("sync-products", check_code=0)
    assert [sandbox.magento.state.find_product(s)["name"] for s in ("SOCK/42", "A&B", "PLAIN-1")] == [
        "Renamed SOCK/42", "Renamed A&B", "Renamed PLAIN-1"]
    paths = sorted((w.method, w.path) for w in writes(sandbox) if "base-prices" not in w.path)
    assert paths == [("POST", "/rest/all/V1/products"), ("POST", "/rest/all/V1/products"),
                     ("PUT", "/rest/all/V1/products/PLAIN-1")]  # fmt: skip
    assert len(sandbox.magento.state.products) == 3  # updated, not created again
