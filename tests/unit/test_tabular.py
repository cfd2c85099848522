"""magsit.tabular: CSV folder and self-contained HTML for report commands."""

from __future__ import annotations

import csv
from decimal import Decimal

from magsit.tabular import Section, csv_safe, render_html, write_csv_dir, write_html


def test_csv_dir_one_file_per_section_with_header_even_when_empty(tmp_path):
    sections = [
        Section("findings", "Findings", [{"kind": "a", "value": Decimal("1.50")}, {"kind": "b", "extra": {"x": 1}}]),
        Section("empty one", "Nothing", [], columns=["kind", "owner"]),
    ]
    paths = write_csv_dir(tmp_path / "out", sections)
    assert [p.name for p in paths] == ["findings.csv", "empty_one.csv"]
    with paths[0].open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["kind", "value", "extra"], ["a", "1.50", ""], ["b", "", '{"x": 1}']]
    assert paths[1].read_text(encoding="utf-8-sig").strip() == "kind,owner"


def test_formula_cells_are_neutralised_but_numbers_kept():
    assert csv_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)"
    assert csv_safe("+46 70 1") == "'+46 70 1"
    assert csv_safe("-12.50") == "-12.50"
    assert csv_safe("A-1") == "A-1"


def test_html_is_escaped_and_self_contained(tmp_path):
    page = render_html("Audit <1>", [Section("f", "Findings", [{"sku": "<script>alert(1)</script>", "n": 3}])],
                       summary=[("findings", 1)])
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<link" not in page and "src=" not in page and "<script" not in page
    assert '<td class="num">3</td>' in page and "Findings (1)" in page
    path = write_html(tmp_path / "r.html", "T", [Section("f", "Empty", [])])
    assert "None." in path.read_text(encoding="utf-8")
