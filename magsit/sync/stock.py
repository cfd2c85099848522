"""sync-stock: Sitoo warehouse levels -> Magento MSI source items (Sitoo is the truth for stock).

pull (Sitoo warehouse items, in-flight web orders, Magento's own values on --full/--sku) ->
plan (pure, magsit.sync.stockplan) -> verify (the mapped Magento source codes exist, read only when
there are rows to write or on --full; a dry run too) -> push (SKU pre-check, batched writes with
bisection, baseline + cursors in one state transaction).

Incremental runs read warehouse items changed since a per-warehouse ``datelastmodified`` cursor
(kept ``lookback_seconds`` behind the run start, read with >=). When one warehouse of a
multi-warehouse source changed, the SKU is re-read in the sibling warehouses so the sum is right.
Records Magento refused earlier (open exceptions whose retry time has come) are re-read by SKU in
batches, so the cursor can move on without losing them; exceptions only a Sitoo change can clear
(negative stock, an unusable value or SKU) cost no call: the delta read sees that change. With
no stock baseline (a new or lost state file) an incremental run compares with Magento's source
items like ``--full`` instead of writing every item.

``--full`` also sets to 0 Magento source items that still show stock for a Sitoo product with no
item in any of the source's warehouses (Sitoo keeps no item for a SKU never stocked there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from magsit.config import Config
from magsit.errors import ApiError, MagsitError
from magsit.flow import Preview, would
from magsit.http import parallel_map
from magsit.runner import JobContext, JobResult
from magsit.state.cursor import SitooEpoch, UtcMoment
from magsit.state.store import parse_iso
from magsit.sync import reservations
from magsit.sync.inflight import in_flight_by_source
from magsit.sync.stockplan import (
    Key,
    Levels,
    StockPlan,
    StockRow,
    StockSnapshot,
    load_overrides,
    parse_quantity,
)
from magsit.sync.stockplan import plan as plan_stock
from magsit.testing.crashpoints import crashpoint
from magsit.values import as_int, chunked, plain

log = logging.getLogger("magsit.sync.stock")

JOB = "sync-stock"
SKU_CHUNK = 50  # SKUs per Magento `sku in` source-item read of a --sku run (keeps URLs short)
UNKNOWN_SKU_RETRY = timedelta(minutes=30)
REJECTED_RETRY = timedelta(minutes=15)
# What the flow reads of a warehouse item: a 200k-item --full run decodes half the JSON of the
# client's default projection.
ITEM_FIELDS = ("sku", "decimalavailable", "datelastmodified")
# Items with units in flight are read again by SKU with their reserved level: in-flight units are
# only added back where Sitoo shows them reserved (sitoo-api.md §5 "Reservations": never add back
# more units than Sitoo shows reserved). Available and reserved then come from one answer.
RESERVED_FIELDS = ("sku", "decimalavailable", "decimalreserved", "datelastmodified")

# Kinds the plan raises from Sitoo's data: only a Sitoo change (seen by the delta read) or an
# order moving units in flight (its SKUs are re-read anyway) can clear them. Other kinds (Magento
# refused or lacks the product) are re-read by SKU when their retry time comes.
SITOO_SIDE_KINDS = frozenset({"negative_stock", "bad_stock_value", "invalid_sku"})
NO_BASELINE = (
    "no stock baseline in the state file (a new or lost file): Magento's source items were read and "
    "compared, like --full, instead of writing every item"
)

def check_settings(ctx_config: Any) -> Levels:
    """Validate the stock settings that can be checked offline (raises ConfigError, exit 2)."""
    return Levels(ctx_config.stock, load_overrides(ctx_config.stock.overrides_csv))


# -- pull -----------------------------------------------------------------------------------------
@dataclass
class Pulled:
    levels: Levels  # [stock] settings and the overrides CSV, read once
    snapshot: StockSnapshot = field(default_factory=StockSnapshot)
    cursors: dict[str, int] = field(default_factory=dict)  # stream -> new bookmark (epoch seconds)
    baseline: dict[Key, tuple[Decimal, int]] = field(default_factory=dict)  # pushed_stock as read this run
    full: bool = False  # Magento's source items were read (--full, or no baseline to diff against)
    no_baseline: bool = False
    # (sku, warehouse) with units in flight -> (decimalreserved, datelastmodified) as read
    observed: dict[tuple[str, str], tuple[Decimal | None, int | None]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)  # the order mappings (in flight, reservations)
    held: set[str] = field(default_factory=set)  # SKUs / SKU@source rows a person ignored


@dataclass
class Plan:
    stock: StockPlan
    cursors: dict[str, int]
    baseline: dict[Key, tuple[Decimal, int]]
    reservations: reservations.ReservationCheck
    said: list[str]  # lines for the summary that hold for a dry run too
    counts: dict[str, int]
    full: bool = False  # Magento's source items were read: verify checks the source codes even with no write

    def preview(self) -> Preview:
        problems = [p.as_error() for p in self.stock.problems]
        if self.reservations.problem is not None:
            problems.append(self.reservations.problem)
        return Preview([row.as_dict() for row in self.stock.rows],
                       [*self.said, would(("to_write", len(self.stock.writes), "write", "source item"))], problems,
                       self.counts)


def _warehouses_by_source(sources: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for warehouse, source in sources.items():
        out.setdefault(source, []).append(str(warehouse))
    return out


def pull(ctx: JobContext) -> Pulled:
    settings = ctx.config.stock
    sources = {str(k): v for k, v in settings.sources.items()}
    by_source = _warehouses_by_source(sources)
    full = bool(ctx.options.get("full"))
    chosen = [s for s in (ctx.options.get("skus") or []) if s]
    pulled = Pulled(check_settings(ctx.config), held=ctx.held_keys(), orders=ctx.state.mappings("order"))
    if not full and not chosen and not ctx.state.has_pushed_stock():
        # Nothing to diff against: a delta read would write every item it sees (a first run reads
        # them all). Magento's source items cost a page per 300 rows; the writes one call per 20.
        full = pulled.no_baseline = True
        log.info("sync-stock: %s", NO_BASELINE)
    pulled.full = full
    snap = pulled.snapshot
    # Per warehouse: Sitoo's available there already excludes what it holds for these orders.
    in_flight = snap.in_flight = in_flight_by_source(pulled.orders, sources)
    flying = {(sku, w) for (sku, _), per in in_flight.items() for w in per}
    # (sku, warehouse) -> (raw decimalreserved, datelastmodified), kept only where magsit has units in flight
    reserved: dict[tuple[str, str], tuple[Any, Any]] = {}
    requested: set[str] = set(chosen)  # SKUs read by name: included only where there is evidence for them

    # On --full, Magento's own source items are read while the Sitoo warehouses are (other host).
    magento_rows: Future[dict[Key, tuple[Decimal, int]]] | None = None
    side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magsit-stock") if full and not chosen else None
    if side is not None:
        magento_rows = side.submit(_magento_levels, ctx, sorted(by_source))
    # warehouse -> sku -> raw decimalavailable, for everything read this run
    read: dict[str, dict[str, Any]] = {w: {} for w in sources}
    if not chosen:
        try:
            read = _read_changed(ctx, pulled, sources, full)
        except BaseException:
            if side is not None:
                side.shutdown(wait=True, cancel_futures=True)
            raise
        if not full:
            requested |= _due_retries(ctx)
            requested |= _skus_of_recent_orders(ctx, pulled.orders)

    # Which SKUs each source needs, then fill the gaps in its sibling warehouses by SKU.
    needed = {source: {sku for w in warehouses for sku in read[w]} | requested for source, warehouses in by_source.items()}
    if not full:  # a full read already has every item of every warehouse
        _read_siblings(ctx, by_source, needed, read)
    _read_reserved(ctx, flying, needed, by_source, read, reserved)
    if full or chosen:
        snap.magento = _magento_snapshot(ctx, magento_rows, side, sorted(by_source), full, requested)

    # A small incremental run loads the baseline of the SKUs it looks at, not the whole table.
    few = set() if full else {sku for skus in needed.values() for sku in skus if isinstance(sku, str)}
    small = not full and len(few) <= 5000 and all(isinstance(s, str) for skus in needed.values() for s in skus)
    pulled.baseline = ctx.state.pushed_stock(few) if small else ctx.state.pushed_stock()
    _snapshot_items(snap, by_source, needed, requested, read, pulled.baseline)
    snap.reserved = {}
    for (sku, source), per in in_flight.items():
        snap.reserved[(sku, source)] = {w: reserved[(sku, w)][0] for w in per if (sku, w) in reserved}
    pulled.observed = {key: (parse_quantity(raw), modified) for key, (raw, modified) in reserved.items()}
    if full and not chosen and not pulled.no_baseline and snap.magento:
        # Only an explicit --full corrects items Sitoo has no row for: an incremental run follows
        # Sitoo's items, with or without a baseline.
        for key in _unstocked_sitoo_skus(ctx, snap.magento, by_source, read):
            snap.items.setdefault(key, {})  # no item in any warehouse of the source = 0 on hand there
    return pulled


def _read_changed(ctx: JobContext, pulled: Pulled, sources: dict[str, str], full: bool) -> dict[str, dict[str, Any]]:
    """Every warehouse's items changed since its cursor (all on --full), read in parallel; the new
    bookmarks go into ``pulled.cursors`` (moved by push only when the run completes)."""
    run_start = int(ctx.started_at.timestamp())
    lookback = ctx.config.stock.lookback_seconds

    def read_warehouse(job: tuple[str, Any]) -> tuple[str, Any, int | None, dict[str, Any]]:
        warehouse, since = job
        levels: dict[str, Any] = {}
        max_seen = None
        for item in ctx.sitoo.warehouse_items(int(warehouse), modified_from=since, fields=ITEM_FIELDS):
            levels[item.get("sku")] = item.get("decimalavailable")
            seen = item.get("datelastmodified")
            if type(seen) is not int:  # Sitoo sends an int epoch: as_int only for anything else
                seen = as_int(seen)
            if seen is not None and (max_seen is None or seen > max_seen):
                max_seen = seen
        return warehouse, since, max_seen, levels

    stored = {w: None if full else ctx.state.get_cursor(JOB, f"warehouse:{w}", SitooEpoch) for w in sources}
    jobs = [(w, None if cursor is None else cursor.seconds) for w, cursor in stored.items()]
    read: dict[str, dict[str, Any]] = {}
    for warehouse, since, max_seen, levels in parallel_map(read_warehouse, jobs, ctx.config.sitoo.concurrency):
        read[warehouse] = levels
        bookmark = since
        if max_seen is not None:
            bookmark = max(since or 0, min(max_seen, run_start - lookback))
        elif full or since is None:
            bookmark = max(since or 0, run_start - lookback)
        if bookmark is not None:
            pulled.cursors[f"warehouse:{warehouse}"] = bookmark
    return read


def _read_siblings(
    ctx: JobContext, by_source: dict[str, list[str]], needed: dict[str, set[str]], read: dict[str, dict[str, Any]]
) -> None:
    """A SKU changed in one warehouse of a multi-warehouse source is read by SKU in the others, so
    the source's sum is right."""
    for source, warehouses in by_source.items():
        for warehouse in warehouses:
            missing = sorted(s for s in needed[source] - set(read[warehouse]) if isinstance(s, str))
            if not missing:
                continue
            wanted = set(missing)  # the client sends them in full `sku` filter batches
            for item in ctx.sitoo.warehouse_items(int(warehouse), skus=missing, fields=ITEM_FIELDS):
                if item.get("sku") in wanted:
                    read[warehouse][item.get("sku")] = item.get("decimalavailable")


