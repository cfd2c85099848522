import time
from email.utils import formatdate

from magsit.http import _loggable, endpoint_key, parse_retry_after


def test_retry_after_seconds_date_and_reset():
    now = time.time()
    assert parse_retry_after({"Retry-After": "7"}, now) == 7
    assert 28 <= parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now) <= 31
    assert parse_retry_after({"X-Rate-Limit-Reset": str(int(now) + 12)}, now) >= 11
    assert parse_retry_after({}, now) is None


def test_urls_are_redacted_for_logs():
    assert _loggable("https://u:secret@h/x?password=abc&a=1") == "https://***@h/x?password=***&a=1"


def test_endpoint_key_folds_ids():
    assert endpoint_key("GET", "/V1/orders/123") == "GET /V1/orders/{id}"
    assert endpoint_key("PUT", "/sites/1/users/{A1B2-C3}.json") == "PUT /sites/{id}/users/{id}.json"
