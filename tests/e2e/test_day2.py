"""Day-2 operations (issue 17) through the real CLI against the emulators: output that never
breaks, exceptions that obey, errors that say what to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

ODD_SKU = "gift[/b]wrap"


def old(minutes=10):
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_sku_with_markup_is_printed_as_typed_and_exceptions_still_list(sandbox):
    sandbox.sitoo.state.add_warehouse("Central")
    sandbox.magento.state.add_product(ODD_SKU, "Gift wrap", 100)
    sandbox.magento.state.place_order([(ODD_SKU, 1)], guest=True, customer_email="a@example.com", created_at=old())
    sandbox.configure(orders={"retry_backoff_minutes": 0}, stock={"sources": {"1": "default", "7": "nowhere[x]"}})
    run = sandbox.run("push-orders", check_code=3)
    assert ODD_SKU in run.stdout and "internal error" not in run.stderr
    listed = sandbox.run("exceptions", "list", check_code=0)
    assert "unknown_sku" in listed.stdout and "internal error" not in listed.stderr
    shown = sandbox.run("exceptions", "show", "1", check_code=0)
    assert f"has SKU {ODD_SKU} which" in " ".join(shown.stdout.split())
    # Text in brackets in a check's detail line is kept, not swallowed as a style tag.
    check = sandbox.run("check")
    assert "[stock].sources" in check.stdout and "nowhere[x]" in check.stdout


def exception_row(env, key):
    from magsit.state import StateStore

    state = StateStore(env.state_path)
    try:
        return state.find_exceptions(key)[0]
    finally:
        state.close()


def sitoo_calls_about(env, *words):
    return [c for c in env.sitoo.control.calls() if any(w in f"{c.path} {c.query} {c.body}" for w in words)]


def test_exception_life_cycle_backoff_retry_ignore_through_the_cli(sandbox):
    """open -> backs off (no API call while waiting) -> `retry` makes it due now and the pause grows
    -> `ignore` holds it (no API call, clean exit) -> `retry` brings it back -> goes through, resolved."""
    s, m = sandbox.sitoo.state, sandbox.magento.state
    s.add_warehouse("Central")
    s.add_product("TENT-1", "Tent", "125.00")
    s.set_stock(1, "TENT-1", 5)
    m.add_product("TENT-1", "Tent", 100)
    m.add_product("NEW-9", "New", 100)
    m.place_order([("TENT-1", 1)], guest=True, customer_email="a@example.com", created_at=old())
    bad = m.place_order([("NEW-9", 1)], guest=True, customer_email="b@example.com", created_at=old())
    key = bad["increment_id"]
    sandbox.configure(orders={"retry_backoff_minutes": 30})

    sandbox.run("push-orders", check_code=3)
    first = exception_row(sandbox, key)
    assert (first["status"], first["attempts"]) == ("open", 1) and first["next_retry_at"]

    # Inside the look-back window but backing off: no Sitoo call about that order, attempts unchanged.
    sandbox.sitoo.control.clear_log()
    sandbox.run("push-orders", check_code=0)
    assert sitoo_calls_about(sandbox, key, "NEW-9") == []
    assert exception_row(sandbox, key)["attempts"] == 1

    # `retry` by record key: due now; it fails again, attempts 2, the pause doubles.
    assert "due on the next run" in sandbox.run("exceptions", "retry", key, check_code=0).stdout
    sandbox.run("push-orders", check_code=3)
    second = exception_row(sandbox, key)
    assert second["attempts"] == 2 and second["next_retry_at"] > first["next_retry_at"]

    # `ignore` (by id): the next runs make no call about it and exit clean; the row stays ignored.
    sandbox.run("exceptions", "ignore", str(second["id"]), check_code=0)
    sandbox.run("exceptions", "retry", key, check_code=0)  # due again ...
    sandbox.run("exceptions", "ignore", key, check_code=0)  # ... and ignored again: ignore wins
    sandbox.sitoo.control.clear_log()
    run = sandbox.run_json("push-orders", check_code=0)
    assert run["failures"] == [] and sitoo_calls_about(sandbox, key, "NEW-9") == []
    assert "ignored" in run["details"]["skipped"][key]  # says why, not "backoff"
    assert exception_row(sandbox, key)["status"] == "ignored"
    assert "ignored" in sandbox.run("exceptions", "list", "--status", "ignored", check_code=0).stdout

    # Fixed in Sitoo, then `retry`: the order goes through and its exception resolves itself.
    s.add_product("NEW-9", "New", "125.00")
    s.set_stock(1, "NEW-9", 5)
    sandbox.run("exceptions", "retry", key, check_code=0)
    sandbox.run("push-orders", check_code=0)
    assert exception_row(sandbox, key)["status"] == "resolved"
    assert any(o["externalid"] == key for o in s.orders.values())


def test_resolved_by_hand_order_is_not_pushed_again(sandbox):
    s, m = sandbox.sitoo.state, sandbox.magento.state
    s.add_warehouse("Central")
    m.add_product("NEW-9", "New", 100)
    bad = m.place_order([("NEW-9", 1)], guest=True, customer_email="b@example.com", created_at=old())
    key = bad["increment_id"]
    sandbox.configure(orders={"retry_backoff_minutes": 0})
    run = sandbox.run("push-orders", check_code=3)
    # The run's table names the exception id to use with `exceptions show/retry/ignore`.
    assert re.search(rf"│\s*{exception_row(sandbox, key)['id']}\s*│\s*{key}\s*│", run.stdout), run.stdout
    sandbox.run("exceptions", "resolve", key, check_code=0)  # handled by hand (e.g. typed into the till)
    s.add_product("NEW-9", "New", "125.00")
    sandbox.run("push-orders", check_code=0)
    assert not any(o["externalid"] == key for o in s.orders.values())
    shown = sandbox.run("exceptions", "show", key, check_code=0).stdout
    assert "status: resolved" in shown and "resolved_by: person" in shown


def test_ignored_stock_sku_is_left_alone_and_the_run_is_clean(sandbox):
    s, m = sandbox.sitoo.state, sandbox.magento.state
    s.add_warehouse("Central")
    for sku in ("TENT-1", "GONE-1"):
        s.add_product(sku, sku, "10.00")
        s.set_stock(1, sku, 4)
    m.add_product("TENT-1", "Tent", 8)
    sandbox.run("sync-stock", "--full", check_code=3)
    row = exception_row(sandbox, "GONE-1")
    sandbox.run("exceptions", "ignore", "GONE-1", check_code=0)
    s.set_stock(1, "GONE-1", 9)
    s.set_stock(1, "TENT-1", 7)
    result = sandbox.run_json("sync-stock", check_code=0)
    assert result["failures"] == [] and result["counts"].get("held", 0) >= 1
    assert exception_row(sandbox, "GONE-1")["attempts"] == row["attempts"]


def test_words_match_the_exit_code_and_each_failure_is_printed_once(sandbox):
    from tests.e2e.test_fulfilment import pushed

    order, sitoo = pushed(sandbox, [("TENT-1", 1)])
    sandbox.sitoo.state.deliver(sitoo["orderid"], ref="T1")
    run = sandbox.run("-v", "sync-fulfilment", check_code=0)
    assert f"shipped in Magento: {order['increment_id']}" in run.stdout
    # -v: the flow's start and result are logged, with ISO UTC times (not a locale date).
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+INFO\s+sync-fulfilment: run \d+ started", run.stderr), run.stderr

    sandbox.magento.state.add_product("NOPE-1", "Not in Sitoo", 10)
    bad = sandbox.magento.state.place_order([("NOPE-1", 1)], customer_email="y@example.com", created_at=old())
    run = sandbox.run("push-orders", check_code=3)
    output = run.stdout + run.stderr
    assert output.count("which does not exist in Sitoo") == 1, output
    assert "push-orders: done, some records failed (exit 3)" in run.stdout
    assert bad["increment_id"] in run.stdout

    # audit with findings exits 3: its words say so instead of "ok (exit 3)".
    audit = sandbox.run("audit", check_code=3)
    assert "audit: done, with findings (exit 3)" in audit.stdout and "ok (exit 3)" not in audit.stdout

    customers = sandbox.run("sync-customers", check_code=0)
    assert "0 customer(s) changed" in customers.stdout

    status = sandbox.run("status", check_code=0).stdout
    assert not re.search(r"\b(True|False|None)\b", status), status


def test_dry_run_shows_plain_quantities_writes_first_and_their_count(sandbox):
    s, m = sandbox.sitoo.state, sandbox.magento.state
    s.add_warehouse("Central")
    for sku, qty in (("A-1", 5), ("B-2", 20), ("C-3", 100)):  # A-1 already right, 20 and 100 used to print 2E+1, 1E+2
        s.add_product(sku, sku, "10.00")
        s.set_stock(1, sku, qty)
        m.add_product(sku, sku, 8)
        m.set_source_item(sku, "default", 5)
    data = sandbox.run_json("sync-stock", "--full", "--dry-run", check_code=0)
    assert {row["sku"]: row["qty"] for row in data["plan"]} == {"A-1": "5", "B-2": "20", "C-3": "100"}
    text = sandbox.run("sync-stock", "--full", "--dry-run", check_code=0).stdout
    assert "E+" not in text and "2 write(s) of 3 row(s)" in text
    assert text.index("B-2") < text.index("A-1") and text.index("C-3") < text.index("A-1")
    assert float(m.source_items[("default", "b-2")]["quantity"]) == 5  # nothing written


def test_a_dry_run_says_what_would_fail_and_writes_no_report_file(sandbox, tmp_path):
    sandbox.magento.state.add_product("NOPE-1", "Not in Sitoo", 10)
    bad = sandbox.magento.state.place_order([("NOPE-1", 1)], customer_email="y@example.com", created_at=old())
    run = sandbox.run("--dry-run", "push-orders", check_code=3)
    # Nothing was recorded: the words must not send the reader to an empty `exceptions list`.
    assert "push-orders: planned, some records would fail (dry run, nothing written) (exit 3)" in run.stdout
    assert "would fail 1" in run.stdout and "records that would fail (dry run: no exception recorded)" in run.stdout
    assert "exceptions list" not in run.stdout and bad["increment_id"] in run.stdout
    assert sandbox.run_json("exceptions", "list", check_code=0) == []

    audit = sandbox.run("--dry-run", "audit", "--csv", str(tmp_path / "csv"), "--html", str(tmp_path / "a.html"), check_code=3)
    assert "audit: done, with findings (dry run, nothing written) (exit 3)" in audit.stdout
    assert f"would write {tmp_path / 'a.html'}" in audit.stderr
    assert not (tmp_path / "csv").exists() and not (tmp_path / "a.html").exists()


def test_rejected_token_says_what_is_likely_wrong(sandbox):
    sandbox.configure(magento={"token": "revoked-token"})
    text = " ".join(sandbox.run("check", check_code=1).stdout.split())
    assert "token/password is wrong or revoked" in text and "ACL" in text


BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def screenshot(page, png):
    """The page in headless Chromium (scripts/screenshot-report.sh): a real browser renders it."""
    from tests.e2e.conftest import REPO
    from tests.e2e.test_reconcile_html import png_size

    result = subprocess.run([str(REPO / "scripts" / "screenshot-report.sh"), str(page), str(png), "1200", "1600"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = png.read_bytes()
    assert png_size(data) == (1200, 1600) and len(data) > 20_000  # not blank


def test_reports_for_non_engineers_read_as_reports(sandbox, tmp_path):
    from tests.e2e.test_reconcile import MONTH, seed_month

    seed_month(sandbox)
    reconcile_page, audit_page = tmp_path / "reconcile.html", tmp_path / "audit.html"
    sandbox.run("reconcile", "--month", MONTH, "--html", str(reconcile_page), check_code=3)
    sandbox.run("audit", "--html", str(audit_page), "--csv", str(tmp_path / "audit-csv"), check_code=3)
    # readable by the group finance reads the report folder with (the umask decides, not 0600)
    mask = os.umask(0o022)
    os.umask(mask)
    for written in (reconcile_page, audit_page, tmp_path / "audit-csv" / "findings.csv"):
        assert written.stat().st_mode & 0o777 == 0o666 & ~mask, written

    page = reconcile_page.read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page)
    assert f"All amounts in {sandbox.magento.state.currency}" in text
    assert "Difference = Sitoo − Magento: negative when Sitoo has less" in text
    assert "Europe/Stockholm" in text and "T22:00:00Z" not in text  # local dates, not the UTC bounds
    assert "`" not in text and "magsit exceptions list" not in text and "push-orders" not in text
    assert "Missing in Sitoo" in text and "missing_in_sitoo" not in text
    ticks = [int(t) for t in re.findall(r'text-anchor="end" fill="#5b6475">(-?\d+)</text>', page)]
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and str(steps.pop()).rstrip("0") in ("1", "2", "25", "5")  # round ticks
    drift = page.split('<table id="stock_drift">')[1].split("</table>")[0]
    assert ".000" not in drift  # stock in whole units

    audit = re.sub(r"<[^>]+>", " ", audit_page.read_text(encoding="utf-8").split("<body>")[1])
    assert "finding(s) to act on" in audit and "ok" not in audit.split("Result")[1].split("Who acts")[0]
    assert "SKU missing in Sitoo" in audit and "sku_missing_in_sitoo" not in audit
    assert "Magento shop 127.0.0.1" in audit and "Checked" in audit
    assert "{" not in audit and "&quot;" not in audit  # the two sides' values as words, not raw JSON

    if BROWSER is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH: browser screenshots not checked")
    screenshot(reconcile_page, tmp_path / "reconcile.png")
    screenshot(audit_page, tmp_path / "audit.png")


def test_not_final_month_has_one_banner(sandbox, tmp_path):
    from magsit.sync.reconcile.render import render_html

    data = {"period": {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30", "timezone": "Europe/Stockholm",
                       "final": False, "final_after": "2026-12-08T00:00:00+01:00", "generated_at": "2026-12-03T08:00:00Z",
                       "currency": "SEK"},
            "tolerance": Decimal("0.01"), "variance_count": 0, "matched_web_orders": 0,
            "notes": ["Not final yet: offline tills may still upload sales of this period until 2026-12-08 (7 days grace)."],
            **{name: [] for name in ("summary", "variances", "stores", "payments", "stock_drift", "late_arrivals", "daily")}}  # fmt: skip
    page = render_html(data)
    assert page.count("Not final yet") == 1 and "2026-12-08 00:00" in page and "generated 2026-12-03 09:00" in page


def test_demo_reads_cleanly_start_to_end(tmp_path):
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MAGSIT_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "magsit", "demo"], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**env, "COLUMNS": "200"})  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 violation(s)" in output and "Traceback" not in output and "internal error" not in output
    assert not re.search(r"\b(True|False|None)\b", output), output
    assert "ok (exit 3)" not in output and "NOT FINAL" not in output
    assert output.lower().count("not final") <= 1  # said once, not as a line and again as a note
    assert "2E+" not in output and "1E+" not in output
