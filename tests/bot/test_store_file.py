"""Store on a file: 0600, WAL, versioned migrations, integrity."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from bot.errors import StoreError
from bot.store import SCHEMA_VERSION, Store


def test_new_file_is_private_wal_and_migrated(tmp_path) -> None:
    path = tmp_path / "liqbot.db"
    s = Store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert s.journal_mode() == "wal"
    assert s.schema_version == SCHEMA_VERSION
    assert s.integrity_ok()
    s.upsert_chat("telegram", 1)
    s.close()
    again = Store(path)  # re-opening runs no migration twice and keeps data
    assert again.schema_version == SCHEMA_VERSION
    assert again.find_chat("telegram", 1) is not None
    again.close()


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "liqbot.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_path_xor_memory() -> None:
    with pytest.raises(ValueError):
        Store()
