import pytest

from magsit.config import parse_config
from magsit.errors import ApiError, LockedError
from magsit.runner import JobResult, run_job
from magsit.state import JobLock, StateStore


def make_config(tmp_path):
    return parse_config(
        {
            "magento": {"base_url": "http://127.0.0.1:9", "token": "t"},
            "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
            "state": {"path": str(tmp_path / "s.db")},
        }
    )


def test_clean_run_records_ok(tmp_path):
    config = make_config(tmp_path)
    outcome = run_job(config, "sync-stock", lambda ctx: JobResult(counts={"written": 2}))
    assert (outcome.exit_code, outcome.status) == (0, "ok")
    store = StateStore(config.state.path)
    run = store.last_runs()[0]
    assert run["status"] == "ok" and run["counts"]["written"] == 2 and run["last_success_at"]


def test_record_failures_give_exit_3_and_rows_then_resolve(tmp_path):
    config = make_config(tmp_path)

    def flow(ctx):
        ctx.fail("unknown_sku", "ecommerce", "SKU-1", "SKU-1 is not a Magento product")
        ctx.succeeded("SKU-2")
        return JobResult()

    outcome = run_job(config, "sync-stock", flow)
    assert outcome.exit_code == 3 and outcome.status == "partial"
    store = StateStore(config.state.path)
    assert [r["record_key"] for r in store.exceptions()] == ["SKU-1"]
    run_job(config, "sync-stock", lambda ctx: (ctx.succeeded("SKU-1"), JobResult())[1])
    assert store.exceptions() == []


def test_dry_run_writes_no_exception_rows(tmp_path):
    config = make_config(tmp_path)

    def flow(ctx):
        ctx.fail("unknown_sku", "ecommerce", "SKU-1", "m")
        return JobResult(plan=[{"sku": "SKU-1"}])

    outcome = run_job(config, "sync-stock", flow, dry_run=True)
    assert outcome.exit_code == 3 and outcome.result.plan == [{"sku": "SKU-1"}]
    assert StateStore(config.state.path).exceptions() == []


def test_api_error_fails_the_run_with_exit_1(tmp_path):
    config = make_config(tmp_path)

    def flow(ctx):
        raise ApiError("sitoo: cannot reach http://127.0.0.1:9", system="sitoo")

    outcome = run_job(config, "sync-stock", flow)
    assert outcome.exit_code == 1 and outcome.status == "failed"
    assert "cannot reach" in StateStore(config.state.path).last_runs()[0]["message"]


def test_locked_job_touches_nothing(tmp_path):
    config = make_config(tmp_path)
    with JobLock(config.state.path, "sync-stock"), pytest.raises(LockedError):
        run_job(config, "sync-stock", lambda ctx: JobResult())
    assert StateStore(config.state.path).runs() == []


def test_busy_state_file_is_a_clear_run_failure(tmp_path):
    import sqlite3

    config = make_config(tmp_path)

    def flow(ctx):
        raise sqlite3.OperationalError("database is locked")

    outcome = run_job(config, "sync-stock", flow)
    assert outcome.exit_code == 1
    assert "could not be written (database is locked)" in outcome.error
    assert "internal error" not in outcome.error
