"""The PostgreSQL backend (psycopg 3) behind the :class:`bot.db.Database` surface.

One connection in autocommit mode; :meth:`PostgresDatabase.atomic` is psycopg's
``Connection.transaction()`` (nested blocks are savepoints). Statements use psycopg's
client-side binding (:class:`psycopg.ClientCursor`): the store's SQLite-style SQL has
``? IS NULL`` tests that a server-side parameter without a type cannot take. SQL is translated
by :func:`bot.db.translate.to_postgres`. The schema version is a one-row table; migrations
take an advisory lock, so processes starting together migrate once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

from bot.db import dsn as dsns
from bot.db.translate import to_postgres
from bot.errors import StoreError, StoreUnreachableError
from bot.redact import redact

VERSION_TABLE = "liqbot_schema"  # the schema version (one row)
MIGRATION_LOCK = 0x6C697162  # pg_advisory_xact_lock key ("liqb")
CONNECT_TIMEOUT_S = 10


def connect(dsn: str, *, key: str = "[bot] store", **kwargs: Any) -> psycopg.Connection[Any]:
    """An autocommit connection, or :class:`~bot.errors.StoreUnreachableError` (one line,
    naming ``key``, the DSN without its password)."""
    dsns.register(dsn)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               **kwargs)
    except psycopg.Error as exc:
        raise StoreUnreachableError(unreachable(dsn, key, exc)) from None


def unreachable(dsn: str, key: str, exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    why = lines[-1] if lines else type(exc).__name__
    for ln in lines:  # libpq: 'connection to server at "…" failed: <why>'
        if "failed:" in ln:
            why = ln.rsplit("failed:", 1)[1].strip() or why
            break
    why = redact(why, also=[dsn, dsns.password(dsn)])
    return f"{key}: cannot reach the PostgreSQL store {dsns.safe_dsn(dsn)}: {why}"


def failure(dsn: str, exc: BaseException) -> BaseException:
    """A server error while opening the store as a one-line StoreError (no password);
    anything else unchanged."""
    if not isinstance(exc, psycopg.Error):
        return exc
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    why = redact(lines[0] if lines else type(exc).__name__, also=[dsn, dsns.password(dsn)])
    return StoreError(f"store {dsns.safe_dsn(dsn)}: cannot open or migrate it: {why}")


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, dsn: str, *, key: str = "[bot] store") -> None:
        self.dsn = dsn
        self._key = key
        self._depth = 0  # atomic() blocks open
        self._serial = 0  # outermost transactions begun
        self._conn = connect(dsn, key=key, cursor_factory=psycopg.ClientCursor)
        try:
            with self.atomic():  # under the migration lock: processes may start together
                self.lock_schema()
                self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS liqbot_schema (version BIGINT NOT NULL)")
        except BaseException:
            self._conn.close()
            raise

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The connection; a lost one (server restart, network) is replaced at the next call
        made outside a transaction — the call that met the loss raised (it may or may not
        have been applied), and a transaction that lost its connection fails as a whole."""
        if self._conn.broken and self._depth == 0:
            self._conn = connect(self.dsn, key=self._key, cursor_factory=psycopg.ClientCursor)
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(to_postgres(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        if self._depth:  # already inside the caller's transaction: no savepoint needed
            with self.conn.cursor() as cur:
                cur.executemany(to_postgres(sql), rows)
                return int(cur.rowcount)
        with self.atomic(), self.conn.cursor() as cur:
            cur.executemany(to_postgres(sql), rows)
            return int(cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts; a repeated column name gets ``_2``, ``_3``… (the first keeps it),
        as sqlite-utils does."""
        cur = self.conn.execute(to_postgres(sql), tuple(params))
        names = _dedupe([d.name for d in cur.description or ()])
        return iter([dict(zip(names, row, strict=True)) for row in cur.fetchall()])

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if self._depth == 0:
            self._serial += 1
        try:
            with self.conn.transaction():
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
        except BaseException:
            self._serial += 1  # rolled back (to a savepoint): what it did is gone
            raise

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    @property
    def transaction(self) -> int | None:
        """The open transaction (a new number after a rollback to a savepoint), or None."""
        return self._serial if self._depth else None

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("SELECT max(version) FROM liqbot_schema").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def set_schema_version(self, version: int) -> None:
        with self.atomic():
            self.conn.execute("DELETE FROM liqbot_schema")
            self.conn.execute("INSERT INTO liqbot_schema (version) VALUES (%s)",
                              (int(version),))

    def lock_schema(self) -> None:
        """Inside a transaction: wait for any other process migrating this database."""
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def integrity_ok(self) -> bool:
        """The server answers (PostgreSQL checks its own pages; there is no cheap full
        check to run from here)."""
        try:
            return self.conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def notify(self, channel: str) -> None:
        """``NOTIFY channel``; inside a transaction it is delivered at commit."""
        self.conn.execute(f"NOTIFY {channel}")

    @property
    def journal_mode(self) -> str:
        return "postgresql"

    def close(self) -> None:
        self._conn.close()


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
