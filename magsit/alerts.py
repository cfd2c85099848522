"""Routes new exceptions, failed runs and stale jobs to their owner. Delivery failures never fail a run.

After every run (``runner.after_run_hooks``) the open exceptions of that job that were not alerted
within ``[alerts] repeat_hours`` are grouped by owner (ops, ecommerce, finance) and sent as one
digest per owner: to the JSON webhook (Slack/Teams compatible: ``{"text": ..., "owner": ...,
"items": [...]}``) and by e-mail to ``recipients[owner]``. Each item names the record, its kind,
the message and what to do (``HINTS``, one line per exception kind).

A row is marked ``alerted_at`` only once at least one channel took the digest, so a webhook that
is down is retried on the next run instead of the alert being lost. Run failures and stale jobs go
to ops, de-duplicated the same way through marker rows (``alert:*``) in the heartbeats table.
Configured secrets are masked out of every text before it leaves the process.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, SecretStr

from magsit.config import Config
from magsit.runner import RunOutcome, after_run_hooks
from magsit.schedule import period_seconds
from magsit.state.store import OWNERS, StateStore, iso, now_utc, parse_iso

log = logging.getLogger("magsit.alerts")

MAX_ITEMS = 50  # per digest; the rest are counted and left to `magsit exceptions list`
TIMEOUT = 10.0
MARKER = "alert:"  # heartbeats rows used as alert bookkeeping; `status` hides them

# kind -> what the owner should do, for run-level kinds. Record-level messages already name the fix
# (and one kind can mean different things per job, e.g. unknown_sku in sync-stock vs push-orders).
HINTS: dict[str, str] = {
    "run_failed": "The whole run failed; nothing after the error was synced. Check the message, fix the cause "
    "(credentials, network, the API being down) and the next scheduled run catches up.",
    "stale_job": "No successful run for longer than expected: check that the daemon/timer is running "
    "(`systemctl status magsit-daemon`, `magsit status`) and the job's last error.",
}
OWNER_HINTS: dict[str, str] = {
    "ops": "See `magsit exceptions list --owner ops` and docs/runbook.md.",
    "ecommerce": "Fix the record in Magento or Sitoo, then `magsit exceptions retry ID` (or wait for the next run).",
    "finance": "Review the figures; see `magsit exceptions list --owner finance` and docs/runbook.md.",
}


def hint_for(kind: str, owner: str) -> str:
    return HINTS.get(kind) or OWNER_HINTS.get(owner, "See docs/runbook.md, section Exception kinds.")


@dataclass
class Digest:
    owner: str
    job: str
    title: str
    items: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0
    exception_ids: list[int] = field(default_factory=list)

    def text(self) -> str:
        lines = [self.title]
        for item in self.items:
            lines.append(f"• {item['key']} [{item['kind']}]: {item['message']}")
        if self.more:
            lines.append(f"… and {self.more} more: magsit exceptions list --owner {self.owner} --job {self.job}")
        hints = {item["kind"]: item["hint"] for item in self.items}
        if hints:
            lines.append("What to do:")
            lines.extend(f"- {kind}: {hint}" for kind, hint in hints.items())
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text(), "owner": self.owner, "job": self.job, "items": self.items, "more": self.more}


# -- secrets -------------------------------------------------------------------------------------
def _secrets(config: Config) -> list[str]:
    found: list[str] = []
    for name in type(config).model_fields:
        section = getattr(config, name, None)
        if not isinstance(section, BaseModel):
            continue
        for key in type(section).model_fields:
            value = getattr(section, key, None)
            if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 4:
                found.append(value.get_secret_value())
    if config.alerts.webhook_url:
        found.append(config.alerts.webhook_url)  # a Slack/Teams hook URL is itself a credential
    return sorted(found, key=len, reverse=True)


def redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


# -- channels ------------------------------------------------------------------------------------
def _channels(config: Config) -> bool:
    settings = config.alerts
    return bool(settings.webhook_url or (settings.smtp_host and settings.recipients))


def _recipients(config: Config, owner: str) -> list[str]:
    recipients = config.alerts.recipients
    # An owner without addresses falls back to ops: an alert nobody receives is the worst outcome.
    return list(recipients.get(owner) or recipients.get("ops") or [])


def send_webhook(config: Config, payload: dict[str, Any]) -> bool:
    url = config.alerts.webhook_url
    if not url:
        return False
    host = urlsplit(url).hostname or "?"
    try:
        response = requests.post(
            url,
            data=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        log.warning("alert webhook to %s failed: %s", host, type(exc).__name__)
        return False
    if response.status_code >= 300:
        log.warning("alert webhook to %s answered HTTP %s", host, response.status_code)
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send_email(config: Config, owner: str, subject: str, body: str) -> bool:
    settings = config.alerts
    to = _recipients(config, owner)
    if not settings.smtp_host or not to:
        return False
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_from or (settings.smtp_user or "magsit@localhost")
    message["To"] = ", ".join(to)
    message.set_content(body)
    try:
        if settings.smtp_port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if settings.smtp_port != 465:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif settings.smtp_user or not _is_loopback(settings.smtp_host):
                    # Never send credentials or business data in clear text across a network.
                    log.warning("alert e-mail not sent: %s offers no STARTTLS", settings.smtp_host)
                    return False
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("alert e-mail via %s failed: %s", settings.smtp_host, type(exc).__name__)
        return False
    return True


def deliver(config: Config, digest: Digest) -> bool:
    """Send one digest on every configured channel. True if at least one took it."""
    secrets = _secrets(config)
    payload = redact(digest.payload(), secrets)
    delivered = False
    if config.alerts.webhook_url:
        delivered = send_webhook(config, payload) or delivered
    if config.alerts.smtp_host and _recipients(config, digest.owner):
        subject = redact(f"[magsit] {digest.title}", secrets).splitlines()[0][:200]
        delivered = send_email(config, digest.owner, subject, payload["text"]) or delivered
    if delivered:
        log.info("alert sent to %s: %s", digest.owner, digest.title, extra={"owner": digest.owner, "job": digest.job})
    return delivered


# -- markers (run failures, stale jobs) ----------------------------------------------------------
def _marker(state: StateStore, name: str) -> dict[str, Any] | None:
    for row in state.heartbeats():
        if row["name"] == MARKER + name:
            return row
    return None


def _recent(moment: str | None, hours: float, now: datetime) -> bool:
    when = parse_iso(moment)
    return when is not None and now - when < timedelta(hours=hours)


# -- after a run ---------------------------------------------------------------------------------
def build_digests(config: Config, state: StateStore, outcome: RunOutcome, now: datetime | None = None) -> list[Digest]:
    """One digest per owner: this job's open exceptions not alerted within repeat_hours (+ a run failure)."""
    now = now or now_utc()
    repeat = config.alerts.repeat_hours
    by_owner: dict[str, Digest] = {}
    rows = [
        row
        for row in state.exceptions("open", job=outcome.job)
        if not (repeat and _recent(row.get("alerted_at"), repeat, now))
    ]
    rows.sort(key=lambda row: (row["first_seen"], row["id"]))
    for row in rows:
        owner = row["owner"] if row["owner"] in OWNERS else "ops"
        digest = by_owner.setdefault(owner, Digest(owner, outcome.job, ""))
        digest.exception_ids.append(int(row["id"]))
        if len(digest.items) < MAX_ITEMS:
            digest.items.append(
                {
                    "key": row["record_key"],
                    "kind": row["kind"],
                    "message": row["message"],
                    "hint": hint_for(row["kind"], owner),
                    "first_seen": row["first_seen"],
                    "attempts": row["attempts"],
                    "id": row["id"],
                }
            )
        else:
            digest.more += 1
    for owner, digest in by_owner.items():
        count = len(digest.exception_ids)
        digest.title = f"{outcome.job}: {count} record(s) need {owner}'s attention"
    if outcome.status == "failed":
        digest = by_owner.setdefault("ops", Digest("ops", outcome.job, ""))
        digest.items.insert(
            0,
            {
                "key": outcome.job,
                "kind": "run_failed",
                "message": outcome.error or "the run failed",
                "hint": hint_for("run_failed", "ops"),
            },
        )
        digest.title = f"{outcome.job}: the run failed" + (
            f" and {len(digest.exception_ids)} record(s) need ops' attention" if digest.exception_ids else ""
        )
    return [by_owner[owner] for owner in OWNERS if owner in by_owner]


