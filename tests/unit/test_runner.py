import pytest

from magsit.errors import ApiError, LockedError
from magsit.runner import JobResult, run_job
from magsit.state import JobLock, StateStore
from magsit.state.cursor import SitooEpoch
from tests.configs import minimal_config
from tests.flows import push_only


def make_config(tmp_path):
    return minimal_config(tmp_path)


def test_clean_run_records_ok(tmp_path):
    config = make_config(tmp_path)
    outcome = run_job(config, "sync-stock", push_only(lambda ctx: JobResult(counts={"written": 2})))
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

    outcome = run_job(config, "sync-stock", push_only(flow))
    assert outcome.exit_code == 3 and outcome.status == "partial"
    store = StateStore(config.state.path)
    assert [r["record_key"] for r in store.exceptions()] == ["SKU-1"]
    run_job(config, "sync-stock", push_only(lambda ctx: (ctx.succeeded("SKU-1"), JobResult())[1]))
    assert store.exceptions() == []


def test_api_error_fails_the_run_with_exit_1(tmp_path):
    config = make_config(tmp_path)

    def flow(ctx):
        raise ApiError("sitoo: cannot reach http://127.0.0.1:9", system="sitoo")

    outcome = run_job(config, "sync-stock", push_only(flow))
    assert outcome.exit_code == 1 and outcome.status == "failed"
    assert "cannot reach" in StateStore(config.state.path).last_runs()[0]["message"]


def test_locked_job_touches_nothing(tmp_path):
    config = make_config(tmp_path)
    with JobLock(config.state.path, "sync-stock"), pytest.raises(LockedError):
        run_job(config, "sync-stock", push_only(lambda ctx: JobResult()))
    assert StateStore(config.state.path).runs() == []


def test_busy_state_file_is_a_clear_run_failure(tmp_path):
    import sqlite3

    config = make_config(tmp_path)

    def flow(ctx):
        raise sqlite3.OperationalError("database is locked")

    outcome = run_job(config, "sync-stock", push_only(flow))
    assert outcome.exit_code == 1
    assert "could not be written (database is locked)" in outcome.error
    assert "internal error" not in outcome.error


# -- the flow protocol (magsit.flow): pull -> plan -> push, and a dry run that cannot write --------


class _Plan:
    def __init__(self, rows, problems=()):
        self.rows, self.problems = rows, list(problems)

    def preview(self):
        from magsit.flow import Preview

        return Preview(self.rows, [f"{len(self.rows)} rows"], self.problems)


def _flow(pull, pushed):
    from types import SimpleNamespace

    from magsit.errors import RecordError

    def plan(pulled, config, now):
        assert now.tzinfo is not None  # the run's start, passed in: plan has no clock of its own
        return _Plan([{"sku": s} for s in pulled], [RecordError("unknown_sku", "ecommerce", "SKU-9", "not in Magento")])

    def push(ctx, planned):
        pushed.append(planned.rows)
        for problem in planned.problems:
            ctx.fail_record(problem)
        return JobResult(counts={"written": len(planned.rows)})

    return SimpleNamespace(JOB="sync-stock", pull=pull, plan=plan, push=push)


def test_dry_run_stops_after_plan_and_lists_problems_without_recording(tmp_path):
    config = make_config(tmp_path)
    StateStore(config.state.path).close()
    pushed = []
    flow = _flow(lambda ctx: ["SKU-1", "SKU-2"], pushed)
    outcome = run_job(config, "sync-stock", flow, dry_run=True)
    assert pushed == [] and outcome.exit_code == 3
    assert outcome.result.plan == [{"sku": "SKU-1"}, {"sku": "SKU-2"}] and outcome.result.summary == ["2 rows"]
    assert [f.key for f in outcome.failures] == ["SKU-9"] and outcome.failures[0].id is None
    store = StateStore(config.state.path)
    assert store.exceptions() == [] and store.runs()[0]["dry_run"] == 1
    outcome = run_job(config, "sync-stock", flow)
    assert pushed == [[{"sku": "SKU-1"}, {"sku": "SKU-2"}]] and outcome.result.counts["written"] == 2
    assert [r["record_key"] for r in store.exceptions()] == ["SKU-9"]


