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
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from magsit.errors import ApiError, RecordError
from magsit.magento.search import SearchCriteria, keyset_criteria
from magsit.runner import JobContext, JobResult
from magsit.sync.keyset import Position, key_of, keyset_scan, read_start, save_cursor
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


def _pushed_orders(ctx: JobContext) -> dict[str, tuple[str, dict[str, Any]]]:
    """Sitoo orderid -> (increment_id, order mapping data) of every web order magsit pushed."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for mapping in ctx.state.mappings("order"):
        if mapping.get("other_id") and mapping["data"].get("lines") is not None:
            out[str(mapping["other_id"])] = (str(mapping["external_id"]), mapping["data"])
    return out


# -- Sitoo -> Magento ------------------------------------------------------------------------------
def pull_store_returns(ctx: JobContext, pushed: dict[str, tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], int | None]:
    cursor = ctx.state.get_cursor(JOB, SITOO_STREAM)
    if cursor is None:
        start = min((int(k) for k in pushed), default=None)
    else:
        start = max(1, int(cursor) - ID_OVERLAP + 1)
    rows: list[dict[str, Any]] = []
    highest = None if cursor is None else int(cursor)
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
    return rows, highest


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


def plan_store_returns(
    ctx: JobContext, rows: list[dict[str, Any]], pushed: dict[str, tuple[str, dict[str, Any]]]
) -> list[CreditMemoPlan | RecordError]:
    plans: list[CreditMemoPlan | RecordError] = []
    for row in rows:
        if not is_store_return(row):
            continue
        original = pushed.get(str(original_orderid(row)))
        if original is None:
            continue  # a return of a POS sale, not of a web order: Magento has nothing to refund
        mapping = ctx.state.get_mapping("refund", "sitoo", str(row["orderid"]))
        if (mapping and mapping["status"] == "done") or not ctx.is_due(_refund_key(row["orderid"])):
            continue  # done, or a failed return waiting for its backoff (`magsit exceptions retry` skips it)
        increment_id, data = original
        shipping = _shipping_left(ctx, int(data["entity_id"])) if ctx.config.returns.refund_shipping else None
        result = plan_creditmemo(row, increment_id, data, shipping_sku=ctx.config.orders.shipping_sku, shipping_left=shipping)
        if result is None:
            ctx.state.put_mapping("refund", "sitoo", str(row["orderid"]), None, {"note": "nothing to refund"}, "done")
            continue
        plans.append(result)
    return plans


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


def store_returns(ctx: JobContext, pushed: dict[str, tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    rows, highest = pull_store_returns(ctx, pushed)
    plans = plan_store_returns(ctx, rows, pushed)
    view = [p.describe() if isinstance(p, CreditMemoPlan) else _error_view(p) for p in plans]
    if ctx.dry_run:
        return view
    for plan in plans:
        if ctx.should_stop():
            return view
        if isinstance(plan, RecordError):
            ctx.state.put_mapping("refund", "sitoo", plan.key.removeprefix("sitoo-refund-"), None, {"error": plan.kind}, "retry")
            ctx.fail_record(plan, RETRY)
            continue
        push_creditmemo(ctx, plan)
    if highest is not None:
        with ctx.state.transaction():
            ctx.state.set_cursor(JOB, SITOO_STREAM, highest)
    return view


# -- Magento -> Sitoo ------------------------------------------------------------------------------
def pull_creditmemos(ctx: JobContext) -> tuple[list[dict[str, Any]], Position | None, list[Position], str]:
    settings = ctx.config.orders
    cursor = Position.from_value(ctx.state.get_cursor(JOB, MEMO_STREAM))
    start = read_start(cursor, run_start=ctx.started_at, lookback=timedelta(seconds=settings.lookback_seconds),
                       initial_lookback=timedelta(hours=settings.initial_lookback_hours),
                       since=ctx.options.get("since"))  # fmt: skip

    def fetch(filters: list[tuple[str, str, str]], page_size: int) -> tuple[list[dict[str, Any]], int]:
        return ctx.magento.search_page("/creditmemos", keyset_criteria(filters, page_size))

    memos = list(keyset_scan(fetch, start, ctx.magento.page_size))
    seen = [key_of(m) for m in memos]
    have = {str(m["entity_id"]) for m in memos}
    for mapping in ctx.state.mappings("creditmemo"):
        due = ctx.is_due(_memo_key(mapping["data"].get("increment_id") or mapping["external_id"]))
        if mapping["status"] in ("pending", "retry") and mapping["external_id"] not in have and due:
            memos.append(ctx.magento.get_creditmemo(int(mapping["external_id"])))
    return memos, cursor, seen, start


def plan_creditmemo_exports(
    ctx: JobContext, memos: list[dict[str, Any]], pushed: dict[str, tuple[str, dict[str, Any]]]
) -> list[SitooRefundPlan | RecordError]:
    by_entity = {str(data.get("entity_id")): (sitoo_id, inc, data) for sitoo_id, (inc, data) in pushed.items()}
    in_flight = {str(m["data"].get("entity_id")) for m in ctx.state.mappings("refund", status="pending")}
    plans: list[SitooRefundPlan | RecordError] = []
    for memo in memos:
        mapping = ctx.state.get_mapping("creditmemo", "magento", str(memo["entity_id"]))
        if (mapping and mapping["status"] == "done") or is_magsit_memo(memo):
            continue  # exported already, or created by magsit from a store return (P49)
        target = by_entity.get(str(memo.get("order_id")))
        if target is None:
            continue  # the order was not fulfilled through Sitoo
        sitoo_id, increment_id, data = target
        if str(memo.get("order_id")) in in_flight:
            # A store return of this order has an unconfirmed credit memo: this may be it (its list
            # row may lack the comment marker). Wait until that is settled rather than echo it.
            ctx.state.put_mapping("creditmemo", "magento", str(memo["entity_id"]), None,
                                  {"increment_id": memo.get("increment_id"), "deferred": True}, "retry")  # fmt: skip
            continue
        plans.append(plan_sitoo_refund(memo, increment_id, int(sitoo_id), data,
                                       externalid_prefix=ctx.config.orders.externalid_prefix,
                                       return_to_stock=ctx.config.returns.return_to_stock))  # fmt: skip
    return plans


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


def push_export(ctx: JobContext, plan: SitooRefundPlan) -> None:
    key = _memo_key(plan.creditmemo_increment)
    mapping = ctx.state.get_mapping("creditmemo", "magento", str(plan.creditmemo_id))
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


def creditmemo_exports(ctx: JobContext, pushed: dict[str, tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    memos, cursor, seen, start = pull_creditmemos(ctx)
    plans = plan_creditmemo_exports(ctx, memos, pushed)
    view = [p.describe() if isinstance(p, SitooRefundPlan) else _error_view(p) for p in plans]
    if ctx.dry_run:
        return view
    for plan in plans:
        if ctx.should_stop():
            return view
        if isinstance(plan, RecordError):
            memo_id = next((str(m["entity_id"]) for m in memos if _memo_key(m.get("increment_id")) == plan.key), None)
            if memo_id:
                ctx.state.put_mapping("creditmemo", "magento", memo_id, None,
                                      {"increment_id": plan.key.removeprefix("creditmemo-"), "error": plan.kind}, "retry")  # fmt: skip
            ctx.fail_record(plan, RETRY)
            continue
        push_export(ctx, plan)
    save_cursor(ctx, JOB, MEMO_STREAM, cursor, seen, start=start,
                lookback=timedelta(seconds=ctx.config.orders.lookback_seconds),
                initial_lookback=timedelta(hours=ctx.config.orders.initial_lookback_hours))  # fmt: skip
    return view


def _error_view(error: RecordError) -> dict[str, Any]:
    return {"action": "fail", "key": error.key, "exception": error.kind, "owner": error.owner, "message": error.message}


def run(ctx: JobContext) -> JobResult:
    pushed = _pushed_orders(ctx)
    # Store returns first: a credit memo created (or adopted) here is mapped before the Magento
    # scan below sees it, so it is never exported back to Sitoo (P49).
    view = store_returns(ctx, pushed)
    if ctx.config.returns.magento_to_sitoo:
        view += creditmemo_exports(ctx, pushed)
    if ctx.dry_run:
        for entry in view:
            if entry.get("action") == "fail":
                ctx.fail(entry["exception"], entry["owner"], entry["key"], entry["message"])
    summary = [f"{len(pushed)} pushed web order(s) watched; {len(view)} return(s)/credit memo(s) to handle"]
    return JobResult(plan=view, summary=summary)