def after_run(config: Config, state: StateStore, outcome: RunOutcome) -> None:
    """The runner hook. Never raises: a failed alert is logged, the sync run's result stands."""
    try:
        _after_run(config, state, outcome)
    except Exception:
        log.warning("alerting after %s failed", outcome.job, exc_info=True)


def _after_run(config: Config, state: StateStore, outcome: RunOutcome) -> None:
    if not _channels(config):
        return
    if outcome.run_id is not None:
        rows = [r for r in state.runs(outcome.job, limit=5) if r["id"] == outcome.run_id]
        if rows and rows[0]["dry_run"]:
            return
    now = now_utc()
    marker_name = f"run_failed:{outcome.job}"
    marker = _marker(state, marker_name)
    was_failing = bool(marker and marker["info"].get("failing"))
    for digest in build_digests(config, state, outcome, now):
        run_item = digest.items[0]["kind"] == "run_failed" if digest.items else False
        if run_item and was_failing and marker and _recent(marker["info"].get("alerted"), config.alerts.repeat_hours, now):
            # Same failure streak already alerted: keep only the records (if any).
            digest.items.pop(0)
            if not digest.items:
                continue
            digest.title = f"{outcome.job}: {len(digest.exception_ids)} record(s) need ops' attention"
        if deliver(config, digest):
            state.mark_alerted(digest.exception_ids)
            if run_item and digest.items and digest.items[0]["kind"] == "run_failed":
                state.heartbeat(MARKER + marker_name, {"failing": True, "alerted": iso(now)})
    if outcome.status != "failed" and was_failing:
        recovered = Digest("ops", outcome.job, f"{outcome.job}: recovered, the last run finished ({outcome.status})")
        deliver(config, recovered)
        state.heartbeat(MARKER + marker_name, {"failing": False, "alerted": None})
    check_stale(config, state, now)


