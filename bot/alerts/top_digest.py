"""/subscribe_top: a daily digest of /top to a chat at a fixed UTC hour, through the outbox.

One subscription per chat (N clusters, optionally one side). During the hour that starts at
``[alerts] top_digest_hour`` (UTC), the service's job (every minute) puts one outbox row per
subscribed chat holding that moment's /top answer. The row's key is (chat, "top_digest",
"top", the day's start in ms): unique, so each chat gets the digest once per day whatever
the process does — a restart, a second run of the job, a second worker. A row not yet sent
when the process dies is sent after the restart (the outbox). A chat that subscribes during
the hour gets that day's digest at once; a bot that is down for the whole hour skips that
day's digest rather than sending a stale one later.

The table is written in SQL both store backends accept (no SQLite-only constructs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.alerts.events import AlertEvent, EventKind
from bot.fmt import time_text

if TYPE_CHECKING:
    from bot.db import Database
    from bot.estimate_summaries import TrackedSummaries

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
REF = "top"  # the outbox row's ref and symbol: the digest is about every tracked symbol

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE top_subscriptions (
        chat INTEGER PRIMARY KEY REFERENCES chats(id) ON DELETE CASCADE,
        n INTEGER NOT NULL CHECK (n >= 1),
        side TEXT CHECK (side IN ('long', 'short')),
        created_ms INTEGER NOT NULL)""",
)


@dataclass(frozen=True)
class TopSubscription:
    chat: int
    n: int
    side: str | None  # None: both sides


class TopDigestTables:
    """The store's ``top_subscriptions`` (mixed into :class:`bot.store.Store`)."""

    db: Database
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    def subscribe_top(self, chat: int, n: int, side: str | None, now: int) -> TopSubscription:
        """Add or replace ``chat``'s daily /top digest."""
        self.db.execute(
            "INSERT INTO top_subscriptions (chat, n, side, created_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (chat) DO UPDATE SET n = excluded.n, side = excluded.side",
            (chat, n, side, now))
        return TopSubscription(chat, n, side)

    def unsubscribe_top(self, chat: int) -> bool:
        cur = self.db.execute("DELETE FROM top_subscriptions WHERE chat = ?", (chat,))
        return bool(cur.rowcount > 0)

    def top_subscription(self, chat: int) -> TopSubscription | None:
        rows = list(self.db.query("SELECT chat, n, side FROM top_subscriptions WHERE chat = ?",
                                  (chat,)))
        return _sub(rows[0]) if rows else None

    def active_top_subscriptions(self) -> list[TopSubscription]:
        """Subscriptions of active chats, oldest chat first."""
        return [_sub(r) for r in self.db.query(
            "SELECT s.chat, s.n, s.side FROM top_subscriptions s JOIN chats c ON c.id = s.chat"
            " WHERE c.active = 1 ORDER BY s.chat", ())]

    def queue_top_digests(self, events: Iterable[AlertEvent], t: int) -> int:
        """Outbox rows for the day's digests, in one transaction; a chat's digest already
        queued that day is not queued again. Returns how many were new."""
        with self.db.atomic():
            return self._insert_outbox(events, t)


def _sub(r: dict[str, Any]) -> TopSubscription:
    return TopSubscription(int(r["chat"]), int(r["n"]), r["side"])


def due_day(now_ms: int, hour: int) -> int | None:
    """The day's start (ms, UTC) when ``now_ms`` is in that day's digest hour, else None."""
    day = now_ms - now_ms % DAY_MS
    start = day + hour * HOUR_MS
    return day if start <= now_ms < start + HOUR_MS else None


def digest_events(subs: Iterable[TopSubscription], tops: TrackedSummaries,
                  day_ms: int, now_ms: int) -> list[AlertEvent]:
    """One digest event per subscription: the /top answer (its text in ``note``, the number
    of lines in ``tape_count``) for that chat's N and side, keyed by the day. ``tops``: the
    tracked symbols' estimates, held or stored (:mod:`bot.estimate_summaries`)."""
    from bot.commands.top_cmds import top_answer

    events = []
    for s in subs:
        n, text = top_answer(tops, s.n, s.side)
        events.append(AlertEvent(EventKind.TOP_DIGEST, s.chat, REF, REF, day_ms, price=0.0,
                                 ts_ms=now_ms, side=s.side, tape_count=n, note=text))
    return events


def queue_due(store: TopDigestTables, tops: TrackedSummaries, hour: int,
              now_ms: int) -> int:
    """Queue today's digests when ``now_ms`` is in the digest hour; returns how many rows
    were new (0 outside the hour and for chats already served today)."""
    day = due_day(now_ms, hour)
    if day is None:
        return 0
    subs = store.active_top_subscriptions()
    if not subs:
        return 0
    return store.queue_top_digests(digest_events(subs, tops, day, now_ms), now_ms)


def digest_text(event: AlertEvent, tz: str = "UTC") -> str:
    """The delivered message: a title with the time, then the /top answer."""
    return f"📊 Daily /top digest · {time_text(event.ts_ms, tz)}\n{event.note or ''}"
