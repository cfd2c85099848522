"""Magento's error body (magento-api.md §4) and the messages more than one module answers with."""

from __future__ import annotations

import secrets
from typing import Any

JSON = Any
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
NO_ROUTE = "Request does not match any route."
NO_PRODUCT = "The product that was requested doesn't exist. Verify the product and try again."
NO_ENTITY = "The entity that was requested doesn't exist. Verify the entity and try again."
REQUIRED = '"%fieldName" is required. Enter and try again.'
BAD_TYPE = "The \"%value\" value's type is invalid. The \"%type\" type was expected. Verify and try again."
MASKED = "Internal Error. Details are available in Magento log file. Report ID: webapi-%s"


class ApiError(Exception):
    """An error answered with Magento's error body (§4): raw message, placeholders unsubstituted."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: list[Any] | dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            out["parameters"] = self.parameters
        if self.errors:
            out["errors"] = self.errors
        return out


def masked_error() -> ApiError:
    """Any non-Localized PHP exception is masked in production mode (§4)."""
    return ApiError(500, MASKED % secrets.token_hex(7)[:13])


def not_found_entity() -> ApiError:
    return ApiError(404, NO_ENTITY)
