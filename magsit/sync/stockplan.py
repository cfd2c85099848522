"""sync-stock planning: Sitoo warehouse levels + in-flight units + buffers -> MSI source-item writes.

Pure functions only (no I/O): `plan(snapshot, baseline, levels)` is property-tested with
hypothesis. Garbage from either side (None, text, NaN, huge numbers, odd SKUs) never raises: it
becomes a `Problem` that the flow turns into an exception row, and the rest of the plan goes on.

The formula (DESIGN.md "Stock: what Magento should show"):

    sellable = max(0, sitoo_available − buffer);  if sellable <= floor: sellable = 0
    qty = in_flight + sellable;  status = qty > 0

The buffer and floor hold back units from *sale*, never units already sold: Magento deducts a
shipment from the source it ships from (MSI SourceDeductionService refuses when the source holds
fewer units, magento-api.md §6.4/§9), so the units of pushed, unshipped web orders always stay on
the source. ``sitoo_available`` = Σ over the source's warehouses of max(0, available_w)
(``warehouse_terms``): Sitoo's available already excludes the units it holds for an in-flight web
order (reserved, or delivered and not yet shipped in Magento), which is why they are added back as
``in_flight``. Units Sitoo does *not* hold (it shows fewer reserved than magsit has in flight:
no reservation for API orders, a lapsed ``datereserved``) are still inside its available: they
are taken out of it before the buffer, so they are neither sold twice nor counted twice.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from magsit.config import StockSettings
from magsit.errors import ConfigError, Owner, RecordError
from magsit.values import plain

# inventory_source_item.quantity is DECIMAL(12,4): larger values cannot be stored.
MAX_QUANTITY = Decimal("99999999.9999")
QUANTUM = Decimal("0.0001")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
MAX_SKU_LENGTH = 64  # inventory_source_item.sku / catalog_product_entity.sku are varchar(64)

Key = tuple[str, str]  # (sku, source_code)
Baseline = tuple[Decimal, int]  # (quantity, status)


@dataclass
class Problem:
    kind: str
    owner: Owner
    key: str
    message: str
    payload: dict[str, Any] = field(default_factory=dict)

    def as_error(self) -> RecordError:
        """The problem as the record failure a dry run lists (flow.Preview.problems)."""
        return RecordError(self.kind, self.owner, self.key, self.message, self.payload or None)


@dataclass
class StockSnapshot:
    """What pull() read. ``items``: (sku, source) -> {sitoo warehouse id: raw decimalavailable};
    ``in_flight``: (sku, source) -> {sitoo warehouse id: units of open pushed web orders reserved there}.

    ``magento`` holds Magento's actual source items when they were read (``--full`` / ``--sku``):
    they then replace the pushed_stock baseline, which is how hand-made drift gets healed.

    ``reserved``: (sku, source) -> {sitoo warehouse id: raw decimalreserved} of the keys with units
    in flight; None when not read (then every in-flight unit counts as held by Sitoo).
    """

    items: dict[Key, dict[str, Any]] = field(default_factory=dict)
    in_flight: dict[Key, dict[str, Decimal]] = field(default_factory=dict)
    magento: dict[Key, Baseline] | None = None
    reserved: dict[Key, dict[str, Any]] | None = None


@dataclass(slots=True)  # one per (sku, source): 200k of them on a big --full run
class StockRow:
    sku: str
    source: str
    sitoo_available: Decimal
    in_flight: Decimal
    buffer: Decimal
    floor: Decimal
    qty: Decimal
    status: int
    baseline: Baseline | None
    write: bool

    @property
    def key(self) -> str:
        return row_key(self.sku, self.source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "source": self.source,
            "sitoo_available": plain(self.sitoo_available),
            "in_flight": plain(self.in_flight),
            "buffer": plain(self.buffer),
            "floor": plain(self.floor),
            "qty": plain(self.qty),
            "status": self.status,
            "baseline": None if self.baseline is None else {"qty": plain(self.baseline[0]), "status": self.baseline[1]},
            "write": self.write,
        }


@dataclass
class StockPlan:
    rows: list[StockRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Warehouse items read cleanly this time: their negative_stock exception (if any) resolves.
    clean_keys: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[StockRow]:
        return [row for row in self.rows if row.write]


def row_key(sku: str, source: str) -> str:
    return f"{sku}@{source}"


def warehouse_key(sku: str, warehouse: str) -> str:
    return f"{sku}@warehouse {warehouse}"


# -- buffers and floors ---------------------------------------------------------------------------
Override = tuple[Decimal | None, Decimal | None]  # (buffer, floor); None = not overridden
Overrides = dict[tuple[str, str], Override]  # (sku, source_code or "" for every source)


@dataclass
class Levels:
    """Buffer and floor per (sku, source): per-SKU CSV row > per-SKU any-source row > per source > global."""

    settings: StockSettings
    overrides: Overrides = field(default_factory=dict)

    def __call__(self, sku: str, source: str) -> tuple[Decimal, Decimal]:
        buffer = self.settings.source_buffer.get(source, self.settings.buffer)
        floor = self.settings.source_floor.get(source, self.settings.floor)
        if not self.overrides:  # no CSV: 200k rows of a --full run skip the two lookups
            return buffer, floor
        for key in ((sku, ""), (sku, source)):  # the more specific row wins
            override = self.overrides.get(key)
            if override:
                buffer = override[0] if override[0] is not None else buffer
                floor = override[1] if override[1] is not None else floor
        return buffer, floor


def _level(text: str, column: str, where: str) -> Decimal | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{where}: {column} must be a number >= 0, not {text!r}")
    return value


def load_overrides(path: Path | None) -> Overrides:
    """Read the per-SKU override CSV (columns sku,source_code,buffer,floor). Any bad line is a ConfigError."""
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"[stock] overrides_csv {path}: cannot be read: {exc.strerror}") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    expected = ["sku", "source_code", "buffer", "floor"]
    if header is None or [h.strip().lower() for h in header] != expected:
        raise ConfigError(f"{path} line 1: the header must be exactly: {','.join(expected)} (got {header!r})")
    out: Overrides = {}
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path} line {number}"
        if len(row) != 4:
            raise ConfigError(f"{where}: expected 4 columns (sku,source_code,buffer,floor), got {len(row)}")
        sku, source = row[0].strip(), row[1].strip()
        if not sku:
            raise ConfigError(f"{where}: the sku is empty")
        buffer, floor = _level(row[2], "buffer", where), _level(row[3], "floor", where)
        if (sku, source) in out:
            raise ConfigError(f"{where}: sku {sku!r} source {source or '(every source)'!r} is listed twice")
        out[(sku, source)] = (buffer, floor)
    return out


# -- validation of what the APIs sent -------------------------------------------------------------
def sku_problem(sku: Any) -> str | None:
    """Why Magento cannot take this SKU as a source item, or None if it can."""
    if not isinstance(sku, str) or not sku:
        return "the SKU is empty"
    if sku != sku.strip():
        return "the SKU has leading or trailing spaces (Magento rejects it)"
    if len(sku) > MAX_SKU_LENGTH:
        return f"the SKU is longer than {MAX_SKU_LENGTH} characters (Magento cannot store it)"
    if _CONTROL.search(sku):
        return "the SKU contains control characters"
    return None


def parse_quantity(raw: Any) -> Decimal | None:
    """A Sitoo decimal string ("5.000") or number -> Decimal; None when it is not a finite number."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(str(raw))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return value if value.is_finite() else None


