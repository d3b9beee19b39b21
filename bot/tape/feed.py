"""The tape in the service: a feed of real liquidations (live websockets, or a recorded CSV
replayed on the virtual clock) → the store → ``/subscribe_liqs`` alerts in the outbox.

:meth:`TapeDesk.flush` runs as a service job (live: every ``flush_seconds``; replay: on every
virtual tick). It stores the new events, then, per symbol, turns every window that has closed
since the last flush into alerts, committed with the symbol's alerted-up-to time in one
transaction. A window therefore alerts at most once per chat; events arriving after their
window was alerted (a reconnect replaying old ones, a late message) are stored — they count in
``/levels``, charts and break alerts — but never alert. A window is closed ``GRACE_MS`` after
its end. A crash loses at most the events received since the last flush (not yet stored).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.tape.alerts import window_alerts
from bot.tape.events import Liquidation

if TYPE_CHECKING:
    from bot.store import Store
    from bot.tape.source import FeedStatus, TapeSource

log = logging.getLogger(__name__)

GRACE_MS = 3_000
REPLAYED = "the replayed tape"
"""The exchange name of replayed events ("12 liquidations on the replayed tape")."""


class TapeFeed(Protocol):
    """Where real liquidations come from."""

    label: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def drain(self, now_ms: int) -> list[Liquidation]:
        """Events received since the last call, up to ``now_ms``."""
        ...

    def health(self) -> list[str]:
        """One line per exchange for ``/status``."""
        ...


class LiveFeed:
    """ccxt.pro websockets (:class:`~bot.tape.source.TapeSource`), buffered between flushes."""

    def __init__(self, source: TapeSource) -> None:
        self.source = source
        self.label = "+".join(source.exchanges)
        self._buffer: list[Liquidation] = []
        source.on_event = self._buffer.append

    async def start(self) -> None:
        await self.source.start()

    async def stop(self) -> None:
        await self.source.stop()

    def drain(self, now_ms: int) -> list[Liquidation]:
        out = self._buffer[:]
        self._buffer.clear()  # the same list: the source appends to it
        return out

    def health(self) -> list[str]:
        return [status_line(s) for s in self.source.status.values()]


class ReplayFeed:
    """A recorded liquidations CSV (``liqbot record``'s format) played on the virtual clock,
    as events of ``symbol``."""

    def __init__(self, path: str | Path, symbol: str) -> None:
        from bot.backtest.liquidations import load_liquidations  # numpy CSV reader

        liq = load_liquidations(path)
        self.label = f"replay of {Path(path).name}"
        self._events = [
            Liquidation(REPLAYED, int(t), symbol, "short" if short else "long", float(p),
                        float(n) / float(p), float(n))
            for t, short, p, n in zip(liq.timestamp, liq.is_short, liq.price, liq.notional,
                                      strict=True)]
        self._next = 0

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    def drain(self, now_ms: int) -> list[Liquidation]:
        start = self._next
        while self._next < len(self._events) and self._events[self._next].timestamp <= now_ms:
            self._next += 1
        return self._events[start:self._next]

    def health(self) -> list[str]:
        return [f"{self.label}: {self._next} of {len(self._events)} events played"]


def status_line(s: FeedStatus) -> str:
    """``binanceusdm: ok, 12 events, 1 reconnect(s), last error: …`` (+ the feed's caveat)."""
    state = "STOPPED" if s.error is not None else "ok"
    line = f"{s.exchange}: {state}, {s.events} events, {s.reconnects} reconnect(s)"
    if s.last_error:
        line += f", last error: {s.last_error[:160]}"
    return line + (f"\n  note: {s.note}" if s.note else "")


class TapeDesk:
    """Stores a feed's events and alerts closed windows to ``/subscribe_liqs`` chats."""

    def __init__(self, feed: TapeFeed, store: Store, symbols: Sequence[str], *,
                 window_ms: int, keep_ms: int, clock: Callable[[], int]) -> None:
        self.feed = feed
        self.store = store
        self.symbols = tuple(symbols)
        self.window_ms = window_ms
        self.keep_ms = keep_ms
        self.clock = clock  # the dispatcher's clock: outbox rows are stamped with it

    def flush(self, now_ms: int) -> int:
        """Store new events; alert windows closed by ``now_ms`` (feed time). Returns the
        number of outbox rows queued."""
        self.ingest(now_ms)
        closed = (now_ms - GRACE_MS) // self.window_ms * self.window_ms
        queued = 0
        for symbol in self.symbols:
            done = self.store.tape_flushed(symbol)
            if done is None:  # first flush ever: history before it is not news
                self.store.commit_tape(symbol, closed, [], self.clock())
                continue
            if closed <= done:
                continue
            subs = self.store.active_liq_subscriptions(symbol)
            events = self.store.liquidations(symbol, done, closed) if subs else []
            queued += self.store.commit_tape(symbol, closed, window_alerts(
                events, subs, self.window_ms), self.clock())
        return queued

    def ingest(self, now_ms: int) -> int:
        """Store the feed's new events (up to ``now_ms``); returns how many were new."""
        new = self.feed.drain(now_ms)
        return self.store.add_liquidations(new) if new else 0

    def recent(self, symbol: str, since_ms: int,
               until_ms: int | None = None) -> list[Liquidation]:
        """Stored events of ``symbol`` with since ≤ time < until."""
        return self.store.liquidations(symbol, since_ms, until_ms)

    def prune(self, now_ms: int) -> int:
        return self.store.prune_liquidations(now_ms - self.keep_ms)
