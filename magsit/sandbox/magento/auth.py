"""Who is calling: integration token as Bearer, or OAuth 1.0a (§1)."""

from __future__ import annotations

import hmac
import time
from typing import Any

from magsit.sandbox.magento.errors import REQUIRED, ApiError
from magsit.sandbox.magento.oauth import DIGESTS, base_strings, header_params, sign
from magsit.sandbox.magento.state import MagentoState


def authenticate(state: MagentoState, environ: dict[str, Any], raw_path: str, raw_query: str) -> bool:
    """True for an authorized caller; False = guest; ApiError for a broken OAuth request (§1)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer":
        # An integration token as Bearer only works with the 2.4.4+ flag on; otherwise it is
        # silently treated as a guest -> the ACL-looking 401 (§1.3).
        tokens = (state.token, state.oauth["access_token"])
        return state.bearer_enabled and any(hmac.compare_digest(credential.strip(), t) for t in tokens)
    if scheme.lower() == "oauth":
        verify_oauth(state, environ, header, raw_path, raw_query)
        return True
    return False


def verify_oauth(state: MagentoState, environ: dict[str, Any], header: str, raw_path: str, raw_query: str) -> None:
    """OAuth 1.0a (Framework/Oauth/Oauth.php): checks and messages in Magento's order; the
    signature through ``oauth.py`` (Magento's algorithm, written without oauthlib)."""
    params = header_params(header)
    for field in ("oauth_consumer_key", "oauth_signature_method", "oauth_signature", "oauth_nonce", "oauth_timestamp", "oauth_token"):
        if not params.get(field):
            raise ApiError(401, REQUIRED, {"fieldName": field})
    method = params["oauth_signature_method"]
    if method not in DIGESTS:
        raise ApiError(401, "Signature method %1 is not supported", [method])
    try:
        stamp = int(params["oauth_timestamp"])
    except ValueError:
        stamp = -1
    if stamp <= 0 or stamp > time.time() + 600:
        raise ApiError(401, "Incorrect timestamp value in the oauth_timestamp parameter")
    keys = state.oauth
    if params["oauth_consumer_key"] != keys["consumer_key"]:
        raise ApiError(401, "A consumer having the specified key does not exist")
    nonce = params["oauth_nonce"]
    if nonce in state.nonces:
        raise ApiError(401, "The nonce is already being used by the consumer with ID %1", ["1"])
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    bases = base_strings(
        environ.get("REQUEST_METHOD", "GET"), environ.get("wsgi.url_scheme", "http"), host, raw_path, raw_query, params
    )
    token_secret = keys["access_token_secret"] if params["oauth_token"] == keys["access_token"] else ""
    # Valid only when every Magento 2.4 signs the request alike (oauth.py): else some shop refuses it.
    expected = {sign(base, method, keys["consumer_secret"], token_secret) for base in bases.values()}
    if params["oauth_token"] != keys["access_token"] or len(expected) != 1 or not hmac.compare_digest(expected.pop(), params["oauth_signature"]):
        raise ApiError(401, "The signature is invalid. Verify and try again.")
    state.nonces.add(nonce)
