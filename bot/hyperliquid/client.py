"""Hyperliquid's public info API through ccxt: the implicit ``publicPostInfo`` method
(``POST /info``) of ccxt(.pro)'s ``hyperliquid``, under a per-minute weight budget, with the
project's one retry policy (:func:`bot.market.errors.with_retry`: 429, 5xx, timeouts and
malformed bodies are retried with backoff, the server's Retry-After honoured).

Hyperliquid allows 1,200 weight per minute per IP; ``clearinghouseState`` costs 2,
``metaAndAssetCtxs`` 20. :class:`WeightLimiter` keeps every sliding 60 s window under
``share`` × 1,200, counting retries too.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import ccxt.pro

from bot.hyperliquid.positions import asset_contexts, parse_state
from bot.market.errors import RetryPolicy, with_retry

IP_WEIGHT_PER_MIN = 1200
WEIGHT = {"clearinghouseState": 2, "metaAndAssetCtxs": 20}
HOST = "https://api.{hostname}"


def hyperliquid_exchange(rest_url: str | None = None, ws_url: str | None = None,
                         timeout_ms: int = 10_000, **config: Any) -> Any:
    """ccxt.pro ``hyperliquid`` loading perpetual markets only (one ``metaAndAssetCtxs``),
    its REST at ``rest_url`` and trades websocket at ``ws_url`` when given (tests, proxies)."""
    ex = ccxt.pro.hyperliquid({"timeout": timeout_ms, **config})
    ex.options["fetchMarkets"] = {**ex.options["fetchMarkets"], "types": ["swap"]}
    if rest_url:
        for key, url in list(ex.urls["api"].items()):
            if isinstance(url, str) and url.startswith(HOST):
                ex.urls["api"][key] = rest_url.rstrip("/") + url[len(HOST):]
    if ws_url:
        ex.urls["api"]["ws"]["public"] = ws_url.rstrip("/") + "/ws"
    return ex


class WeightLimiter:
    """A sliding-window log: :meth:`acquire` waits until ``weight`` more fits in the last 60 s.
    ``clock``/``sleep`` are injectable so tests run on a virtual clock."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not per_minute > 0:
            raise ValueError(f"weight budget must be > 0 per minute, got {per_minute!r}")
        self.per_minute = float(per_minute)
        self.clock, self.sleep = clock, sleep
        self.log: deque[tuple[float, int]] = deque()
        self.spent: list[tuple[float, int]] = []  # every acquisition (for tests and /status)
        self._lock = asyncio.Lock()

    async def acquire(self, weight: int) -> None:
        if weight > self.per_minute:
            raise ValueError(f"one request of weight {weight} exceeds the budget "
                             f"{self.per_minute:g}/min")
        async with self._lock:
            while True:
                now = self.clock()
                while self.log and self.log[0][0] <= now - 60.0:
                    self.log.popleft()
                used = sum(w for _, w in self.log)
                if used + weight <= self.per_minute:
                    break
                # wait until enough of the oldest entries leave the window
                need, freed, until = used + weight - self.per_minute, 0, now
                for t, w in self.log:
                    freed, until = freed + w, t + 60.0
                    if freed >= need:
                        break
                await self.sleep(max(until - now, 0.001))
            self.log.append((now, weight))
            self.spent.append((now, weight))


class InfoClient:
    """``POST /info`` requests through ccxt, parsed and checked (a wrong shape is a
    :class:`MalformedResponse`, retried like a network error)."""

    def __init__(self, exchange: Any, limiter: WeightLimiter,
                 retry: RetryPolicy | None = None) -> None:
        self.ex = exchange
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.requests = 0

    async def _info(self, body: dict[str, Any], parse: Callable[[Any], Any]) -> Any:
        async def call() -> Any:
            await self.limiter.acquire(WEIGHT.get(body["type"], 20))
            self.requests += 1
            return parse(await self.ex.publicPostInfo(body))
        what = f"hyperliquid {body['type']}" + (f" {body['user']}" if "user" in body else "")
        return await with_retry(what, call, self.retry,
                                lambda: getattr(self.ex, "last_response_headers", None))

    async def clearinghouse_state(self, user: str) -> dict[str, Any]:
        """The raw response (verbatim, for snapshot files), after checking it parses."""
        def check(body: Any) -> Any:
            parse_state(user, body)
            return body
        return cast(dict[str, Any],
                    await self._info({"type": "clearinghouseState", "user": user}, check))

    async def asset_contexts(self) -> dict[str, dict[str, float]]:
        """``{coin: {"mark", "oi"}}`` from ``metaAndAssetCtxs``."""
        return cast(dict[str, dict[str, float]],
                    await self._info({"type": "metaAndAssetCtxs"}, asset_contexts))

    async def close(self) -> None:
        await self.ex.close()
