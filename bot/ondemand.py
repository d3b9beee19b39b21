"""Estimates for symbols nobody tracks, made on the first request and kept a while.

Any linear perpetual the exchange lists can be asked for (/levels SOL): the first request
fetches and estimates it (one fetch per symbol even when many ask at once), later ones within
``ttl_s`` (the recompute interval) reuse it. At most ``capacity`` symbols are kept; the least
recently asked for is dropped first (LRU).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from bot.errors import BadSymbolError, LiqBotError, UserInputError
from bot.estimates import Estimate, compute_estimate
from bot.market.base import MarketSource
from estimator import ModelParams

log = logging.getLogger(__name__)


class OnDemandEstimates:
    """An LRU of (estimate, made at) per untracked symbol; ``get`` fetches on a miss."""

    def __init__(self, source: MarketSource, params: ModelParams, capacity: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.params = params
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._clock = clock
        self._lru: OrderedDict[str, tuple[Estimate, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Estimate]] = {}
        # Unique per estimate and far from the board's (1, 2, …): the chart cache keys on it.
        self._versions = itertools.count(1_000_000_001)
        self.fetches = 0

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._lru

    @property
    def symbols(self) -> tuple[str, ...]:
        """Kept symbols, least recently used first."""
        return tuple(self._lru)

    def fresh(self, symbol: str) -> Estimate | None:
        """The kept estimate if younger than ``ttl_s`` (marks it recently used)."""
        hit = self._lru.get(symbol)
        if hit is None or self._clock() - hit[1] >= self.ttl_s:
            return None
        self._lru.move_to_end(symbol)
        return hit[0]

    async def get(self, symbol: str) -> Estimate:
        """The estimate for ``symbol``: kept, or fetched and estimated now. A failed fetch is
        a user-facing error naming the symbol; the previous estimate (if any) is kept."""
        if (est := self.fresh(symbol)) is not None:
            return est
        if self.capacity <= 0:
            raise UserInputError(f"{symbol} is not tracked here and on-demand estimates are off "
                                 "(config [limits] on_demand_symbols = 0).")
        task = self._inflight.get(symbol)
        if task is None:
            task = asyncio.ensure_future(self._compute(symbol))
            self._inflight[symbol] = task
            task.add_done_callback(lambda _t: self._inflight.pop(symbol, None))
        return await asyncio.shield(task)

    async def _compute(self, symbol: str) -> Estimate:
        self.fetches += 1
        try:
            snapshot = await self.source.fetch(symbol)
            previous = self._lru.get(symbol)
            est = await asyncio.to_thread(compute_estimate, snapshot, self.params,
                                          previous[0] if previous else None,
                                          next(self._versions))
        except BadSymbolError as exc:
            raise UserInputError(str(exc)) from exc
        except LiqBotError as exc:
            log.warning("on-demand %s failed: %s", symbol, exc)
            raise UserInputError(f"Could not estimate {symbol} just now ({str(exc)[:160]}). "
                                 "Please try again in a minute.") from exc
        self._lru[symbol] = (est, self._clock())
        self._lru.move_to_end(symbol)
        while len(self._lru) > self.capacity:
            dropped, _ = self._lru.popitem(last=False)
            log.info("on-demand: dropped %s (least recently used)", dropped)
        return est

    def take(self, symbol: str) -> Estimate | None:
        """Remove and return the kept estimate (a symbol that becomes tracked starts from it)."""
        hit = self._lru.pop(symbol, None)
        return None if hit is None else hit[0]
