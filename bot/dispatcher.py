"""Outbox dispatcher: sends due outbox rows through the chat platform's notifier, fairly.

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

Fairness. Chats are served concurrently (at most ``concurrency`` sends in flight), one row at a
time per chat, oldest first: a chat's row waits while an older row of the same chat is pending.
A chat that is throttled or failing — a 429, a 5xx, a send cut off after ``send_timeout_s``, or
a notifier whose ``wait_s(chat)`` says the chat would wait (Telegram's 20 msg/min per group) —
is *held*: none of its rows is fetched until its retry time, while the other chats keep the
platform's pace (the notifiers' own rate limiters set it). A pass keeps fetching newly due rows
while slow sends are in flight, so one failing chat does not delay the others' alerts.

Lifecycle. Approach, inside and break of one (chat, cluster) update one message
(:mod:`bot.alerts.lifecycle`): a notifier's ``send`` returns the platform's message id, kept
with the row's 'sent' in one transaction (:meth:`Store.mark_sent_thread`); a later step of that
thread calls the notifier's ``edit`` with it. An :class:`~bot.errors.EditFailedError` (message
deleted, too old) or a notifier without ``edit`` sends the update as a new message.

Several dispatchers (``liqbot run --role dispatch`` processes on one PostgreSQL store) share
the queue: rows are taken with :meth:`Store.claim_due` (``FOR UPDATE SKIP LOCKED``: a row is
claimed by one of them; a chat's oldest pending row only, and no chat with a row 'sending', so
one chat is served by one dispatcher at a time, in order). With ``shared``, rows a dead
dispatcher left 'sending' are put back to pending once claimed ``stale_ms`` ago (``[cluster]
reclaim_seconds``): a shared dispatcher keeps at most ``concurrency`` claimed rows waiting
besides those it sends, so a live one's claim ends within :data:`LONGEST_CLAIM_S` (two send
cut-offs); :meth:`recover` at start-up is for a dispatcher alone.

Stop. :meth:`Dispatcher.close` stops new sends; sends in flight may finish; a send cancelled
(the service's stop budget ran out) puts its row back to 'pending' (:meth:`Store.release`), so
nothing is left 'sending' by a clean stop.

Guarantee: at-least-once. A crash after the platform accepted a message but before 'sent' is
committed leaves the row 'sending'; :meth:`Dispatcher.recover` (call once at start-up) puts it
back to pending, so the messages in flight at a crash — at most one per chat, ``concurrency``
in all — may be sent twice. The window is one awaited send plus one SQLite commit; notifiers
receive the dedupe key so a platform with idempotent sends (Discord's ``enforce_nonce``) can
close it. Telegram's sendMessage has no such key. A send cancelled at stop or cut off by
``send_timeout_s`` is in the same window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from bot import metrics
from bot.alerts import lifecycle
from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.messages import render
from bot.errors import (
    EditFailedError,
    PermanentDeliveryError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from bot.store import Chat, OutboxRow, Store, now_ms

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0  # one send's cut-off, platform retries included
# A shared dispatcher's claim ends within this: a claimed row waits for at most one send of
# each slot (no more rows wait than there are slots), then is sent within the cut-off.
LONGEST_CLAIM_S = 2 * SEND_TIMEOUT_S


@dataclass(frozen=True)
class Alert:
    """What a notifier sends: the neutral text, the typed event and its dedupe key;
    ``updates``: the platform id of the message this alert edits (None: a new message);
    ``reply_to``: the message a new one replies to, where the platform threads replies."""

    text: str
    event: AlertEvent
    dedupe_key: str
    updates: str | None = None
    reply_to: str | None = None  # a receipt: the platform id of the break message it answers


class Notifier(Protocol):
    """A chat platform adapter. Raise PermanentDeliveryError when the chat can never receive
    (blocked, deleted), RejectedDeliveryError when the platform refused this one message,
    TransientDeliveryError when a retry may work; chain the platform's exception with
    ``from exc``. ``send`` returns the platform's id of the message (None if it has none).
    Optional: ``wait_s(chat) -> float``, seconds before ``chat`` could receive without waiting
    (its platform rate limit); the dispatcher holds the chat meanwhile. Optional:
    ``async edit(chat, alert)`` replaces the text of message ``alert.updates``; raises
    EditFailedError when that message cannot be edited (then a new message is sent)."""

    async def send(self, chat: Chat, alert: Alert) -> str | None: ...


@dataclass
class DispatchStats:
    """Outcome counts of one :meth:`Dispatcher.run_once` pass."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deactivated: int = 0


