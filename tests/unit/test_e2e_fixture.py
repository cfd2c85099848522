"""The e2e fixture never runs quietly without schema checks (issue 16 §5)."""

from __future__ import annotations

import os

import pytest

from tests.e2e import conftest


def test_missing_schemas_fail_the_e2e_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "magento_checker", lambda: None)
    monkeypatch.delenv(conftest.SKIP_SCHEMAS_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="schema files for magento not found"):
        conftest.schema_checkers()


def test_explicit_opt_out_runs_without_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "magento_checker", lambda: None)
    monkeypatch.setenv(conftest.SKIP_SCHEMAS_ENV, "1")
    magento, sitoo = conftest.schema_checkers()
    assert magento is None and sitoo is not None


def test_checkers_found_beside_the_clone() -> None:
    if os.environ.get(conftest.SKIP_SCHEMAS_ENV) == "1":
        pytest.skip(f"{conftest.SKIP_SCHEMAS_ENV}=1: running without schema files on purpose")
    magento, sitoo = conftest.schema_checkers()
    assert magento is not None and sitoo is not None
