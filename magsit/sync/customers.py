"""sync-customers: one customer per normalised e-mail across Magento and Sitoo.

pull  — Magento customers of the configured website changed since the cursor (keyset
        ``(updated_at, id)``, lookback, as push-orders). Sitoo has no modified-since filter on users
        (sitoo-api §7), so: with ``create_in_magento`` every Sitoo customer is read (a paged full
        scan, needed anyway to find POS sign-ups); otherwise only the changed Magento customers'
        e-mails are looked up (one call per address and spelling — Sitoo's ``email`` filter takes one
        value and may be exact-match, so both the trimmed original and the normalised form are asked).
        Sitoo-only e-mails of a scan are looked up in Magento in batches (``like`` filters ORed in
        one group: case-insensitive on MySQL, unlike ``eq``/``in`` on a case-sensitive collation).
plan  — ``customerplan.plan_customers`` (pure).
push  — Sitoo users created in batches (normalised e-mail, Magento id in ``externalid``), updated by
        partial PUT; Magento customers updated GET→merge→PUT *without* ``addresses`` (P47) and
        created only when ``create_in_magento`` and ``send_welcome_email`` allow it (below).

Welcome e-mails: ``POST /V1/customers`` always sends Magento's new-account e-mail (magento-api §12);
the REST API has no switch to suppress it. With ``send_welcome_email = false`` magsit therefore does
not create Magento accounts at all and reports how many POS customers are waiting; turning it on is
an explicit decision (or disable the new-account e-mail in the shop first). See docs/runbook.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from magsit.config import Config
from magsit.errors import ApiError, RecordError
from magsit.flow import Doing, Preview, plural, would, would_counts
from magsit.magento.search import SearchCriteria, keyset_criteria
from magsit.runner import JobContext, JobResult
from magsit.state.cursor import KeysetPosition
from magsit.sync.customerplan import CustomerAction, names_of, normalise_email, plan_customers, valid_email
from magsit.sync.keyset import key_of, keyset_scan, read_start, save_cursor
from magsit.sync.sitoousers import (
    creating_users,
    forget_refused,
    settle_new_users,
    spellings_of,
    users_by_email,
)
from magsit.testing.crashpoints import crashpoint

log = logging.getLogger("magsit.customers")

JOB = "sync-customers"
STREAM = "magento-customers"
MAGENTO_EMAIL_BATCH = 20  # ORed like filters per search
DUPLICATE = "already exists"
REJECTED_RETRY = timedelta(hours=1)  # a refused record is re-read, backing off, until fixed or resolved
UNANSWERED_RETRY = timedelta(minutes=15)
UNANSWERED_LIMIT = 3  # consecutive updates without an answer: the API is down, the run fails
RETRIED_KINDS = ("customer_rejected", "customer_update_failed")


def _mappings(ctx: JobContext) -> dict[str, dict[str, Any]]:
    return {m["external_id"]: m for m in ctx.state.mappings("customer")}


def _magento_by_email(ctx: JobContext, emails: list[str]) -> list[dict[str, Any]]:
    website = ctx.config.magento.website_id
    found: list[dict[str, Any]] = []
    for i in range(0, len(emails), MAGENTO_EMAIL_BATCH):
        chunk = emails[i : i + MAGENTO_EMAIL_BATCH]
        # LIKE without wildcards is a case-insensitive equality (a `_` matches any one character:
        # the plan compares normalised e-mails, so an over-match is harmless).
        criteria = SearchCriteria().any_of(*[("email", e.replace("%", ""), "like") for e in chunk]).where("website_id", website)
        wanted = set(chunk)
        found.extend(c for c in ctx.magento.search_customers(criteria) if normalise_email(c.get("email")) in wanted)
    return found


@dataclass
class Pulled:
    magento: list[dict[str, Any]]  # changed Magento customers plus those looked up by e-mail
    sitoo: list[dict[str, Any]]  # Sitoo users to compare (all on a full scan, else the changed e-mails')
    known: set[str]  # linked, unchanged e-mails whose Magento side was not read
    cursor: KeysetPosition | None
    seen: list[KeysetPosition]
    start: str
    held: set[str] = field(default_factory=set)  # e-mails with an ignored exception


@dataclass
class Plan:
    actions: list[CustomerAction]
    magento: list[dict[str, Any]]  # what push needs to name the customers it writes
    cursor: KeysetPosition | None
    seen: list[KeysetPosition]
    start: str
    summary: list[str]
    counts: dict[str, int]
    welcome_email: bool = False  # [customers].send_welcome_email: Magento accounts are created only then

    def _count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def doings(self) -> tuple[Doing, ...]:
        return (("to_create_in_sitoo", self._count("create_sitoo"), "create", "Sitoo customer"),
                ("to_create_in_magento", self._count("create_magento") if self.welcome_email else 0, "create",
                 "Magento account"),
                ("to_update", self._count("update"), "update", "customer"),
                ("to_link", self._count("link"), "link", "customer"))  # fmt: skip

    def preview(self) -> Preview:
        problems = [RecordError(a.error_kind or "customer_rejected", "ecommerce", a.email, a.message)
                    for a in self.actions if a.kind == "fail"]  # fmt: skip
        summary = [*self.summary, would(*self.doings(), notes={"to_link": "found on both sides: only magsit's own "
                                                                          "link is written"})]  # fmt: skip
        waiting = 0 if self.welcome_email else self._count("create_magento")
        if waiting:
            summary.append(f"{plural(waiting, 'POS customer')} with no Magento account would not be created: Magento's "
                           "REST API always sends the welcome e-mail, and [customers].send_welcome_email is false")
        # A Magento create that the setting keeps back is no write: the plan table must not count it as one.
        rows = [{**a.describe(), **({"write": False} if a.kind == "create_magento" and not self.welcome_email else {})}
                for a in self.actions]  # fmt: skip
        return Preview(rows, summary, problems,
                       {**self.counts, "planned": len(self.actions), **would_counts(*self.doings())})


def pull(ctx: JobContext) -> Pulled:
    settings = ctx.config.customers
    website = ctx.config.magento.website_id
    lookback = timedelta(seconds=ctx.config.orders.lookback_seconds)
    cursor = ctx.state.get_cursor(JOB, STREAM, KeysetPosition)
    start = read_start(cursor, run_start=ctx.started_at, lookback=lookback,
                       initial_lookback=timedelta(hours=ctx.config.orders.initial_lookback_hours),
                       since=ctx.options.get("since"))  # fmt: skip

    def fetch(filters: list[tuple[str, str, str]], page_size: int) -> tuple[list[dict[str, Any]], int]:
        items, total = ctx.magento.search_page(
            "/customers/search", keyset_criteria([*filters, ("website_id", str(website), "eq")], page_size)
        )
        for item in items:
            item.setdefault("entity_id", item.get("id"))  # customers answer `id`, sort as entity_id
        return items, total

    changed = list(keyset_scan(fetch, start, ctx.magento.page_size, what="Magento customers"))
    seen = [key_of(c) for c in changed]
    mappings = _mappings(ctx)
    full = settings.create_in_magento or bool(ctx.options.get("full"))
    # Customers that failed before and are due again: read by e-mail, since the cursor moved on.
    in_changed = {normalise_email(c.get("email")) for c in changed}
    retried = sorted(e for e in ctx.due_payload_values("email", RETRIED_KINDS) if valid_email(e) and e not in in_changed)
    if full:
        sitoo = list(ctx.sitoo.iter_users())
    else:
        spellings = spellings_of([*retried, *(c.get("email") for c in changed if valid_email(str(c.get("email") or "").strip()))])
        found = users_by_email(ctx.sitoo.find_users_by_email, spellings, spellings)
        sitoo = [user for users in found.values() for user in users]
    magento = list(changed) + (_magento_by_email(ctx, retried) if retried else [])
    known: set[str] = set()
    if full:
        in_changed |= set(retried)
        ask: list[str] = []
        for user in sitoo:
            email = normalise_email(user.get("email"))
            if user.get("role") not in (None, "") or not valid_email(email) or email in in_changed:
                continue
            mapping = mappings.get(email)
            data = mapping["data"] if mapping else {}
            if data.get("magento_id") and (data.get("firstname"), data.get("lastname")) == names_of(user, "sitoo"):
                known.add(email)  # linked and unchanged since the last sync: no Magento read needed
            else:
                ask.append(email)
        magento += _magento_by_email(ctx, list(dict.fromkeys(ask)))
        # Linked customers whose Magento side was not read stay out of the plan unless changed.
        sitoo = [u for u in sitoo if normalise_email(u.get("email")) not in known]
    return Pulled(magento, sitoo, known, cursor, seen, start, held=ctx.held_keys())


def plan(pulled: Pulled, config: Config, now: datetime) -> Plan:
    settings = config.customers
    actions = plan_customers(pulled.magento, pulled.sitoo, master=settings.master,
                             create_in_magento=settings.create_in_magento, magento_known=pulled.known)  # fmt: skip
    counts: dict[str, int] = {}
    if pulled.held:  # no write until `exceptions retry`
        counts["held"] = sum(1 for a in actions if a.email in pulled.held)
        actions = [a for a in actions if a.email not in pulled.held]
    summary = [f"{len(pulled.seen)} Magento customer(s) new or edited since the last run, "
               f"{len(pulled.sitoo)} Sitoo customer(s) compared"]  # fmt: skip
    return Plan(actions, pulled.magento, pulled.cursor, pulled.seen, pulled.start, summary, counts,
                welcome_email=settings.send_welcome_email)


def _remember(ctx: JobContext, email: str, magento_id: int | None, userid: str | None, first: str, last: str) -> None:
    data = {"sitoo_userid": userid, "magento_id": magento_id, "firstname": first, "lastname": last}
    ctx.state.put_mapping("customer", "email", email, userid, data, "done")
    ctx.succeeded(email)


def _names(action: CustomerAction, magento: list[dict[str, Any]]) -> tuple[str, str]:
    """The names both sides hold after the action (what the next run compares against)."""
    if action.magento:
        return str(action.magento.get("firstname", "")), str(action.magento.get("lastname", ""))
    if "namefirst" in action.sitoo:
        return str(action.sitoo["namefirst"]), str(action.sitoo.get("namelast", ""))
    for customer in magento:
        if normalise_email(customer.get("email")) == action.email:
            return names_of(customer, "magento")
    return "", ""


def _rejected(ctx: JobContext, action: CustomerAction, system: str, error: ApiError) -> None:
    ctx.fail("customer_rejected", "ecommerce", action.email,
             f"{system} refused the customer {action.email}: {error.message} — correct the customer in {system}; "
             "magsit tries again by itself (hourly, backing off)", action.describe(), REJECTED_RETRY)  # fmt: skip


def _unanswered(ctx: JobContext, action: CustomerAction, system: str, error: ApiError) -> None:
    ctx.fail("customer_update_failed", "ops", action.email,
             f"{system} did not answer the update of customer {action.email} ({error.message}); magsit tries again "
             "on a later run (after 15 min, backing off) — nothing to do unless it persists", action.describe(),
             UNANSWERED_RETRY)  # fmt: skip


def _write(ctx: JobContext, actions: list[CustomerAction], magento: list[dict[str, Any]]) -> None:
    settings = ctx.config.customers
    creates = [a for a in actions if a.kind == "create_sitoo"]
    if creates:
        actions = [a for a in actions if a.kind != "create_sitoo"] + _create_in_sitoo(ctx, creates, magento)
    unanswered = 0
    for action in actions:
        if ctx.should_stop():
            return
        if action.kind == "fail":
            ctx.fail(action.error_kind or "customer_rejected", "ecommerce", action.email, action.message, action.describe())
        elif action.kind == "link":
            _remember(ctx, action.email, action.magento_id, action.userid, *_names(action, magento))
            ctx.counts["linked"] += 1
        elif action.kind == "update":
            try:
                if action.sitoo and action.userid:
                    ctx.sitoo.update_user(action.userid, action.sitoo)
                if action.magento and action.magento_id is not None:
                    ctx.magento.update_customer(action.magento_id, action.magento)  # never sends addresses
            except ApiError as error:
                system = "Magento" if error.system == "magento" else "Sitoo"
                if error.status in (401, 403):
                    raise
                if error.status is None or error.status >= 500 or error.retryable:
                    # One customer the API keeps failing on must not stop the others; several in a
                    # row mean the API is down: the run fails and the next one starts over.
                    unanswered += 1
                    if unanswered >= UNANSWERED_LIMIT:
                        raise
                    _unanswered(ctx, action, system, error)
                    continue
                _rejected(ctx, action, system, error)
                continue
            unanswered = 0
            _remember(ctx, action.email, action.magento_id, action.userid, *_names(action, magento))
            ctx.counts["updated"] += 1
        elif action.kind == "create_magento":
            if not settings.send_welcome_email:
                ctx.counts["magento_create_skipped"] += 1
                continue
            _create_in_magento(ctx, action)


def _create_in_sitoo(ctx: JobContext, creates: list[CustomerAction], magento_read: list[dict[str, Any]]) -> list[CustomerAction]:
    """Creates the Sitoo users still missing; returns the plan for those another run (push-orders
    linking an order's customer, say) created since this run looked."""
    settings = ctx.config.customers
    with creating_users(ctx):
        raw = [c.get("email") for c in magento_read if normalise_email(c.get("email")) in {a.email for a in creates}]
        existing, fresh = settle_new_users(ctx, [a.email for a in creates], ctx.sitoo.find_users_by_email, searched=True,
                                           spellings=spellings_of(raw))  # fmt: skip
        replanned: list[CustomerAction] = []
        if existing:
            magento = [c for c in magento_read if normalise_email(c.get("email")) in existing]
            sitoo = [user for users in existing.values() for user in users]
            replanned = plan_customers(magento, sitoo, master=settings.master, create_in_magento=False)
        creates = [a for a in creates if a.email in fresh]
        if not creates:
            return replanned
        results = ctx.sitoo.add_users([a.sitoo for a in creates])
        crashpoint("customers.after_sitoo_create")
        for action, result in zip(creates, results, strict=False):
            if result.ok and result.value:
                _remember(ctx, action.email, action.magento_id, str(result.value), action.sitoo["namefirst"], action.sitoo["namelast"])
                ctx.counts["sitoo_created"] += 1
            else:
                forget_refused(ctx, action.email)
                ctx.fail("customer_rejected", "ecommerce", action.email,
                         f"Sitoo refused the new customer {action.email}: {result.error} — correct the customer in "
                         "Magento; magsit tries again by itself (hourly, backing off)", action.describe(),
                         REJECTED_RETRY)  # fmt: skip
    return replanned


def _create_in_magento(ctx: JobContext, action: CustomerAction) -> None:
    body = {**action.magento, "website_id": ctx.config.magento.website_id, "group_id": ctx.config.customers.group_id}
    try:
        created = ctx.magento.create_customer(body)
        magento_id = int(created["id"])
        crashpoint("customers.after_magento_create")
    except ApiError as error:
        if not (error.outcome_unknown or DUPLICATE in error.message or (error.status or 500) >= 500):
            _rejected(ctx, action, "Magento", error)
            return
        # Check, never re-post: the account may exist (created by the lost attempt or meanwhile).
        found = _magento_by_email(ctx, [action.email])
        if not found:
            ctx.fail("customer_rejected", "ecommerce", action.email,
                     f"creating the Magento account for {action.email} had an unknown outcome ({error.message}); "
                     "magsit looks it up before trying again on the next run", action.describe(), timedelta(minutes=15))  # fmt: skip
            return
        magento_id = int(found[0]["id"])
    if action.userid:
        ctx.sitoo.update_user(action.userid, {"externalid": str(magento_id)})
    _remember(ctx, action.email, magento_id, action.userid, action.magento["firstname"], action.magento["lastname"])
    ctx.counts["magento_created"] += 1


def push(ctx: JobContext, planned: Plan) -> JobResult:
    ctx.counts.update(planned.counts)
    _write(ctx, planned.actions, planned.magento)
    summary = list(planned.summary)
    changed = sum(ctx.counts.get(k, 0) for k in ("linked", "updated", "sitoo_created", "magento_created"))
    summary.append(f"{changed} customer(s) changed (linked, updated or created)")
    waiting = ctx.counts.get("magento_create_skipped", 0)
    if waiting:
        summary.append(
            f"{waiting} POS customer(s) have no Magento account and were not created: Magento's REST API always sends "
            "the welcome e-mail, and [customers].send_welcome_email is false"
        )
    save_cursor(ctx, JOB, STREAM, planned.cursor, planned.seen, start=planned.start,
                lookback=timedelta(seconds=ctx.config.orders.lookback_seconds),
                initial_lookback=timedelta(hours=ctx.config.orders.initial_lookback_hours))  # fmt: skip
    return JobResult(plan=[a.describe() for a in planned.actions], summary=summary)