class Dispatcher:
    """Sends due outbox rows; one instance per process, notifiers keyed by platform name.

    Backoff after attempt n: ``min(backoff_base_ms × 2^(n−1), backoff_max_ms)`` (ms). Holds
    are kept on the dispatcher's clock (ms), like the rows' retry times.
    """

    def __init__(self, store: Store, notifiers: Mapping[str, Notifier], *,
                 clock: Callable[[], int] = now_ms, backoff_base_ms: int = 2_000,
                 backoff_max_ms: int = 10 * 60_000, give_up_after_ms: int = 6 * 3_600_000,
                 batch: int = 100, concurrency: int = 16,
                 send_timeout_s: float | None = SEND_TIMEOUT_S, poll_s: float = 0.2,
                 shared: bool = False, stale_ms: int = 60_000) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.clock = clock
        self.backoff_base_ms = backoff_base_ms
        self.backoff_max_ms = backoff_max_ms
        self.give_up_after_ms = give_up_after_ms
        self.batch = batch
        self.concurrency = concurrency  # sends in flight at once (each to a different chat)
        self.send_timeout_s = send_timeout_s  # one send, platform retries included
        self.poll_s = poll_s  # while sends are in flight, look for newly due rows this often
        self.shared = shared  # other dispatchers use the store: recover only stale claims
        self.stale_ms = stale_ms  # a claim older than this is a dead dispatcher's
        # ([cluster] reclaim_seconds > LONGEST_CLAIM_S, or a live dispatcher's row is resent)
        self._stale_checked = 0  # clock ms of the last look for stale claims
        self._held: dict[int, int] = {}  # chat → clock ms before which it gets nothing
        self._busy: set[int] = set()  # chats with a send in flight
        self._closed = False

    def recover(self) -> int:
        """Start-up: re-queue rows a crash left in flight (they may have been delivered)."""
        self._closed = False
        n = self.store.recover_inflight()
        if n:
            log.warning("outbox: %d alert(s) were in flight at the last stop; resending "
                        "(a recipient may see one of them twice)", n)
        return n

    def close(self) -> None:
        """Stop: no new send starts (sends in flight may finish) until :meth:`recover`."""
        self._closed = True

    def held_until(self, chat: int) -> int | None:
        """The clock time (ms) before which ``chat`` gets nothing, if it is held."""
        t = self._held.get(chat)
        return t if t is not None and t > self.clock() else None

    async def run_once(self, max_batches: int = 10) -> DispatchStats:
        """One pass: send the rows due now, and those that become due while sends are still
        in flight, until nothing is in flight or due (at most ``max_batches × batch`` rows
        started, so a pass ends even while new rows keep coming). Cancelling the pass cancels
        its sends; their rows go back to 'pending'."""
        stats = DispatchStats()
        budget = max_batches * self.batch
        if self.shared and self.clock() - self._stale_checked >= self.stale_ms // 4:
            self._recover_stale()
        ready: list[list[OutboxRow]] = []  # per chat, oldest row first
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                limit = min(self.batch, budget)
                if self.shared:  # at most `concurrency` claimed rows wait: a claim's age
                    limit = min(limit, 2 * self.concurrency - len(running))  # ≤ LONGEST_CLAIM_S
                if not ready and limit > 0 and not self._closed:
                    fetched = self._fetch(limit)
                    ready = self._ready(fetched, stats)
                    budget -= sum(len(rows) for rows in ready)  # rows held back cost nothing
                    if not ready and not running and len(fetched) == limit:
                        continue  # a batch of rows for inactive or held chats: look further
                while ready and len(running) < self.concurrency and not self._closed:
                    rows = ready.pop(0)
                    self._busy.add(rows[0].chat.id)
                    running.add(asyncio.create_task(self._send_chat(rows, stats)))
                if not running:
                    break
                done, running = await asyncio.wait(running, timeout=self.poll_s,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # _send_chat handles every send error itself
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
        return stats

    def _recover_stale(self) -> None:
        now = self._stale_checked = self.clock()
        n = self.store.recover_inflight(claimed_before=now - self.stale_ms)
        if n:
            log.warning("outbox: %d alert(s) claimed over %.0f s ago by a dispatcher that is "
                        "gone; resending (a recipient may see one of them twice)", n,
                        self.stale_ms / 1000)

    def _fetch(self, limit: int) -> list[OutboxRow]:
        """Claim due rows (:meth:`Store.claim_due`: per chat its oldest pending row, when it
        is due and no row of the chat is being sent) of chats neither busy nor held."""
        now = self.clock()
        self._held = {c: t for c, t in self._held.items() if t > now}
        return self.store.claim_due(now, limit, platforms=self.notifiers,
                                    skip_chats=self._busy | self._held.keys())

    def _ready(self, rows: list[OutboxRow], stats: DispatchStats) -> list[list[OutboxRow]]:
        """The claimed rows to send, one per chat; settle rows of inactive chats; give back
        (unsent) and hold the rows of chats whose platform asks them to wait."""
        ready = []
        now = self.clock()
        for row in rows:
            if not row.chat.active:
                self.store.mark_failed(row.id, "chat inactive", now)
                stats.failed += 1
                continue
            wait_s = self._wait_s(row.chat)
            if wait_s > 0:
                self.store.release(row.id, unsent=True)
                self._held[row.chat.id] = now + max(1, int(wait_s * 1000))
                continue
            ready.append([row])
        return ready

    def _wait_s(self, chat: Chat) -> float:
        wait = getattr(self.notifiers[chat.platform], "wait_s", None)
        return float(wait(chat)) if wait is not None else 0.0

    async def _send_chat(self, rows: list[OutboxRow], stats: DispatchStats) -> None:
        """Send one chat's claimed rows in order, one at a time; stop at the first that must
        wait (the rest go back to pending, unsent)."""
        chat = rows[0].chat.id
        left = list(rows)
        try:
            while left and not self._closed:
                row = left[0]
                if row is not rows[0] and (wait_s := self._wait_s(row.chat)) > 0:
                    self._held[chat] = self.clock() + max(1, int(wait_s * 1000))
                    return
                left.pop(0)
                if not await self._send_row(row, stats):
                    return
        finally:
            for row in left:
                self.store.release(row.id, unsent=True)
            self._busy.discard(chat)

    async def _send_row(self, row: OutboxRow, stats: DispatchStats) -> bool:
        """Send one claimed row and settle it; False when the chat's later rows must wait."""
        notifier = self.notifiers[row.chat.platform]
        step = None
        if row.event.kind in lifecycle.KINDS:
            step = lifecycle.plan(row.event, self.store.thread(row.chat.id, row.event.ref))
            text = lifecycle.text(row.event, step.timeline, row.chat.timezone)
        else:
            text = render(row.event, row.chat.timezone)
            if row.event.kind is EventKind.CONFIRMED:  # kept: its cluster's receipt replies to it
                step = lifecycle.Plan(None, ((row.event.kind.value, row.event.ts_ms,
                                              row.event.price),), True)
        alert = Alert(text=text, event=row.event, dedupe_key=row.dedupe_key,
                      reply_to=self._break_message(row))
        try:
            async with asyncio.timeout(self.send_timeout_s), metrics.send_time(row.chat.platform):
                message_id = await self._deliver(notifier, row, alert, step)
        except asyncio.CancelledError:
            self.store.release(row.id)  # stopped mid-send: pending again for the next start
            raise
        except PermanentDeliveryError as exc:
            self.store.deactivate_chat(row.chat.id, str(exc), self.clock())
            log.warning("outbox: %s chat %s deactivated: %s", row.chat.platform,
                        row.chat.chat_id, exc)
            stats.failed += 1
            stats.deactivated += 1
            return False
        except RejectedDeliveryError as exc:
            self.store.mark_failed(row.id, f"rejected: {exc}", self.clock())
            log.error("outbox: %s chat %s rejected row %d: %s", row.chat.platform,
                      row.chat.chat_id, row.id, exc)
            stats.failed += 1
            return True
        except TimeoutError:
            late = TransientDeliveryError(f"no answer within {self.send_timeout_s:g} s")
            self._retry_or_give_up(row, late, stats)
            return False
        except Exception as exc:  # one bad send (or adapter bug) must not stop the pass
            self._retry_or_give_up(row, exc, stats)
            return False
        # Commit 'sent' straight away: this is the only at-least-once window.
        if step is not None and message_id is not None:
            self.store.mark_sent_thread(row.id, self.clock(), row.chat.id, row.event.ref,
                                        message_id, step.timeline, step.closed)
        else:
            self.store.mark_sent(row.id, self.clock())
        stats.sent += 1
        return True

    def _break_message(self, row: OutboxRow) -> str | None:
        """A receipt answers the break message of its cluster (the thread's message while
        the thread ends with that break); a confirmed cluster's, the chat's confirmed alert
        on it."""
        if row.event.kind is not EventKind.RECEIPT:
            return None
        thread = self.store.thread(row.chat.id, row.event.ref)
        if thread is None or not thread.closed or not thread.timeline:
            return None
        answers = EventKind.CONFIRMED if row.event.positions is not None else EventKind.BREAK
        return thread.message_id if thread.timeline[-1][0] == answers.value else None

    async def _deliver(self, notifier: Notifier, row: OutboxRow, alert: Alert,
                       step: lifecycle.Plan | None) -> str | None:
        """Edit the thread's message when the plan says so and the platform can; otherwise,
        or when the edit fails, send a new message. Returns the message id."""
        edit = getattr(notifier, "edit", None)
        if step is not None and step.edit_id is not None and edit is not None:
            try:
                await edit(row.chat, replace(alert, updates=step.edit_id))
                return step.edit_id
            except EditFailedError as exc:
                log.info("outbox: %s chat %s: message %s cannot be edited (%s); sending the "
                         "update as a new message", row.chat.platform, row.chat.chat_id,
                         step.edit_id, exc)
        sent = await notifier.send(row.chat, alert)
        return None if sent is None else str(sent)

    def _retry_or_give_up(self, row: OutboxRow, exc: Exception, stats: DispatchStats) -> None:
        """Back off this row, and hold its chat until then (its later rows wait with it)."""
        now = self.clock()
        attempts = row.attempts  # counted by the claim
        if not isinstance(exc, TransientDeliveryError):
            log.error("outbox: unexpected notifier error for row %d", row.id, exc_info=exc)
        delay = min(self.backoff_base_ms * 2 ** (attempts - 1), self.backoff_max_ms)
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            delay = max(delay, int(retry_after * 1000))
        if now + delay - row.created_ms > self.give_up_after_ms:
            self.store.mark_failed(row.id, f"gave up after {attempts} attempts: {exc}", now)
            log.warning("outbox: giving up on row %d after %d attempts over %.0f s: %s",
                        row.id, attempts, (now - row.created_ms) / 1000, exc)
            stats.failed += 1
        else:
            self.store.mark_retry(row.id, now + delay, f"{type(exc).__name__}: {exc}")
            self._held[row.chat.id] = now + delay
            stats.retried += 1
