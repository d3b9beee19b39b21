"""The store's alert-thread table (schema v3 in :data:`bot.store.MIGRATIONS`), mixed into
:class:`bot.store.Store`: per (chat, cluster) the platform id of the message an approach /
inside / break updates (:mod:`bot.alerts.lifecycle`).

:meth:`AlertThreads.mark_sent_thread` marks an outbox row sent and records the message it
became in ONE transaction, so after a restart the next step edits the right message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bot.alerts.lifecycle import Thread

if TYPE_CHECKING:
    from bot.db import Database

THREAD_KEEP_MS = 7 * 24 * 3_600_000  # a thread not updated for a week is forgotten


class AlertThreads:
    db: Database

    def thread(self, chat: int, ref: str) -> Thread | None:
        row = self.db.execute(
            "SELECT message_id, timeline, closed FROM alert_threads WHERE chat = ? AND ref = ?",
            (chat, ref)).fetchone()
        if row is None:
            return None
        steps = tuple((str(k), int(t), float(p)) for k, t, p in json.loads(row[1]))
        return Thread(chat, ref, str(row[0]), steps, bool(row[2]))

    def mark_sent_thread(self, row_id: int, now: int, chat: int, ref: str, message_id: str,
                         timeline: tuple[tuple[str, int, float], ...], closed: bool) -> None:
        """Row ``row_id`` sent as (or into) ``message_id``: both committed together."""
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'sent', sent_ms = ?, last_error = NULL"
                            " WHERE id = ?", (now, row_id))
            self.db.execute(
                "INSERT INTO alert_threads (chat, ref, message_id, timeline, closed, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chat, ref) DO UPDATE SET"
                " message_id = excluded.message_id, timeline = excluded.timeline,"
                " closed = excluded.closed, updated_ms = excluded.updated_ms",
                (chat, ref, message_id, json.dumps(timeline), int(closed), now))

    def prune_threads(self, before: int) -> int:
        """Forget threads last updated before ``before`` (ms): their next step is a new
        message."""
        cur = self.db.execute("DELETE FROM alert_threads WHERE updated_ms < ?", (before,))
        return cur.rowcount