def _magento_snapshot(
    ctx: JobContext,
    magento_rows: Future[dict[Key, tuple[Decimal, int]]] | None,
    side: ThreadPoolExecutor | None,
    codes: list[str],
    full: bool,
    requested: set[str],
) -> dict[Key, tuple[Decimal, int]]:
    """Magento's own source items (--full: all, read beside the Sitoo warehouses; --sku: those SKUs)."""
    if magento_rows is not None and side is not None:
        try:
            return magento_rows.result()
        finally:
            side.shutdown(wait=True)
    if full:
        return _levels_of(ctx.magento.source_items(source_codes=codes))
    rows: list[dict[str, Any]] = []
    for chunk in chunked(sorted(requested), SKU_CHUNK):
        rows.extend(ctx.magento.source_items(source_codes=codes, skus=chunk))
    return _levels_of(rows)


def _snapshot_items(
    snap: StockSnapshot,
    by_source: dict[str, list[str]],
    needed: dict[str, set[str]],
    requested: set[str],
    read: dict[str, dict[str, Any]],
    baseline: dict[Key, tuple[Decimal, int]],
) -> None:
    """The (sku, source) rows to plan, with each warehouse's raw level."""
    for source, warehouses in by_source.items():
        if not requested and len(warehouses) == 1:
            # One warehouse, nothing asked for by name (a --full read): every item read is a row.
            (only,) = warehouses
            snap.items.update(((sku, source), {only: raw}) for sku, raw in read[only].items())
            continue
        for sku in needed[source]:
            values = {w: read[w][sku] for w in warehouses if sku in read[w]}
            key: Key = (sku, source)
            evidence = values or key in snap.in_flight or key in baseline or (snap.magento is not None and key in snap.magento)
            if sku in requested and not evidence:
                continue  # e.g. a retried SKU that never existed at this source: do not invent a source item
            if not values and sku not in requested:
                continue
            snap.items[key] = values