# -- stale jobs (P34: a silent no-sync must page someone) ----------------------------------------
UNSCHEDULED_ON_DEMAND = {"reconcile", "audit", "events"}


def schedule_periods(config: Config) -> dict[str, float]:
    """Seconds between two runs of each job on the [schedule] (its most frequent entry)."""
    periods: dict[str, float] = {}
    for entry, expr in config.schedule.items():
        job = entry.split()[0] if entry.split() else entry
        try:
            period = period_seconds(expr)
        except ValueError:
            continue
        periods[job] = min(periods.get(job, period), period)
    return periods


def stale_jobs(config: Config, state: StateStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """Jobs whose last success is older than expected (stale_minutes, or 3 schedule periods if longer)."""
    now = now or now_utc()
    if not config.alerts.stale_minutes:
        return []
    base = config.alerts.stale_minutes * 60
    thresholds = {job: max(base, 3 * period) for job, period in schedule_periods(config).items()}
    runs = {row["job"]: row for row in state.last_runs()}
    if not config.schedule:
        thresholds = {job: base for job in runs if job not in UNSCHEDULED_ON_DEMAND}
    daemon = next((hb for hb in state.heartbeats() if hb["name"] == "daemon"), None)
    started = parse_iso((daemon or {}).get("info", {}).get("started_at")) if daemon else None
    out = []
    for job, limit in sorted(thresholds.items()):
        run = runs.get(job)
        success = parse_iso(run.get("last_success_at")) if run else None
        if success is not None:
            stale = (now - success).total_seconds() > limit
        elif run is not None:
            first = parse_iso(run["started_at"])
            stale = first is not None and (now - first).total_seconds() > limit
        else:
            stale = started is not None and (now - started).total_seconds() > limit
        if stale:
            out.append({"job": job, "last_success_at": run.get("last_success_at") if run else None, "limit_minutes": round(limit / 60, 1)})
    return out


def check_stale(config: Config, state: StateStore, now: datetime | None = None) -> list[str]:
    """Alert ops once per stale streak (again after repeat_hours). Returns the jobs alerted."""
    now = now or now_utc()
    if not _channels(config):
        return []
    alerted = []
    for row in stale_jobs(config, state, now):
        name = f"stale:{row['job']}"
        marker = _marker(state, name)
        same_streak = marker and marker["info"].get("last_success_at") == row["last_success_at"]
        if same_streak and _recent(marker["info"].get("alerted"), config.alerts.repeat_hours, now):
            continue
        since = row["last_success_at"] or "never"
        digest = Digest(
            "ops",
            row["job"],
            f"{row['job']}: no successful run for over {row['limit_minutes']} minutes (last success: {since})",
            items=[
                {
                    "key": row["job"],
                    "kind": "stale_job",
                    "message": f"last success {since}; expected at least every {row['limit_minutes']} minutes",
                    "hint": hint_for("stale_job", "ops"),
                }
            ],
        )
        if deliver(config, digest):
            state.heartbeat(MARKER + name, {"last_success_at": row["last_success_at"], "alerted": iso(now)})
            alerted.append(row["job"])
    return alerted


def notify_ops(config: Config, job: str, kind: str, message: str) -> bool:
    """A one-off ops alert (daemon job errors, misses). Never raises."""
    try:
        if not _channels(config):
            return False
        digest = Digest(
            "ops",
            job,
            f"{job}: {message}",
            items=[{"key": job, "kind": kind, "message": message, "hint": hint_for(kind, "ops")}],
        )
        return deliver(config, digest)
    except Exception:
        log.warning("ops alert for %s failed", job, exc_info=True)
        return False


def install() -> None:
    """Register the after-run hook once (the CLI and the daemon call this on import)."""
    if after_run not in after_run_hooks:
        after_run_hooks.append(after_run)
