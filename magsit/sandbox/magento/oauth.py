"""OAuth 1.0a request signatures as Magento checks them, built here from the documents, not with oauthlib.

The client signs with oauthlib (requests-oauthlib). Verifying with the same library would let one
base-string mistake pass on both sides, so nothing here comes from it. Sources:

- RFC 5849 §3.4.1 (signature base string: method, base string URI without query and default port,
  normalised parameters sorted by encoded name then value), §3.4.2 (HMAC key ``secret&token
  secret``, base64 of the raw digest; Magento also takes HMAC-SHA256, magento-api.md §1.3), §3.5.1
  (the Authorization header), §3.6 (percent-encoding: UTF-8, all but ``A-Z a-z 0-9 - . _ ~``).
- Which parameters Magento signs: magento2 ``lib/internal/Magento/Framework/Oauth/Helper/Request.php``.
  The ``oauth_*`` header parameters are rawurldecode'd. Query pairs with exactly one ``=`` are
  urldecode'd, so ``+`` is a space; names matching ``oauth_*`` are skipped. They land in a PHP
  array, so a repeated name keeps only its last value. The JSON body is never signed.
- How Magento orders them. 2.4.x up to 2.4.7 signs through laminas-oauth
  (``AbstractSignature::toByteValueOrderedQueryString``, which 2.4.7's ``Helper/Signature/Hmac.php``
  extends). It sorts the encoded names with ``strnatcmp``, so ``[2]`` comes before ``[10]``. The
  ``Helper/Signature/Hmac.php`` of 2.4-develop ``ksort``s the *decoded* names, so ``[10]`` comes
  before ``[1]``. RFC order is ``[1]`` < ``[10]`` < ``[2]``. A query with more than ten entries at
  one index level (``searchCriteria[filter_groups][0][filters][10]…``) therefore has no signature
  that every 2.4 shop accepts.
- Base string URI. laminas-oauth normalises the path before signing. Up to 2.4.6 it decodes
  ``%2F``, ``%26`` and the other reserved escapes, which is GH#37913 and GH#37830 (magento-api.md
  §1.3: SKUs with ``/`` or ``&`` in the path fail under OAuth). 2.4.7 decodes only the unreserved
  escapes.

The emulator accepts a signature only when every variant gives the same base string. It plays
the strictest shop magsit must work with, like the other sandbox defaults.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from functools import cmp_to_key
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

Pairs = list[tuple[str, str]]

DIGESTS: dict[str, Callable[..., Any]] = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
_PROTOCOL = re.compile(r"oauth_[a-z_-]+")  # Helper/Request.php _isProtocolParameter (not anchored)
_UNRESERVED = "A-Za-z0-9\\-._~"
# laminas-uri Uri::normalizePath (up to 2.4.6): decode escapes of these characters, then encodePath.
_LAMINAS_DECODED = re.compile(r"%([0-9A-Fa-f]{2})")
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~:@&=+$,/;%]")  # laminas-uri encodePath keeps these


def percent_encode(text: str) -> str:
    """RFC 5849 §3.6 (= PHP ``rawurlencode`` since 5.3): UTF-8 bytes, unreserved characters kept."""
    return quote(text.encode("utf-8"), safe="-._~")


def header_params(header: str) -> dict[str, str]:
    """The ``oauth_*`` parameters of an ``Authorization: OAuth …`` header, read like
    Helper/Request.php ``_processHeader``: comma-split, ``name="value"``, rawurldecode'd; ``realm``
    and other names are not protocol parameters."""
    at = header.lower().find("oauth ")
    if at < 0:
        return {}
    out: dict[str, str] = {}
    for part in header[at + 6 :].split(","):
        name, sep, value = part.strip().partition("=")
        if sep and _PROTOCOL.search(name):
            out[unquote(name)] = unquote(value.strip('"'))
    return out


def rfc_query_params(raw_query: str) -> Pairs:
    """RFC 5849 §3.4.1.3.1: the query as application/x-www-form-urlencoded (``+`` is a space,
    a name without ``=`` has an empty value, repeated names all count)."""
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def magento_query_params(raw_query: str) -> dict[str, str]:
    """The query parameters Magento signs (Helper/Request.php ``_extractQueryStringParams``)."""
    out: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else []:
        pieces = part.split("=")
        if len(pieces) == 2 and not _PROTOCOL.search(pieces[0]):
            out[unquote_plus(pieces[0])] = unquote_plus(pieces[1])
    return out


def strnatcmp(a: str, b: str) -> int:
    """PHP ``strnatcmp`` for the ASCII names a REST client sends: digit runs compare as numbers
    (a run starting with ``0`` compares digit by digit, as PHP's "fractional" rule does)."""
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i].isdigit() and b[j].isdigit():
            ei, ej = i, j
            while ei < len(a) and a[ei].isdigit():
                ei += 1
            while ej < len(b) and b[ej].isdigit():
                ej += 1
            ra, rb = a[i:ei], b[j:ej]
            if ra[0] == "0" or rb[0] == "0":
                order = (ra > rb) - (ra < rb)
            else:
                order = (len(ra) > len(rb)) - (len(ra) < len(rb)) or (ra > rb) - (ra < rb)
            if order:
                return order
            i, j = ei, ej
            continue
        if a[i] != b[j]:
            return -1 if a[i] < b[j] else 1
        i, j = i + 1, j + 1
    return (len(a) - i > 0) - (len(b) - j > 0)


