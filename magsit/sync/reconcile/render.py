"""Rendering of the reconciliation report: rich tables, CSV per section, a self-contained HTML page.

Nothing here decides anything: it formats ``magsit.sync.reconcile.model.Report`` (or its ``as_dict()``
form, which is what ``--json`` prints). Money is printed as plain ``Decimal`` strings ("1234.50"):
no thousands separators, no currency symbols, so a spreadsheet reads them as numbers.
"""

from __future__ import annotations

import html
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.table import Table
from rich.text import Text

from magsit.report import line
from magsit.sync.reconcile.model import SECTION_COLUMNS, SECTION_TITLES, Report
from magsit.tabular import Section, readable, write_csv_dir

MONEY_KEYS = frozenset(
    {"magento", "sitoo", "difference", "gross", "drift", "sitoo_available", "magento_quantity", "magento_web", "sitoo_web", "sitoo_pos"}
    | {k for k in SECTION_COLUMNS["stores"] if k.endswith(("gross", "net"))}
)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _as_dict(report: Report | dict[str, Any]) -> dict[str, Any]:
    return report.as_dict() if isinstance(report, Report) else report


# -- CSV -------------------------------------------------------------------------------------------
def write_csv(report: Report | dict[str, Any], directory: str | Path) -> list[Path]:
    """One UTF-8 CSV per section (header row always present, even with no rows), plus period.csv.

    Written by ``magsit.tabular`` (atomic, spreadsheet formulas neutralised) with reconcile's own
    cell format (``cell``: yes/no, plain decimals) and no BOM: the files' bytes stay what finance's
    scripts read.
    """
    data = _as_dict(report)
    sections = [
        Section(name, name, [{c: cell(row.get(c)) for c in columns} for row in data[name]], columns=list(columns))
        for name, columns in SECTION_COLUMNS.items()
    ]
    period = [{"key": key, "value": cell(value)} for key, value in data["period"].items()]
    period += [
        {"key": "tolerance", "value": cell(data["tolerance"])},
        {"key": "matched_web_orders", "value": cell(data["matched_web_orders"])},
        {"key": "variance_count", "value": cell(data["variance_count"])},
    ]
    period += [{"key": "note", "value": note} for note in data["notes"]]
    sections.append(Section("period", "period", period, columns=["key", "value"]))
    return write_csv_dir(directory, sections, bom=False)