def _read_reserved(
    ctx: JobContext,
    flying: set[tuple[str, str]],
    needed: dict[str, set[str]],
    by_source: dict[str, list[str]],
    read: dict[str, dict[str, Any]],
    reserved: dict[tuple[str, str], tuple[Any, Any]],
) -> None:
    """The planned items with units in flight, read again with ``decimalreserved`` (one ``sku``
    filter per warehouse, batched by the client; nothing when no planned SKU has units in flight)."""
    for source, warehouses in by_source.items():
        for warehouse in warehouses:
            wanted = {sku for sku, w in flying if w == warehouse and sku in needed[source]}
            if not wanted:
                continue
            for item in ctx.sitoo.warehouse_items(int(warehouse), skus=sorted(wanted), fields=RESERVED_FIELDS):
                sku = item.get("sku")
                if sku in wanted:
                    read[warehouse][sku] = item.get("decimalavailable")  # the same moment as its reserved level
                    reserved[(sku, warehouse)] = (item.get("decimalreserved"), as_int(item.get("datelastmodified")))


def _unstocked_sitoo_skus(
    ctx: JobContext, magento: dict[Key, tuple[Decimal, int]], by_source: dict[str, list[str]], read: dict[str, dict[str, Any]]
) -> list[Key]:
    """--full: Magento source items still showing stock for a SKU that has no item in any of the
    source's Sitoo warehouses (never stocked there: Sitoo keeps no row for 0). They are healed to 0
    only for SKUs Sitoo knows as products (one batched ``sku`` lookup); web-only products Sitoo
    does not know are left alone."""
    stocked = {source: {str(sku).casefold() for w in warehouses for sku in read[w]} for source, warehouses in by_source.items()}
    candidates: dict[str, list[Key]] = {}
    for (sku, source), (qty, status) in magento.items():
        if source not in stocked or sku.casefold() in stocked[source] or (qty == 0 and not status):
            continue  # Sitoo has an item there (planned already), or Magento already shows 0 / out of stock
        candidates.setdefault(sku.casefold(), []).append((sku, source))
    if not candidates:
        return []
    skus = sorted(sku for keys in candidates.values() for sku, _ in keys)
    known = {
        str(product.get("sku")).casefold()
        for product in ctx.sitoo.iter_products(skus=sorted(set(skus)), include_inactive=True, fields=("sku",))
    }
    return sorted(key for folded, keys in candidates.items() if folded in known for key in keys)


