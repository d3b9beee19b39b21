"""The store's tape tables (schema v2 in :data:`bot.store.MIGRATIONS`), mixed into
:class:`bot.store.Store`: ``/subscribe_liqs`` subscriptions, recorded liquidations (kept
``keep_hours``, for ``/levels``, charts and break alerts) and the last alerted window per symbol.

:meth:`commit_tape` writes a symbol's alerted-up-to time and its outbox rows in ONE
transaction, so a window alerts once whatever the process does around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.alerts.events import AlertEvent
from bot.errors import LimitExceededError, UserInputError
from bot.tape.alerts import LiqSubscription
from bot.tape.events import Liquidation

if TYPE_CHECKING:
    from bot.db import Database


class TapeTables:
    db: Database
    max_subscriptions: int
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    def subscribe_liqs(self, chat: int, symbol: str, min_usd: float, sum_usd: float,
                       now: int) -> LiqSubscription:
        """Add or update ``chat``'s liquidation alerts for ``symbol`` (same per-chat cap as
        cluster subscriptions, counted separately)."""
        if not symbol:
            raise UserInputError("symbol must not be empty")
        if not (min_usd > 0 and sum_usd > 0):
            raise UserInputError("liquidation thresholds must be > 0 USD")
        with self.db.atomic():
            exists = self.db.execute(
                "SELECT 1 FROM liq_subscriptions WHERE chat = ? AND symbol = ?",
                (chat, symbol)).fetchone()
            n = self.db.execute("SELECT COUNT(*) FROM liq_subscriptions WHERE chat = ?",
                                (chat,)).fetchone()[0]
            if not exists and n >= self.max_subscriptions:
                raise LimitExceededError(
                    f"this chat already has {self.max_subscriptions} liquidation subscriptions "
                    "(the maximum); remove one with /unsubscribe_liqs SYMBOL first")
            self.db.execute(
                "INSERT INTO liq_subscriptions (chat, symbol, min_usd, sum_usd, created_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat, symbol) DO UPDATE SET"
                " min_usd = excluded.min_usd, sum_usd = excluded.sum_usd",
                (chat, symbol, float(min_usd), float(sum_usd), now))
        return LiqSubscription(chat, symbol, float(min_usd), float(sum_usd))

    def unsubscribe_liqs(self, chat: int, symbol: str) -> bool:
        cur = self.db.execute("DELETE FROM liq_subscriptions WHERE chat = ? AND symbol = ?",
                              (chat, symbol))
        return cur.rowcount > 0

    def list_liq_subscriptions(self, chat: int) -> list[LiqSubscription]:
        return [_sub(r) for r in self.db.query(
            "SELECT * FROM liq_subscriptions WHERE chat = ? ORDER BY symbol", (chat,))]

    def active_liq_subscriptions(self, symbol: str | None = None) -> list[LiqSubscription]:
        """Liquidation subscriptions of active chats (all symbols, or one)."""
        return [_sub(r) for r in self.db.query(
            "SELECT s.* FROM liq_subscriptions s JOIN chats c ON c.id = s.chat"
            " WHERE c.active = 1 AND (? IS NULL OR s.symbol = ?) ORDER BY s.id",
            (symbol, symbol))]

    def liq_subscriber_counts(self) -> dict[str, int]:
        """Active chats with liquidation alerts, per symbol (for /status)."""
        rows = self.db.execute(
            "SELECT s.symbol, COUNT(*) FROM liq_subscriptions s JOIN chats c ON c.id = s.chat"
            " WHERE c.active = 1 GROUP BY s.symbol ORDER BY s.symbol").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def add_liquidations(self, events: Iterable[Liquidation]) -> int:
        """Record events (an event already stored is ignored); returns how many were new."""
        rows = [(e.exchange, e.symbol, e.timestamp, e.side, e.price, e.amount, e.notional_usd)
                for e in events]
        return self.db.executemany(
            "INSERT INTO liquidations (exchange, symbol, ts, side, price, amount,"
            " notional_usd) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)

    def liquidations(self, symbol: str, since_ms: int,
                     until_ms: int | None = None) -> list[Liquidation]:
        """Recorded events of ``symbol`` with since ≤ ts < until, oldest first."""
        rows = self.db.execute(
            "SELECT exchange, ts, symbol, side, price, amount, notional_usd FROM liquidations"
            " WHERE symbol = ? AND ts >= ? AND (? IS NULL OR ts < ?) ORDER BY ts, exchange",
            (symbol, since_ms, until_ms, until_ms)).fetchall()
        return [Liquidation(*r) for r in rows]

    def tape_flushed(self, symbol: str) -> int | None:
        """Windows of ``symbol`` before this time (ms) have been alerted; None at first."""
        row = self.db.execute("SELECT flushed_ms FROM tape_state WHERE symbol = ?",
                              (symbol,)).fetchone()
        return None if row is None else int(row[0])

    def commit_tape(self, symbol: str, flushed_ms: int, events: Sequence[AlertEvent],
                    now: int) -> int:
        """Alerted up to ``flushed_ms`` + the alerts' outbox rows, in one transaction (rows of
        inactive chats and existing keys are ignored). Returns the number of new rows."""
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO tape_state (symbol, flushed_ms) VALUES (?, ?) ON CONFLICT (symbol)"
                " DO UPDATE SET flushed_ms = excluded.flushed_ms", (symbol, flushed_ms))
            return self._insert_outbox(events, now)

    def prune_liquidations(self, before_ms: int) -> int:
        cur = self.db.execute("DELETE FROM liquidations WHERE ts < ?", (before_ms,))
        return int(cur.rowcount)


def _sub(r: dict[str, Any]) -> LiqSubscription:
    return LiqSubscription(r["chat"], r["symbol"], r["min_usd"], r["sum_usd"])
