"""The typed cursors: each kind round-trips through the state file, the JSON shapes state files
written before the typed cursors hold are read unchanged, and a value of the wrong kind is refused."""

import json
import sqlite3
from datetime import UTC, datetime

import pytest

from magsit.state import StateStore
from magsit.state.cursor import CursorError, KeysetPosition, SitooEpoch, SitooId, UtcMoment

EVERY_KIND = [
    KeysetPosition("2026-01-02 03:04:05", 17),
    SitooEpoch(1767322800),
    SitooId(100042),
    UtcMoment(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
]


def _raw(store_path, job, stream):
    with sqlite3.connect(store_path) as conn:
        return json.loads(conn.execute("SELECT value FROM cursors WHERE job = ? AND stream = ?", (job, stream)).fetchone()[0])


def _put_raw(store_path, job, stream, value):
    with sqlite3.connect(store_path) as conn:
        conn.execute("INSERT INTO cursors (job, stream, value, updated_at) VALUES (?, ?, ?, '2026-01-01T00:00:00Z')",
                     (job, stream, json.dumps(value)))  # fmt: skip


@pytest.mark.parametrize("cursor", EVERY_KIND, ids=lambda c: type(c).__name__)
def test_each_kind_round_trips_through_the_state_file(tmp_path, cursor):
    store = StateStore(tmp_path / "s.db")
    store.set_cursor("job", "stream", cursor)
    assert store.get_cursor("job", "stream", type(cursor)) == cursor
    assert type(cursor).from_json(cursor.to_json()) == cursor
    assert StateStore(tmp_path / "s.db").get_cursor("job", "stream", type(cursor)) == cursor  # a new process


@pytest.mark.parametrize(
    ("job", "stream", "legacy", "kind", "expected"),
    [
        ("push-orders", "magento-orders", ["2026-01-02 03:04:05", 17], KeysetPosition, KeysetPosition("2026-01-02 03:04:05", 17)),
        ("sync-customers", "magento-customers", {"updated_at": "2026-01-02 03:04:05"}, KeysetPosition,
         KeysetPosition("2026-01-02 03:04:05", 0)),
        ("sync-products", "products", 1767322800, SitooEpoch, SitooEpoch(1767322800)),
        ("sync-stock", "warehouse:1", 1767322800, SitooEpoch, SitooEpoch(1767322800)),
        ("sync-returns", "sitoo-orders", 100042, SitooId, SitooId(100042)),
        ("sync-stock", "orders_seen", "2026-01-02T03:04:05Z", UtcMoment, UtcMoment(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))),
        ("push-orders", "magento-orders", None, KeysetPosition, None),
        ("push-orders", "magento-orders", [], KeysetPosition, None),
    ],
)  # fmt: skip
def test_state_files_written_before_typed_cursors_read_unchanged(tmp_path, job, stream, legacy, kind, expected):
    store = StateStore(tmp_path / "s.db")
    _put_raw(tmp_path / "s.db", job, stream, legacy)
    assert store.get_cursor(job, stream, kind) == expected
    if expected is not None and not isinstance(legacy, dict):
        store.set_cursor(job, stream, expected)
        assert _raw(tmp_path / "s.db", job, stream) == legacy  # written back in the very same JSON shape


@pytest.mark.parametrize(
    ("stored", "kind"),
    [
        (["2026-01-02 03:04:05", 17], SitooId),
        (1767322800, KeysetPosition),
        ("2026-01-02T03:04:05Z", SitooEpoch),
        (100042, UtcMoment),
        ("2026-01-02 03:04:05", UtcMoment),  # Magento's text, not the UTC cursor format
        (True, SitooEpoch),
        (["2026-01-02 03:04:05", "x"], KeysetPosition),
    ],
)
def test_a_cursor_of_another_kind_is_refused_with_a_clear_error(tmp_path, stored, kind):
    store = StateStore(tmp_path / "s.db")
    _put_raw(tmp_path / "s.db", "sync-returns", "sitoo-orders", stored)
    with pytest.raises(CursorError) as raised:
        store.get_cursor("sync-returns", "sitoo-orders", kind)
    message = str(raised.value)
    assert "sync-returns/sitoo-orders" in message and json.dumps(stored) in message and kind.KIND in message


def test_set_cursor_takes_only_typed_cursors(tmp_path):
    store = StateStore(tmp_path / "s.db")
    for untyped in (7, ["2026-01-02 03:04:05", 17], "2026-01-02T03:04:05Z"):
        with pytest.raises(TypeError, match="job/stream: .* is not a typed cursor"):
            store.set_cursor("job", "stream", untyped)
    assert store.get_cursor("job", "stream", SitooEpoch) is None


def test_a_utc_moment_needs_a_time_zone():
    with pytest.raises(CursorError, match="no time zone"):
        UtcMoment(datetime(2026, 1, 2))


def test_keyset_positions_order_as_the_magento_scan_does():
    assert KeysetPosition("2026-01-02 03:04:05", 0) < KeysetPosition("2026-01-02 03:04:05", 1) < KeysetPosition("2026-01-02 03:04:06")