def _levels_of(rows: Iterable[dict[str, Any]]) -> dict[Key, tuple[Decimal, int]]:
    out: dict[Key, tuple[Decimal, int]] = {}
    # 200k rows carry few distinct (quantity, status) pairs: one immutable tuple per pair is shared.
    shared: dict[tuple[str, int], tuple[Decimal, int]] = {}
    quantities: dict[str, Decimal] = {}
    for row in rows:
        try:
            key = (str(row["sku"]), str(row["source_code"]))
            text = str(row.get("quantity") or 0)
            qty = quantities.get(text)
            if qty is None:
                qty = Decimal(text)
                if not qty.is_finite():
                    raise ValueError(text)  # not a level: no baseline, so the target is written
                quantities[text] = qty
            level = (text, int(row.get("status") or 0))
            value = shared.get(level)
            if value is None:
                value = shared[level] = (qty, level[1])
            out[key] = value
        except (KeyError, ValueError, ArithmeticError):
            continue
    return out


def _magento_levels(ctx: JobContext, codes: list[str]) -> dict[Key, tuple[Decimal, int]]:
    """Magento's source items of these sources, streamed page by page into (sku, source) -> level
    (the raw rows of a big catalogue are never all held at once)."""
    stream = getattr(ctx.magento, "iter_source_items", None)
    return _levels_of(stream(source_codes=codes, decimals=False) if stream is not None else ctx.magento.source_items(source_codes=codes))


