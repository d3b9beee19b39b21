"""The surface both store backends offer (:mod:`bot.db`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    """What a statement gives back (sqlite3's and psycopg's cursors both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    dialect: str  # "sqlite" | "postgresql"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]: ...

    def atomic(self) -> AbstractContextManager[Any]: ...

    @property
    def in_transaction(self) -> bool: ...

    @property
    def transaction(self) -> int | None:
        """The open transaction: a number per outermost atomic() block, changed by a
        rollback to a savepoint; None outside a transaction."""
        ...

    @property
    def schema_version(self) -> int: ...

    def set_schema_version(self, version: int) -> None: ...

    def lock_schema(self) -> None: ...

    def integrity_ok(self) -> bool: ...

    def notify(self, channel: str) -> None: ...

    @property
    def journal_mode(self) -> str: ...

    def close(self) -> None: ...
