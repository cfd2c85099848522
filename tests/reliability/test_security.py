"""Security: credentials come from config or env only and never leak — not in logs (-vv), --json,
exception payloads, error messages or the state file; config files with secrets readable by others
are warned about; the state file is 0600; TLS is verified (a private CA via [http] ca_bundle); the
sandbox listens on loopback only."""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import ssl
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from magsit.sandbox.common import LoopbackServer
from tests.e2e.conftest import Env
from tests.reliability.conftest import FAST_HTTP, run_here
from tests.reliability.scenarios import SCENARIOS

pytestmark = pytest.mark.e2e

TOKEN = "mg-TOKEN-7f3a9c51e2"
PASSWORD = "st-PASS-c84d1b77aa"


def secrets() -> list[bytes]:
    basic = base64.b64encode(f"90001-56:{PASSWORD}".encode())
    return [TOKEN.encode(), PASSWORD.encode(), basic]


def leaks(blob: bytes) -> list[bytes]:
    return [s for s in secrets() if s in blob]


def state_bytes(env: Env) -> bytes:
    return b"".join(p.read_bytes() for p in env.tmp.glob("magsit.db*") if p.is_file())


def use_secrets(env: Env) -> None:
    env.magento.state.token = TOKEN
    env.sitoo.state.password = PASSWORD
    env.configure(magento={"token": TOKEN}, sitoo={"password": PASSWORD}, http=FAST_HTTP)


def test_secrets_never_reach_logs_json_exceptions_or_the_state_file(sandbox: Env) -> None:
    use_secrets(sandbox)
    for name in ("orders", "customers", "stock"):
        SCENARIOS[name].seed(sandbox)
    # error paths too: a failing write (exception row with payload) and a failing read (run error)
    sandbox.sitoo.control.add_fault("500", method="POST", path=r"/orders\.json$", times=1)
    sandbox.magento.control.add_fault("html403", method="GET", path=r"/customers/search$", times=1)
    out = b""
    for command in ("push-orders", "sync-customers", "sync-stock", "sync-fulfilment", "sync-returns"):
        # JSON log lines: rich wraps long lines, which could split a secret past the detector
        for flags in (("-vv", "--log-format", "json"), ("--json", "-vv", "--log-format", "json"), ("-vv",)):
            ran = run_here(sandbox, *flags, command)
            out += ran.text.encode()
    out += run_here(sandbox, "--json", "exceptions", "list").text.encode()
    out += run_here(sandbox, "-vv", "status").text.encode()
    assert b"DEBUG" in out or b"GET" in out  # -vv did log the HTTP calls
    assert b"order" in out and leaks(out) == []
    assert leaks(state_bytes(sandbox)) == []
    # the emulators did receive the credentials: they were used, just never written down
    assert sandbox.magento.control.calls() and sandbox.sitoo.control.calls()


def test_a_leak_would_be_detected(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector has teeth: a debug line that prints the request headers leaks the credentials."""
    import magsit.http

    use_secrets(sandbox)
    SCENARIOS["orders"].seed(sandbox)
    real = magsit.http.HttpSession._send

    def chatty(self: Any, *args: Any) -> Any:
        sent = self.session.prepare_request(requests.Request("GET", self.base_url)).headers
        magsit.http.log.debug("request headers %s", dict(sent))  # the classic mistake
        return real(self, *args)

    monkeypatch.setattr(magsit.http.HttpSession, "_send", chatty)
    ran = run_here(sandbox, "-vv", "--log-format", "json", "push-orders")
    assert leaks(ran.text.encode())


def test_credentials_from_the_environment_only(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_secrets(sandbox)
    SCENARIOS["orders"].seed(sandbox)  # (seeding rewrites the config: strip the secrets after it)
    text = sandbox.config_path.read_text().replace(f'token = "{TOKEN}"', "").replace(f'password = "{PASSWORD}"', "")
    sandbox.config_path.write_text(text)
    assert TOKEN not in text and PASSWORD not in text
    monkeypatch.setenv("MAGSIT_MAGENTO_TOKEN", TOKEN)
    monkeypatch.setenv("MAGSIT_SITOO_PASSWORD", PASSWORD)
    ran = run_here(sandbox, "push-orders")
    assert ran.code == 0, ran.text
    assert "readable by other users" not in ran.text  # no secret in the file: nothing to warn about
    monkeypatch.delenv("MAGSIT_SITOO_PASSWORD")
    ran = run_here(sandbox, "push-orders")
    assert ran.code == 2 and "sitoo.password" in ran.text and "Traceback" not in ran.text


def test_config_with_secrets_readable_by_others_is_warned_about(sandbox: Env) -> None:
    sandbox.config_path.chmod(0o644)
    ran = run_here(sandbox, "status")
    assert f"chmod 600 {sandbox.config_path}" in ran.err
    sandbox.config_path.chmod(0o600)
    assert "readable by other users" not in run_here(sandbox, "status").err


def test_state_and_lock_files_are_private(sandbox: Env) -> None:
    previous = os.umask(0o022)  # a permissive umask must not widen them
    try:
        SCENARIOS["orders"].seed(sandbox)
        assert run_here(sandbox, "push-orders").code == 0
    finally:
        os.umask(previous)
    files = [p for p in sandbox.tmp.iterdir() if p.name.startswith("magsit.db")]
    assert sandbox.state_path in files and any(p.name.endswith(".lock") for p in files)
    for path in (sandbox.state_path, *[p for p in files if p.name.endswith(".lock")]):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.fixture
def tls_server(tmp_path: Path) -> Any:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b'{"message": "nothing here"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def test_tls_is_verified_and_a_private_ca_is_configured_not_disabled(
    sandbox: Env, tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    sandbox.configure(magento={"base_url": url}, http=FAST_HTTP)
    SCENARIOS["orders"].seed(sandbox)
    ran = run_here(sandbox, "--json", "push-orders")
    assert ran.code == 1 and "Traceback" not in ran.text
    assert "TLS verification failed" in ran.out and "ca_bundle" in ran.out
    # REQUESTS_CA_BUNDLE (set on many hosts) must not override the configured CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", os.environ.get("REQUESTS_CA_BUNDLE") or str(cert.parent / "none.pem"))
    sandbox.configure(http={**FAST_HTTP, "ca_bundle": str(cert)})
    ran = run_here(sandbox, "--json", "push-orders")
    assert "TLS verification failed" not in ran.text  # trusted now; the fake shop simply answers 404
    assert "verify" not in sandbox.config_path.read_text()  # there is no switch to turn verification off


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_sandbox_listens_on_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackServer(lambda environ, start: [], host=host)
