"""Outbox dispatcher: sends due outbox rows through the chat platform's notifier.

Per row: claim (status 'sending', attempts + 1, committed) → ``await notifier.send`` → mark
sent (committed at once, before anything else is awaited). Outcomes:

- success → 'sent';
- :class:`~bot.errors.PermanentDeliveryError` (blocked / deleted chat) → the chat is
  deactivated and its pending rows, this one included, become 'failed';
- :class:`~bot.errors.RejectedDeliveryError` (the platform refused this message, e.g. 400) →
  this row becomes 'failed' at once, logged with the chat id; the chat stays active;
- :class:`~bot.errors.TransientDeliveryError` or any other exception → back to 'pending' with
  exponential backoff (``retry_after_s`` honoured), 'failed' with a warning once the row is
  older than ``give_up_after_ms``.

Guarantee: at-least-once. A crash after the platform accepted a message but before 'sent' is
committed leaves the row 'sending'; :meth:`Dispatcher.recover` (call once at start-up) puts it
back to pending, so that one message per crash may be sent twice. The window is one awaited
send plus one SQLite commit; notifiers receive the dedupe key so a platform with idempotent
sends (Discord's ``enforce_nonce``) can close it. Telegram's sendMessage has no such key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.alerts.events import AlertEvent
from bot.alerts.messages import render
from bot.errors import PermanentDeliveryError, RejectedDeliveryError, TransientDeliveryError
from bot.store import Chat, OutboxRow, Store, now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """What a notifier sends: the neutral text, the typed event and its dedupe key."""

    text: str
    event: AlertEvent
    dedupe_key: str


class Notifier(Protocol):
    """A chat platform adapter. Raise PermanentDeliveryError when the chat can never receive
    (blocked, deleted), TransientDeliveryError when a retry may work; chain the platform's
    exception with ``from exc``."""

    async def send(self, chat: Chat, alert: Alert) -> None: ...


@dataclass
class DispatchStats:
    """Outcome counts of one :meth:`Dispatcher.run_once` pass."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deactivated: int = 0


class Dispatcher:
    """Sends due outbox rows; one instance per process, notifiers keyed by platform name.

    Backoff after attempt n: ``min(backoff_base_ms × 2^(n−1), backoff_max_ms)`` (ms).
    """

    def __init__(self, store: Store, notifiers: Mapping[str, Notifier], *,
                 clock: Callable[[], int] = now_ms, backoff_base_ms: int = 2_000,
                 backoff_max_ms: int = 10 * 60_000, give_up_after_ms: int = 6 * 3_600_000,
                 batch: int = 100) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.clock = clock
        self.backoff_base_ms = backoff_base_ms
        self.backoff_max_ms = backoff_max_ms
        self.give_up_after_ms = give_up_after_ms
        self.batch = batch

    def recover(self) -> int:
        """Start-up: re-queue rows a crash left in flight (they may have been delivered)."""
        n = self.store.recover_inflight()
        if n:
            log.warning("outbox: %d alert(s) were in flight at the last stop; resending "
                        "(a recipient may see one of them twice)", n)
        return n

    async def run_once(self, max_batches: int = 10) -> DispatchStats:
        """One pass over the rows due now: batches of ``batch`` rows until none are due (at
        most ``max_batches``, so one pass cannot hold the loop forever). The notifiers' own
        rate limiters set the pace."""
        stats = DispatchStats()
        for _ in range(max_batches):
            rows = self.store.due(self.clock(), self.batch, platforms=self.notifiers)
            if not await self._send_batch(rows, stats) or len(rows) < self.batch:
                break
        return stats

    async def _send_batch(self, rows: list[OutboxRow], stats: DispatchStats) -> int:
        """Send ``rows``; returns how many were settled or claimed (0 = no progress)."""
        claimed = 0
        for row in rows:
            notifier = self.notifiers[row.chat.platform]
            if not row.chat.active:
                self.store.mark_failed(row.id, "chat inactive", self.clock())
                stats.failed += 1
                claimed += 1  # progress all the same: the row is settled
                continue
            if not self.store.claim(row.id, self.clock()):
                continue
            claimed += 1
            alert = Alert(text=render(row.event, row.chat.timezone), event=row.event,
                          dedupe_key=row.dedupe_key)
            try:
                await notifier.send(row.chat, alert)
            except PermanentDeliveryError as exc:
                self.store.deactivate_chat(row.chat.id, str(exc), self.clock())
                log.warning("outbox: %s chat %s deactivated: %s", row.chat.platform,
                            row.chat.chat_id, exc)
                stats.failed += 1
                stats.deactivated += 1
                continue
            except RejectedDeliveryError as exc:
                self.store.mark_failed(row.id, f"rejected: {exc}", self.clock())
                log.error("outbox: %s chat %s rejected row %d: %s", row.chat.platform,
                          row.chat.chat_id, row.id, exc)
                stats.failed += 1
                continue
            except Exception as exc:  # one bad send (or adapter bug) must not stop the pass
                self._retry_or_give_up(row.id, row.created_ms, row.attempts + 1, exc, stats)
                continue
            # Commit 'sent' straight away: this is the only at-least-once window.
            self.store.mark_sent(row.id, self.clock())
            stats.sent += 1
        return claimed

    def _retry_or_give_up(self, row_id: int, created_ms: int, attempts: int, exc: Exception,
                          stats: DispatchStats) -> None:
        now = self.clock()
        if not isinstance(exc, TransientDeliveryError):
            log.error("outbox: unexpected notifier error for row %d", row_id, exc_info=exc)
        delay = min(self.backoff_base_ms * 2 ** (attempts - 1), self.backoff_max_ms)
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            delay = max(delay, int(retry_after * 1000))
        if now + delay - created_ms > self.give_up_after_ms:
            self.store.mark_failed(row_id, f"gave up after {attempts} attempts: {exc}", now)
            log.warning("outbox: giving up on row %d after %d attempts over %.0f s: %s",
                        row_id, attempts, (now - created_ms) / 1000, exc)
            stats.failed += 1
        else:
            self.store.mark_retry(row_id, now + delay, f"{type(exc).__name__}: {exc}")
            stats.retried += 1
