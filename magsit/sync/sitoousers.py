"""Creating Sitoo customers exactly once when several jobs may want the same one.

push-orders (the customer of a web order) and sync-customers (a changed Magento customer) both
create Sitoo users for e-mails they did not find. Two runs that look up the same new address at
the same moment would both send the create; Sitoo refuses the second ("must be unique"), which
would surface as a false exception for e-commerce and leave that run's customer unlinked. So
creation is a short critical section under one lock per state file, shared by every job, process
and daemon thread: re-check (the other run may have linked the address meanwhile), mark each
address with an intent row, create, record the user id, release.

The intent row (a ``customer`` mapping with no user id, status ``creating``) covers a run killed
between the create and the record: whoever sees it next searches Sitoo before creating again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from magsit.errors import LockedError, MagsitError
from magsit.state.lock import JobLock
from magsit.sync.orderpayload import normalise_email

if TYPE_CHECKING:
    from magsit.runner import JobContext

USERS_LOCK = "sitoo-users"
LOCK_WAIT_SECONDS = 300.0  # far above the lookup + one batch create another run holds it for
CREATING = "creating"


@contextmanager
def creating_users(ctx: JobContext, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Called from push steps only (a dry run never gets there)."""
    try:
        lock = JobLock(ctx.config.state.path, USERS_LOCK, wait_seconds).acquire()
    except LockedError as exc:
        raise MagsitError(
            f"{ctx.job}: another run has been creating Sitoo customers for over {wait_seconds:.0f} s "
            f"({exc.message.split(': ', 1)[-1]}); nothing was created, the next run tries again"
        ) from None
    try:
        yield
    finally:
        lock.release()


Lookup = Callable[[list[str]], dict[str, list[dict[str, Any]]]]


def spellings_of(raw_emails: Iterable[Any]) -> dict[str, list[str]]:
    """Normalised e-mail -> the spellings Sitoo is asked for: the normalised form and each address
    as given (trimmed). Whether Sitoo's ``email`` filter is exact or case-insensitive is unstated
    (sitoo-api.md §7), so a user stored as ``Anna.Berg@Example.com`` is found either way."""
    out: dict[str, list[str]] = {}
    for raw in raw_emails:
        trimmed = raw.strip() if isinstance(raw, str) else ""
        key = normalise_email(trimmed)
        if not key:
            continue
        variants = out.setdefault(key, [key])
        if trimmed not in variants:
            variants.append(trimmed)
    return out


def users_by_email(
    lookup: Lookup, emails: Iterable[str], spellings: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Sitoo users per normalised e-mail (only e-mails with users), every spelling asked in one
    ``lookup``; a user answering to several spellings is listed once."""
    asked = {email: list(dict.fromkeys([email, *((spellings or {}).get(email) or ())])) for email in emails}
    found = lookup(list(dict.fromkeys(v for variants in asked.values() for v in variants))) if asked else {}
    out: dict[str, list[dict[str, Any]]] = {}
    for email, variants in asked.items():
        users: dict[str, dict[str, Any]] = {}
        for variant in variants:
            for user in found.get(variant) or []:
                if normalise_email(user.get("email")) == email:
                    users.setdefault(str(user.get("userid")), user)
        if users:
            out[email] = list(users.values())
    return out


def settle_new_users(
    ctx: JobContext, emails: Sequence[str], lookup: Lookup, *, searched: bool,
    spellings: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Inside :func:`creating_users`: the Sitoo users that now hold some of ``emails`` (normalised),
    and the rest, each marked with an intent row, to be created by the caller now.

    ``lookup``: Sitoo users per e-mail as given; ``spellings`` (from :func:`spellings_of`) adds the
    original spellings to ask. ``searched``: the caller already searched Sitoo for these e-mails
    before taking the lock, so only those another run has linked or begun to create since are
    searched again.
    """
    ask: list[str] = []
    for email in emails:
        mapping = ctx.state.get_mapping("customer", "email", email)
        if not searched or (mapping and (mapping.get("other_id") or mapping.get("status") == CREATING)):
            ask.append(email)
    existing = users_by_email(lookup, ask, spellings)
    fresh = [email for email in emails if email not in existing]
    if fresh:
        with ctx.state.transaction():
            for email in fresh:
                ctx.state.put_mapping("customer", "email", email, None, {"created_by": ctx.job}, CREATING)
    return existing, fresh


def forget_refused(ctx: JobContext, email: str) -> None:
    """Sitoo refused the create outright: nothing exists, the intent row goes."""
    mapping = ctx.state.get_mapping("customer", "email", email)
    if mapping and mapping.get("status") == CREATING and not mapping.get("other_id"):
        ctx.state.delete_mapping("customer", "email", email)
