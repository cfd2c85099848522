"""reconcile end to end: the real CLI against both emulators, every output format.

The web orders reach Sitoo through the real ``push-orders`` (orders, Sitoo orders, mappings);
the deliberate variances are business events on either side: an order push-orders could not
send (SKU unknown in Sitoo), a Sitoo-side VAT change, a refund made in Magento only, a till sale.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from magsit.tabular import readable

pytestmark = pytest.mark.e2e

MONTH = "2026-10"
OCT = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)


def seed(env):
    """Shop in Europe/Stockholm; one Sitoo store with a till; two products on both sides."""
    env.configure(reconcile={"timezone": "Europe/Stockholm", "tolerance": "0.01", "grace_days": 3})
    sitoo, magento = env.sitoo.state, env.magento.state
    sitoo.add_warehouse("Stockholm City")
    store = sitoo.add_store("Stockholm City", externalid="STHLM")
    register = sitoo.add_register(store, 1, "Till 1")
    for sku in ("A", "B"):
        sitoo.add_product(sku, f"Product {sku}", "125.00")
        magento.add_product(sku, f"Product {sku}", 100)
        sitoo.set_stock(1, sku, 10)
        magento.set_source_item(sku, "default", 10, 1)
    magento.add_product("C", "Product C (not in Sitoo)", 100)
    sitoo.add_product("SHIPPING", "Shipping", "0.00")
    magento.clock = lambda: OCT  # invoices and credit memos dated inside the month
    env.configure(orders={"retry_backoff_minutes": 0})
    return register


def place(env, items, created_at, **kw):
    return env.magento.state.place_order(items, customer_email="anna@example.com", created_at=created_at, **kw)


def push(env, check_code=0):
    """The real push-orders over HTTP: Sitoo orders with externalid + the order mappings."""
    env.run("push-orders", "--since", "2026-09-01", check_code=check_code)


def sitoo_order(env, increment_id):
    (order,) = [o for o in env.sitoo.state.orders.values() if o["externalid"] == increment_id]
    return order


def sitoo_rebooks_vat(env, increment_id, vat):
    """Someone in Sitoo changes the VAT rate of the lines (same gross): PUT orderitems."""
    order = sitoo_order(env, increment_id)
    items = [
        {"productname": i["productname"], "sku": i["sku"], "quantity": i["quantity"], "vatvalue": vat,
         "moneyrowprice": str(Decimal(i["moneyitemtotal_net"]) + Decimal(i["moneyitemtotal_vat"])),
         "additionaldata": i["additionaldata"]}
        for i in order["orderitems"]
    ]  # fmt: skip
    env.sitoo.state.update_order(order["orderid"], {"orderitems": items})


def seed_month(env):
    register = seed(env)
    # Local 2026-10-01 00:30 (UTC+2): in October although the UTC date is September (P7).
    o1 = place(env, [("A", 1)], "2026-09-30 22:30:00", shipping_amount=50)
    o2 = place(env, [("B", 2)], "2026-10-10 09:00:00", payment_method="banktransfer")
    o3 = place(env, [("C", 1)], "2026-10-11 09:00:00")  # SKU unknown in Sitoo: push-orders cannot send it
    o4 = place(env, [("A", 1)], "2026-10-12 09:00:00")  # Sitoo re-books it with 12 % VAT
    o5 = place(env, [("B", 1)], "2026-10-13 09:00:00")  # refunded in Magento only
    place(env, [("A", 1)], "2026-10-31 23:30:00")  # local 1 November: pushed, but not this month on either side
    push(env, check_code=3)  # o3 fails as a record (exception row), the rest go
    assert {o["externalid"] for o in env.sitoo.state.orders.values()} >= {o1["increment_id"], o4["increment_id"]}
    sitoo_rebooks_vat(env, o4["increment_id"], 12)
    env.magento.state.refund_order(o5["entity_id"], shipping_amount=0)
    pos = env.sitoo.state.pos_sale(register, [("A", 2)], payment="Card", orderdate=int(datetime(2026, 10, 20, 12, tzinfo=UTC).timestamp()))
    return {"missing": o3["increment_id"], "tax": o4["increment_id"], "refund": o5["increment_id"], "pos": pos,
            "matching": [o1["increment_id"], o2["increment_id"]]}  # fmt: skip


def variances_by_kind(rows):
    out = {}
    for row in rows:
        out.setdefault(row["kind"], []).append(row)
    return out


def test_month_with_deliberate_variances_in_every_format(sandbox, tmp_path):
    ids = seed_month(sandbox)
    html_path, csv_dir = tmp_path / "out" / "report.html", tmp_path / "out" / "csv"

    data = sandbox.run_json("reconcile", "--month", MONTH, "--html", str(html_path), "--csv", str(csv_dir), check_code=3)
    report = data["report"]
    assert report["period"]["final"] is True
    assert report["period"]["from_utc"] == "2026-09-30T22:00:00Z"
    kinds = variances_by_kind(report["variances"])
    # each deliberate variance exactly once, nothing else
    assert sorted((k, len(v)) for k, v in kinds.items()) == [("missing_in_sitoo", 1), ("refund_only_magento", 1), ("tax", 1)]
    assert report["variance_count"] == 3 and data["exit_code"] == 3
    missing, tax, refund = kinds["missing_in_sitoo"][0], kinds["tax"][0], kinds["refund_only_magento"][0]
    assert (missing["order"], missing["magento"], missing["sitoo"]) == (ids["missing"], "125.00", None)
    assert "exception list" in missing["note"]  # push-orders recorded why (in words finance can pass on)
    assert (tax["order"], tax["magento"], tax["sitoo"], tax["difference"]) == (ids["tax"], "25.00", "13.39", "-11.61")
    assert (refund["order"], refund["magento"], refund["sitoo"]) == (ids["refund"], "125.00", None)
    flagged = {v["order"] for v in report["variances"]}
    assert not flagged & set(ids["matching"])  # matching orders produce no rows
    assert report["matched_web_orders"] == 4

    summary = {(r["figure"], r["basis"]): r for r in report["summary"]}
    # Magento: 187.50 + 250 + 125 + 125 + 125; Sitoo the same minus the missing order.
    assert summary[("web orders", "gross incl. VAT and shipping")]["magento"] == "812.50"
    assert summary[("web orders", "gross incl. VAT and shipping")]["sitoo"] == "687.50"
    assert summary[("POS sales", "gross")]["sitoo"] == "250.00"
    store = report["stores"][0]
    assert (store["store"], store["pos_sales"], store["pos_sales_gross"], store["web_orders"]) == ("Stockholm City", 1, "250.00", 4)
    payments = {(p["channel"], p["method"]): p for p in report["payments"]}
    assert payments[("pos", "Card")]["sitoo"] == "250.00"
    assert payments[("web", "banktransfer")]["magento"] == payments[("web", "banktransfer")]["sitoo"] == "250.00"
    daily = {d["date"]: d for d in report["daily"]}
    assert daily["2026-10-01"]["magento_web"] == "187.50" and daily["2026-10-01"]["sitoo_web"] == "187.50"
    assert "2026-11-01" not in daily and len(daily) == 31
    drift = {(d["sku"], d["source"]): d for d in report["stock_drift"]}
    # Sitoo: 10 - 2 sold at the till - 3 reserved by open web orders; Magento still shows 10
    assert (drift[("A", "default")]["sitoo_available"], drift[("A", "default")]["drift"]) == ("5.000", "5.000")

    # CSV: one file per section, header + exactly the same variance rows
    with (csv_dir / "variances.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["kind"], r["order"], r["magento"], r["sitoo"], r["difference"]) for r in rows) == [
        ("missing_in_sitoo", ids["missing"], "125.00", "", ""),
        ("refund_only_magento", ids["refund"], "125.00", "", ""),
        ("tax", ids["tax"], "25.00", "13.39", "-11.61"),
    ]
    for name in ("summary", "stores", "payments", "stock_drift", "late_arrivals", "daily", "period"):
        assert (csv_dir / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]

    # HTML: self-contained, the same rows
    page = html_path.read_text(encoding="utf-8")
    assert "<svg" in page and "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    variance_table = page.split('<table id="variances">')[1].split("</table>")[0]
    assert variance_table.count("<tr class=\"var\">") == 3
    for kind, order in (("missing_in_sitoo", ids["missing"]), ("tax", ids["tax"]), ("refund_only_magento", ids["refund"])):
        assert variance_table.count(f"<td>{readable(kind)}</td><td>{order}</td>") == 1  # kinds as words for finance
    assert "<td class=num>13.39</td>" in variance_table and "<td class=num>-11.61</td>" in variance_table

    # Terminal table: each variance once
    text = sandbox.run("reconcile", "--month", MONTH, check_code=3).stdout
    for kind in ("missing_in_sitoo", "refund_only_magento"):
        assert text.count(kind) == 1, text
    assert "13.39" in text and "-11.61" in text


def test_matching_month_exits_zero_without_variance_rows(sandbox, tmp_path):
    seed(sandbox)
    for when in ("2026-10-02 08:00:00", "2026-10-03 08:00:00"):
        place(sandbox, [("A", 1), ("B", 1)], when, shipping_amount=49)
    push(sandbox)
    data = sandbox.run_json("reconcile", "--month", MONTH, "--csv", str(tmp_path / "csv"), check_code=0)
    assert data["report"]["variances"] == [] and data["report"]["matched_web_orders"] == 2
    assert (tmp_path / "csv" / "variances.csv").read_text(encoding="utf-8").splitlines() == [
        "kind,order,sitoo_orderid,field,magento,sitoo,difference,magento_status,sitoo_state,note"
    ]


def test_current_month_says_it_is_not_final(sandbox):
    seed(sandbox)
    today = datetime.now(UTC)
    data = sandbox.run_json("reconcile", "--from", today.strftime("%Y-%m-01"), "--to", today.strftime("%Y-%m-%d"), check_code=0)
    assert data["report"]["period"]["final"] is False
    assert any("Not final yet" in note for note in data["report"]["notes"])


def test_bad_month_is_a_usage_error(sandbox):
    result = sandbox.run("reconcile", "--month", "2026-13")
    assert result.returncode == 2, result.stderr


def html_report(env, tmp_path: Path) -> Path:
    seed_month(env)
    path = tmp_path / "report.html"
    env.run("reconcile", "--month", MONTH, "--html", str(path), check_code=3)
    return path