def printable(sku: Any) -> str:
    text = sku if isinstance(sku, str) else repr(sku)
    return text[:100] if text else "(empty SKU)"


# -- the plan -------------------------------------------------------------------------------------
def target(available: Decimal, in_flight: Decimal, buffer: Decimal, floor: Decimal) -> tuple[Decimal, int]:
    """DESIGN's formula: in_flight + (max(0, available − buffer), or 0 at or below the floor)."""
    sellable = max(Decimal(0), available - buffer)
    if sellable <= floor:
        sellable = Decimal(0)
    qty = max(Decimal(0), in_flight) + sellable
    qty = qty.quantize(QUANTUM).normalize() if qty else Decimal(0)
    return qty, 1 if qty > 0 else 0


def unheld(in_flight: Decimal, reserved: Decimal | None) -> Decimal:
    """In-flight units of one warehouse that Sitoo does not show as reserved (0 when the reserved
    level was not read). sitoo-api.md §5 "Reservations": never add back more units than Sitoo shows
    reserved. Reserved units of other (non-magsit) orders count as held: an overestimate that
    cannot be told apart from here."""
    if reserved is None:
        return Decimal(0)
    return min(in_flight, max(Decimal(0), in_flight - max(Decimal(0), reserved)))


def warehouse_terms(
    available: Mapping[str, Decimal],
    in_flight: Mapping[str, Decimal],
    reserved: Mapping[str, Decimal | None] | None = None,
) -> tuple[Decimal, Decimal, dict[str, Decimal]]:
    """Combine per-warehouse available and in-flight units into DESIGN's two terms.

    Returns (available, in_flight, short): ``available`` = Σ max(0, available_w − unheld_w), where
    unheld_w are the in-flight units Sitoo does not show in ``reserved`` (when given): those are
    still in its available, and they must not be offered for sale again. ``in_flight`` = Σ
    in_flight_w, always whole: Magento still holds those orders and must find their units on the
    source when it ships. ``short`` = {warehouse: available_w + held_w} where that is below 0: more
    sold or reserved than on hand (a miscount or an oversell), not merely the reservation of a
    pushed web order. The one implementation for sync-stock and audit.
    """
    total_available = total_in_flight = Decimal(0)
    short: dict[str, Decimal] = {}
    warehouses = available.keys() | in_flight.keys()
    for warehouse in warehouses if len(warehouses) <= 1 else sorted(warehouses, key=str):
        avail, flight = available.get(warehouse, Decimal(0)), in_flight.get(warehouse, Decimal(0))
        if reserved is not None and flight:
            avail -= unheld(flight, reserved.get(warehouse, Decimal(0)))
        if avail + flight < 0:
            short[warehouse] = avail + flight
        total_available += max(Decimal(0), avail)
        total_in_flight += flight
    return total_available, total_in_flight, short


