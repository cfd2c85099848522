"""sync-returns: store returns -> Magento offline credit memos; Magento credit memos -> Sitoo refund orders.

Sitoo -> Magento
  pull  — sweep Sitoo orders by ``orderidfrom`` (cursor = highest orderid seen, re-read with a small
          id overlap) and keep the store returns (negative lines pointing at an original sale) whose
          original is a web order magsit pushed (order mapping, by Sitoo orderid). Plus the retry
          queue (returns that failed or whose outcome is unknown).
          Why a sweep and not ``GET /orders.json?creditorderid=`` per pushed order: that is one call
          per pushed order per run, forever growing with the order history, while a return can come
          months later; the sweep costs one paged read of the *new* orders only. Sitoo orderids are
          assigned when the backend stores the order, so an offline till that syncs late still gets
          a higher id than the cursor (the ``orderdate`` would be in the past, P11). On the first run
          the sweep starts at the lowest pushed Sitoo orderid: no return can be older than its sale.
          With ``[returns].refund_shipping`` the order's shipping not refunded yet (a detail GET).
  plan  — ``returnplan.plan_creditmemo``: Sitoo orderitemid -> Magento parent item_id via the order
          mapping; shipping 0 unless ``[returns].refund_shipping``.
  push  — per return: a ``pending`` mapping (entity ``refund``) BEFORE the POST, the credit memo id
          after. A pending mapping (crash, timeout, 5xx after the write) is resolved by reading the
          order's credit memos first (check-then-create), never by posting again blindly.

Magento -> Sitoo
  Credit memos changed since the cursor (keyset ``(updated_at, entity_id)``) of orders fulfilled
  through Sitoo become refund orders (``creditorderid`` = the Sitoo order, externalid ``CM-<incr>``),
  except the ones magsit created itself (mapping + comment marker, P49). Pending creates are
  resolved by looking the externalid up first.

One run: ``pull`` reads both directions, ``plan`` (pure) plans both, ``push`` writes the store
returns first and then the exports. A credit memo this run's push creates is not in this run's
scan; the next run's scan reads it mapped already (the cursor stays ``lookback`` behind the run
start), so it is never exported back to Sitoo (P49).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from magsit.config import Config
from magsit.errors import ApiError, RecordError
from magsit.flow import Doing, Preview, plural, would, would_counts
from magsit.magento.search import SearchCriteria, keyset_criteria
from magsit.runner import JobContext, JobResult
from magsit.state.cursor import KeysetPosition, SitooId
from magsit.sync.keyset import key_of, keyset_scan, read_start, save_cursor
from magsit.sync.orderpayload import money
from magsit.sync.returnplan import (
    CreditMemoPlan,
    SitooRefundPlan,
    is_magsit_memo,
    is_store_return,
    memo_matches,
    next_memo_part,
    original_orderid,
    plan_creditmemo,
    plan_sitoo_refund,
)
from magsit.testing.crashpoints import crashpoint

log = logging.getLogger("magsit.returns")

JOB = "sync-returns"
SITOO_STREAM = "sitoo-orders"
MEMO_STREAM = "magento-creditmemos"
ID_OVERLAP = 50  # orderids re-read below the cursor: a late commit of a lower id is not missed
RETRY = timedelta(minutes=15)
SWEEP_FIELDS = ("orderid", "externalid", "creditorderid", "warehouseid", "registerid", "additionaldata", "orderitems")
NOT_INVOICED = "We can't create creditmemo for the order"


def _refund_key(orderid: Any) -> str:
    return f"sitoo-refund-{orderid}"


def _memo_key(increment: Any) -> str:
    return f"creditmemo-{increment}"


Pushed = dict[str, tuple[str, dict[str, Any]]]  # Sitoo orderid -> (increment_id, order mapping data)


@dataclass
class Pulled:
    pushed: Pushed
    # Sitoo -> Magento: store returns of pushed orders not refunded yet and due, and where the sweep got to.
    returns: list[dict[str, Any]] = field(default_factory=list)
    highest: int | None = None
    shipping_left: dict[int, Decimal] = field(default_factory=dict)  # order entity_id -> shipping not refunded
    # Magento -> Sitoo (None: [returns].magento_to_sitoo is off).
    memos: MemoScan | None = None


@dataclass
class MemoScan:
    memos: list[dict[str, Any]]
    cursor: KeysetPosition | None
    seen: list[KeysetPosition]
    start: str
    exported: set[str]  # credit memo entity ids whose mapping is done
    in_flight: dict[str, set[str]]  # order increment id -> its store returns with a credit memo not confirmed yet


@dataclass
class ReturnsPlan:
    watched: int
    creditmemos: list[CreditMemoPlan | RecordError] = field(default_factory=list)
    nothing_to_refund: list[int] = field(default_factory=list)  # store returns Magento has nothing to refund for
    highest: int | None = None
    exports: list[SitooRefundPlan | RecordError] = field(default_factory=list)
    failed_memo_ids: dict[str, str] = field(default_factory=dict)  # exception key of a refused export -> memo entity id
    deferred: list[tuple[str, str]] = field(default_factory=list)  # (memo entity id, memo increment id)
    memo_scan: MemoScan | None = None

    def rows(self) -> list[dict[str, Any]]:
        view = [p.describe() if isinstance(p, CreditMemoPlan) else _error_view(p) for p in self.creditmemos]
        view += [p.describe() if isinstance(p, SitooRefundPlan) else _error_view(p) for p in self.exports]
        view += [{"action": "skip", "sitoo_refund_orderid": refund, "reason": "nothing Magento refunds for it "
                  "(a service line; shipping only with [returns].refund_shipping)"} for refund in self.nothing_to_refund]
        return view + [{"action": "wait", "creditmemo": inc, "reason": "a store return of its order has a credit "
                        "memo not confirmed yet; exported once that is settled"} for _, inc in self.deferred]  # fmt: skip

    def summary(self) -> list[str]:
        todo = len(self.creditmemos) + len(self.exports)
        return [f"{self.watched} pushed web order(s) watched; {todo} return(s)/credit memo(s) to handle"]

    def doings(self) -> tuple[Doing, ...]:
        return (("to_create_creditmemo", sum(1 for p in self.creditmemos if isinstance(p, CreditMemoPlan)), "create",
                 "Magento credit memo"),
                ("to_create_refund_order", sum(1 for p in self.exports if isinstance(p, SitooRefundPlan)), "create",
                 "Sitoo refund order"))  # fmt: skip

    def preview(self) -> Preview:
        problems = [p for p in (*self.creditmemos, *self.exports) if isinstance(p, RecordError)]
        notes = {"to_create_creditmemo": "for store returns", "to_create_refund_order": "for Magento credit memos"}
        summary = [*self.summary(), would(*self.doings(), notes=notes)]
        counts = would_counts(*self.doings())
        if self.deferred:
            summary.append(f"{plural(len(self.deferred), 'credit memo')} left for a later run (a store return of its "
                           "order has a credit memo not confirmed yet)")
            counts["waiting"] = len(self.deferred)
        return Preview(self.rows(), summary, problems, counts)


def _pushed_orders(ctx: JobContext) -> Pushed:
    """Sitoo orderid -> (increment_id, order mapping data) of every web order magsit pushed."""
    out: Pushed = {}
    for mapping in ctx.state.mappings("order"):
        if mapping.get("other_id") and mapping["data"].get("lines") is not None:
            out[str(mapping["other_id"])] = (str(mapping["external_id"]), mapping["data"])
    return out


# -- pull (reads only) ---------------------------------------------------------------------------
def pull(ctx: JobContext) -> Pulled:
    pulled = Pulled(_pushed_orders(ctx))
    pull_store_returns(ctx, pulled)
    if ctx.config.returns.magento_to_sitoo:
        pulled.memos = pull_creditmemos(ctx)
    return pulled


def pull_store_returns(ctx: JobContext, pulled: Pulled) -> None:
    pushed = pulled.pushed
    cursor = ctx.state.get_cursor(JOB, SITOO_STREAM, SitooId)
    if cursor is None:
        start = min((int(k) for k in pushed), default=None)
    else:
        start = max(1, cursor.value - ID_OVERLAP + 1)
    rows: list[dict[str, Any]] = []
    highest = None if cursor is None else cursor.value
    if start is not None:
        for row in ctx.sitoo.iter_orders(orderid_from=start, fields=SWEEP_FIELDS):
            rows.append(row)
            highest = max(highest or 0, int(row["orderid"]))
    if highest is not None and ctx.state.mappings("order", status="pending"):
        # A push whose outcome is not confirmed yet has no Sitoo orderid in its mapping, so a return
        # of that order cannot be matched this run. Keep such returns inside the next sweep instead
        # of moving past them for good (held only while unconfirmed pushes exist).
        unmatched = [
            int(row["orderid"])
            for row in rows
            if is_store_return(row) and str(original_orderid(row)) not in pushed
        ]
        if unmatched:
            highest = min(highest, min(unmatched) - 1)
    # The retry queue: returns that failed (e.g. not invoiced yet) or whose outcome is unknown.
    queued = [m for m in ctx.state.mappings("refund") if m["status"] in ("pending", "retry")]
    seen = {str(r["orderid"]) for r in rows}
    wanted = [int(m["external_id"]) for m in queued if m["external_id"] not in seen and ctx.is_due(_refund_key(m["external_id"]))]
    if wanted:
        rows.extend(ctx.sitoo.get_orders(wanted, fields=SWEEP_FIELDS))
    pulled.highest = highest
    for row in rows:
        if not is_store_return(row) or str(original_orderid(row)) not in pushed:
            continue  # a return of a POS sale, not of a web order: Magento has nothing to refund
        mapping = ctx.state.get_mapping("refund", "sitoo", str(row["orderid"]))
        if (mapping and mapping["status"] == "done") or not ctx.is_due(_refund_key(row["orderid"])):
            continue  # done, or a failed return waiting for its backoff (`magsit exceptions retry` skips it)
        pulled.returns.append(row)
    if ctx.config.returns.refund_shipping:
        entity_ids = {int(pushed[str(original_orderid(row))][1]["entity_id"]) for row in pulled.returns}
        pulled.shipping_left = {entity_id: _shipping_left(ctx, entity_id) for entity_id in sorted(entity_ids)}


def _shipping_left(ctx: JobContext, entity_id: int) -> Decimal:
    """The order's shipping not refunded yet, as the shop reads ``arguments.shipping_amount``: net,
    or gross with ``[returns].shipping_amount_includes_tax`` (magento-api.md §11)."""
    order = ctx.magento.get_order(entity_id)
    left = (money(order.get("base_shipping_amount", order.get("shipping_amount")))
            - money(order.get("base_shipping_refunded", order.get("shipping_refunded"))))  # fmt: skip
    if ctx.config.returns.shipping_amount_includes_tax:
        left += (money(order.get("base_shipping_tax_amount", order.get("shipping_tax_amount")))
                 - money(order.get("base_shipping_tax_refunded", order.get("shipping_tax_refunded"))))  # fmt: skip
    return max(Decimal(0), left)


def pull_creditmemos(ctx: JobContext) -> MemoScan:
    settings = ctx.config.orders
    cursor = ctx.state.get_cursor(JOB, MEMO_STREAM, KeysetPosition)
    start = read_start(cursor, run_start=ctx.started_at, lookback=timedelta(seconds=settings.lookback_seconds),
                       initial_lookback=timedelta(hours=settings.initial_lookback_hours),
                       since=ctx.options.get("since"))  # fmt: skip

    def fetch(filters: list[tuple[str, str, str]], page_size: int) -> tuple[list[dict[str, Any]], int]:
        return ctx.magento.search_page("/creditmemos", keyset_criteria(filters, page_size))

    memos = list(keyset_scan(fetch, start, ctx.magento.page_size, what="Magento credit memos"))
    seen = [key_of(m) for m in memos]
    have = {str(m["entity_id"]) for m in memos}
    exported: set[str] = set()
    for mapping in ctx.state.mappings("creditmemo"):
        if mapping["status"] == "done":
            exported.add(str(mapping["external_id"]))
        due = ctx.is_due(_memo_key(mapping["data"].get("increment_id") or mapping["external_id"]))
        if mapping["status"] in ("pending", "retry") and mapping["external_id"] not in have and due:
            memos.append(ctx.magento.get_creditmemo(int(mapping["external_id"])))
    return MemoScan(memos, cursor, seen, start, exported, _refunds_in_flight(ctx))


def _refunds_in_flight(ctx: JobContext) -> dict[str, set[str]]:
    """Order increment id -> its store returns whose credit memo is not confirmed yet (pending)."""
    out: dict[str, set[str]] = {}
    for mapping in ctx.state.mappings("refund", status="pending"):
        out.setdefault(str(mapping["data"].get("increment_id")), set()).add(str(mapping["external_id"]))
    return out


# -- plan (pure) ---------------------------------------------------------------------------------
def plan(pulled: Pulled, config: Config, now: datetime) -> ReturnsPlan:
    result = ReturnsPlan(len(pulled.pushed), highest=pulled.highest)
    refund_shipping = config.returns.refund_shipping
    for row in pulled.returns:
        increment_id, data = pulled.pushed[str(original_orderid(row))]
        shipping = pulled.shipping_left.get(int(data["entity_id"]), Decimal(0)) if refund_shipping else None
        planned = plan_creditmemo(row, increment_id, data, shipping_sku=config.orders.shipping_sku, shipping_left=shipping)
        if planned is None:
            result.nothing_to_refund.append(int(row["orderid"]))
        else:
            result.creditmemos.append(planned)
    if pulled.memos is not None:
        plan_creditmemo_exports(result, pulled.memos, pulled.pushed, config)
    return result


def plan_creditmemo_exports(result: ReturnsPlan, scan: MemoScan, pushed: Pushed, config: Config) -> None:
    by_entity = {str(data.get("entity_id")): (sitoo_id, inc, data) for sitoo_id, (inc, data) in pushed.items()}
    result.memo_scan = scan
    # Store returns this run settles before the exports (push re-checks what is still unconfirmed then).
    settling = {str(p.refund_orderid) for p in result.creditmemos if isinstance(p, CreditMemoPlan)}
    for memo in scan.memos:
        if str(memo["entity_id"]) in scan.exported or is_magsit_memo(memo):
            continue  # exported already, or created by magsit from a store return (P49)
        target = by_entity.get(str(memo.get("order_id")))
        if target is None:
            continue  # the order was not fulfilled through Sitoo
        sitoo_id, increment_id, data = target
        if scan.in_flight.get(increment_id, set()) - settling:
            # A store return of this order has an unconfirmed credit memo: this may be it (its list
            # row may lack the comment marker). Wait until that is settled rather than echo it.
            result.deferred.append((str(memo["entity_id"]), str(memo.get("increment_id"))))
            continue
        planned = plan_sitoo_refund(memo, increment_id, int(sitoo_id), data,
                                    externalid_prefix=config.orders.externalid_prefix,
                                    return_to_stock=config.returns.return_to_stock)  # fmt: skip
        if isinstance(planned, RecordError):
            result.failed_memo_ids[planned.key] = str(memo["entity_id"])
        result.exports.append(planned)


# -- push (the only writer) ----------------------------------------------------------------------
def push(ctx: JobContext, plan_: ReturnsPlan) -> JobResult:
    # Store returns first: a credit memo adopted here is mapped before the exports below (P49).
    if push_store_returns(ctx, plan_) and plan_.memo_scan is not None:
        push_exports(ctx, plan_, plan_.memo_scan)
    return JobResult(plan=plan_.rows(), summary=plan_.summary())


def push_store_returns(ctx: JobContext, plan_: ReturnsPlan) -> bool:
    """False when the run was asked to stop (the cursor stays)."""
    for refund_orderid in plan_.nothing_to_refund:
        ctx.state.put_mapping("refund", "sitoo", str(refund_orderid), None, {"note": "nothing to refund"}, "done")
    for planned in plan_.creditmemos:
        if ctx.should_stop():
            return False
        if isinstance(planned, RecordError):
            ctx.state.put_mapping("refund", "sitoo", planned.key.removeprefix("sitoo-refund-"), None,
                                  {"error": planned.kind}, "retry")  # fmt: skip
            ctx.fail_record(planned, RETRY)
            continue
        push_creditmemo(ctx, planned)
    if plan_.highest is not None:
        with ctx.state.transaction():
            ctx.state.set_cursor(JOB, SITOO_STREAM, SitooId(plan_.highest))
    return True


def _existing_memo(ctx: JobContext, plan: CreditMemoPlan, skip: Collection[str] = ()) -> dict[str, Any] | None:
    """A credit memo of the order that an earlier unconfirmed attempt created, if any (``skip``:
    memos already recorded as earlier parts of this return)."""
    criteria = SearchCriteria().where("order_id", plan.entity_id)
    for memo in ctx.magento.search_creditmemos(criteria):
        if str(memo["entity_id"]) in skip:
            continue
        other = ctx.state.get_mapping("creditmemo", "magento", str(memo["entity_id"]))
        if other is not None and str(other.get("other_id")) != str(plan.refund_orderid):
            continue  # already accounted for (another return, or a memo exported to Sitoo)
        if memo_matches(memo, plan):
            return memo
    return None


def _memo_part(memo: dict[str, Any], memo_id: Any, part: CreditMemoPlan) -> dict[str, Any]:
    """What one credit memo of a return refunded: its own items when Magento's answer shows them
    (an adopted memo may hold fewer than planned), else the planned part."""
    items: dict[str, int] = {}
    for item in memo.get("items") or []:
        if int(item.get("order_item_id") or 0) in part.items and Decimal(str(item.get("qty") or 0)) > 0:
            key = str(int(item["order_item_id"]))
            items[key] = items.get(key, 0) + int(Decimal(str(item["qty"])))
    shipping = memo.get("shipping_amount") if memo else None
    return {"memo_id": str(memo_id), "items": items or {str(k): v for k, v in part.items.items()},
            "shipping": str(shipping if shipping is not None else part.shipping_amount)}


def _record_memo(ctx: JobContext, plan: CreditMemoPlan, done: list[dict[str, Any]], adopted: bool) -> None:
    ids = [str(p["memo_id"]) for p in done]
    with ctx.state.transaction():
        ctx.state.put_mapping("refund", "sitoo", str(plan.refund_orderid), ids[0] if ids else None,
                              {**plan.describe(), "origin": "sitoo", "adopted": adopted, "memo_ids": ids,
                               "shipping_sent_incl_tax": ctx.config.returns.shipping_amount_includes_tax}, "done")  # fmt: skip
        for memo_id in ids:
            ctx.state.put_mapping("creditmemo", "magento", memo_id, str(plan.refund_orderid),
                                  {"origin": "sitoo", "increment_id": plan.increment_id}, "done")  # fmt: skip
        ctx.succeeded(_refund_key(plan.refund_orderid))
    ctx.counts["adopted" if adopted else "creditmemos_created"] += 1


def push_creditmemo(ctx: JobContext, plan: CreditMemoPlan) -> None:
    """One store return -> its credit memo(s), each a document create that is never resent blindly.

    A return with more lines than the shop's input list limit becomes several memos (see
    ``returnplan.next_memo_part``); each memo is recorded in the refund mapping (``parts_done``) as
    soon as Magento answers, so a crash, timeout or refusal between parts resumes with the rest.
    A part whose outcome is unknown is looked up among the order's memos (by its label) first.
    """
    key = _refund_key(plan.refund_orderid)
    mapping = ctx.state.get_mapping("refund", "sitoo", str(plan.refund_orderid))
    unsettled = mapping is not None and mapping["status"] in ("pending", "retry")
    done: list[dict[str, Any]] = list(mapping["data"].get("parts_done") or []) if unsettled and mapping else []
    check_first = mapping is not None and mapping["status"] == "pending"  # an answer may have been lost
    adopted = False
    if unsettled and mapping and mapping["data"].get("shipping_amount") is not None:
        # Planned before the first attempt: shipping a part already refunded must not read as "none".
        plan = replace(plan, shipping_amount=Decimal(str(mapping["data"]["shipping_amount"])))

    def intent(status: str = "pending", **extra: Any) -> None:
        ctx.state.put_mapping("refund", "sitoo", str(plan.refund_orderid), None,
                              {**plan.describe(), "parts_done": done, **extra}, status)  # fmt: skip

    if not check_first:
        intent()
    crashpoint("returns.before_refund")
    while (part := next_memo_part(plan, done, ctx.magento.list_limit)) is not None:
        if check_first:
            found = _existing_memo(ctx, part, {str(p["memo_id"]) for p in done})
            if found is not None:
                log.info("store return %s was already refunded as credit memo %s: adopted", plan.refund_orderid, found["entity_id"])
                done.append(_memo_part(found, found["entity_id"], part))
                adopted = True
                intent()
                continue
            intent()
        try:
            memo_id = ctx.magento.refund_offline(part.entity_id, part.items, part.shipping_amount, comment=part.comment)
        except ApiError as error:
            if ctx.magento.adapt_list_limit(error, len(part.items)):
                continue  # refused as a whole, nothing saved: the next part is cut to the shop's limit
            if error.outcome_unknown or error.status is None or error.status >= 500:
                found = _existing_memo(ctx, part, {str(p["memo_id"]) for p in done})
                if found is not None:
                    done.append(_memo_part(found, found["entity_id"], part))
                    adopted, check_first = True, False
                    intent()
                    continue
                ctx.fail("refund_outcome_unknown", "ops", key,
                         f"the credit memo for store return {plan.refund_orderid} (order {plan.increment_id}) may or may "
                         f"not have been created ({error.message}); magsit checks the order's credit memos before "
                         "trying again on the next run", plan.describe(), RETRY)  # fmt: skip
                return
            kind = "refund_not_invoiced" if NOT_INVOICED in error.message else "refund_rejected"
            hint = ("invoice the order in Magento first; magsit retries" if kind == "refund_not_invoiced"
                    else "fix the order in Magento or refund by hand, then retry or resolve this exception")  # fmt: skip
            if done:
                hint += f" ({len(done)} credit memo(s) of this return are already in Magento; only the rest is sent)"
            intent("retry", error=error.message)
            ctx.fail(kind, "finance", key,
                     f"Magento refused the credit memo for store return {plan.refund_orderid} of order {plan.increment_id}: "
                     f"{error.message} — {hint}", plan.describe(), RETRY)  # fmt: skip
            return
        check_first = False
        crashpoint("returns.after_refund")
        done.append(_memo_part({}, memo_id, part))
        intent()
        crashpoint("returns.between_parts")
    _record_memo(ctx, plan, done, adopted)


def _finish_export(ctx: JobContext, plan: SitooRefundPlan, orderid: int, adopted: bool) -> None:
    if plan.deliver:
        _deliver_back(ctx, plan, orderid)
    with ctx.state.transaction():
        ctx.state.put_mapping("creditmemo", "magento", str(plan.creditmemo_id), str(orderid),
                              {**plan.describe(), "increment_id": plan.creditmemo_increment, "origin": "magento"}, "done")  # fmt: skip
        ctx.state.put_mapping("refund", "sitoo", str(orderid), str(plan.creditmemo_id), {"origin": "magento"}, "done")
        ctx.succeeded(_memo_key(plan.creditmemo_increment))
    ctx.counts["adopted" if adopted else "refund_orders_created"] += 1


def _deliver_back(ctx: JobContext, plan: SitooRefundPlan, orderid: int) -> None:
    """[returns].return_to_stock: a delivery of the negative lines puts the units back in the order's
    warehouse (checked first, so a rerun after a crash does not put them back twice)."""
    if ctx.sitoo.list_deliveries(orderid):
        return
    order = ctx.sitoo.get_order(orderid)
    items = order.get("orderitems") or []
    lines = [(int(items[i]["orderitemid"]), qty) for i, qty in plan.deliver if i < len(items)]
    warehouse = order.get("warehouseid") or plan.payload.get("warehouseid")
    if lines and warehouse:
        ctx.sitoo.add_delivery(orderid, int(warehouse), lines, ref=plan.externalid)


def _defer(ctx: JobContext, memo_id: str, increment: str) -> None:
    """The memo waits in the retry queue until the store returns of its order are settled."""
    if (ctx.state.get_mapping("creditmemo", "magento", memo_id) or {}).get("status") != "done":  # not adopted just now
        ctx.state.put_mapping("creditmemo", "magento", memo_id, None,
                              {"increment_id": increment, "deferred": True}, "retry")  # fmt: skip


def push_exports(ctx: JobContext, plan_: ReturnsPlan, scan: MemoScan) -> None:
    for memo_id, increment in plan_.deferred:
        _defer(ctx, memo_id, increment)
    in_flight = _refunds_in_flight(ctx)  # after this run's store returns: what they left unconfirmed
    for planned in plan_.exports:
        if ctx.should_stop():
            return
        if isinstance(planned, SitooRefundPlan) and in_flight.get(planned.increment_id):
            # A store return of this order is still unconfirmed: this memo may be its credit memo.
            _defer(ctx, str(planned.creditmemo_id), planned.creditmemo_increment)
            continue
        if isinstance(planned, RecordError):
            memo_id = plan_.failed_memo_ids.get(planned.key)
            if memo_id:
                ctx.state.put_mapping("creditmemo", "magento", memo_id, None,
                                      {"increment_id": planned.key.removeprefix("creditmemo-"), "error": planned.kind},
                                      "retry")  # fmt: skip
            ctx.fail_record(planned, RETRY)
            continue
        push_export(ctx, planned)
    save_cursor(ctx, JOB, MEMO_STREAM, scan.cursor, scan.seen, start=scan.start,
                lookback=timedelta(seconds=ctx.config.orders.lookback_seconds),
                initial_lookback=timedelta(hours=ctx.config.orders.initial_lookback_hours))  # fmt: skip


def push_export(ctx: JobContext, plan: SitooRefundPlan) -> None:
    key = _memo_key(plan.creditmemo_increment)
    mapping = ctx.state.get_mapping("creditmemo", "magento", str(plan.creditmemo_id))
    if mapping and mapping["status"] == "done":
        return  # recorded meanwhile (this run's store returns adopted it)
    if mapping and mapping["status"] == "pending":
        found = ctx.sitoo.find_orders_by_externalid([plan.externalid], fields=("orderid", "externalid"))
        if found:
            _finish_export(ctx, plan, int(found[0]["orderid"]), adopted=True)
            return
    ctx.state.put_mapping("creditmemo", "magento", str(plan.creditmemo_id), None,
                          {**plan.describe(), "increment_id": plan.creditmemo_increment}, "pending")  # fmt: skip
    try:
        orderid = ctx.sitoo.create_order(plan.payload)
    except ApiError as error:
        if error.outcome_unknown or error.status is None or error.status >= 500 or "already exists" in error.message:
            found = ctx.sitoo.find_orders_by_externalid([plan.externalid], fields=("orderid", "externalid"))
            if found:
                _finish_export(ctx, plan, int(found[0]["orderid"]), adopted=True)
                return
        if error.outcome_unknown or error.status is None or error.status >= 500:
            ctx.fail("creditmemo_outcome_unknown", "ops", key,
                     f"the Sitoo refund order for credit memo {plan.creditmemo_increment} may or may not have been "
                     f"created ({error.message}); magsit looks externalid {plan.externalid} up before trying again",
                     plan.describe(), RETRY)  # fmt: skip
            return
        ctx.state.put_mapping("creditmemo", "magento", str(plan.creditmemo_id), None,
                              {**plan.describe(), "increment_id": plan.creditmemo_increment, "error": error.message}, "retry")  # fmt: skip
        ctx.fail("creditmemo_export_failed", "finance", key,
                 f"Sitoo refused the refund order for Magento credit memo {plan.creditmemo_increment} of order "
                 f"{plan.increment_id}: {error.message}", plan.describe(), RETRY)  # fmt: skip
        return
    crashpoint("returns.after_export")
    _finish_export(ctx, plan, int(orderid), adopted=False)


def _error_view(error: RecordError) -> dict[str, Any]:
    return {"action": "fail", "key": error.key, "exception": error.kind, "owner": error.owner, "message": error.message}
