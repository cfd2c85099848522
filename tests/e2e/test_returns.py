"""sync-returns end to end: the real CLI against both emulators over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from magsit.state.store import StateStore
from tests.e2e.conftest import Env


def old(minutes: int = 10) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def web_shop(env: Env, skus: dict[str, int]) -> int:
    """Products (SKU -> Magento net price) on both sides and a Sitoo store with a till whose
    warehouse fulfils web orders; returns that warehouse."""
    m, s = env.magento.state, env.sitoo.state
    store = s.add_store("City")
    warehouse = s.add_warehouse("City", storeid=store)
    s.add_register(store, warehouse, "Till 1")
    for sku, price in skus.items():
        m.add_product(sku, sku.title(), price)
        m.set_source_item(sku, "default", 50)
        s.add_product(sku, sku.title(), f"{price * 1.25:.2f}")  # the Magento price incl. 25 % VAT
        s.set_stock(warehouse, sku, 50)
    # pending too: a shop that hands unpaid (not invoiced) orders to the store as well
    env.configure(orders={"warehouse_id": warehouse, "statuses": ["processing", "pending"], "retry_backoff_minutes": 0},
                  stock={"sources": {str(warehouse): "default"}})  # fmt: skip
    return warehouse


def push_and_deliver(env: Env, order: dict[str, Any]) -> int:
    """push-orders sends the web order to Sitoo, the store delivers it, sync-fulfilment ships it in
    Magento: the order mapping sync-returns reads is the one these flows leave. Returns the Sitoo orderid."""
    env.run("push-orders", check_code=0)
    [sitoo] = [o for o in env.sitoo.state.orders.values() if o["externalid"] == order["increment_id"]]
    env.sitoo.state.deliver(sitoo["orderid"])
    env.run("sync-fulfilment", check_code=0)
    return int(sitoo["orderid"])


def pushed_order(env: Env, *, invoice: bool = True, shipping_amount: float = 0) -> dict[str, Any]:
    """A Magento order with two lines that magsit pushed to Sitoo and shipped after the store's
    delivery, and a store with a till that can take returns."""
    warehouse = web_shop(env, {"SHIRT": 100, "CAP": 40})
    order = env.magento.state.place_order([("SHIRT", 1), ("CAP", 2)], customer_email="anna@example.com",
                                          invoice=invoice, status="processing" if invoice else "pending",
                                          shipping_amount=shipping_amount, created_at=old())  # fmt: skip
    orderid = push_and_deliver(env, order)
    tops = [i for i in env.magento.state.orders[order["entity_id"]]["items"] if not i.get("parent_item_id")]
    return {"order": order, "sitoo_orderid": orderid, "warehouse": warehouse, "items": {i["sku"]: i for i in tops}}


def memos_of(env: Env, entity_id: int) -> list[dict[str, Any]]:
    return [c for c in env.magento.state.creditmemos.values() if c["order_id"] == entity_id]


def sitoo_refunds(env: Env, orderid: int) -> list[dict[str, Any]]:
    return [o for o in env.sitoo.state.orders.values() if o.get("creditorderid") == orderid]


def refund_posts(env: Env) -> list[dict[str, Any]]:
    return [r for r in env.magento.control.requests if r.method == "POST" and r.path.endswith("/refund")]


def test_store_return_of_one_line_refunds_that_line_once(sandbox: Env) -> None:
    web = pushed_order(sandbox)
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 1, "quantity": 1}])  # one of two caps
    out = sandbox.run_json("sync-returns", check_code=0)
    assert out["status"] == "ok"
    [memo] = memos_of(sandbox, web["order"]["entity_id"])
    assert [(i["order_item_id"], i["qty"]) for i in memo["items"]] == [(web["items"]["CAP"]["item_id"], 1)]
    assert memo["shipping_amount"] == 0
    [post] = refund_posts(sandbox)
    assert post.body["arguments"]["shipping_amount"] == 0
    assert not post.body["arguments"].get("extension_attributes", {}).get("return_to_stock_items")
    # Run again: nothing new in Magento, and the memo magsit made is not echoed into Sitoo (P49).
    sandbox.run("sync-returns", check_code=0)
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 1
    assert len(sitoo_refunds(sandbox, web["sitoo_orderid"])) == 1


def test_refund_applied_then_500_is_not_refunded_twice(sandbox: Env) -> None:
    web = pushed_order(sandbox)
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 0, "quantity": 1}])
    sandbox.magento.control.add_fault("500_after", method="POST", path=r"/refund$")
    # The 500 came after Magento stored the memo: magsit finds it among the order's credit memos
    # at once and records it, instead of leaving an unknown outcome (or posting again).
    out = sandbox.run_json("sync-returns", check_code=0)
    assert out["counts"].get("adopted") == 1 and out["failures"] == []
    assert [r.status for r in refund_posts(sandbox)] == [500]
    sandbox.run("sync-returns", check_code=0)
    sandbox.run("sync-returns", check_code=0)
    [memo] = memos_of(sandbox, web["order"]["entity_id"])
    assert [(i["order_item_id"], i["qty"]) for i in memo["items"]] == [(web["items"]["SHIRT"]["item_id"], 1)]
    assert len(refund_posts(sandbox)) == 1  # the unknown outcome was checked, never re-posted
    order = sandbox.magento.state.orders[web["order"]["entity_id"]]
    assert web["items"]["SHIRT"]["qty_refunded"] == 1 and order["total_refunded"] == memo["grand_total"]


def test_uninvoiced_order_return_is_finance_exception_with_magento_message(sandbox: Env) -> None:
    web = pushed_order(sandbox, invoice=False)
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 0, "quantity": 1}])
    out = sandbox.run_json("sync-returns", check_code=3)
    [failure] = out["failures"]
    assert failure["kind"] == "refund_not_invoiced" and failure["owner"] == "finance"
    assert "We can't create creditmemo for the order." in failure["message"]
    assert memos_of(sandbox, web["order"]["entity_id"]) == []
    listed = sandbox.run_json("exceptions", "list", check_code=0)
    [row] = [r for r in listed if r["kind"] == "refund_not_invoiced"]
    # The poison record waits for its backoff instead of being re-posted on every run.
    sandbox.run("sync-returns", check_code=0)
    assert len(refund_posts(sandbox)) == 1
    # Finance invoices the order and asks for a retry; the return goes through and resolves.
    sandbox.magento.state.invoice_order(web["order"]["entity_id"])
    sandbox.run("exceptions", "retry", str(row["id"]), check_code=0)
    sandbox.run("sync-returns", check_code=0)
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 1
    assert sandbox.run_json("exceptions", "list", check_code=0) == []  # resolved by the success


def test_magento_creditmemo_appears_once_in_sitoo(sandbox: Env) -> None:
    web = pushed_order(sandbox)
    cap = web["items"]["CAP"]
    sandbox.magento.state.refund_order(web["order"]["entity_id"], [{"order_item_id": cap["item_id"], "qty": 2}], shipping_amount=0)
    sandbox.run("sync-returns", check_code=0)
    sandbox.run("sync-returns", check_code=0)
    [refund] = sitoo_refunds(sandbox, web["sitoo_orderid"])
    assert refund["externalid"].startswith("CM-")
    assert [(i["sku"], i["quantity"]) for i in refund["orderitems"]] == [("CAP", -2)]
    assert refund["additionaldata"]["delivery-ignore-stock"] == "true"
    assert refund["orderstateid"] == 10
    # and it does not come back into Magento as a second credit memo
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 1


def test_crash_after_refund_post_is_adopted_not_refunded_again(sandbox: Env) -> None:
    import signal

    from tests.reliability.conftest import run_proc

    web = pushed_order(sandbox)
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 1, "quantity": 2}])
    # The run is killed right after Magento stored the memo: the intent is written, the outcome is not.
    killed = run_proc(sandbox, "sync-returns", crash_at="returns.after_refund")
    assert killed.returncode == -signal.SIGKILL
    assert len(refund_posts(sandbox)) == 1
    out = sandbox.run_json("sync-returns", check_code=0)
    assert out["counts"].get("adopted") == 1
    assert len(refund_posts(sandbox)) == 1  # looked up, not posted again
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 1
    sandbox.run("sync-returns", check_code=0)
    assert len(sitoo_refunds(sandbox, web["sitoo_orderid"])) == 1  # the till return; the adopted memo is not echoed


def test_return_of_an_order_whose_push_is_unconfirmed_is_not_swept_past(sandbox: Env) -> None:
    first = pushed_order(sandbox)  # a confirmed push: the sweep has a starting point
    m, s = sandbox.magento.state, sandbox.sitoo.state
    order = m.place_order([("SHIRT", 1)], customer_email="anna@example.com", created_at=old())
    top = next(i for i in order["items"] if not i.get("parent_item_id"))
    # push-orders sends the order and Sitoo stores it, but the answer is lost and so is the lookup
    # by externalid after it: the order mapping stays pending, with no Sitoo orderid.
    sandbox.sitoo.control.add_fault("500_after", method="POST", path=r"/orders\.json$")
    sandbox.sitoo.control.add_fault("500", method="GET", path=r"/orders\.json$", after=1, times=10)
    assert sandbox.run_json("push-orders", check_code=3)["failures"][0]["kind"] == "sitoo_unavailable"
    sandbox.sitoo.control.clear_faults()
    [orderid] = [o["orderid"] for o in s.orders.values() if o["externalid"] == order["increment_id"]]
    s.deliver(orderid)
    s.store_return(orderid, [{"orderitemid": 0, "quantity": 1}])
    register = next(iter(s.registers))
    for _ in range(60):  # more new Sitoo orders than the sweep's re-read overlap
        s.pos_sale(register, [("CAP", 1)])
    sandbox.run("sync-returns", check_code=0)
    assert memos_of(sandbox, order["entity_id"]) == []
    # The next push-orders run adopts the Sitoo order; the return is still found afterwards.
    assert sandbox.run_json("push-orders", check_code=0)["counts"].get("adopted") == 1
    sandbox.run("sync-returns", check_code=0)
    [memo] = memos_of(sandbox, order["entity_id"])
    assert [(i["order_item_id"], i["qty"]) for i in memo["items"]] == [(top["item_id"], 1)]
    assert first["sitoo_orderid"] != orderid


def _shipping_findings(env: Env) -> list[dict[str, Any]]:
    out = env.run_json("audit")
    return [f for f in out["findings"] if f["kind"] == "refund_shipping_tax_setting"]


@pytest.mark.parametrize("incl", [False, True], ids=["shop-excl", "shop-incl"])
def test_shipping_refund_is_sent_the_way_the_shop_reads_it(sandbox: Env, incl: bool) -> None:
    # Magento reads arguments.shipping_amount incl. tax when the store displays shipping incl. tax
    # (Creditmemo/Total/Shipping::isSuppliedShippingAmountInclTax, magento-api.md §11).
    web = pushed_order(sandbox, shipping_amount=40)  # 40.00 net + 25 % = 50.00
    sandbox.magento.state.shipping_display_incl_tax = incl
    sandbox.configure(returns={"refund_shipping": True, "shipping_amount_includes_tax": incl})
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 1, "quantity": 1}])
    sandbox.run("sync-returns", check_code=0)
    (memo,) = memos_of(sandbox, web["order"]["entity_id"])
    assert (memo["shipping_amount"], memo["shipping_incl_tax"]) == (40.0, 50.0)  # all the shipping, once
    assert refund_posts(sandbox)[0].body["arguments"]["shipping_amount"] == (50 if incl else 40)
    assert _shipping_findings(sandbox) == []


def test_audit_says_which_shipping_setting_the_shop_needs(sandbox: Env) -> None:
    web = pushed_order(sandbox, shipping_amount=40)
    sandbox.magento.state.shipping_display_incl_tax = True  # the shop shows shipping incl. tax
    sandbox.configure(returns={"refund_shipping": True})  # magsit still sends it excl. tax
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 1, "quantity": 1}])
    sandbox.run("sync-returns", check_code=0)
    (memo,) = memos_of(sandbox, web["order"]["entity_id"])
    assert memo["shipping_amount"] == 32.0  # 40 read as gross: the customer got 10.00 too little
    (found,) = _shipping_findings(sandbox)
    assert found["owner"] == "finance" and "shipping_amount_includes_tax = true" in found["message"]
    check = sandbox.run_json("check")
    (line,) = [c for c in check["checks"] if c["check"] == "returns: shipping refunds"]
    assert "excluding tax" in line["detail"] and "magsit audit" in line["detail"]


def big_web_order(env: Env, lines: int) -> dict[str, Any]:
    """A pushed, shipped web order of ``lines`` lines (shipping 40.00 net), returned in full at the till."""
    skus = [f"R-{n:02d}" for n in range(lines)]
    web_shop(env, dict.fromkeys(skus, 100))
    order = env.magento.state.place_order([(sku, 1) for sku in skus], customer_email="big@example.com",
                                          shipping_amount=40, created_at=old())  # fmt: skip
    orderid = push_and_deliver(env, order)
    env.configure(returns={"refund_shipping": True})
    env.sitoo.state.store_return(orderid, [{"orderitemid": n, "quantity": 1} for n in range(lines)])
    return order


def test_return_of_more_lines_than_the_input_limit_gives_several_memos_that_add_up(sandbox: Env) -> None:
    # Input limits on (sandbox default): a refund body over 20 items is refused (magento-api.md §5.1).
    # Magento takes several credit memos per order (partial refunds, §11 "unrefunded quantity").
    order = big_web_order(sandbox, 23)
    sandbox.run("sync-returns", check_code=0)
    sandbox.run("sync-returns", check_code=0)
    memos = sorted(memos_of(sandbox, order["entity_id"]), key=lambda c: c["entity_id"])
    assert [len(c["items"]) for c in memos] == [20, 3]
    assert [c["shipping_amount"] for c in memos] == [40.0, 0.0]  # shipping once, with the first part
    # together exactly what one memo of everything would refund: 23 × 125.00 + 50.00 shipping incl. tax
    assert round(sum(c["grand_total"] for c in memos), 2) == 23 * 125.0 + 50.0
    assert sandbox.magento.state.orders[order["entity_id"]]["total_refunded"] == 23 * 125.0 + 50.0
    assert len(refund_posts(sandbox)) == 2
    state = StateStore(sandbox.state_path)
    (refund,) = state.mappings("refund")
    assert refund["status"] == "done" and refund["data"]["memo_ids"] == [str(c["entity_id"]) for c in memos]
    assert sorted(m["external_id"] for m in state.mappings("creditmemo")) == sorted(str(c["entity_id"]) for c in memos)
    echoed = [o for o in sandbox.sitoo.state.orders.values() if str(o.get("externalid") or "").startswith("CM-")]
    assert echoed == []  # magsit's own memos are not exported back to Sitoo as refund orders


def test_a_shop_with_a_lower_limit_gets_memos_of_its_size(sandbox: Env) -> None:
    order = big_web_order(sandbox, 7)
    sandbox.magento.state.list_limit = 3
    sandbox.run("sync-returns", check_code=0)
    assert sorted(len(c["items"]) for c in memos_of(sandbox, order["entity_id"])) == [1, 3, 3]
    assert len(refund_posts(sandbox)) == 4  # the 7-item memo refused as a whole, then three parts


def state_rows(env: Env) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the state file but the run records (which a dry run writes, on purpose)."""
    import sqlite3

    conn = sqlite3.connect(env.state_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables if t != "runs"}
    finally:
        conn.close()


