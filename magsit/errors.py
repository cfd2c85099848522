"""The error taxonomy. The CLI's one error boundary maps these to the contract's exit codes."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

Owner = Literal["ops", "ecommerce", "finance"]


class ExitCode(IntEnum):
    """The interface contract's exit codes (../shared/DESIGN.md): cron, systemd and monitoring read them."""

    OK = 0  # done
    FAILED = 1  # the run failed
    USAGE = 2  # usage or config error: nothing was touched
    PARTIAL = 3  # done, but some records failed (exception rows)
    LOCKED = 4  # skipped: another run of the job holds the lock
    INTERRUPTED = 130  # SIGINT/SIGTERM


class MagsitError(Exception):
    """Base class: every error magsit raises on purpose carries a message fit for an operator."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MagsitError):
    """Bad or missing configuration: nothing was touched."""

    exit_code = ExitCode.USAGE


class LockedError(MagsitError):
    """Another run of the same job holds the lock."""

    exit_code = ExitCode.LOCKED


class ApiError(MagsitError):
    """An API call failed. ``retryable`` says whether the same call may succeed later as it is."""

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        method: str = "",
        url: str = "",
        retryable: bool = False,
        body: object = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.system = system
        self.status = status
        self.method = method
        self.url = url
        self.retryable = retryable
        self.body = body
        # True when a write may have been applied although we got no success answer
        # (timeout, dropped connection, 5xx on a POST): callers must check-then-create.
        self.outcome_unknown = outcome_unknown


class PagingError(ApiError):
    """A list endpoint answered inconsistently (a page repeated, keys out of order, fewer rows than
    its total_count): the read is aborted, never continued past a possible gap."""


class NotFoundError(ApiError):
    """404 from either API."""


class AuthError(ApiError):
    """401/403 with a JSON body: credentials, ACL, IP allow-list or the Bearer flag."""


class WafBlockedError(ApiError):
    """An HTML page where JSON was expected: a WAF or CDN answered instead of the shop."""


class RecordError(MagsitError):
    """One record cannot be synced. It becomes an exception row; the batch goes on."""

    def __init__(self, kind: str, owner: Owner, key: str, message: str, payload: object = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.owner = owner
        self.key = key
        self.payload = payload
