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


def test_a_create_answered_2xx_with_an_unreadable_body_has_an_unknown_outcome():
    """The server took the POST (2xx) but its answer cannot be read: the create may exist, so the
    caller must check before sending it again (returns/customers decide on ``outcome_unknown``)."""
    import pytest
    import responses

    from magsit.errors import ApiError
    from magsit.http import HttpSession

    session = HttpSession("magento", "https://shop.test/rest/V1")
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://shop.test/rest/V1/order/1/refund", body="12{", status=200,
                 content_type="application/json")
        mock.add(responses.POST, "https://shop.test/rest/V1/order/2/refund", body="<html>maintenance</html>",
                 status=200, content_type="text/html")
        mock.add(responses.GET, "https://shop.test/rest/V1/orders/1", body="{x", status=200,
                 content_type="application/json")
        for path in ("/order/1/refund", "/order/2/refund"):
            with pytest.raises(ApiError) as caught:
                session.post(path, json={}, retry=False)
            assert caught.value.outcome_unknown, path
        session.settings.max_retries = 0
        with pytest.raises(ApiError) as caught:
            session.get("/orders/1")
        assert not caught.value.outcome_unknown  # a read changes nothing


def test_proxy_environment_is_resolved_once_and_honoured(monkeypatch):
    from magsit.http import HttpSession

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    shop = HttpSession("magento", "https://shop.example/rest/default/V1")
    assert shop.session.proxies.get("https") == "http://proxy.example:3128"
    assert not shop.session.trust_env  # not re-read per call
    assert "https" not in HttpSession("sitoo", "https://api.internal.example/v2").session.proxies


def test_configured_ca_bundle_beats_requests_ca_bundle(monkeypatch, tmp_path):
    from magsit.config import HttpSettings
    from magsit.http import HttpSession

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "other.pem"))
    assert HttpSession("magento", "https://shop.example", settings=HttpSettings(ca_bundle=bundle)).session.verify == str(bundle)
    assert HttpSession("magento", "https://shop.example").session.verify == str(tmp_path / "other.pem")