def test_dry_run_changes_nothing_and_the_real_run_does_the_work(sandbox: Env) -> None:
    sandbox.sitoo.state.add_product("SHIPPING", "Shipping", "50.00")  # the shipping line gets this SKU
    web = pushed_order(sandbox, shipping_amount=40)
    cap = web["items"]["CAP"]
    # A store return whose credit memo POST failed without an answer: its refund stays pending
    # (and waits for its retry time).
    first = sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 0, "quantity": 1}])
    sandbox.magento.control.add_fault("500", method="POST", path=r"/refund$", times=1)
    assert sandbox.run_json("sync-returns", check_code=3)["failures"][0]["kind"] == "refund_outcome_unknown"
    # Meanwhile: a credit memo made in the Magento admin (Magento -> Sitoo waits until the pending
    # one is settled: it might be that one), a till return of a cap, and one of the shipping line
    # only (nothing Magento refunds for it with [returns].refund_shipping off).
    sandbox.magento.state.refund_order(web["order"]["entity_id"], [{"order_item_id": cap["item_id"], "qty": 1}],
                                       shipping_amount=0)  # fmt: skip
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 1, "quantity": 1}])
    sandbox.sitoo.state.store_return(web["sitoo_orderid"], [{"orderitemid": 2, "quantity": 1}])
    before = state_rows(sandbox)
    writes = len(sandbox.magento.control.writes()) + len(sandbox.sitoo.control.writes())
    dry = sandbox.run_json("--dry-run", "sync-returns", check_code=0)
    assert sorted(p["action"] for p in dry["plan"]) == ["creditmemo", "skip", "wait"]
    assert state_rows(sandbox) == before
    assert len(sandbox.magento.control.writes()) + len(sandbox.sitoo.control.writes()) == writes
    sandbox.run("sync-returns", check_code=0)
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 2  # the cap's and the admin's
    assert len(sitoo_refunds(sandbox, web["sitoo_orderid"])) == 3  # the till returns; the admin's memo waits
    sandbox.run("exceptions", "retry", f"sitoo-refund-{first}", check_code=0)
    sandbox.run("sync-returns", check_code=0)
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 3  # + the shirt's
    assert len(sitoo_refunds(sandbox, web["sitoo_orderid"])) == 4  # + the admin's memo, exported
    sandbox.run("sync-returns", check_code=0)
    assert len(memos_of(sandbox, web["order"]["entity_id"])) == 3
    assert len(sitoo_refunds(sandbox, web["sitoo_orderid"])) == 4