def _due_retries(ctx: JobContext) -> set[str]:
    """SKUs of open exceptions to re-read now: due, and of a kind a Sitoo change is not needed for."""
    kinds = {row["kind"] for row in ctx.state.exceptions(status="open", job=JOB)} - SITOO_SIDE_KINDS
    return ctx.due_payload_values("sku", kinds) if kinds else set()


def _skus_of_recent_orders(ctx: JobContext, orders: list[dict[str, Any]]) -> set[str]:
    """SKUs of order mappings changed since the last stock run: their in-flight term moved."""
    last = ctx.state.get_cursor(JOB, "orders_seen", UtcMoment)
    since = None if last is None else last.at
    skus: set[str] = set()
    for mapping in orders:
        updated = parse_iso(mapping.get("updated_at"))
        if since is not None and updated is not None and updated < since:
            continue
        for line in (mapping.get("data") or {}).get("lines") or []:
            if isinstance(line, dict) and isinstance(line.get("sku"), str):
                skus.add(line["sku"])
    return skus


# -- plan -----------------------------------------------------------------------------------------
def plan(pulled: Pulled, config: Config, now: datetime) -> Plan:
    """Pure: the stock plan (stockplan.plan) without the rows a person ignored, the source-code
    check, and the reservations check (issue 16 §3) on the items read with their reserved level."""
    the_plan = plan_stock(pulled.snapshot, pulled.baseline, pulled.levels)
    counts = {"read": len(pulled.snapshot.items)}
    held = pulled.held  # no write until `exceptions retry`
    if held:
        kept = [row for row in the_plan.rows if row.key not in held and row.sku not in held]
        counts["held"] = len(the_plan.rows) - len(kept)
        the_plan.rows = kept
    counts["to_write"] = len(the_plan.writes)
    check = reservations.plan_check(pulled.orders, pulled.observed, now, config.orders.reservation_days)
    said = [NO_BASELINE] if pulled.no_baseline else []
    return Plan(the_plan, pulled.cursors, pulled.baseline, check, said, counts, full=pulled.full)


# -- verify (reads only; the runner calls it in a dry run too) ------------------------------------
def verify(ctx: JobContext, planned: Plan) -> None:
    """The mapped Magento sources must exist before anything is written: the run fails (exit 1,
    nothing written) instead of writing source items Magento cannot hold. Read only when there are
    rows to write, or on --full (its source-item read would silently find nothing at a wrong code),
    so an incremental run with nothing to write spends no Magento call (bench/README.md). The
    same condition in a dry run: it fails where the real run would."""
    if planned.stock.writes or planned.full:
        _check_sources(ctx.config.stock.sources, {str(s.get("source_code")) for s in ctx.magento.list_sources()})


def _check_sources(sources: Mapping[Any, str], codes: set[str]) -> None:
    unknown = sorted(set(sources.values()) - codes)
    if unknown:
        raise MagsitError(
            f"[stock].sources maps Sitoo warehouses to Magento source codes that do not exist: {', '.join(unknown)} "
            f"(Magento has: {', '.join(sorted(codes)) or 'none'}). Fix the config; nothing was written."
        )


