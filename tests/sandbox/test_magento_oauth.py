"""The emulator's OAuth 1.0a check (magsit/sandbox/magento/oauth.py), built without oauthlib.

The known answers come from the specifications, not from any code in this repository. The HTTP
tests sign with requests-oauthlib, the library the client uses, so they show that the two
independent implementations agree, and where Magento itself disagrees with RFC 5849.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from magsit.sandbox.magento import MagentoSandbox
from magsit.sandbox.magento.oauth import (
    base_string_uri,
    header_params,
    laminas_246_path,
    magento_247_path,
    normalized_params,
    sign,
    signature_base_string,
    strnatcmp,
)

INVALID = {"message": "The signature is invalid. Verify and try again."}

# RFC 5849 §1.2 (and OAuth Core 1.0 Appendix A): the photos example's credentials.
PHOTOS_SECRETS = ("kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
PHOTOS_URI = "http://photos.example.net/photos"


def test_rfc5849_section_3_4_1_1_base_string() -> None:
    # The request of RFC 5849 §3.4.1.1 (query, form body and header parameters), its base string verbatim.
    params = [("b5", "=%3D"), ("a3", "a"), ("c@", ""), ("a2", "r b"), ("oauth_consumer_key", "9djdj82h48djs9d2"),
              ("oauth_token", "kkk9d7dh3k39sjv7"), ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131201"),
              ("oauth_nonce", "7d8f3e4a"), ("c2", ""), ("a3", "2 q")]  # fmt: skip
    assert signature_base_string("post", base_string_uri("HTTP", "EXAMPLE.COM:80", "/request"), normalized_params(params)) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26"
        "oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26"
        "oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    )


def test_published_hmac_sha1_signatures() -> None:
    photos = [("file", "vacation.jpg"), ("size", "original"), ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
              ("oauth_token", "nnch734d00sl2jdk"), ("oauth_signature_method", "HMAC-SHA1")]  # fmt: skip
    # RFC 5849 §1.2: oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D".
    rfc = photos + [("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")]
    base = signature_base_string("GET", PHOTOS_URI, normalized_params(rfc))
    assert sign(base, "HMAC-SHA1", *PHOTOS_SECRETS) == "MdpQcU8iPSUjWoN/UDMsK2sui9I="
    # OAuth Core 1.0 Appendix A.5.1 / A.5.2: base string and signature.
    core = photos + [("oauth_timestamp", "1191242096"), ("oauth_nonce", "kllo9940pd9333jh"), ("oauth_version", "1.0")]
    base = signature_base_string("GET", PHOTOS_URI, normalized_params(core))
    assert base == (
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26"
        "oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26"
        "oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
    )
    assert sign(base, "HMAC-SHA1", *PHOTOS_SECRETS) == "tR3+Ty81lMeYAr/Fid0kMTYa/WM="


def test_hmac_sha256_known_answer() -> None:
    # The RFC 5849 §1.2 request signed with HMAC-SHA256 (what Magento integrations use, magento-api.md
    # §1.3). Expected value computed outside Python:
    #   printf '%s' "$BASE" | openssl dgst -sha256 -hmac 'kd94hf93k423kf44&pfkkdhi9sl3r4s00' -binary | base64
    base = (
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26"
        "oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D137131202%26"
        "oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
    )
    params = [("file", "vacation.jpg"), ("size", "original"), ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
              ("oauth_token", "nnch734d00sl2jdk"), ("oauth_signature_method", "HMAC-SHA256"),
              ("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")]  # fmt: skip
    assert signature_base_string("GET", PHOTOS_URI, normalized_params(params)) == base
    assert sign(base, "HMAC-SHA256", *PHOTOS_SECRETS) == "HtMwoX2zenlFjgGg/SNEoKEQmL7CzxYFEKzs7er044Y="


def test_strnatcmp_matches_php() -> None:
    # php > natsort: img1.png img2.png img10.png img12.png (PHP manual, natsort example).
    from functools import cmp_to_key

    assert sorted(["img12.png", "img10.png", "img2.png", "img1.png"], key=cmp_to_key(strnatcmp)) == [
        "img1.png", "img2.png", "img10.png", "img12.png"]  # fmt: skip
    assert strnatcmp("a%5B2%5D", "a%5B10%5D") < 0 < strnatcmp("a%5B10%5D", "a%5B1%5D")
    assert strnatcmp("same", "same") == 0 and strnatcmp("ab", "abc") < 0


def test_header_params_and_path_normalisation() -> None:
    header = 'OAuth realm="Photos", oauth_consumer_key="a%20b",oauth_nonce="n", junk'
    assert header_params(header) == {"oauth_consumer_key": "a b", "oauth_nonce": "n"}
    assert header_params("Bearer x") == {}
    # laminas-uri up to 2.4.6 decodes reserved escapes (GH#37830); 2.4.7 only unreserved ones.
    assert laminas_246_path("/rest/V1/products/A%26B%2F%7e") == "/rest/V1/products/A&B/~"
    assert magento_247_path("/rest/V1/products/A%26B%2F%7e") == "/rest/V1/products/A%26B%2F~"
    assert magento_247_path("/a%20b/%zz") == "/a%20b/%25zz"


@pytest.fixture
def mg() -> Iterator[MagentoSandbox]:
    sandbox = MagentoSandbox().start()
    sandbox.state.bearer_enabled = False  # only OAuth gets in
    for n in range(12):
        sandbox.state.add_customer(f"c{n}@example.com", "C", f"N{n}")
    sandbox.state.add_product("A&B", "Ampersand", 10)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def oauth1(mg: MagentoSandbox, secret: str | None = None) -> OAuth1:
    keys = mg.state.oauth
    return OAuth1(keys["consumer_key"], client_secret=secret or keys["consumer_secret"], resource_owner_key=keys["access_token"],
                  resource_owner_secret=keys["access_token_secret"], signature_method=SIGNATURE_HMAC_SHA256)  # fmt: skip


def emails_like(count: int) -> list[tuple[str, str]]:
    params = []
    for n in range(count):
        prefix = f"searchCriteria[filter_groups][0][filters][{n}]"
        params += [(f"{prefix}[field]", "email"), (f"{prefix}[value]", f"c{n}@example.com"), (f"{prefix}[condition_type]", "like")]
    return params


def test_hand_signed_request_is_accepted_and_a_wrong_signature_refused(mg: MagentoSandbox) -> None:
    keys = mg.state.oauth
    host = mg.url.split("://", 1)[1]
    oauth = {"oauth_consumer_key": keys["consumer_key"], "oauth_nonce": "fixed-nonce-1", "oauth_signature_method": "HMAC-SHA256",
             "oauth_timestamp": str(int(time.time())), "oauth_token": keys["access_token"], "oauth_version": "1.0"}  # fmt: skip
    # RFC 5849 §3.4.1 written out by hand: the query decoded once ("+" is a space), encoded once.
    normalized = "&".join(f"{k}={v}" for k, v in sorted(oauth.items())) + "&searchCriteria%5BpageSize%5D=5"
    base = f"GET&{quote(f'http://{host}/rest/V1/customers/search', safe='')}&{quote(normalized, safe='')}"
    signature = sign(base, "HMAC-SHA256", keys["consumer_secret"], keys["access_token_secret"])
    header = "OAuth " + ",".join(f'{k}="{quote(v, safe="")}"' for k, v in {**oauth, "oauth_signature": signature}.items())
    url = f"{mg.url}/rest/V1/customers/search?searchCriteria%5BpageSize%5D=5"
    r = requests.get(url, headers={"Authorization": header}, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["total_count"] == 12
    # Same nonce again: refused before the signature is looked at.
    r = requests.get(url, headers={"Authorization": header}, timeout=5)
    assert r.status_code == 401 and "nonce is already being used" in r.json()["message"]
    # One character of the signature changed: Magento's 401 body.
    wrong = header.replace("fixed-nonce-1", "fixed-nonce-2").replace(quote(signature, safe=""), quote("x" + signature[1:], safe=""))
    r = requests.get(url, headers={"Authorization": wrong}, timeout=5)
    assert r.status_code == 401 and r.json() == INVALID


def test_requests_oauthlib_agrees_within_magentos_rules(mg: MagentoSandbox) -> None:
    url = f"{mg.url}/rest/V1/customers/search"
    params = emails_like(10) + [("searchCriteria[pageSize]", "50"), ("fields", "items[email],total_count")]
    r = requests.get(url, params=params, auth=oauth1(mg), timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["total_count"] == 10
    r = requests.get(url, params=[("searchCriteria[filter_groups][0][filters][0][field]", "lastname"),
                                  ("searchCriteria[filter_groups][0][filters][0][value]", "N1 %"),  # a space and a %
                                  ("searchCriteria[filter_groups][0][filters][0][condition_type]", "nlike")],
                     auth=oauth1(mg), timeout=5)  # fmt: skip
    assert r.status_code == 200 and r.json()["total_count"] == 12
    r = requests.get(url, params=params, auth=oauth1(mg, "wrong-secret"), timeout=5)
    assert r.status_code == 401 and r.json() == INVALID


def test_more_than_ten_entries_at_one_index_has_no_valid_signature(mg: MagentoSandbox) -> None:
    # Filters [0]..[10]: RFC order puts [10] before [2], laminas-oauth (2.4.x up to 2.4.7) after [9],
    # 2.4-develop before [1]. requests-oauthlib signs in RFC order, which no 2.4 version reproduces.
    r = requests.get(f"{mg.url}/rest/V1/customers/search", params=emails_like(11), auth=oauth1(mg), timeout=5)
    assert r.status_code == 401 and r.json() == INVALID


def test_encoded_ampersand_in_the_path_fails_under_oauth_only(mg: MagentoSandbox) -> None:
    # Magento up to 2.4.6 signs A%26B as A&B (GH#37830, magento-api.md §1.3); Bearer is not signed.
    r = requests.get(f"{mg.url}/rest/V1/products/A%26B", auth=oauth1(mg), timeout=5)
    assert r.status_code == 401 and r.json() == INVALID
    mg.state.bearer_enabled = True
    r = requests.get(f"{mg.url}/rest/V1/products/A%26B", headers={"Authorization": f"Bearer {mg.state.token}"}, timeout=5)
    assert r.status_code == 200 and r.json()["sku"] == "A&B"
