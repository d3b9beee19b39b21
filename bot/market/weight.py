"""An exchange's request-weight budget, kept below its limit with headroom.

Binance USDⓈ-M allows 2,400 request weight per minute per IP; going over answers 429, and
carrying on after a 429 earns a 418 IP ban. ccxt's ``rateLimit`` already paces requests by
their cost; this budget adds what ccxt does not: the weight the exchange *reports*
(``X-MBX-USED-WEIGHT-1M``, which also counts other processes on the IP), a hard ceiling of
``share`` × limit per window so on-demand requests and the price job always find room, and a
pause of every call (not only the one that failed) when the exchange says 429/418.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping

#: Request weight per minute by exchange (ccxt id); exchanges not listed rely on ccxt alone.
WEIGHT_LIMITS: dict[str, int] = {"binanceusdm": 2400}
USED_HEADER = "x-mbx-used-weight-1m"
DEFAULT_SHARE = 0.7  # use at most 70 % of the limit: ≥ 30 % headroom


def klines_weight(limit: int) -> int:
    """Binance klines weight by ``limit`` (USDⓈ-M docs)."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class WeightBudget:
    """At most ``share`` × ``limit`` weight per ``window_s`` window (windows aligned to the
    wall clock, like Binance's minutes)."""

    def __init__(self, limit: int, share: float = DEFAULT_SHARE, window_s: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.limit = limit
        self.budget = max(1, int(limit * share))
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._window = -1
        self._used = 0
        self._paused_until = 0.0
        self.peak = 0  # the most weight seen used in one window (ours or reported)
        self.waits = 0  # times a call waited for the next window or a pause

    def _roll(self, now: float) -> None:
        window = math.floor(now / self.window_s)
        if window != self._window:
            self._window, self._used = window, 0

    async def acquire(self, cost: int) -> None:
        """Wait until ``cost`` more weight fits this window's budget, then count it."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                self.waits += 1
                await self._sleep(self._paused_until - now)
                continue
            self._roll(now)
            if self._used + cost <= self.budget or self._used == 0:
                self._used += cost
                self.peak = max(self.peak, self._used)
                return
            self.waits += 1
            await self._sleep((self._window + 1) * self.window_s - now + 0.001)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Take the exchange's own count of used weight (it also counts others on the IP)."""
        for key, value in (headers or {}).items():
            if key.lower() == USED_HEADER:
                try:
                    used = int(value)
                except (TypeError, ValueError):
                    return
                self._roll(self._clock())
                self._used = max(self._used, used)
                self.peak = max(self.peak, used)
                return

    def pause(self, seconds: float) -> None:
        """The exchange said 429/418: no call at all for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
