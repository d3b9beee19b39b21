"""The live tape: supervised ccxt.pro websocket tasks, reconnecting with exponential backoff,
feeding de-duplicated :class:`~bot.tape.events.Liquidation` events to a callback and to
per-minute USD totals. An exchange with ccxt's ``watchLiquidationsForSymbols`` (binanceusdm,
okx) gets one task for all symbols; one with only ``watchLiquidations`` (bybit) one task per
symbol, all sharing the exchange's connection, cache and :class:`FeedStatus`.

ccxt errors become ours in one place (:func:`bot.market.errors.map_exception`): transient ones
(network, bad responses) are retried forever with backoff; others end that exchange's task
with a :class:`~bot.errors.MarketDataError` in :attr:`FeedStatus.error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ccxt.pro

from bot.errors import MarketDataError
from bot.market.errors import RETRYABLE, map_exception
from bot.tape.events import BINANCE_NOTE, Deduper, Liquidation, MinuteTotals, parse_liquidation

log = logging.getLogger(__name__)

WsFactory = Callable[[str], Any]
"""Exchange name → a ccxt.pro exchange instance."""

POSITION_SIDE_EXCHANGES = frozenset({"bybit"})
"""ccxt ids whose liquidation ``side`` is the liquidated *position's* side, not the forced
order's: ccxt.pro bybit lower-cases Bybit's raw ``S`` (allLiquidation) / ``side`` (liquidation),
and Bybit documents it as "Position side … a Buy update means that a long position has been
liquidated". Binance's and OKX's ``side`` is the order's (SELL closes a long)."""


def default_ws_factory(timeout_ms: int = 10_000) -> WsFactory:
    def make(name: str) -> Any:
        return getattr(ccxt.pro, name)({"timeout": timeout_ms})
    return make


def binance_ws_factory(ws_url: str, rest_url: str, timeout_ms: int = 10_000) -> WsFactory:
    """ccxt.pro binanceusdm with its linear websocket at ``ws_url`` (ccxt appends
    ``/market/ws/N``) and every REST URL at ``rest_url`` (tests, proxies)."""

    def make(name: str) -> Any:
        ex = getattr(ccxt.pro, name)({"timeout": timeout_ms})
        for key, url in list(ex.urls["api"].items()):
            if isinstance(url, str) and url.startswith("https://fapi.binance.com"):
                ex.urls["api"][key] = rest_url.rstrip("/") + url[len("https://fapi.binance.com"):]
        ex.urls["api"]["ws"]["linear"] = ws_url.rstrip("/") + "/ws"
        return ex

    return make


def bybit_ws_factory(ws_url: str | None, rest_url: str | None = None,
                     timeout_ms: int = 10_000) -> WsFactory:
    """ccxt.pro bybit with its public linear websocket at ``ws_url`` + ``/v5/public/linear``
    and, when given, every REST URL at ``rest_url`` (tests, proxies); None or "" keeps
    Bybit's own. Only linear markets are loaded: that stream carries nothing else."""

    def make(name: str) -> Any:
        ex = getattr(ccxt.pro, name)({"timeout": timeout_ms})
        ex.options["fetchMarkets"] = {**ex.options["fetchMarkets"], "types": ["linear"]}
        if rest_url:
            for key, url in list(ex.urls["api"].items()):
                if isinstance(url, str) and url.startswith("https://api.{hostname}"):
                    ex.urls["api"][key] = rest_url.rstrip("/") + url[len("https://api.{hostname}"):]
        if ws_url:
            ex.urls["api"]["ws"]["public"]["linear"] = ws_url.rstrip("/") + "/v5/public/linear"
        return ex

    return make


@dataclass(frozen=True)
class Backoff:
    """Wait ``base_s`` × 2^failures seconds before reconnecting, at most ``max_s``."""

    base_s: float = 1.0
    max_s: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.base_s * 2.0 ** max(failures - 1, 0), self.max_s)


@dataclass
class FeedStatus:
    """One exchange's feed: events accepted, reconnects, the last error (ours), a caveat.

    ``reconnects`` counts stream restarts: where the exchange is watched one symbol per
    stream (bybit), one dropped connection restarts every symbol's stream.
    """

    exchange: str
    events: int = 0
    duplicates: int = 0
    reconnects: int = 0
    last_error: str | None = None
    error: MarketDataError | None = None  # set when the feed gave up (not transient)
    note: str | None = None