def test_verify_runs_after_plan_in_real_and_dry_runs_and_its_error_stops_before_push(tmp_path):
    """flow.verify: reads the plan depends on; a dry run fails where the real run would."""
    from magsit.errors import MagsitError

    config = make_config(tmp_path)
    StateStore(config.state.path).close()
    pushed, verified = [], []
    flow = _flow(lambda ctx: ["SKU-1"], pushed)

    def verify(ctx, planned):
        verified.append((ctx.dry_run, planned.rows))
        if ctx.options.get("broken"):
            raise MagsitError("[stock].sources maps to nowhere; nothing was written")

    flow.verify = verify
    assert run_job(config, "sync-stock", flow, dry_run=True).exit_code == 3  # SKU-9 would fail
    assert run_job(config, "sync-stock", flow).exit_code == 3
    assert verified == [(True, [{"sku": "SKU-1"}]), (False, [{"sku": "SKU-1"}])] and len(pushed) == 1
    for dry_run in (True, False):
        outcome = run_job(config, "sync-stock", flow, dry_run=dry_run, options={"broken": True})
        assert outcome.exit_code == 1 and "maps to nowhere" in outcome.error and outcome.failures == []
    assert len(pushed) == 1


def test_dry_run_state_is_read_only(tmp_path):
    config = make_config(tmp_path)
    StateStore(config.state.path).set_cursor("sync-stock", "default", SitooEpoch(7))

    def pull(ctx):
        assert ctx.state.get_cursor("sync-stock", "default", SitooEpoch) == SitooEpoch(7)  # reads work
        ctx.state.set_cursor("sync-stock", "default", SitooEpoch(8))
        return []

    outcome = run_job(config, "sync-stock", _flow(pull, []), dry_run=True)
    assert outcome.exit_code == 1 and "dry run tried to write the state file" in outcome.error
    store = StateStore(config.state.path)
    assert store.get_cursor("sync-stock", "default", SitooEpoch) == SitooEpoch(7)
    assert store.runs()[0]["status"] == "failed"  # the run record is the runner's, and it is written


def test_dry_run_sessions_refuse_writes(tmp_path):
    config = make_config(tmp_path)

    def pull(ctx):
        ctx.sitoo.http.post("/sites/1/orders.json", json={})
        return []

    outcome = run_job(config, "sync-stock", _flow(pull, []), dry_run=True)
    assert outcome.exit_code == 1
    assert outcome.error == "internal error: WriteRefused: sitoo: a dry run may only read, and tried POST /sites/1/orders.json"

    def magento_pull(ctx):
        ctx.magento.http.request("PUT", "/products/A?x=1", json={})
        return []

    outcome = run_job(config, "sync-stock", _flow(magento_pull, []), dry_run=True)
    assert outcome.exit_code == 1 and "tried PUT /products/A" in outcome.error and "?x=1" not in outcome.error


def test_read_only_session_refuses_before_sending():
    from magsit.http import HttpSession, WriteRefused

    session = HttpSession("magento", "http://127.0.0.1:9", read_only=True)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        with pytest.raises(WriteRefused, match=f"tried {method} /orders/1/cancel"):
            session.request(method, "/orders/1/cancel")
    assert session.call_count == 0


def test_dry_run_without_a_state_file_creates_none(tmp_path):
    config = make_config(tmp_path)
    outcome = run_job(config, "sync-stock", _flow(lambda ctx: [ctx.state.get_cursor("sync-stock", "default", SitooEpoch)], []), dry_run=True)
    assert outcome.result.plan == [{"sku": None}]
    assert not (tmp_path / "s.db").exists()


def test_read_only_store_never_creates_or_migrates(tmp_path):
    import sqlite3

    from magsit.state.store import StateError

    with pytest.raises(StateError, match="does not exist"):
        StateStore(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()
    sqlite3.connect(tmp_path / "old.db").close()  # an empty (schema 0) file
    with pytest.raises(StateError, match="does not upgrade it"):
        StateStore(tmp_path / "old.db", read_only=True)
    store = StateStore(tmp_path / "s.db")
    view = store.read_only_view()
    with pytest.raises(sqlite3.OperationalError, match="readonly"), view.transaction():
        view.set_cursor("j", "s", SitooEpoch(1))
    assert store.get_cursor("j", "s", SitooEpoch) is None
