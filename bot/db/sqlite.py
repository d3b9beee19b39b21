"""The SQLite backend: a sqlite-utils :class:`~sqlite_utils.Database` (WAL, foreign keys on)
behind the :class:`bot.db.Database` surface. Opening a file (path checks, 0600, the owner lock,
the corruption check) is :mod:`bot.store_file`'s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from bot import store_file
from bot.errors import StoreError


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, db: sqlite_utils.Database,
                 lock: store_file.OwnerLock | None = None) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self._lock = lock
        self._serial = 0  # outermost transactions begun

    @classmethod
    def open(cls, path: Path | None, *, synchronous: str = "FULL",
             exclusive: bool = False) -> SqliteDatabase:
        """``path`` (None: in memory), created 0600; ``exclusive`` takes the one-owner lock.
        Raises :class:`~bot.errors.StoreError` (path problems, corruption, lock)."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        lock: store_file.OwnerLock | None = None
        db: sqlite_utils.Database | None = None
        p = path if path is not None else Path(":memory:")
        try:
            if path is None:
                db = sqlite_utils.Database(memory=True)
            else:
                store_file.prepare(path)
                if exclusive:
                    lock = store_file.OwnerLock(path)
                # check_same_thread=False: the service may call from asyncio.to_thread; the
                # caller keeps to one thread at a time.
                conn = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
                db = sqlite_utils.Database(conn)
                store_file.check_pages(conn, path)
                db.enable_wal()
            # Fixed keywords, not user data: PRAGMAs cannot take parameters.
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.DatabaseError, StoreError) as exc:
            if db is not None:
                db.close()
            if lock is not None:
                lock.release()
            if isinstance(exc, StoreError):
                raise
            raise store_file.open_error(exc, p) from exc
        return cls(db, lock)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run ``sql`` once per row (in one transaction); the number of rows changed."""
        rows = list(rows)
        if not rows:
            return 0
        if self.conn.in_transaction:
            return int(self.conn.executemany(sql, rows).rowcount)
        with self.db.atomic():
            return int(self.conn.executemany(sql, rows).rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        return self.db.query(sql, params)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if not self.conn.in_transaction:
            self._serial += 1
        try:
            with self.db.atomic():
                yield
        except BaseException:
            self._serial += 1  # rolled back (to a savepoint): what it did is gone
            raise

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @property
    def transaction(self) -> int | None:
        """The open transaction (a new number after a rollback to a savepoint), or None."""
        return self._serial if self.conn.in_transaction else None

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        # user_version is transactional: the schema and its number commit together.
        self.db.execute(f"PRAGMA user_version={int(version)}")

    def lock_schema(self) -> None:
        """Nothing to do: one process owns a SQLite store, and SQLite has one writer."""

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` says ok."""
        return bool(self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def notify(self, channel: str) -> None:
        """No listeners on SQLite (one process): dispatchers poll."""

    @property
    def journal_mode(self) -> str:
        return str(self.db.journal_mode)

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
