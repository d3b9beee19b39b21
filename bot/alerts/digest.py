"""Quiet subscriptions (``/quiet SYM on|off``): "new cluster" / "grew" news bundled into one
digest per ``[alerts] digest_hours`` instead of one message each; approach, inside, break and
level crossings are never held back.

The store side (schema v5 in :data:`bot.store.MIGRATIONS`, mixed into :class:`bot.store.Store`):
a ``quiet`` flag per subscription (on for subscriptions made from v5 on; those that existed
before keep one message per event) and ``digest_items``, the held news. Inside
:meth:`Store.commit_tick`'s transaction, :meth:`DigestTables._hold_quiet` takes the news of
quiet subscriptions out of the tick's events into ``digest_items``, and
:meth:`DigestTables._flush_digests` turns every (chat, slot) whose slot has ended by the tick's
market time into ONE outbox row (kind ``digest``, dedupe key chat|digest|SYMBOL|slot start):
restart-safe like every alert, and a replayed tick adds nothing.

Slots are fixed windows of the tick's (market) clock: [k × digest, (k + 1) × digest) ms.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.alerts.events import AlertEvent, EventKind
from bot.errors import UserInputError

if TYPE_CHECKING:
    from bot.db import Database

DEFAULT_DIGEST_HOURS = 4.0
MIGRATION = (
    # Existing subscriptions keep one message per event; new ones are quiet by default.
    "ALTER TABLE subscriptions ADD COLUMN quiet INTEGER NOT NULL DEFAULT 1",
    "UPDATE subscriptions SET quiet = 0",
    """CREATE TABLE digest_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        symbol TEXT NOT NULL,
        slot INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        payload TEXT NOT NULL,
        UNIQUE (chat, kind, ref, epoch))""",
    "CREATE INDEX digest_items_symbol_slot ON digest_items(symbol, slot)",
)
HELD = (EventKind.NEW_CLUSTER,)  # the kinds a quiet subscription bundles


def digest_ms(hours: float) -> int:
    return max(1, int(hours * 3_600_000))


class DigestTables:
    db: Database
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    def set_quiet(self, chat: int, symbol: str, on: bool) -> None:
        """Quiet (digest) or not for ``chat``'s subscription to ``symbol``."""
        cur = self.db.execute("UPDATE subscriptions SET quiet = ? WHERE chat = ? AND symbol = ?",
                              (int(on), chat, symbol))
        if cur.rowcount == 0:
            raise UserInputError(f"this chat is not subscribed to {symbol}: /subscribe first")

    def quiet_symbols(self, chat: int) -> set[str]:
        return {r[0] for r in self.db.execute(
            "SELECT symbol FROM subscriptions WHERE chat = ? AND quiet = 1", (chat,))}

    def held_count(self, chat: int | None = None) -> int:
        """News waiting for their digest (one chat's, or all)."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM digest_items WHERE ? IS NULL OR chat = ?",
            (chat, chat)).fetchone()[0])

    def _hold_quiet(self, symbol: str, events: list[AlertEvent], period_ms: int
                    ) -> list[AlertEvent]:
        """Inside the caller's transaction: a "grew" about a cluster the chat was never told
        about becomes "new" (:meth:`_first_sight`); news for quiet subscriptions go to
        ``digest_items``; returns the events to send now."""
        news = [e for e in events if e.kind in HELD]
        if not news:
            return events
        if any(e.grown_from_usd for e in news):
            events = self._first_sight(events)
            news = [e for e in events if e.kind in HELD]
        quiet = {r[0] for r in self.db.execute(
            "SELECT chat FROM subscriptions WHERE symbol = ? AND quiet = 1", (symbol,))}
        held = [e for e in news if e.chat in quiet]
        if not held:
            return events
        self.db.executemany(
            "INSERT INTO digest_items (chat, symbol, slot, kind, ref, epoch, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(e.chat, symbol, e.ts_ms - e.ts_ms % period_ms, e.kind.value, e.ref, e.epoch,
              json.dumps(e.to_dict())) for e in held])
        keep = set(map(id, held))
        return [e for e in events if id(e) not in keep]

    def _first_sight(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """A chat's first sight of a cluster is "new" for that chat: growth news ("grew ×2.9
        from …") for a cluster the chat has no alert about — none queued or sent (approach,
        inside, break, news, digests) and none held — lose their ``grown_from_usd``. Rows
        older than the outbox's keep time (7 days) are pruned, so a cluster last mentioned
        before that is "new" again."""
        out = []
        for e in events:
            if e.grown_from_usd and not self._told(e.chat, e.ref):
                e = e._replace(grown_from_usd=None)
            out.append(e)
        return out

    def _told(self, chat: int, ref: str) -> bool:
        if self.db.execute(
            # kind IN (…) lets the outbox's UNIQUE (chat, kind, ref, epoch) index find it.
            "SELECT 1 FROM outbox WHERE chat = ? AND kind IN ('new_cluster', 'approach',"
            " 'inside', 'break') AND ref = ? AND status != 'failed'"
            " UNION ALL SELECT 1 FROM digest_items WHERE chat = ? AND kind = 'new_cluster'"
            " AND ref = ? LIMIT 1", (chat, ref, chat, ref)).fetchone() is not None:
            return True
        # A digest that carried the cluster: its items' refs are inside the JSON payload (the
        # text match only narrows the rows; the JSON decides).
        text = json.dumps(ref)[1:-1]  # as the ref is written inside the payload
        pattern = "%" + "".join("\\" + ch if ch in "\\%_" else ch for ch in text) + "%"
        return any(any(item.get("ref") == ref for item in json.loads(p).get("items") or ())
                   for (p,) in self.db.execute(
                       "SELECT payload FROM outbox WHERE chat = ? AND kind = 'digest'"
                       " AND status != 'failed' AND payload LIKE ? ESCAPE '\\'",
                       (chat, pattern)).fetchall())

    def _flush_digests(self, symbol: str, tick_ms: int, price: float, period_ms: int,
                       t: int) -> int:
        """Inside the caller's transaction: one digest row per (chat, slot) ended by
        ``tick_ms``; their items are deleted. Returns the rows inserted."""
        rows = self.db.execute(
            "SELECT id, chat, slot, payload FROM digest_items WHERE symbol = ? AND slot <= ?"
            " ORDER BY chat, slot, id", (symbol, tick_ms - period_ms)).fetchall()
        if not rows:
            return 0
        groups: dict[tuple[int, int], list[dict[str, object]]] = {}
        for _, chat, slot, payload in rows:
            groups.setdefault((int(chat), int(slot)), []).append(json.loads(payload))
        events = [AlertEvent(kind=EventKind.DIGEST, chat=chat, symbol=symbol,
                             ref=f"digest:{symbol}", epoch=slot, price=price,
                             ts_ms=slot + period_ms, items=items)
                  for (chat, slot), items in groups.items()]
        self.db.executemany("DELETE FROM digest_items WHERE id = ?", [(r[0],) for r in rows])
        return self._insert_outbox(events, t)
