"""The real CLI signing with OAuth 1.0a (requests-oauthlib) against the emulator's own verifier
(magsit/sandbox/magento/oauth.py, written from RFC 5849 and Magento's code without oauthlib)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Env
from tests.e2e.test_stock import seed, source_item

pytestmark = pytest.mark.e2e


def use_oauth(env: Env) -> None:
    env.magento.state.bearer_enabled = False  # a Bearer call would be a guest: only signed calls get in
    env.configure(magento={"token": None, **env.magento.state.oauth})


def test_stock_and_orders_run_signed(sandbox: Env) -> None:
    use_oauth(sandbox)
    seed(sandbox, {"TENT 1": 3, "SOCK+2": 0}, magento_skus=())
    for sku in ("TENT 1", "SOCK+2"):
        sandbox.magento.state.add_product(sku, sku, 80)  # 100.00 incl. 25 % VAT, as in Sitoo
    sandbox.run("sync-stock", check_code=0)
    assert source_item(sandbox, "TENT 1") == (3.0, 1) and source_item(sandbox, "SOCK+2") == (0.0, 0)
    sandbox.magento.state.place_order([("TENT 1", 1)], customer_email="web shop@example.com", guest=True)
    sandbox.run("push-orders", check_code=0)
    assert [line["sku"] for o in sandbox.sitoo.state.orders.values() for line in o["orderitems"]] == ["TENT 1"]
    calls = sandbox.magento.control.calls()
    assert calls and all(c.status != 401 for c in calls)
    assert any(c.query for c in calls if c.method == "GET")  # searchCriteria queries were signed too


def test_customer_batches_over_ten_emails_are_signed_validly(sandbox: Env) -> None:
    use_oauth(sandbox)
    for n in range(12):
        sandbox.sitoo.state.add_user(f"u{n}@example.com", "U", f"N{n}")
    sandbox.configure(customers={"create_in_magento": True})
    sandbox.run("sync-customers", check_code=0)
    assert all(c.status != 401 for c in sandbox.magento.control.calls())