# -- push -----------------------------------------------------------------------------------------
def _quantity_json(qty: Decimal) -> int | float:
    return int(qty) if qty == qty.to_integral_value() else float(qty)


def _item(row: StockRow) -> dict[str, Any]:
    return {"sku": row.sku, "source_code": row.source, "quantity": _quantity_json(row.qty), "status": row.status}


def _known_skus(ctx: JobContext, skus: list[str]) -> set[str]:
    # One call: the client chunks the `sku in` filter to full pages (URL length permitting).
    return {s.lower() for s in ctx.magento.existing_skus(sorted(set(skus)))}


def _write(ctx: JobContext, rows: list[StockRow]) -> tuple[list[StockRow], list[tuple[StockRow, str]]]:
    """POST one batch; on a 400 for the whole batch bisect until the bad rows are isolated.

    Returns (accepted rows, rejected rows with Magento's message). API calls only, no state: batches
    run concurrently and the caller records the outcomes.
    """
    try:
        ctx.magento.save_source_items([_item(r) for r in rows])
    except ApiError as exc:
        if exc.status != 400 or exc.retryable:
            raise  # not about a row: the run fails (exit 1), the baseline keeps what landed so far
        if len(rows) == 1:
            return [], [(rows[0], exc.message)]
        middle = len(rows) // 2
        left, right = _write(ctx, rows[:middle]), _write(ctx, rows[middle:])
        return left[0] + right[0], left[1] + right[1]
    return list(rows), []


def _unknown_sku(ctx: JobContext, sku: str) -> None:
    ctx.fail(
        "unknown_sku",
        "ecommerce",
        sku,
        f"SKU {sku} has stock in Sitoo but no product in Magento, so no stock was written for it "
        "(Magento would store an orphan source item). Create the product in Magento or fix the SKU in Sitoo.",
        {"sku": sku},
        retry_after=UNKNOWN_SKU_RETRY,
    )


def _check_and_write(ctx: JobContext, writes: list[StockRow]) -> tuple[list[StockRow], BaseException | None]:
    """Writes the rows whose SKU Magento knows; returns (rows Magento accepted, the error that
    stopped the run or None).

    One pool of [magento].concurrency: the SKU existence lookups go first, and each answer releases
    its rows into full batches at once, so the writes start while later lookups are in flight.
    Batches are independent absolute-value upserts; only the last one may be short.
    """
    rows_of: dict[str, list[StockRow]] = {}
    for row in writes:
        rows_of.setdefault(row.sku, []).append(row)
    size = max(1, min(ctx.config.stock.batch_size, ctx.config.magento.input_list_limit))
    accepted: list[StockRow] = []
    error: BaseException | None = None
    waiting: list[StockRow] = []

    def send(batch: list[StockRow]) -> tuple[list[StockRow], list[tuple[StockRow, str]]]:
        if ctx.should_stop():
            return [], []
        return _write(ctx, batch)

    def landed(future: Future[Any]) -> None:
        ok, rejected = future.result()
        accepted.extend(ok)
        crashpoint("stock.after_batch")  # this batch is in Magento, its baseline not yet recorded
        for row, message in rejected:
            _rejected(ctx, row, message)

    def answered(future: Future[Any]) -> None:
        if future not in lookups:
            landed(future)
            return
        known = future.result()
        for sku in lookups.pop(future):
            if sku.lower() in known:
                waiting.extend(rows_of[sku])
            else:
                _unknown_sku(ctx, sku)
        while len(waiting) >= size or (waiting and not lookups):
            pending.add(pool.submit(send, waiting[:size]))
            del waiting[:size]

    pool = ThreadPoolExecutor(max_workers=max(1, ctx.config.magento.concurrency), thread_name_prefix="magsit-write")
    lookups: dict[Future[Any], list[str]] = {}
    pending: set[Future[Any]] = set()
    try:
        for chunk in ctx.magento.sku_lookup_chunks(sorted(rows_of)) if rows_of else []:
            future = pool.submit(_known_skus, ctx, chunk)
            lookups[future] = chunk
            pending.add(future)
        while pending and error is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:  # every answer is taken in, also after one failed
                try:
                    answered(future)
                except (MagsitError, KeyboardInterrupt) as exc:
                    error = error or exc
    except KeyboardInterrupt as exc:
        error = exc
    finally:
        for future in pending:
            future.cancel()  # queued ones are not sent; those in flight finish and count
        for future in wait(pending).done:
            if future not in lookups and not future.cancelled() and future.exception() is None:
                landed(future)
        pool.shutdown(wait=True)
    return accepted, error