def plan(
    snapshot: StockSnapshot,
    baseline: Mapping[Key, Baseline],
    levels: Callable[[str, str], tuple[Decimal, Decimal]],
) -> StockPlan:
    """Target quantity/status per (sku, source); a write only where it differs from the baseline.

    ``baseline`` is what magsit last pushed (pushed_stock); when the snapshot carries Magento's own
    values (full run), those win, so a quantity changed by hand in Magento is overwritten.
    """
    result = StockPlan()
    plain = True
    try:
        keys = sorted(snapshot.items)  # plain (str, str) keys: the same order, without a key function
        # 200k keys share ~50k SKUs and a few sources: check the distinct parts, not every key.
        if keys and not all(_plain(part) for part in {k[0] for k in keys} | {k[1] for k in keys}):
            raise TypeError
    except (TypeError, IndexError):
        plain = False
        keys = sorted(snapshot.items, key=lambda k: (printable(k[0]), printable(k[1])))
    memo = _Memo(levels)
    # The common row of a big run (plain key, one warehouse, nothing in flight) is planned inline
    # from a memo keyed by the Sitoo string and the levels (the source, when levels are per source:
    # cheaper to hash than two Decimals); anything else takes _plan_one.
    per_source = memo.source_levels is not None
    items, in_flight = snapshot.items, snapshot.in_flight
    reference = snapshot.magento if snapshot.magento is not None else baseline
    sku_problems, common = memo.sku_problems, memo.common
    add_row, add_clean = result.rows.append, result.clean_keys.append
    for key in keys:
        try:
            per_warehouse = items[key] if plain else None
            if type(per_warehouse) is dict and len(per_warehouse) == 1 and not in_flight.get(key):
                sku, source = key
                why = sku_problems.get(sku, _UNSET)
                if why is _UNSET:
                    why = sku_problems[sku] = sku_problem(sku)
                ((warehouse, raw),) = per_warehouse.items()
                done = None
                if not why and type(raw) is str:
                    row_levels = None if per_source else levels(sku, source)
                    memo_key = (raw, source) if row_levels is None else (raw, *row_levels)
                    done = common.get(memo_key, _UNSET)
                    if done is _UNSET:
                        done = common[memo_key] = _common_row(raw, row_levels or memo.levels_of(sku, source))
                if done is not None:
                    available, flight, buffer, floor, qty, status = done
                    base = reference.get(key)
                    write = base is None or base[0] != qty or int(base[1]) != status
                    add_clean(f"{sku}@warehouse {warehouse}")
                    add_row(StockRow(sku, source, available, flight, buffer, floor, qty, status, base, write))
                    continue
            _plan_one(key, snapshot, baseline, levels, result, memo)
        except Exception as exc:  # a plan must never crash on one record's data
            sku = key[0] if isinstance(key, tuple) and key else key
            result.problems.append(
                Problem(
                    "bad_stock_value",
                    "ops",
                    row_key(printable(sku), printable(key[1] if isinstance(key, tuple) and len(key) > 1 else "")),
                    f"stock of SKU {printable(sku)} could not be computed ({type(exc).__name__}); nothing written for it",
                )
            )
    return result


