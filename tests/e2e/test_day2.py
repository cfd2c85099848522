"""Day-2 operations (issue 17) through the real CLI against the emulators: output that never
breaks, exceptions that obey, errors that say what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
