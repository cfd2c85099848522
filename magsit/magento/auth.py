"""Magento authentication: OAuth 1.0a HMAC-SHA256 with the four integration keys, or a Bearer token.

OAuth 1.0a works on every 2.4.x shop without configuration; a Bearer integration token only when
the merchant set ``oauth/consumer/enable_integration_as_bearer`` (2.4.4+, magento-api.md §1.3).

Both are ``requests`` auth objects: requests calls them on every *send*, so each retry of
``HttpSession`` is signed afresh (new nonce and timestamp — Magento rejects a reused nonce, P13).
Secrets stay inside the auth objects, are read from ``SecretStr`` only here and never logged.
"""

from __future__ import annotations

import logging

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER
from pydantic import SecretStr
from requests_oauthlib import OAuth1

from magsit.config import MagentoSettings

# oauthlib/requests_oauthlib log the signature base string and the signed Authorization header
# (which carries the access token) at DEBUG. `magsit -v` turns DEBUG on, so keep them quiet.
for _name in ("oauthlib", "requests_oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``; the token never appears in repr/str."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class MagentoOAuth1(OAuth1):
    """OAuth 1.0a, HMAC-SHA256, credentials in the Authorization header (JSON bodies are not signed)."""

    def __init__(self, consumer_key: SecretStr, consumer_secret: SecretStr, token: SecretStr, token_secret: SecretStr) -> None:
        super().__init__(
            consumer_key.get_secret_value(),
            client_secret=consumer_secret.get_secret_value(),
            resource_owner_key=token.get_secret_value(),
            resource_owner_secret=token_secret.get_secret_value(),
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )

    def __repr__(self) -> str:
        return "MagentoOAuth1(HMAC-SHA256, keys=***)"


def make_auth(settings: MagentoSettings) -> requests.auth.AuthBase:
    """The auth object for these settings: Bearer when ``token`` is set, else OAuth 1.0a."""
    if settings.token is not None:
        return BearerAuth(settings.token)
    keys = (settings.consumer_key, settings.consumer_secret, settings.access_token, settings.access_token_secret)
    if not all(keys):  # MagentoSettings already refuses this; keep the type checker and callers honest
        raise ValueError("OAuth 1.0a needs consumer_key, consumer_secret, access_token and access_token_secret")
    consumer_key, consumer_secret, access_token, access_token_secret = keys
    assert consumer_key and consumer_secret and access_token and access_token_secret
    return MagentoOAuth1(consumer_key, consumer_secret, access_token, access_token_secret)
