"""Record text is printed as text: every renderer escapes what comes from the data.

A SKU like ``gift[/b]wrap``, a hint naming ``[stock]`` or a message with ``:smile:`` must come out
exactly as typed — never as a style, never a MarkupError, never an emoji.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from magsit.app import App
from magsit.cli import cli
from magsit.commands import audit as audit_command
from magsit.report import render_outcome, rows_table
from magsit.runner import JobResult, RecordFailure, RunOutcome
from magsit.state import StateStore
from magsit.sync.reconcile.render import render_terminal
from tests.configs import write_minimal_config

# Printable text, weighted towards what rich would misread: tags, closing tags, escapes, emoji codes.
TRICKY = st.sampled_from(["[", "]", "/", "\\", "b", "red", "[/b]", "[bold]", "[/]", ":smile:", "[link=x]", "@", "#", " "])
TEXT = st.lists(
    st.one_of(TRICKY, st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"))), min_size=1, max_size=30
).map("".join).filter(lambda s: s.strip() != "")



def squash(text: str) -> str:
    """Output without table borders and line breaks, so a value folded over lines still matches."""
    return re.sub(r"[\s│┃┏┓┗┛┡┩━─┳┻╇╈┼└┘┌┐├┤┬┴╭╮╰╯]+", "", text)


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=400, highlight=False, emoji=False, color_system=None), buffer


def assert_printed(value: str, output: str) -> None:
    assert squash(value) in squash(output), f"{value!r} not printed as typed in:\n{output}"


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_rows_table_and_run_outcome_print_record_text_as_typed(text):
    out, buffer = console()
    out.print(rows_table([{"key": text, "message": f"x {text}"}]))
    outcome = RunOutcome(
        job="push-orders", exit_code=3, status="partial",
        result=JobResult(counts={"failed": 1}, plan=[{"sku": text, "qty": 1}], summary=[f"summary {text}"]),
        failures=[RecordFailure("unknown_sku", "ecommerce", text, f"order has SKU {text}")],
        error=f"error {text}",
    )  # fmt: skip
    render_outcome(outcome, out, dry_run=True)
    output = buffer.getvalue()
    for expected in (text, f"x {text}", f"summary {text}", f"order has SKU {text}", f"error {text}"):
        assert_printed(expected, output)


@settings(max_examples=40, deadline=None)
@given(TEXT)
def test_reconcile_terminal_report_prints_text_as_typed(text):
    out, buffer = console()
    report = {
        "period": {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30", "timezone": "Europe/Stockholm",
                   "final": False, "final_after": "2026-12-08"},
        "tolerance": Decimal("0.01"), "notes": [f"note {text}"],
        "summary": [], "variances": [{"increment_id": text, "field": "grand_total", "magento": Decimal("1"),
                                      "sitoo": Decimal("2"), "difference": Decimal("-1"), "note": text}],
        "stores": [], "payments": [], "stock_drift": [], "late_arrivals": [],
    }  # fmt: skip
    render_terminal(report, out)
    output = buffer.getvalue()
    assert_printed(f"note {text}", output)
    assert_printed(text, output.split("note")[-1])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_audit_findings_print_text_as_typed(capsys, monkeypatch, text):
    monkeypatch.setenv("COLUMNS", "400")  # one row per finding, so a value is never folded
    outcome = RunOutcome(
        job="audit", exit_code=3, status="ok", result=JobResult(details={
            "summary": {"total": 1, "by_kind": [{"kind": "sku_missing_in_sitoo", "owner": "ecommerce", "count": 1}],
                        "by_owner": {"ecommerce": 1}},
            "findings": [{"key": text, "kind": "sku_missing_in_sitoo", "owner": "ecommerce", "message": f"m {text}",
                          "fix": f"fix {text}"}]}),
        failures=[],
    )  # fmt: skip
    capsys.readouterr()
    audit_command.render(outcome, App())
    output = capsys.readouterr().out
    for expected in (text, f"m {text}", f"fix {text}"):
        assert_printed(expected, output)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=TEXT, message=TEXT)
def test_exceptions_list_show_and_status_print_text_as_typed(tmp_path: Path, key, message):
    """Through the real command group: an exception row with any key and message lists and shows."""
    state_path = tmp_path / "markup.db"
    state_path.unlink(missing_ok=True)
    config = write_minimal_config(tmp_path, state_path=state_path)
    state = StateStore(state_path)
    row = state.record_exception("push-orders", "unknown_sku", "ecommerce", key, message, {"sku": key})
    state.close()
    runner = CliRunner()
    for args in (["exceptions", "list"], ["exceptions", "show", str(row["id"])], ["status"]):
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False, env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        if args[0] == "exceptions":
            assert_printed(key, result.output)
            assert_printed(message, result.output)


def test_a_dry_run_counts_only_the_rows_that_write() -> None:
    from magsit.report import plan_table

    rows = [{"action": "ship", "increment_id": "1"}, {"action": "wait", "increment_id": "2", "delivery": "7"},
            {"action": "skip", "increment_id": "3"}]  # fmt: skip
    assert plan_table(rows, "sync-fulfilment").title == "sync-fulfilment: 1 write(s) of 3 row(s), writes first"
