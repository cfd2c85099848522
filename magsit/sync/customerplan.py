"""sync-customers, pure part: e-mail normalisation and the merge plan (no I/O, property-tested).

One customer per normalised e-mail (trimmed, casefolded) across both systems. The plan gets, per
normalised e-mail, what each side holds and what the mapping table remembers, and decides:

- Magento customer, no Sitoo user            -> create the Sitoo user (Magento id in ``externalid``)
- Magento customer, one Sitoo user           -> link; names that differ follow ``[customers].master``
- Sitoo user, no Magento customer            -> create in Magento (only with ``create_in_magento``)
- an invalid e-mail, or the same e-mail twice on one side -> an exception, nothing written

Updates never carry addresses (a Magento PUT with ``addresses`` deletes unlisted ones, P47).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from magsit.sync.orderpayload import normalise_email
from magsit.values import as_int

__all__ = ["normalise_email", "valid_email", "CustomerAction", "plan_customers", "names_of"]

# Deliberately simple: one @, no whitespace, a dot in the domain. Both shops validate roughly
# like this; anything it rejects would be rejected by the other side's API anyway.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.][^@\s]*")

Kind = Literal["create_sitoo", "create_magento", "update", "link", "fail"]


def valid_email(email: str | None) -> bool:
    text = (email if isinstance(email, str) else "").strip()
    return bool(text) and len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def names_of(record: dict[str, Any], system: str) -> tuple[str, str]:
    if system == "magento":
        return str(record.get("firstname") or "").strip(), str(record.get("lastname") or "").strip()
    return str(record.get("namefirst") or "").strip(), str(record.get("namelast") or "").strip()


@dataclass
class CustomerAction:
    kind: Kind
    email: str  # the normalised e-mail: the record key of exceptions and the mapping key
    magento_id: int | None = None
    userid: str | None = None
    sitoo: dict[str, Any] = field(default_factory=dict)  # Sitoo user fields to write (create body or PUT)
    magento: dict[str, Any] = field(default_factory=dict)  # Magento customer fields to write
    error_kind: str | None = None
    message: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.kind, "email": self.email}
        if self.magento_id is not None:
            out["magento_id"] = self.magento_id
        if self.userid is not None:
            out["sitoo_userid"] = self.userid
        if self.sitoo:
            out["sitoo"] = self.sitoo
        if self.magento:
            out["magento"] = self.magento
        if self.error_kind:
            out.update(exception=self.error_kind, message=self.message)
        return out


def _fail(email: str, kind: str, message: str, **ids: Any) -> CustomerAction:
    return CustomerAction("fail", email, error_kind=kind, message=message, **ids)


def plan_customers(
    magento: list[dict[str, Any]],
    sitoo: list[dict[str, Any]],
    *,
    master: str = "magento",
    create_in_magento: bool = False,
    magento_known: set[str] | None = None,
) -> list[CustomerAction]:
    """The merge plan.

    ``magento``: Magento customers to consider (the changed ones plus any looked up for Sitoo-only
    e-mails), all of the configured website. ``sitoo``: Sitoo customer users (``role`` null) found
    for those e-mails, or all of them on a full scan. ``magento_known``: normalised e-mails known to
    exist in Magento although not in ``magento`` (so a Sitoo-only e-mail there is not created).
    Records with an invalid e-mail are keyed by their id, since the e-mail cannot key them.
    """
    actions: list[CustomerAction] = []
    by_email_m: dict[str, list[dict[str, Any]]] = {}
    by_email_s: dict[str, list[dict[str, Any]]] = {}
    for customer in magento:
        raw = customer.get("email")
        if not valid_email(raw):
            actions.append(_fail(f"magento-customer-{customer.get('id')}", "invalid_email",
                                 f"Magento customer {customer.get('id')} has an invalid e-mail address {raw!r}; "
                                 "correct it in the Magento admin (Customers › All Customers)",
                                 magento_id=as_int(customer.get("id"))))  # fmt: skip
            continue
        if as_int(customer.get("id")) is None:
            actions.append(_fail(f"magento-customer-{str(customer.get('id'))[:40]}", "customer_unreadable",
                                 f"Magento sent customer {raw} without a usable id ({str(customer.get('id'))[:40]!r}); "
                                 "nothing was written for it. Report it to whoever runs the Magento instance"))  # fmt: skip
            continue
        by_email_m.setdefault(normalise_email(raw), []).append(customer)
    for user in sitoo:
        if user.get("role") not in (None, ""):
            continue  # staff, not a customer
        raw = user.get("email")
        if not valid_email(raw):
            actions.append(_fail(f"sitoo-user-{user.get('userid')}", "invalid_email",
                                 f"Sitoo customer {user.get('userid')} has an invalid e-mail address {raw!r}; "
                                 "correct it in Sitoo Backoffice (Customers)", userid=str(user.get("userid"))))  # fmt: skip
            continue
        if user.get("userid") in (None, "") or isinstance(user.get("userid"), (dict, list)):
            actions.append(_fail(f"sitoo-user-{str(user.get('userid'))[:40]}", "customer_unreadable",
                                 f"Sitoo sent customer {raw} without a usable user id; nothing was written for it. "
                                 "Report it to Sitoo support"))  # fmt: skip
            continue
        by_email_s.setdefault(normalise_email(raw), []).append(user)
    known = magento_known or set()
    for email in sorted(set(by_email_m) | set(by_email_s)):
        ms = _unique(by_email_m.get(email, []), "id")
        ss = _unique(by_email_s.get(email, []), "userid")
        if len(ms) > 1:
            ids = ", ".join(str(m.get("id")) for m in ms)
            actions.append(_fail(email, "duplicate_email",
                                 f"{email} belongs to {len(ms)} Magento customers ({ids}) on the website; merge them in "
                                 "the Magento admin so one customer remains"))  # fmt: skip
            continue
        if len(ss) > 1:
            ids = ", ".join(f"{u.get('userid')} ({u.get('email')!r})" for u in ss)
            actions.append(_fail(email, "duplicate_email",
                                 f"{email} belongs to {len(ss)} Sitoo customers ({ids}), differing only in case or "
                                 "spaces; merge them in Sitoo Backoffice so one customer remains",
                                 magento_id=as_int(ms[0].get("id")) if ms else None))  # fmt: skip
            continue
        m = ms[0] if ms else None
        s = ss[0] if ss else None
        if m is not None and s is None:
            first, last = names_of(m, "magento")
            body = {"email": email, "namefirst": first, "namelast": last, "externalid": str(as_int(m["id"]))}
            actions.append(CustomerAction("create_sitoo", email, magento_id=as_int(m["id"]), sitoo=body))
        elif m is not None and s is not None:
            actions.append(_merge(email, m, s, master))
        elif s is not None and email not in known:
            if not create_in_magento:
                continue
            first, last = names_of(s, "sitoo")
            if not first or not last:
                actions.append(_fail(email, "customer_incomplete",
                                     f"Sitoo customer {email} has no first or last name, which Magento requires; "
                                     "add the name in Sitoo Backoffice", userid=str(s["userid"])))  # fmt: skip
                continue
            actions.append(CustomerAction("create_magento", email, userid=str(s["userid"]),
                                          magento={"email": email, "firstname": first, "lastname": last}))  # fmt: skip
    return actions


def _merge(email: str, m: dict[str, Any], s: dict[str, Any], master: str) -> CustomerAction:
    mid, userid = as_int(m["id"]), str(s["userid"])
    m_names, s_names = names_of(m, "magento"), names_of(s, "sitoo")
    link: dict[str, Any] = {}
    if str(s.get("externalid") or "") != str(mid):
        link["externalid"] = str(mid)
    to_magento: dict[str, Any] = {}
    if m_names != s_names:
        if master == "sitoo" and all(s_names):
            # Magento validates firstname/lastname on every PUT: never send an empty one.
            to_magento = {"firstname": s_names[0], "lastname": s_names[1]}
        elif master == "magento":
            link.update(namefirst=m_names[0], namelast=m_names[1])
    if link or to_magento:
        return CustomerAction("update", email, magento_id=mid, userid=userid, sitoo=link, magento=to_magento)
    return CustomerAction("link", email, magento_id=mid, userid=userid)


def _unique(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The same record found twice (e.g. by two lookups) is one record."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        seen.setdefault(str(record.get(key)), record)
    return list(seen.values())
