"""Sections of rows -> CSV files in a folder, or one self-contained HTML page.

Shared by the report commands (`audit`, `reconcile`): each has a few named sections (findings,
summary counts, variances …) of flat dict rows. Nothing here decides anything; it only writes.

- ``write_csv_dir(folder, sections)``: one ``<name>.csv`` per section (UTF-8 with BOM so Excel
  reads å/ä/ö, header row even when the section is empty, so a script always finds the file).
  Cells a spreadsheet would run as a formula (``=``, ``@``, ``+``/``-`` that are not numbers) get a
  leading ``'`` — customer e-mails and names reach these files.
- ``render_html(title, sections, summary)`` / ``write_html(path, …)``: one page, inline CSS, no
  scripts, no external links, everything escaped — it can be mailed or attached to a ticket.
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Section:
    """One table: ``name`` is the CSV file stem, ``title`` the heading, ``columns`` the order
    (default: keys of the first row, then any new keys in order of appearance)."""

    name: str
    title: str
    rows: list[Mapping[str, Any]] = field(default_factory=list)
    columns: list[str] | None = None
    note: str = ""

    def column_names(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(str(k) for k in row))
        return list(names)


def cell_text(value: Any) -> str:
    """A value as table text: Decimal as written, dates ISO, nested data as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | set):
        return json.dumps(_plain(value), ensure_ascii=False, sort_keys=isinstance(value, Mapping))
    return str(value)


# Words a reader expects capitalised in a kind label ("sku_missing_in_sitoo" -> "SKU missing in Sitoo").
_LABEL_WORDS = {"sku": "SKU", "skus": "SKUs", "vat": "VAT", "sitoo": "Sitoo", "magento": "Magento", "pos": "POS", "id": "ID"}


def readable(kind: str) -> str:
    """A stable snake_case id as words for a report read by people."""
    words = [_LABEL_WORDS.get(word, word) for word in str(kind).split("_") if word]
    if not words:
        return ""
    return words[0][:1].upper() + words[0][1:] + "".join(" " + word for word in words[1:])


def described(value: Any, *, nested: bool = False) -> str:
    """Nested data as "key: value" lines (what a non-engineer reads instead of JSON); deeper levels
    as "key value, key value"."""
    if isinstance(value, Mapping):
        parts = [f"{str(k).replace('_', ' ')}{' = ' if nested else ': '}{described(v, nested=True)}" for k, v in value.items()]
        return ", ".join(parts) if nested else "\n".join(parts)
    if isinstance(value, list | tuple | set):
        return ", ".join(described(item, nested=True) for item in value)
    return cell_text(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) without mangling plain numbers."""
    if not text:
        return text
    if text[0] in "=@\t\r" or (text[0] in "+-" and not _NUMBER.match(text)):
        return "'" + text
    return text


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp makes the file 0600; a report is for people (finance reads the folder through its
        # group): the mode any new file gets under the process's umask, as a plain write would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def section_csv(section: Section) -> str:
    columns = section.column_names()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in section.rows:
        writer.writerow([csv_safe(cell_text(row.get(c))) for c in columns])
    return buffer.getvalue()


def write_csv_dir(directory: str | Path, sections: Iterable[Section], *, bom: bool = True) -> list[Path]:
    """One ``<name>.csv`` per section in ``directory`` (created if missing); returns the paths.

    ``bom=False`` for files whose readers already expect plain UTF-8 (reconcile's CSVs are read by
    finance scripts with ``encoding="utf-8"``; a BOM would become part of the first header).
    """
    folder = Path(directory)
    written = []
    for section in sections:
        stem = _SAFE_NAME.sub("_", section.name).strip("._") or "section"
        path = folder / f"{stem}.csv"
        _atomic_write(path, (("\ufeff" if bom else "") + section_csv(section)).encode("utf-8"))
        written.append(path)
    return written


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.meta{color:#666;font-size:.85rem}.note{color:#555;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}td{white-space:pre-line}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
""".strip()


def _html_table(section: Section) -> str:
    columns = section.column_names()
    if not section.rows:
        return '<p class="note">None.</p>'
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for row in section.rows:
        cells = []
        for column in columns:
            value = row.get(column)
            text = cell_text(value)
            numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(
    title: str,
    sections: Sequence[Section],
    summary: Sequence[tuple[str, Any]] = (),
    generated_at: datetime | None = None,
    subtitle: str = "",
) -> str:
    """A complete HTML document: title, a key/value summary, then one table per section."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="meta">{html.escape(subtitle)}</p>')
    if generated_at is not None:
        moment = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        parts.append(f'<p class="meta">Generated {html.escape(moment)}</p>')
    if summary:
        items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(cell_text(v))}</dd>" for k, v in summary)
        parts.append(f"<dl>{items}</dl>")
    for section in sections:
        parts.append(f'<h2 id="{html.escape(section.name)}">{html.escape(section.title)} ({len(section.rows)})</h2>')
        if section.note:
            parts.append(f'<p class="note">{html.escape(section.note)}</p>')
        parts.append(_html_table(section))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(
    path: str | Path,
    title: str,
    sections: Sequence[Section],
    summary: Sequence[tuple[str, Any]] = (),
    generated_at: datetime | None = None,
    subtitle: str = "",
) -> Path:
    target = Path(path)
    _atomic_write(target, render_html(title, sections, summary, generated_at, subtitle).encode("utf-8"))
    return target


__all__ = [
    "Section", "cell_text", "csv_safe", "described", "readable", "render_html", "section_csv", "write_csv_dir", "write_html",
]  # fmt: skip
