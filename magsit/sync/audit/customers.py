"""Customers: one e-mail held by several accounts on one side, and customer mappings to Sitoo users
that no longer exist."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from magsit.config import Config
from magsit.sync.audit.kinds import Finding, finding
from magsit.sync.audit.normalise import email_key
from magsit.sync.audit.snapshot import AuditSnapshot


def duplicate_emails(rows: Iterable[Mapping[str, Any]], id_field: str) -> dict[str, list[tuple[str, str]]]:
    """Normalised e-mail -> [(id, e-mail as stored)] for e-mails held by more than one record."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        email = row.get("email")
        if isinstance(email, str) and email.strip():
            groups[email_key(email)].append((str(row.get(id_field)), email))
    return {k: sorted(v) for k, v in groups.items() if len(v) > 1}


def customers(snap: AuditSnapshot, config: Config) -> list[Finding]:
    out: list[Finding] = []
    website = config.magento.website_id
    magento = [c for c in snap.magento_customers if str(c.get("website_id", website)) == str(website)]
    for email, records in sorted(duplicate_emails(magento, "id").items()):
        out.append(
            finding(
                "duplicate_customer",
                f"{email} (magento)",
                f"{len(records)} Magento customers in website {website} share the e-mail {email}: "
                f"ids {', '.join(i for i, _ in records)}. Orders and customer sync pick one at random.",
                magento=[{"id": i, "email": e} for i, e in records],
            )
        )
    sitoo = [u for u in snap.sitoo_users if not u.get("role")]  # staff accounts have a role
    for email, records in sorted(duplicate_emails(sitoo, "userid").items()):
        out.append(
            finding(
                "duplicate_customer",
                f"{email} (sitoo)",
                f"{len(records)} Sitoo customers share the e-mail {email}: userids {', '.join(i for i, _ in records)}.",
                sitoo=[{"userid": i, "email": e} for i, e in records],
            )
        )
    return out


def stale_customer_mappings(snap: AuditSnapshot) -> list[Finding]:
    out: list[Finding] = []
    userids = {str(u.get("userid")) for u in snap.sitoo_users if u.get("userid")}
    for mapping in snap.customer_mappings:
        other = mapping.get("other_id")
        if other and str(other) not in userids:
            out.append(
                finding(
                    "stale_mapping",
                    f"customer {mapping.get('external_id')}",
                    f"The state file maps customer {mapping.get('external_id')} to Sitoo user {other}, which does not exist.",
                    sitoo={"userid": other},
                )
            )
    return out
