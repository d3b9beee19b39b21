"""Waiting for new outbox rows between dispatch passes (:meth:`bot.store.Store.outbox_waiter`).

PostgreSQL: ``LISTEN`` on a connection of its own (psycopg's async connection); every outbox
insert sends ``NOTIFY`` in its transaction, delivered at commit. Notifications that arrive
between two waits stay queued on that connection, so none is lost once listening. A lost
connection is reopened at the next wait (meanwhile the wait is a plain sleep: polling, the
fallback). SQLite: one process, nothing to listen to — the wait is a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.db.base import Database

log = logging.getLogger(__name__)


class OutboxWaiter(Protocol):
    async def wait(self, timeout_s: float) -> bool:
        """True when rows were committed meanwhile, False after ``timeout_s`` (poll)."""
        ...

    async def close(self) -> None: ...


class PollWaiter:
    async def wait(self, timeout_s: float) -> bool:
        await asyncio.sleep(timeout_s)
        return False

    async def close(self) -> None:
        return None


class ListenWaiter:
    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self.channel = channel
        self._conn: Any = None  # psycopg.AsyncConnection, opened at the first wait

    async def wait(self, timeout_s: float) -> bool:
        import psycopg

        from bot.db.postgres import unreachable

        try:
            if self._conn is None:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=max(1, int(timeout_s) + 1))
                await self._conn.execute(f"LISTEN {self.channel}")
            async for _ in self._conn.notifies(timeout=timeout_s, stop_after=1):
                return True
            return False
        except (psycopg.Error, OSError) as exc:
            log.warning("outbox: not listening for new rows, polling (%s)",
                        unreachable(self.dsn, "[bot] store", exc))
            await self.close()
            await asyncio.sleep(timeout_s)
            return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing left to do
                await conn.close()


def waiter_for(db: Database, channel: str) -> OutboxWaiter:
    dsn = getattr(db, "dsn", None)
    if db.dialect == "postgresql" and dsn:
        return ListenWaiter(dsn, channel)
    return PollWaiter()
