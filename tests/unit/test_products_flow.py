"""sync-products pull/push against in-memory fakes of the two clients (no HTTP)."""

from magsit.config import parse_config
from magsit.runner import run_job
from magsit.state import StateStore
from magsit.sync import products


class FakeSitoo:
    def __init__(self, products):
        self.items = products

    def iter_products(self, modified_after=None, skus=None, include_inactive=False):
        assert include_inactive
        for p in self.items:
            if skus is not None and p["sku"] not in skus:
                continue
            if modified_after is not None and p["datemodified"] < modified_after:
                continue
            yield dict(p)


class FakeMagento:
    def __init__(self, products):
        self.items = {p["sku"]: p for p in products}
        self.writes = []

    def products_by_sku(self, skus):
        return [p for s, p in self.items.items() if s in skus]

    def update_product(self, sku, product, store_code):
        self.writes.append(("PUT", store_code, sku, product))
        self.items[sku].update({k: v for k, v in product.items() if k != "custom_attributes"})

    def create_product(self, product, store_code):
        self.writes.append(("POST", store_code, product["sku"], product))
        self.items[product["sku"]] = dict(product)

    def save_base_prices(self, prices, store_code):
        self.writes.append(("PRICES", store_code, prices))
        errors = []
        for row in prices:
            if row["sku"].startswith("CONF"):
                errors.append({"message": "Invalid attribute %fieldName = %fieldValue.", "parameters": {"fieldName": "SKU", "fieldValue": row["sku"]}})
            else:
                self.items[row["sku"]]["price"] = row["price"]
        return errors


def cfg(tmp_path, **products_):
    return parse_config(
        {
            "magento": {"base_url": "http://127.0.0.1:9", "token": "t"},
            "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
            "products": {"lookback_seconds": 0, "tax_classes": {"2": 2}, **products_},
            "state": {"path": str(tmp_path / "s.db")},
        }
    )


def sp(sku, **kw):
    # gross 12.50 at 25 % VAT = Magento's net 10
    return {"sku": sku, "title": "T", "moneyprice": "12.50", "activepos": True, "vatid": 2, "vatvalue": 25, "barcode": "", "datemodified": 100, **kw}


def mp(sku, **kw):
    return {"sku": sku, "name": "T", "price": 10, "status": 1, "custom_attributes": [{"attribute_code": "tax_class_id", "value": "2"}], **kw}


def test_changes_missing_and_price_row_error(tmp_path):
    sitoo = FakeSitoo([sp("A", title="New"), sp("B", moneyprice="15.00"), sp("NEW"), sp("CONF1", moneyprice="5.00")])
    magento = FakeMagento([mp("A"), mp("B"), mp("CONF1")])
    outcome = run_job(cfg(tmp_path), "sync-products", products, magento=magento, sitoo=sitoo)
    assert outcome.exit_code == 3
    assert sorted((f.kind, f.key) for f in outcome.failures) == [
        ("price_rejected", "CONF1 (price)"),
        ("product_missing_in_magento", "NEW"),
    ]
    assert ("PUT", "all", "A", {"sku": "A", "name": "New"}) in magento.writes
    assert magento.items["B"]["price"] == 12.0
    magento.writes.clear()
    # second run: nothing changed in Sitoo, nothing written (CONF1/NEW are retried, still fail)
    outcome = run_job(cfg(tmp_path), "sync-products", products, magento=magento, sitoo=sitoo)
    assert [w for w in magento.writes if w[0] != "PRICES"] == []


def test_create_missing(tmp_path):
    magento = FakeMagento([])
    outcome = run_job(cfg(tmp_path, create_missing=True), "sync-products", products, magento=magento, sitoo=FakeSitoo([sp("N/1 +x")]))
    assert outcome.exit_code == 0
    assert magento.writes[0][:3] == ("POST", "all", "N/1 +x")


def test_gross_sitoo_prices_land_net_and_missing_vat_rate_resolves_once_known(tmp_path):
    sitoo = FakeSitoo([sp("A", moneyprice="99.99", vatvalue=12), sp("B", vatvalue=None), sp("C")])
    magento = FakeMagento([mp("A"), mp("B", price=7), mp("C")])
    outcome = run_job(cfg(tmp_path), "sync-products", products, magento=magento, sitoo=sitoo)
    assert [(f.kind, f.owner, f.key) for f in outcome.failures] == [("missing_vat_rate", "ecommerce", "B (price)")]
    assert magento.items["A"]["price"] == 89.28  # 99.99 / 1.12, half-up
    assert magento.items["B"]["price"] == 7  # no guess
    assert outcome.result.counts["prices"] == 1
    magento.writes.clear()
    sitoo.items[1]["vatvalue"] = 25  # the VAT group is fixed in Sitoo; the retry reads B again by SKU
    state = StateStore(cfg(tmp_path).state.path)
    (row,) = state.exceptions(status="open", job="sync-products")
    state.retry_exception(row["id"])
    outcome = run_job(cfg(tmp_path), "sync-products", products, magento=magento, sitoo=sitoo)
    assert outcome.exit_code == 0 and magento.items["B"]["price"] == 10.0
    assert [w for w in magento.writes if w[0] == "PRICES"] == [("PRICES", "all", [{"price": 10.0, "store_id": 0, "sku": "B"}])]
    assert state.exceptions(status="open", job="sync-products") == []
    # the prices written are stable: a full run rewrites none of them
    magento.writes.clear()
    run_job(cfg(tmp_path), "sync-products", products, options={"full": True}, magento=magento, sitoo=sitoo)
    assert magento.writes == []


def test_prices_including_tax_copied_as_they_are(tmp_path):
    sitoo = FakeSitoo([sp("A", vatvalue=None)])
    magento = FakeMagento([mp("A")])
    outcome = run_job(cfg(tmp_path, magento_prices_include_tax=True), "sync-products", products, magento=magento, sitoo=sitoo)
    assert outcome.exit_code == 0 and magento.items["A"]["price"] == 12.5
