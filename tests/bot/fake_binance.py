"""A loopback Binance USDⓈ-M REST fake for ccxt, with fault injection.

Serves ``/fapi/v1/exchangeInfo`` (fixture), ``/fapi/v1/klines``, ``/futures/data/openInterestHist``,
``/fapi/v1/ticker/24hr`` and ``/fapi/v1/time``. Prices, volumes and OI are a deterministic function
of time (:func:`price_at`), so any range pages the same way every run. The clock is ``now_ms``.

Weight limits (off unless ``weight_limit`` is set): every request costs Binance's weight (klines by
``limit``), counted per window of ``weight_window_s`` (60 s real; shorter in a time-compressed
bench) and reported in ``X-MBX-USED-WEIGHT-1M``. Over the limit → 429 with Retry-After until the
window ends; a request sent while told to wait (later than ``ban_grace_s`` after the 429, i.e.
not merely in flight) → 418 and an IP ban (``ban_s``), counted in ``bans``.
``add_perpetuals(["AAAUSDT", …])`` lists more synthetic perpetuals.

Faults are scripted per path: ``fake.inject("/fapi/v1/klines", "ok", "429")`` makes the second
klines request answer 429. Kinds: ok, 429 (Retry-After + code −1003), 418, 500, 503, slow
(sleeps ``slow_s`` then answers), malformed (truncated JSON), empty (``[]``), badsymbol.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binanceusdm"
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000}
SCALE = {"BTCUSDT": 1.0, "ETHUSDT": 0.05, "SOLUSDT": 0.003, "1000PEPEUSDT": 2e-7}
NOW_MS = 1_764_000_000_000 - 1_764_000_000_000 % 300_000 + 123_456  # mid-candle, fixed


def price_at(t_ms: int, scale: float = 1.0) -> float:
    """Deterministic USD price at time t: a daily wave plus a faster wiggle around 50k."""
    day = 2 * math.pi * t_ms / 86_400_000
    return scale * 50_000 * (1 + 0.05 * math.sin(day) + 0.01 * math.sin(day * 14.8))


def oi_coins_at(t_ms: int) -> float:
    """Deterministic open interest in coins (BTC-scale) at time t."""
    return 80_000 + 6_000 * math.sin(2 * math.pi * t_ms / (3 * 86_400_000))


def kline(t: int, step: int, scale: float) -> list[Any]:
    """One Binance kline row: 12 columns, numbers as strings where Binance sends strings."""
    o, c = price_at(t, scale), price_at(t + step, scale)
    h, lo = max(o, c) * 1.001, min(o, c) * 0.999
    vol = 100 + 50 * math.sin(t / 7_000_000)
    buy = vol * (0.5 + 0.15 * math.sin(t / 3_000_000))
    return [t, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{vol:.3f}", t + step - 1,
            f"{vol * c:.2f}", 1000, f"{buy:.3f}", f"{buy * c:.2f}", "0"]


class FakeBinance:
    """Run with ``async with FakeBinance() as fake:``; ``fake.url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, now_ms: int = NOW_MS, slow_s: float = 1.0) -> None:
        self.now_ms = now_ms
        self.slow_s = slow_s
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.kline_max = 1500
        self.oi_days = 30
        self.oi_missing: tuple[int, int] | None = None  # [start, end) ms with no OI records
        self._info = json.loads((FIXTURES / "exchangeInfo.json").read_text())
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.scale = dict(SCALE)
        self.weight_limit: int | None = None
        self.weight_window_s = 60.0
        self.ban_s = 120.0
        self.used = 0  # weight in the current window
        self.peak_weight = 0
        self.total_weight = 0  # every request's weight since start
        self.limited = 0  # 429s answered
        self.bans = 0  # 418s answered
        self._window = -1
        self._wait_until = 0.0  # after a 429: requests before this get banned…
        self._told_at = 0.0
        self.ban_grace_s = 0.25  # …unless sent before the client could have seen the 429
        self._banned_until = 0.0

    def add_perpetuals(self, names: list[str]) -> None:
        """List more USDT perpetuals (copies of BTCUSDT at a smaller price scale)."""
        proto = next(x for x in self._info["symbols"] if x["symbol"] == "BTCUSDT")
        for i, name in enumerate(names):
            entry = copy.deepcopy(proto)
            entry.update(symbol=name, pair=name, baseAsset=name[: -len("USDT")])
            self._info["symbols"].append(entry)
            self.scale[name] = 10.0 ** -(1 + i % 5)

    @staticmethod
    def weight(path: str, query: dict[str, str]) -> int:
        """Binance's request weight (USDⓈ-M docs): klines by limit, the rest 1."""
        if path == "/fapi/v1/klines":
            limit = int(query.get("limit", 500))
            return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        return 1

    @web.middleware
    async def _weigh(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.weight_limit is None:
            return await handler(request)
        now = time.time()  # windows aligned to the wall clock, like Binance's minutes
        window = math.floor(now / self.weight_window_s)
        if window != self._window:
            self._window, self.used = window, 0
        if now < self._wait_until and now < self._told_at + self.ban_grace_s:
            self.limited += 1  # in flight when the first 429 went out: another 429
            return web.json_response(
                {"code": -1003, "msg": "Too many requests."}, status=429,
                headers={"Retry-After": str(math.ceil(self._wait_until - now)),
                         "X-MBX-USED-WEIGHT-1M": str(self.used)})
        if now < self._banned_until or now < self._wait_until:
            if now >= self._banned_until:
                self._banned_until = now + self.ban_s
            self.bans += 1
            return web.json_response(
                {"code": -1003, "msg": "Way too many requests; IP banned."}, status=418,
                headers={"Retry-After": str(math.ceil(self._banned_until - now))})
        cost = self.weight(request.path, dict(request.query))
        self.used += cost
        self.total_weight += cost
        self.peak_weight = max(self.peak_weight, self.used)
        if self.used > self.weight_limit:
            self.limited += 1
            self._wait_until = (window + 1) * self.weight_window_s
            self._told_at = now
            return web.json_response(
                {"code": -1003, "msg": "Too many requests; current limit is "
                 f"{self.weight_limit} request weight per minute."}, status=429,
                headers={"Retry-After": str(math.ceil(self._wait_until - now)),
                         "X-MBX-USED-WEIGHT-1M": str(self.used)})
        response = await handler(request)
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.used)
        return response

    def inject(self, path: str, *kinds: str) -> None:
        """Script the next requests to ``path`` (one kind per request, "ok" = normal)."""
        self.faults[path].extend(kinds)

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    async def __aenter__(self) -> FakeBinance:
        app = web.Application(middlewares=[self._weigh])
        app.router.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        app.router.add_get("/fapi/v1/klines", self._klines)
        app.router.add_get("/futures/data/openInterestHist", self._oi_hist)
        app.router.add_get("/fapi/v1/ticker/24hr", self._ticker)
        app.router.add_get("/fapi/v1/time", self._time)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    # -- fault handling ---------------------------------------------------------------------

    async def _fault(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.path, dict(request.query)))
        queue = self.faults.get(request.path)
        kind = queue.popleft() if queue else "ok"
        if kind == "ok":
            return None
        if kind == "429":
            return web.json_response({"code": -1003, "msg": "Too many requests; current limit "
                                      "is 2400 requests per minute."}, status=429,
                                     headers={"Retry-After": "1"})
        if kind == "418":
            return web.json_response({"code": -1003, "msg": "Way too many requests; IP banned "
                                      "until 1764000999000."}, status=418,
                                     headers={"Retry-After": "2"})
        if kind in ("500", "503"):
            return web.Response(status=int(kind), text="<html>Service Unavailable</html>",
                                content_type="text/html")
        if kind == "slow":
            await asyncio.sleep(self.slow_s)
            return None
        if kind == "malformed":
            return web.Response(status=200, text='[[1764000000000,"91000.1","9',
                                content_type="application/json")
        if kind == "empty":
            return web.json_response([])
        if kind == "badsymbol":
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        raise AssertionError(f"unknown fault {kind!r}")

    async def _checked(self, request: web.Request) -> tuple[str, float] | web.Response:
        """The injected fault or unknown-symbol answer, else (symbol, price scale)."""
        if (fault := await self._fault(request)) is not None:
            return fault
        return self._symbol(request)

    def _symbol(self, request: web.Request) -> tuple[str, float] | web.Response:
        sym = request.query.get("symbol", "")
        if sym not in self.scale:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return sym, self.scale[sym]

    # -- endpoints --------------------------------------------------------------------------

    # `is not None`, not `or`: before aiohttp 3.12 an aiohttp Response is an empty mapping, so
    # falsy, and `fault or normal` served the normal answer instead of the injected fault.
    async def _exchange_info(self, request: web.Request) -> web.Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        return web.json_response({**self._info, "serverTime": self.now_ms})

    async def _time(self, request: web.Request) -> web.Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        return web.json_response({"serverTime": self.now_ms})

    async def _klines(self, request: web.Request) -> web.Response:
        found = await self._checked(request)
        if isinstance(found, web.Response):
            return found
        _, scale = found
        q = request.query
        step = INTERVAL_MS[q["interval"]]
        limit = min(int(q.get("limit", 500)), self.kline_max)
        last_open = self.now_ms // step * step
        end = min(int(q.get("endTime", last_open)), last_open)
        if "startTime" in q:
            first = -(-int(q["startTime"]) // step) * step
        else:
            first = last_open - (limit - 1) * step
        opens = range(first, end + 1, step)[:limit]
        return web.json_response([kline(t, step, scale) for t in opens])

    async def _oi_hist(self, request: web.Request) -> web.Response:
        found = await self._checked(request)
        if isinstance(found, web.Response):
            return found
        sym, scale = found
        q = request.query
        step = INTERVAL_MS[q["period"]]
        limit = min(int(q.get("limit", 30)), 500)
        newest = self.now_ms // step * step
        oldest = newest - self.oi_days * 86_400_000
        end = min(int(q.get("endTime", newest)), newest)
        start = max(int(q.get("startTime", end - (limit - 1) * step)), oldest)
        times = [t for t in range(-(-start // step) * step, end + 1, step)
                 if not (self.oi_missing and self.oi_missing[0] <= t < self.oi_missing[1])]
        times = times[-limit:]  # Binance answers with the newest `limit` in the range
        out = []
        for t in times:
            coins = oi_coins_at(t) / scale
            out.append({"symbol": sym, "sumOpenInterest": f"{coins:.3f}",
                        "sumOpenInterestValue": f"{coins * price_at(t, scale):.8f}",
                        "CMCCirculatingSupply": "19000000", "timestamp": t})
        return web.json_response(out)

    async def _ticker(self, request: web.Request) -> web.Response:
        found = await self._checked(request)
        if isinstance(found, web.Response):
            return found
        sym, scale = found
        p = price_at(self.now_ms, scale)
        return web.json_response({
            "symbol": sym, "priceChange": "0", "priceChangePercent": "0",
            "weightedAvgPrice": f"{p:.2f}", "lastPrice": f"{p:.2f}", "lastQty": "0.01",
            "openPrice": f"{p:.2f}", "highPrice": f"{p * 1.01:.2f}", "lowPrice": f"{p * 0.99:.2f}",
            "volume": "1000", "quoteVolume": f"{1000 * p:.2f}",
            "openTime": self.now_ms - 86_400_000, "closeTime": self.now_ms,
            "firstId": 1, "lastId": 2, "count": 2})