def normalized_params(pairs: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1.3.2: encode names and values, sort by name then value (byte order), join."""
    encoded = sorted((percent_encode(n), percent_encode(v)) for n, v in pairs)
    return "&".join(f"{n}={v}" for n, v in encoded)


def laminas_params(params: dict[str, str]) -> str:
    """laminas-oauth ``toByteValueOrderedQueryString``: encoded names in ``strnatcmp`` order."""
    encoded = {percent_encode(n): percent_encode(v) for n, v in params.items()}
    return "&".join(f"{n}={encoded[n]}" for n in sorted(encoded, key=cmp_to_key(strnatcmp)))


def develop_params(params: dict[str, str]) -> str:
    """2.4-develop ``Helper/Signature/Hmac::normalizeParameters``: ``ksort`` on the decoded names."""
    return "&".join(f"{percent_encode(n)}={percent_encode(params[n])}" for n in sorted(params))


def base_string_uri(scheme: str, host: str, path: str) -> str:
    """RFC 5849 §3.4.1.2: scheme and host lower case, default port dropped, path as sent, no query."""
    scheme, host = scheme.lower(), host.lower()
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    if (scheme, port) in (("http", "80"), ("https", "443")):
        host = name
    return f"{scheme}://{host}{path}"


def _decode_escapes(path: str, allowed: str) -> str:
    keep = re.compile(f"[{allowed}]")

    def decode(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if keep.fullmatch(char) else m.group(0).upper()

    decoded = _LAMINAS_DECODED.sub(decode, path)
    # encodePath: characters a path may not hold, and a "%" not starting an escape, are encoded.
    out = []
    for k, ch in enumerate(decoded):
        lone = ch == "%" and not re.fullmatch(r"%[0-9A-Fa-f]{2}", decoded[k : k + 3])
        out.append(percent_encode(ch) if lone or not _PATH_CHARS.fullmatch(ch) else ch)
    return "".join(out)


def laminas_246_path(path: str) -> str:
    """laminas-uri ``Uri::normalizePath`` (Magento up to 2.4.6): unreserved and ``:@&=+$,/;%``
    escapes decoded, so a SKU's ``%2F`` or ``%26`` is signed as ``/`` or ``&``."""
    return _decode_escapes(path, _UNRESERVED + ":@&=+$,/;%")


def magento_247_path(path: str) -> str:
    """``Helper/Uri/Http::normalizePath`` (2.4.7): only unreserved escapes decoded."""
    return _decode_escapes(path, _UNRESERVED)


def signature_base_string(method: str, uri: str, params: str) -> str:
    """RFC 5849 §3.4.1.1: ``METHOD&encode(uri)&encode(normalised parameters)``."""
    return "&".join((method.upper(), percent_encode(uri), percent_encode(params)))


def base_strings(method: str, scheme: str, host: str, path: str, raw_query: str, oauth: dict[str, str]) -> dict[str, str]:
    """The base string of one request per signing implementation (see the module docstring)."""
    protocol = {k: v for k, v in oauth.items() if k != "oauth_signature"}
    rfc_pairs = list(protocol.items()) + rfc_query_params(raw_query)
    magento = {**protocol, **magento_query_params(raw_query)}
    return {
        "RFC 5849": signature_base_string(method, base_string_uri(scheme, host, path), normalized_params(rfc_pairs)),
        "Magento up to 2.4.6 (laminas-oauth)": signature_base_string(
            method, base_string_uri(scheme, host, laminas_246_path(path)), laminas_params(magento)
        ),
        "Magento 2.4.7": signature_base_string(method, base_string_uri(scheme, host, magento_247_path(path)), laminas_params(magento)),
        "Magento 2.4-develop": signature_base_string(method, base_string_uri(scheme, host, path), develop_params(magento)),
    }


def sign(base: str, signature_method: str, consumer_secret: str, token_secret: str) -> str:
    """RFC 5849 §3.4.2: key ``encode(consumer secret)&encode(token secret)``, base64 of the raw HMAC."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), DIGESTS[signature_method]).digest()).decode()
