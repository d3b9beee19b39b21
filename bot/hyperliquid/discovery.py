"""Wallet discovery: Hyperliquid's public trades name both parties (``users: [buyer, seller]``
in each raw trade of the ``trades`` websocket). ccxt.pro's ``watch_trades`` keeps the raw trade
in ``info``; :func:`trade_users` reads the addresses from it and :class:`Discovery` feeds them
to the store's wallet table with the trade's time as last-seen.

Transient failures (network, bad responses) reconnect with the project's retry policy's
backoff, forever; other ccxt errors end the task with the error kept in :attr:`Discovery.error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bot.hyperliquid.snapshots import ADDRESS
from bot.market.errors import RETRYABLE, RetryPolicy, map_exception

log = logging.getLogger(__name__)


def market_symbol(coin: str) -> str:
    """ccxt's unified symbol of a Hyperliquid perpetual (``BTC`` → ``BTC/USDC:USDC``)."""
    return f"{coin}/USDC:USDC"


def trade_users(trades: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(address, trade time ms) for each well-formed address in the trades' raw ``users``;
    anything else (missing, not a list, not an address) is skipped."""
    out: list[tuple[str, int]] = []
    for trade in trades:
        info = trade.get("info") if isinstance(trade, Mapping) else None
        users = info.get("users") if isinstance(info, Mapping) else None
        t = trade.get("timestamp") if isinstance(trade, Mapping) else None
        if not isinstance(users, list) or not isinstance(t, int):
            continue
        out.extend((u.lower(), t) for u in users
                   if isinstance(u, str) and ADDRESS.fullmatch(u.lower()))
    return out


class Discovery:
    """One task per coin on ccxt.pro ``watch_trades``; ``on_users(addresses, t)`` gets every
    batch's addresses (the store's :meth:`see_wallets`)."""

    def __init__(self, exchange: Any, coins: Sequence[str],
                 on_users: Callable[[list[str], int], Any],
                 retry: RetryPolicy | None = None) -> None:
        self.ex = exchange
        self.coins = list(coins)
        self.on_users = on_users
        self.retry = retry or RetryPolicy()
        self.error: Exception | None = None
        self.seen = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._watch(c), name=f"hl-trades-{c}")
                       for c in self.coins]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _watch(self, coin: str) -> None:
        failures = 0
        while True:
            try:
                trades = await self.ex.watch_trades(market_symbol(coin))
            except RETRYABLE as exc:
                wait = self.retry.delay(min(failures, 10), None)
                failures += 1
                log.warning("hyperliquid trades %s: %s; reconnecting in %.2f s", coin,
                            type(exc).__name__, wait)
                await asyncio.sleep(wait)
                continue
            except Exception as exc:  # noqa: BLE001 - a ccxt error ends this task, kept
                import ccxt
                if not isinstance(exc, ccxt.BaseError):
                    raise
                self.error = map_exception(exc, f"hyperliquid trades {coin}")
                log.error("%s", self.error)
                return
            failures = 0
            by_time: dict[int, list[str]] = {}
            for address, t in trade_users(trades):
                by_time.setdefault(t, []).append(address)
            for t in sorted(by_time):
                self.seen += len(by_time[t])
                self.on_users(by_time[t], t)