class TapeSource:
    """Live liquidations of ``symbols`` (unified, e.g. ``BTC/USDT:USDT``) from ``exchanges``.

    ``on_event`` is called once per new event, in arrival order. Use as
    ``async with TapeSource(...) as tape:`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(self, symbols: Sequence[str], exchanges: Sequence[str] = ("binanceusdm",),
                 ws_factory: WsFactory | None = None, *,
                 on_event: Callable[[Liquidation], None] | None = None,
                 backoff: Backoff | None = None, cache_limit: int = 5000) -> None:
        if not symbols or not exchanges:
            raise ValueError("tape: at least one symbol and one exchange")
        self.symbols = tuple(symbols)
        self.exchanges = tuple(exchanges)
        self.totals = MinuteTotals()
        self.status = {n: FeedStatus(n, note=BINANCE_NOTE if n.startswith("binance") else None)
                       for n in self.exchanges}
        self._factory = ws_factory or default_ws_factory()
        self.on_event = on_event  # called once per new event, on the loop thread
        self._backoff = backoff or Backoff()
        self._cache_limit = cache_limit
        self._dedupe = Deduper(max(20_000, 4 * cache_limit))
        self._tasks: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._ex: dict[str, Any] = {}
        self._last_raw: dict[str, Any] = {}

    async def __aenter__(self) -> TapeSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        for name in self.exchanges:
            if name in self._ex:
                continue
            ex = self._ex[name] = self._factory(name)
            ex.options["liquidationsLimit"] = self._cache_limit
            for symbol in self._streams(ex):
                self._tasks[(name, symbol)] = asyncio.create_task(
                    self._supervise(name, symbol), name=f"tape {name} {symbol or 'all'}")

    def _streams(self, ex: Any) -> tuple[str | None, ...]:
        """One stream for all symbols (None), or one per symbol when ccxt only has the latter;
        with neither, the one stream ends with NotSupported."""
        if ex.has.get("watchLiquidationsForSymbols") or not ex.has.get("watchLiquidations"):
            return (None,)
        return self.symbols

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The running feed tasks (one per exchange, or per exchange and symbol where ccxt
        watches one symbol at a time); one ends only on a permanent error."""
        return tuple(self._tasks.values())

    async def stop(self) -> None:
        """Cancel the feeds and close every websocket."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, MarketDataError):
                await task
        self._tasks.clear()
        for ex in self._ex.values():
            await ex.close()
        self._ex.clear()

    async def _supervise(self, name: str, symbol: str | None) -> None:
        """Watch ``symbol`` (None: all symbols at once) on ``name`` until cancelled."""
        status, failures, ex = self.status[name], 0, self._ex[name]
        what = f"{name} liquidations" + (f" of {symbol}" if symbol else "")
        while True:
            try:
                if symbol is not None:
                    new = await ex.watch_liquidations(symbol)
                elif ex.has.get("watchLiquidationsForSymbols"):
                    new = await ex.watch_liquidations_for_symbols(list(self.symbols))
                else:
                    raise ccxt.NotSupported(f"{name} has no public liquidation stream in ccxt")
                failures = 0
                self._drain(name, ex, new)
            except RETRYABLE as exc:
                failures += 1
                status.reconnects += 1
                status.last_error = str(map_exception(exc, what))
                wait = self._backoff.delay(failures)
                log.warning("%s; reconnecting in %.2f s", status.last_error, wait)
                await asyncio.sleep(wait)
            except ccxt.BaseError as exc:
                err = map_exception(exc, what)
                status.last_error, status.error = str(err), err
                log.error("%s: feed stopped", err)
                raise err from exc

    def _drain(self, name: str, ex: Any, new: Sequence[Any]) -> None:
        """Accept every event not seen yet: the exchange's cache since the last one we took
        (ccxt resolves one message per await; the rest of a burst is only in the cache).

        ccxt.pro binance and bybit keep one ``ArrayCache`` of all symbols in
        ``ex.liquidations``, so the marker is per exchange: whichever of its tasks wakes
        first takes every symbol's new events, the others find nothing new.
        """
        cache = getattr(ex, "liquidations", None)
        if isinstance(cache, list):
            items = list(cache)  # ccxt's cache is a deque behind a list facade
            last = self._last_raw.get(name)
            fresh: list[Any] = []
            for raw in reversed(items):
                if raw is last:
                    break
                fresh.append(raw)
            fresh.reverse()
            if items:
                self._last_raw[name] = items[-1]
        else:
            fresh = list(new)
        wanted = set(self.symbols)
        status = self.status[name]
        for raw in fresh:
            if raw.get("symbol") not in wanted:
                continue
            market = (ex.markets or {}).get(raw.get("symbol"))
            if ex.id in POSITION_SIDE_EXCHANGES:  # to the forced order's side
                raw = {**raw, "side": {"buy": "sell", "sell": "buy"}.get(
                    str(raw.get("side") or "").lower())}
            event = parse_liquidation(name, raw, market)
            if event is None:
                log.warning("%s: unusable liquidation %r", name, raw.get("info"))
                continue
            if not self._dedupe.fresh(event):
                status.duplicates += 1
                continue
            status.events += 1
            self.totals.add(event)
            if self.on_event is not None:
                self.on_event(event)