def _rejected(ctx: JobContext, row: StockRow, message: str) -> None:
    ctx.fail(
        "source_item_rejected",
        "ecommerce",
        row.key,
        f"Magento refused stock for SKU {row.sku} at source {row.source}: {message}. Check the "
        "product/source in Magento, then `magsit exceptions retry`.",
        {"sku": row.sku, "source": row.source, "quantity": plain(row.qty)},
        retry_after=REJECTED_RETRY,
    )


def _record_agreed(ctx: JobContext, agreed: list[StockRow], stored: dict[Key, tuple[Decimal, int]]) -> None:
    """Full/--sku runs: where Magento already equals the target, the baseline follows Magento (rows
    whose stored baseline already says so are not rewritten: a full run of a big catalogue stays
    cheap). Its own transaction: it states what Magento was read to hold, true whatever the writes
    do, so it need not wait for them (nor commit with the cursors: a rerun re-reads anyway)."""
    changed = [(r.sku, r.source, r.qty, r.status) for r in agreed if stored.get((r.sku, r.source)) != (r.qty, r.status)]
    if changed:
        with ctx.state.transaction():
            ctx.state.record_pushed_stock(changed)


def push(ctx: JobContext, planned: Plan) -> JobResult:
    ctx.counts.update(planned.counts)
    the_plan = planned.stock
    for problem in the_plan.problems:
        ctx.fail(problem.kind, problem.owner, problem.key, problem.message, problem.payload or None)
    agreed = [r for r in the_plan.rows if not r.write]
    # A first full run of 200k rows spends about a second of CPU here: done beside the existence
    # check and the writes, which mostly wait on Magento.
    recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magsit-baseline")
    recording = recorder.submit(_record_agreed, ctx, agreed, planned.baseline)
    recorder.shutdown(wait=False)
    try:
        _push_writes(planned, ctx, agreed, recording)  # joins it before outcomes and cursors commit
    except BaseException:
        wait([recording])  # never leave it writing after the run; the error in hand is the one to report
        raise
    reservations.push_check(ctx, planned.reservations)  # does Sitoo hold what magsit pushed? (issue 16 §3)
    return JobResult(
        summary=[*planned.said, f"{ctx.counts['written']} source items written, {len(agreed)} already right"],
        details={"writes": [r.as_dict() for r in the_plan.writes]},
    )


def _push_writes(planned: Plan, ctx: JobContext, agreed: list[StockRow], recording: Future[None]) -> None:
    plan_ = planned.stock
    accepted, error = _check_and_write(ctx, plan_.writes)
    ok_rows = {(r.sku, r.source) for r in accepted}
    # Only keys with an open exception can be resolved: look those up once instead of per row.
    open_keys = ctx.state.open_exception_keys(JOB)
    recording.result()  # its error, if any, fails the run before anything below commits
    with ctx.state.transaction():
        ctx.state.record_pushed_stock([(r.sku, r.source, r.qty, r.status) for r in accepted])
        crashpoint("stock.mid_transaction")
        if error is None:
            for stream, value in planned.cursors.items():
                ctx.state.set_cursor(JOB, stream, SitooEpoch(value))
            ctx.state.set_cursor(JOB, "orders_seen", UtcMoment(ctx.started_at.replace(microsecond=0)))
        if open_keys:
            for row in accepted + agreed:
                if row.key in open_keys:
                    ctx.succeeded(row.key)
                if row.sku in open_keys and ((row.sku, row.source) in ok_rows or not row.write):
                    ctx.succeeded(row.sku)
            for key in plan_.clean_keys:
                if key in open_keys:
                    ctx.succeeded(key)
    ctx.counts["written"] += len(accepted)
    ctx.counts["unchanged"] += len(agreed)
    if error is not None:
        raise error
