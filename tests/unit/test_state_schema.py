"""The state file's schema, pinned: what the migrations build must not drift when they are rewritten.

``data/state_schema.json`` was generated from the migrations as they were written in SQL (main at
f4fa26b, before they moved to sqlite-utils' table API): for every schema version, the ``CREATE``
statements a file at that version holds and its shape (tables, columns with type / NOT NULL /
default / primary key, indexes with unique / origin / columns). The shape, not the SQL text, is
compared: sqlite-utils quotes names and writes no comments, and neither changes what SQLite does.
A new migration adds its version to the file (``python -m tests.unit.test_state_schema`` prints
every version as the code builds it now); the entries of released versions never change.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from magsit.state import store as store_module
from magsit.state.store import MIGRATIONS, StateStore

PINNED = json.loads((Path(__file__).parent / "data" / "state_schema.json").read_text())["versions"]
OLDER = range(1, len(MIGRATIONS))


def describe(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything about a schema that changes what SQLite stores or refuses, as plain JSON."""
    tables: dict[str, Any] = {}
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        listing = conn.execute("SELECT type, wr, strict FROM pragma_table_list WHERE name = ?", (name,)).fetchone()
        indexes = []
        for _seq, index, unique, origin, partial in conn.execute(f'PRAGMA index_list("{name}")'):
            columns = [
                [column, desc, coll]
                for _seqno, _cid, column, desc, coll, key in conn.execute(f'PRAGMA index_xinfo("{index}")')
                if key
            ]
            indexes.append({"name": index, "unique": unique, "origin": origin, "partial": partial, "columns": columns})
        tables[name] = {
            "kind": list(listing),  # table, WITHOUT ROWID, STRICT
            "columns": [
                {"name": col, "type": type_, "notnull": notnull, "default": default, "pk": pk, "hidden": hidden}
                for _cid, col, type_, notnull, default, pk, hidden in conn.execute(f'PRAGMA table_xinfo("{name}")')
            ],
            "indexes": sorted(indexes, key=lambda index: index["name"]),
        }
    return {"user_version": conn.execute("PRAGMA user_version").fetchone()[0], "tables": tables}


def _built_by_migrations(version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number in range(version):
        MIGRATIONS[number](db)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def _older_file(path: Path, version: int) -> None:
    """A state file as the SQL migrations left it at ``version``, with a run and an exception in it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in PINNED[str(version)]["sql"]:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO runs (job, started_at, status) VALUES ('sync-stock', '2026-01-01T00:00:00Z', 'ok')")
    conn.execute(
        "INSERT INTO exceptions (job, kind, owner, record_key, message, first_seen, last_seen) "
        "VALUES ('sync-stock', 'unknown_sku', 'ecommerce', 'A-1', 'm', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    )
    conn.close()


def test_every_schema_version_is_pinned() -> None:
    assert sorted(PINNED, key=int) == [str(number) for number in range(1, len(MIGRATIONS) + 1)]


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_each_migration_builds_the_pinned_shape(version: int) -> None:
    assert describe(_built_by_migrations(version)) == PINNED[str(version)]["shape"]


def test_a_new_state_file_has_the_pinned_schema_wal_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(path)
    assert describe(store.db.conn) == PINNED[str(len(MIGRATIONS))]["shape"]
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("version", OLDER)
def test_an_older_state_file_upgrades_to_the_same_schema_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    _older_file(path, version)
    store = StateStore(path)
    assert describe(store.db.conn) == PINNED[str(len(MIGRATIONS))]["shape"]
    assert [run["job"] for run in store.runs("sync-stock")] == ["sync-stock"]
    [row] = store.exceptions()
    assert (row["record_key"], row["attempts"], row["status"], row["resolved_by"]) == ("A-1", 1, "open", None)
    # The upgraded file works like a new one: the next attempt counts up on the same row.
    assert store.record_exception("sync-stock", "unknown_sku", "ecommerce", "A-1", "m")["attempts"] == 2


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_a_migration_that_fails_half_way_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    """sqlite-utils' create(), create_index() and add_column() run inside the migration's BEGIN
    IMMEDIATE (create's own atomic() is a SAVEPOINT there, never a COMMIT): a crash after they ran
    rolls all of it back with the version number, and the next open upgrades the file."""
    path = tmp_path / "s.db"
    if version:
        _older_file(path, version)
    migration = MIGRATIONS[version]

    def crashes(db: sqlite_utils.Database) -> None:
        migration(db)
        raise RuntimeError("killed half way")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS[:version], crashes, *MIGRATIONS[version + 1 :]])
    with pytest.raises(RuntimeError, match="half way"):
        StateStore(path)
    conn = sqlite3.connect(path)
    assert describe(conn) == describe(_built_by_migrations(version))
    conn.close()
    monkeypatch.undo()
    store = StateStore(path)
    assert describe(store.db.conn) == PINNED[str(len(MIGRATIONS))]["shape"]
    store.close()


if __name__ == "__main__":
    print(
        json.dumps(
            {str(number): {"shape": describe(_built_by_migrations(number))} for number in range(1, len(MIGRATIONS) + 1)},
            indent=1,
            sort_keys=True,
        )
    )