_UNSET: Any = object()


def _common_row(raw: str, levels: tuple[Decimal, Decimal]) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int] | None:
    """(available, in_flight, buffer, floor, qty, status) of a lone warehouse reporting ``raw``
    with nothing in flight; None when the row needs the full path (not a number, too large,
    negative, unusable levels)."""
    value = parse_quantity(raw)
    if value is None or abs(value) > MAX_QUANTITY:
        return None
    available, in_flight, short = warehouse_terms({"w": value}, {})
    buffer, floor = levels
    if short or type(buffer) is not Decimal or type(floor) is not Decimal or buffer.is_snan() or floor.is_snan():
        return None
    return (available, in_flight, buffer, floor, *target(available, in_flight, buffer, floor))


def _plain(part: Any) -> bool:
    """A SKU or source code that sorts and prints as itself (else the plan sorts by printable())."""
    return isinstance(part, str) and 0 < len(part) <= 100


class _Memo:
    """What repeats across the 200k rows of a big --full plan, computed once per plan. The
    Decimals are immutable, so rows share them (less memory, same values and representations).

    ``sku_problems``: SKU -> sku_problem() (each SKU is in several sources). ``source_levels``:
    source -> (buffer, floor) when no per-SKU overrides exist, else None. ``common``: (Sitoo
    string, source or buffer and floor) -> the whole row of plan()'s inline path, or None where
    that row needs _plan_one. Strings only as keys: 1, 1.0 and True are equal keys yet parse
    differently.
    """

    __slots__ = ("sku_problems", "source_levels", "levels", "common")

    def __init__(self, levels: Callable[[str, str], tuple[Decimal, Decimal]]) -> None:
        self.sku_problems: dict[str, str | None] = {}
        self.common: dict[tuple[Any, ...], tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int] | None] = {}
        self.source_levels: dict[str, tuple[Decimal, Decimal]] | None = (
            {} if isinstance(levels, Levels) and not levels.overrides else None
        )
        self.levels = levels

    def levels_of(self, sku: str, source: str) -> tuple[Decimal, Decimal]:
        if self.source_levels is None:
            return self.levels(sku, source)
        found = self.source_levels.get(source)
        if found is None:
            found = self.source_levels[source] = self.levels(sku, source)
        return found

    def sku_problem(self, sku: Any) -> str | None:
        if type(sku) is not str:
            return sku_problem(sku)
        try:
            return self.sku_problems[sku]
        except KeyError:
            why = self.sku_problems[sku] = sku_problem(sku)
            return why