# -- HTML ------------------------------------------------------------------------------------------
CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d6dbe4;padding-bottom:4px}
.meta{color:#5b6475;font-size:13px;margin-bottom:12px}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-size:14px}
.ok{background:#e7f6ec;border:1px solid #9bd3ad}.warn{background:#fff4e0;border:1px solid #f0c36d}.bad{background:#fdecec;border:1px solid #ef9a9a}
table{border-collapse:collapse;font-size:13px;margin:6px 0 4px;min-width:40%}
th,td{border:1px solid #d6dbe4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.var td{background:#fffafa}.empty{color:#5b6475;font-style:italic;font-size:13px}
.legend span{display:inline-block;margin-right:16px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
ul.notes{font-size:13px;color:#3b4354}
@media print{body{margin:8mm}h2{break-after:avoid}}
"""
SERIES = (("magento_web", "Magento web orders", "#3b6fd4"), ("sitoo_web", "Sitoo web orders", "#e08a1e"), ("sitoo_pos", "Sitoo POS (net of refunds)", "#2f9e6a"))


# Stock quantities are whole units in both systems: "5", not "5.000".
QUANTITY_COLUMNS = {"stock_drift": {"sitoo_available", "magento_quantity", "drift"}}
HEADINGS = {"difference": "difference (Sitoo − Magento)"}


def _heading(column: str) -> str:
    return HEADINGS.get(column, column.replace("_", " "))


def _html_cell(name: str, column: str, value: Any) -> str:
    if column in QUANTITY_COLUMNS.get(name, ()) and isinstance(value, Decimal) and value == value.to_integral_value():
        return str(value.to_integral_value())
    if column == "kind" and isinstance(value, str):
        return readable(value)
    return cell(value)


def _table(name: str, rows: list[dict[str, Any]]) -> str:
    columns = SECTION_COLUMNS[name]
    if not rows:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{html.escape(_heading(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cls = ' class="var"' if name == "variances" else ""
        tds = []
        for c in columns:
            value = row.get(c)
            num = isinstance(value, Decimal | int) and not isinstance(value, bool)
            tds.append(f'<td{" class=num" if num else ""}>{html.escape(_html_cell(name, c, value))}</td>')
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return f'<table id="{name}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def nice_step(span: Decimal, ticks: int = 5) -> Decimal:
    """A round tick step (1, 2, 2.5 or 5 × 10^n) giving about ``ticks`` gridlines over ``span``."""
    raw = span / ticks if span > 0 else Decimal(1)
    magnitude = Decimal(10) ** (raw.adjusted())
    for factor in (1, 2, Decimal("2.5"), 5, 10):
        if raw <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10


def _round_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding="ROUND_CEILING") * step


def _tick(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def svg_chart(daily: list[dict[str, Any]], width: int = 960, height: int = 300) -> str:
    """Grouped bars per day and side, inline SVG (no script, no external asset)."""
    left, right, top, bottom = 70, 10, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [Decimal(str(row.get(k) or 0)) for row in daily for k, _, _ in SERIES]
    step = nice_step(max([v for v in values if v > 0] or [Decimal(1)]) - min([v for v in values if v < 0] or [Decimal(0)]))
    high = _round_up(max([v for v in values if v > 0] or [Decimal(1)]), step)
    low = -_round_up(-min([v for v in values if v < 0] or [Decimal(0)]), step)
    span = high - low or Decimal(1)

    def y(value: Decimal) -> float:
        return top + float((high - value) / span) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Daily totals per side" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    value = low
    while value <= high:
        yy = y(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 3:.1f}" text-anchor="end" fill="#5b6475">{_tick(value)}</text>')
        value += step
    zero = y(Decimal(0))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#8a93a5"/>')
    n = max(len(daily), 1)
    slot = plot_w / n
    bar = max(slot * 0.8 / len(SERIES), 1.0)
    for d, row in enumerate(daily):
        x0 = left + d * slot + slot * 0.1
        for s, (key, label, colour) in enumerate(SERIES):
            value = Decimal(str(row.get(key) or 0))
            if not value:
                continue
            y1, y2 = sorted((y(value), zero))
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{y1:.1f}" width="{bar:.1f}" height="{max(y2 - y1, 0.5):.1f}" fill="{colour}">'
                f"<title>{html.escape(str(row['date']))} {html.escape(label)}: {html.escape(cell(value))}</title></rect>"
            )
        if n <= 31 or d % max(n // 31, 1) == 0:
            parts.append(
                f'<text x="{left + d * slot + slot / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" fill="#5b6475">'
                f"{html.escape(str(row['date'])[8:10])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def local_time(text: str, timezone: str) -> str:
    """An ISO timestamp as "2026-11-08 00:00" in the shop's timezone (finance thinks in local dates)."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, ZoneInfoNotFoundError):
        return str(text)


def report_notes(data: dict[str, Any]) -> list[str]:
    """Notes for people; the "not final" one is the report's banner already (one banner, not two)."""
    return [note for note in data["notes"] if not note.startswith("Not final yet")]


def render_html(report: Report | dict[str, Any]) -> str:
    data = _as_dict(report)
    period = data["period"]
    count = data["variance_count"]
    title = f"Sales reconciliation {period['label']}: Magento web shop and Sitoo POS"
    currency = period.get("currency") or "the shop's base currency"
    if count:
        banner = f'<div class="banner bad"><b>{count} variance(s)</b> beyond the tolerance of {html.escape(cell(data["tolerance"]))}.</div>'
    else:
        banner = f'<div class="banner ok"><b>Everything matches</b> within the tolerance of {html.escape(cell(data["tolerance"]))}.</div>'
    if not period["final"]:
        banner += (
            f'<div class="banner warn"><b>Not final yet.</b> Offline tills may still upload sales of this period '
            f"until {html.escape(local_time(period['final_after'], period['timezone']))}: run the report again after "
            "that to sign the month off.</div>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report_notes(data))
    legend = "".join(f'<span><i style="background:{c}"></i>{html.escape(label)}</span>' for _, label, c in SERIES)
    sections = []
    for name in ("summary", "variances", "stores", "payments"):
        sections.append(f"<h2>{html.escape(SECTION_TITLES[name])}</h2>{_table(name, data[name])}")
    sections.append(f'<h2>{html.escape(SECTION_TITLES["daily"])}</h2><div class="legend">{legend}</div>{svg_chart(data["daily"])}')
    for name in ("stock_drift", "late_arrivals", "daily"):
        heading = SECTION_TITLES[name] + (", day by day" if name == "daily" else "")
        sections.append(f"<h2>{html.escape(heading)}</h2>{_table(name, data[name])}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<div class="meta">{html.escape(period["from"])} to {html.escape(period["to"])} (dates and times in '
        f'{html.escape(period["timezone"])}) · {data["matched_web_orders"]} web orders matched · '
        f'generated {html.escape(local_time(period["generated_at"], period["timezone"]))}</div>'
        f'<div class="meta">All amounts in {html.escape(currency)}; gross = including VAT. '
        "Difference = Sitoo − Magento: negative when Sitoo has less than Magento, positive when it has more.</div>"
        f'{banner}{"<ul class=notes>" + notes + "</ul>" if notes else ""}{"".join(sections)}</body></html>'
    )


def write_html(report: Report | dict[str, Any], path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(report), encoding="utf-8")
    return target


def write_exports(report: Report, *, csv_dir: str | Path | None = None, html_path: str | Path | None = None) -> list[Path]:
    written: list[Path] = []
    if csv_dir:
        written += write_csv(report, csv_dir)
    if html_path:
        written.append(write_html(report, html_path))
    return written


WIDE = 200


# -- terminal --------------------------------------------------------------------------------------
def render_terminal(report: dict[str, Any], console: Console) -> None:
    if not console.is_terminal and console.width < WIDE:
        # Piped to a file or a pager: do not fold the tables at 80 columns.
        console = Console(file=console.file, width=WIDE, highlight=False, soft_wrap=False, emoji=False)
    period = report["period"]
    console.print(
        line(
            (f"Reconciliation {period['label']}", "bold"),
            f": {period['from']} .. {period['to']} ({period['timezone']}), tolerance {cell(report['tolerance'])}",
        )
    )
    if not period["final"]:
        console.print(line(("Not final yet", "yellow"), f": offline tills may still upload sales until {local_time(period['final_after'], period['timezone'])}."))
    for note in report_notes(report):
        console.print(f"  {note}", markup=False)
    for name in ("summary", "variances", "stores", "payments", "stock_drift", "late_arrivals"):
        rows = report[name]
        if name in ("stock_drift", "late_arrivals") and not rows:
            continue
        if name == "variances" and not rows:
            console.print("[green]No variances: every matched order agrees within the tolerance.[/green]")
            continue
        table = Table(title=SECTION_TITLES[name], header_style="bold", title_justify="left")
        for column in SECTION_COLUMNS[name]:
            right = name != "variances" or column in ("magento", "sitoo", "difference")
            table.add_column(column.replace("_", " "), justify="right" if right and column in MONEY_KEYS else "left", overflow="fold")
        for row in rows:
            table.add_row(*[Text(cell(row.get(c))) for c in SECTION_COLUMNS[name]])
        console.print(table)
