from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from magsit.state.cursor import KeysetPosition
from magsit.sync.keyset import keyset_scan, magento_ts, next_cursor, read_start


class FakeOrders:
    """A Magento /V1/orders search over (updated_at, entity_id), page 1 only, total_count unpaged."""

    def __init__(self, rows):
        self.rows = rows
        self.calls = 0

    def fetch(self, filters, page_size):
        self.calls += 1
        out = self.rows
        for field, value, cond in filters:
            def ok(row, field=field, value=value, cond=cond):
                have = row[field]
                want = int(value) if field == "entity_id" else value
                return {"eq": have == want, "gt": have > want, "gteq": have >= want, "lteq": have <= want}[cond]

            out = [r for r in out if ok(r)]
        out = sorted(out, key=lambda r: (r["updated_at"], r["entity_id"]))
        return out[:page_size], len(out)


def ts(second):
    return magento_ts(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=second))


def test_a_cluster_larger_than_a_page_is_read_once():
    rows = [{"entity_id": i, "updated_at": ts(5)} for i in range(1, 251)]
    rows += [{"entity_id": 300 + i, "updated_at": ts(6 + i)} for i in range(3)]
    fake = FakeOrders(rows)
    seen = [r["entity_id"] for r in keyset_scan(fake.fetch, ts(0), page_size=40)]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 253
    assert fake.calls < 20


@settings(max_examples=200, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=80),
    page_size=st.integers(min_value=1, max_value=12),
    start=st.integers(min_value=0, max_value=3),
)
def test_every_row_in_the_window_exactly_once_in_order(stamps, page_size, start):
    rows = [{"entity_id": i + 1, "updated_at": ts(s)} for i, s in enumerate(stamps)]
    # ids are not monotonic in time: shuffle the id/time relation
    rows = [{"entity_id": (r["entity_id"] * 7919) % 10007, "updated_at": r["updated_at"]} for r in rows]
    fake = FakeOrders(rows)
    got = list(keyset_scan(fake.fetch, ts(start), page_size))
    want = sorted((r for r in rows if r["updated_at"] >= ts(start)), key=lambda r: (r["updated_at"], r["entity_id"]))
    assert got == want


def test_until_bounds_the_window():
    rows = [{"entity_id": i, "updated_at": ts(i)} for i in range(1, 10)]
    got = [r["entity_id"] for r in keyset_scan(FakeOrders(rows).fetch, ts(2), 2, until=ts(5))]
    assert got == [2, 3, 4, 5]


def test_read_start_first_run_cursor_and_since():
    now = datetime(2024, 1, 2, 12, tzinfo=UTC)
    kw = {"run_start": now, "lookback": timedelta(seconds=120), "initial_lookback": timedelta(hours=24)}
    assert read_start(None, **kw) == "2024-01-01 12:00:00"
    assert read_start(KeysetPosition("2024-01-02 10:00:00", 5), **kw) == "2024-01-02 09:58:00"
    assert read_start(KeysetPosition("2024-01-02 10:00:00", 5), since=datetime(2023, 1, 1, tzinfo=UTC), **kw) == "2023-01-01 00:00:00"


def test_next_cursor_never_passes_run_start_minus_lookback_nor_goes_back():
    now = datetime(2024, 1, 2, 12, tzinfo=UTC)
    kw = {"run_start": now, "lookback": timedelta(seconds=120)}
    seen = [KeysetPosition("2024-01-02 11:59:59", 9), KeysetPosition("2024-01-02 10:00:00", 3)]
    assert next_cursor(None, seen, **kw) == KeysetPosition("2024-01-02 11:58:00", 0)
    old = [KeysetPosition("2024-01-02 10:00:00", 3)]
    assert next_cursor(None, old, **kw) == KeysetPosition("2024-01-02 10:00:00", 3)
    assert next_cursor(KeysetPosition("2024-01-02 11:00:00", 1), old, **kw) == KeysetPosition("2024-01-02 11:00:00", 1)
    assert next_cursor(KeysetPosition("2024-01-02 11:00:00", 1), [], **kw) == KeysetPosition("2024-01-02 11:00:00", 1)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 50)), max_size=20), st.integers(0, 100))
def test_next_cursor_properties(points, prev_second):
    now = datetime(2024, 1, 1, 0, 1, 40, tzinfo=UTC)  # second 100
    lookback = timedelta(seconds=30)
    seen = [KeysetPosition(ts(s), i) for s, i in points]
    previous = KeysetPosition(ts(prev_second), 1)
    result = next_cursor(previous, seen, run_start=now, lookback=lookback)
    assert result >= previous
    assert result <= max([previous, KeysetPosition(ts(70), 0)])


def test_rows_out_of_order_fail_the_run_with_a_message_not_an_internal_error(tmp_path):
    from magsit.config import parse_config
    from magsit.errors import ApiError, PagingError
    from magsit.runner import JobResult, run_job
    from tests.flows import push_only

    def repeating(filters, page_size):  # Magento answering the same row again: a possible gap behind it
        return [{"entity_id": 2, "updated_at": ts(1)}, {"entity_id": 1, "updated_at": ts(1)}], 5

    try:
        list(keyset_scan(repeating, ts(0), page_size=2))
    except PagingError as exc:
        assert isinstance(exc, ApiError) and exc.system == "magento"
    else:
        raise AssertionError("out-of-order rows were read on")
    config = parse_config({
        "magento": {"base_url": "http://127.0.0.1:9", "token": "t"},
        "sitoo": {"base_url": "http://127.0.0.1:9/v2/accounts/1", "api_id": "1-1", "password": "p"},
        "state": {"path": str(tmp_path / "s.db")},
    })  # fmt: skip
    outcome = run_job(config, "push-orders", push_only(lambda ctx: (list(keyset_scan(repeating, ts(0), 2)), JobResult())[1]))
    assert outcome.exit_code == 1 and outcome.error.startswith("magento: rows out of order")
    assert "internal error" not in outcome.error