def _plan_one(
    key: Key,
    snapshot: StockSnapshot,
    baseline: Mapping[Key, Baseline],
    levels: Callable[[str, str], tuple[Decimal, Decimal]],
    result: StockPlan,
    memo: _Memo | None = None,
) -> None:
    sku, source = key
    why = memo.sku_problem(sku) if memo is not None else sku_problem(sku)
    if why:
        result.problems.append(
            Problem(
                "invalid_sku",
                "ecommerce",
                printable(sku),
                f"SKU {printable(sku)!r} in Sitoo cannot be sent to Magento: {why}. Fix the SKU in Sitoo.",
                {"sku": printable(sku)},
            )
        )
        return
    per_warehouse = snapshot.items.get(key) or {}
    levels_w: dict[str, Decimal] = {}
    pairs = per_warehouse.items() if len(per_warehouse) <= 1 else sorted(per_warehouse.items(), key=lambda kv: str(kv[0]))
    for warehouse, raw in pairs:
        value = parse_quantity(raw)
        if value is None or abs(value) > MAX_QUANTITY:
            result.problems.append(
                Problem(
                    "bad_stock_value",
                    "ops",
                    row_key(sku, source),
                    f"Sitoo warehouse {warehouse} reports an unusable available quantity {str(raw)[:40]!r} for SKU "
                    f"{sku}; nothing written to Magento source {source} for it. Check the item in Sitoo.",
                    {"sku": sku, "source": source, "warehouse": str(warehouse), "raw": str(raw)[:40]},
                )
            )
            return
        levels_w[str(warehouse)] = value
    flights: dict[str, Decimal] = {}
    raw_flights = snapshot.in_flight.get(key) or {}
    for warehouse, units in raw_flights.items() if isinstance(raw_flights, Mapping) else ():
        if isinstance(units, Decimal) and units.is_finite() and 0 < units <= MAX_QUANTITY:
            flights[str(warehouse)] = units
    reserved: dict[str, Decimal | None] | None = None
    if snapshot.reserved is not None and flights:
        raw_reserved = snapshot.reserved.get(key) or {}
        reserved = {w: parse_quantity(raw_reserved.get(w)) for w in flights}
    available, in_flight, short = warehouse_terms(levels_w, flights, reserved)
    for warehouse in levels_w:
        if warehouse not in short:
            result.clean_keys.append(warehouse_key(sku, warehouse))
    for warehouse, below in short.items():
        # Counts as 0 so only in-flight units are written; reported so someone counts the shelf. A
        # reservation of a pushed web order alone (available −1, 1 in flight) is no problem.
        _negative(result, sku, source, warehouse, levels_w.get(warehouse, Decimal(0)), flights.get(warehouse, Decimal(0)), below)
    buffer, floor = levels(sku, source)
    if available + in_flight > MAX_QUANTITY:
        result.problems.append(
            Problem(
                "bad_stock_value",
                "ops",
                row_key(sku, source),
                f"SKU {sku} would get {available + in_flight} units at source {source}, more than Magento can "
                "store; nothing written. Check the Sitoo warehouse items.",
                {"sku": sku, "source": source, "available": str(available), "in_flight": str(in_flight)},
            )
        )
        return
    qty, status = target(available, in_flight, buffer, floor)
    base = snapshot.magento.get(key) if snapshot.magento is not None else baseline.get(key)
    write = base is None or base[0] != qty or int(base[1]) != status
    result.rows.append(StockRow(sku, source, available, in_flight, buffer, floor, qty, status, base, write))


def _negative(result: StockPlan, sku: str, source: str, warehouse: str, have: Decimal, flight: Decimal, below: Decimal) -> None:
    shows = (
        f"available {have} for SKU {sku} although only {flight} unit(s) are reserved there for web orders magsit "
        f"pushed ({-below} more sold or reserved than on hand)"
        if flight
        else f"negative stock ({have}) for SKU {sku}"
    )
    result.problems.append(
        Problem(
            "negative_stock",
            "ops",
            warehouse_key(sku, warehouse),
            f"Sitoo warehouse {warehouse} shows {shows}; Magento gets 0 from it. Do a stock count or correct the "
            "item in Sitoo.",
            {"sku": sku, "source": source, "warehouse": warehouse, "available": str(have), "in_flight": str(flight)},
        )
    )
