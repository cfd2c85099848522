"""The CLI's error boundary: one line, the right exit code, no traceback, no secret."""

import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
[magento]
base_url = "http://127.0.0.1:{port}"
token = "tok-SECRET-1"

[sitoo]
base_url = "http://127.0.0.1:{port}/v2/accounts/1"
api_id = "1-1"
password = "pw-SECRET-2"

[http]
max_retries = 0
connect_timeout = 1
"""


def magsit(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "magsit", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "magsit.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def assert_clean(result, code):
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output
    assert "SECRET" not in output


def test_help_lists_every_contract_command():
    result = magsit("--help")
    assert result.returncode == 0
    for name in ["sync-stock", "sync-products", "push-orders", "sync-fulfilment", "sync-customers", "sync-returns",
                 "reconcile", "audit", "status", "exceptions", "daemon", "events", "sandbox", "demo", "check"]:
        assert name in result.stdout


def test_missing_config_exit_2(tmp_path):
    result = magsit("--config", str(tmp_path / "missing.toml"), "status")
    assert_clean(result, 2)
    assert "not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_typo_key_exit_2_names_file_and_key(tmp_path):
    path = write(tmp_path, CONFIG.format(port=9) + "\n[stock]\nbufer = 2\n")
    result = magsit("--config", str(path), "status")
    assert_clean(result, 2)
    assert "stock.bufer" in result.stderr and str(path) in result.stderr


def test_missing_secret_exit_2(tmp_path):
    path = write(tmp_path, CONFIG.format(port=9).replace('password = "pw-SECRET-2"', ""))
    result = magsit("--config", str(path), "status")
    assert_clean(result, 2)
    assert "sitoo.password" in result.stderr


def test_unreachable_api_exit_1(tmp_path):
    path = write(tmp_path, CONFIG.format(port=9))
    result = magsit("--config", str(path), "check")
    assert_clean(result, 1)
    assert "cannot connect to 127.0.0.1:9: connection refused" in " ".join((result.stdout + result.stderr).split())


def test_usage_error_exit_2():
    result = magsit("--no-such-option")
    assert_clean(result, 2)


@pytest.mark.parametrize("command", ["status", "exceptions list"])
def test_operator_commands_on_empty_state(tmp_path, command):
    path = write(tmp_path, CONFIG.format(port=9))
    result = magsit("--config", str(path), *command.split())
    assert_clean(result, 0)


def test_exit_codes_are_the_contract():
    from magsit.errors import ExitCode

    # ../shared/DESIGN.md, interface contract: cron wrappers, systemd and monitoring rules read these.
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "FAILED": 1, "USAGE": 2, "PARTIAL": 3, "LOCKED": 4, "INTERRUPTED": 130,
    }
