"""Live market data on ccxt (async): candles from the first exchange, OI summed across all.

Candles come from ``exchanges[0]`` (default binanceusdm). On Binance the raw klines endpoint is
used so taker-buy volume (columns 9–10) comes along; elsewhere ``fetch_ohlcv`` (long/short split
then falls back to candle colour). OI history comes from every configured exchange, aligned to
candle closes in USD and summed (see :mod:`bot.market.oi`); failing exchanges are reported, not
fatal. Everything is fetched before anything is cached, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import ccxt.async_support as ccxt
import numpy as np

from bot.errors import BadSymbolError, MarketDataError
from bot.market.base import MarketSnapshot, PriceTick, is_stale, timeframe_ms
from bot.market.cache import CandleRows, MarketCache, empty_rows
from bot.market.errors import MalformedResponse, RetryPolicy, retry_after_s, with_retry
from bot.market.oi import OiHistory, aggregate, align_usd
from bot.market.replay import find_gaps
from bot.market.symbols import resolve
from bot.market.weight import WEIGHT_LIMITS, WeightBudget, klines_weight
from estimator import BINANCE_BTCUSDT, Candles, TierTable

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# Per-exchange OI history limits: records per call, how far back (days), timeframes offered.
OI_LIMITS: dict[str, tuple[int, int | None, frozenset[str]]] = {
    "binanceusdm": (500, 30, frozenset({"5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"})),
    "bybit": (200, None, frozenset({"5m", "15m", "30m", "1h", "4h", "1d"})),
    "okx": (100, None, frozenset({"5m", "1h", "1d"})),
}
_DEFAULT_OI_LIMIT = (100, None, frozenset({"5m", "1h", "1d"}))
_OI_FALLBACK_TF = ("5m", "1h", "1d")
_RANGE_TF = ("1m", "5m", "1h")  # bars for the traded range since the previous tick
MARKETS_TTL_S = 86_400.0  # the market list (new listings, delistings) is reloaded daily

ExchangeFactory = Callable[[str], Any]


def binance_factory(api_url: str, timeout_ms: int = 10_000, **config: Any) -> ExchangeFactory:
    """An exchange factory pointing every Binance USDⓈ-M URL at ``api_url`` (tests, proxies);
    ``config`` goes to the ccxt constructor (e.g. ``rateLimit`` in ms)."""

    def make(name: str) -> Any:
        ex = getattr(ccxt, name)({"enableRateLimit": True, "timeout": timeout_ms, **config})
        for key, url in list(ex.urls["api"].items()):
            if isinstance(url, str) and url.startswith("https://fapi.binance.com"):
                ex.urls["api"][key] = api_url.rstrip("/") + url[len("https://fapi.binance.com"):]
        return ex

    return make


class CcxtSource:
    """Live :class:`bot.market.base.MarketSource` on ccxt.

    ``lookback_days`` of ``timeframe`` candles per fetch (cached in ``cache`` if given);
    ``page_limit`` candles per klines call (Binance allows 1500; ccxt's fetch_ohlcv caps 1000);
    ``raw_klines=False`` uses ``fetch_ohlcv`` on Binance too (no taker-buy volume);
    ``min_oi_coverage``: share of candles an exchange's OI must cover to be summed in.
    """

    def __init__(self, exchanges: Sequence[str] = ("binanceusdm",), timeframe: str = "5m",
                 lookback_days: float = 7.0, cache: MarketCache | None = None,
                 exchange_factory: ExchangeFactory | None = None, *,
                 retry: RetryPolicy | None = None, timeout_ms: int = 10_000,
                 page_limit: int = 1000, min_oi_coverage: float = 0.9,
                 raw_klines: bool = True, clock: Callable[[], int] | None = None,
                 weight_share: float = 0.7, weight_window_s: float = 60.0) -> None:
        if not exchanges:
            raise ValueError("ccxt source: at least one exchange")
        if not 0 < lookback_days <= 365:
            raise ValueError(f"ccxt source: lookback_days must be in (0, 365], got {lookback_days}")
        unknown = [e for e in exchanges if e not in ccxt.exchanges]
        if unknown:
            raise ValueError(f"ccxt source: unknown exchange(s) {', '.join(unknown)}")
        self.exchanges = tuple(exchanges)
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.lookback_ms = int(lookback_days * DAY_MS)
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self.page_limit = page_limit
        self.min_oi_coverage = min_oi_coverage
        self.raw_klines = raw_klines
        self._factory = exchange_factory or self._default_factory(timeout_ms)
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._ex: dict[str, Any] = {}
        self._loaded: dict[str, asyncio.Lock] = {}
        self._tiers: dict[str, tuple[TierTable | None, str, str | None]] = {}
        self._last_tick: dict[str, int] = {}
        self._markets_at: dict[str, float] = {}  # monotonic time each market list was loaded
        # Request weight per exchange that publishes a limit (Binance: 2,400 / min).
        self.budgets = {name: WeightBudget(WEIGHT_LIMITS[name], weight_share, weight_window_s)
                        for name in self.exchanges if name in WEIGHT_LIMITS}
        self._budget_of: dict[int, WeightBudget | None] = {}  # by exchange object (its slot)

    @staticmethod
    def _default_factory(timeout_ms: int) -> ExchangeFactory:
        def make(name: str) -> Any:
            return getattr(ccxt, name)({"enableRateLimit": True, "timeout": timeout_ms})
        return make

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(self, ex: Any, what: str, call: Callable[[], Awaitable[Any]],
                    weight: int = 1) -> Any:
        budget = self._budget_of.get(id(ex))
        if budget is None:
            return await with_retry(f"{ex.id} {what}", call, self.retry,
                                    lambda: getattr(ex, "last_response_headers", None))

        async def weighed() -> Any:
            await budget.acquire(weight)
            try:
                return await call()
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded):
                # 429/418: every call waits (a call during a 429 earns a 418 ban).
                wait = retry_after_s(getattr(ex, "last_response_headers", None))
                budget.pause(wait if wait is not None else 60.0)
                raise
            finally:
                budget.observe(getattr(ex, "last_response_headers", None))

        return await with_retry(f"{ex.id} {what}", weighed, self.retry,
                                lambda: getattr(ex, "last_response_headers", None))

    async def _exchange(self, name: str) -> Any:
        """The exchange with markets loaded (once, retried)."""
        if name not in self._ex:
            self._ex[name] = self._factory(name)
            # Kept so a body ccxt could not decode (it then returns [] quietly) is caught.
            self._ex[name].enableLastJsonResponse = True
            self._loaded[name] = asyncio.Lock()
            self._budget_of[id(self._ex[name])] = self.budgets.get(name)
        ex = self._ex[name]
        async with self._loaded[name]:
            age = time.monotonic() - self._markets_at.get(name, -math.inf)
            if not ex.markets or age >= MARKETS_TTL_S:
                if ex.markets:  # a day old: reload, keeping the old list if that fails
                    try:
                        await self._call(ex, "load_markets", lambda: _checked_markets(ex, True))
                    except MarketDataError as exc:
                        log.warning("reloading %s markets failed: %s", name, exc)
                else:
                    await self._call(ex, "load_markets", lambda: _checked_markets(ex))
                self._markets_at[name] = time.monotonic()
        return ex

    async def close(self) -> None:
        """Close every exchange session."""
        for ex in self._ex.values():
            await ex.close()
        self._ex.clear()

    # -- MarketSource -----------------------------------------------------------------------

    async def normalise(self, user_text: str) -> str:
        """Unified symbol listed by the first exchange; BadSymbolError (user-safe) otherwise."""
        ex = await self._exchange(self.exchanges[0])
        return resolve(user_text, ex.markets, ex.id)

    async def fetch(self, symbol: str) -> MarketSnapshot:
        """``lookback_days`` of candles with summed OI, taker-buy volume and tiers."""
        now = self._clock()
        start = (now - self.lookback_ms) // self.tf_ms * self.tf_ms
        primary = self.exchanges[0]
        ex = await self._exchange(primary)
        self._check_listed(ex, symbol)
        rows, fresh = await self._candles(ex, symbol, start, now)
        if len(rows) == 0:
            raise MarketDataError(f"{primary} returned no candles for {symbol}")
        results = await asyncio.gather(*(self._oi(n, symbol, start, now) for n in self.exchanges),
                                       return_exceptions=True)
        aligned, failures, fresh_oi = {}, {}, {}
        for name, res in zip(self.exchanges, results, strict=True):
            if isinstance(res, MarketDataError):
                failures[name] = str(res)
                log.warning("OI %s %s: %s", name, symbol, res)
                continue
            if isinstance(res, BaseException):
                raise res
            hist, new, tf = res
            fresh_oi[name] = new
            aligned[name] = align_usd(hist, rows.ts, rows.close, self.tf_ms,
                                      2 * max(self.tf_ms, timeframe_ms(tf)))
        agg = aggregate(aligned, failures, self.min_oi_coverage)
        tiers, tiers_source, tiers_warning = await self._leverage_tiers(ex, symbol)
        if self.cache is not None:
            self.cache.write(symbol, self.timeframe, {primary: fresh}, fresh_oi,
                             prune_before_ms=start - DAY_MS)
        taker_known = bool(np.all(np.isfinite(rows.taker_buy)))
        taker = np.minimum(rows.taker_buy, rows.volume) if taker_known else None
        try:
            candles = Candles(rows.ts, rows.open, rows.high, rows.low, rows.close, rows.volume,
                              agg.usd, taker)
        except ValueError as exc:
            raise MarketDataError(f"{primary} {symbol}: invalid candles: {exc}") from exc
        warnings = []
        if agg.usd is None:
            warnings.append("no open interest available: new positions estimated from volume "
                            "(proxy)")
        elif failures or len(agg.sources) < len(self.exchanges):
            warnings.append(f"open interest from {', '.join(agg.sources)} only")
        if not taker_known:
            warnings.append("no taker-buy volume: long/short split by candle colour")
        if tiers_warning:
            warnings.append(tiers_warning)
        gaps = find_gaps(rows.ts, self.tf_ms)
        if gaps.count:
            warnings.append(f"{gaps.count} gap(s) in the candles ({gaps.missing} missing): "
                            "the estimate uses the candles there are")
        stale = is_stale(int(rows.ts[-1]), now, self.tf_ms)
        if stale:
            warnings.append("data is stale: newest candle is older than 2 timeframes")
        return MarketSnapshot(
            symbol, self.timeframe, candles, now, stale, agg.sources, agg.notes,
            f"{primary} klines" if taker_known else "candle colour", tiers, tiers_source,
            tuple(warnings))

    async def last_price(self, symbol: str, since_ms: int | None = None) -> PriceTick:
        """Last traded price and the high/low since ``since_ms`` (the engine's previous tick,
        also after a restart: a level crossed and re-crossed while the bot was down is still
        in the range); without it, since this source's previous call (or the last minute).

        The range starts at the open of the bar holding ``since_ms``, so it can include a little
        before it (conservative: a crossed level is never missed). 1m bars; 5m or 1h bars when
        the gap is longer than 1,000 of the finer ones (a long outage); at most 1,000 hours.
        """
        ex = await self._exchange(self.exchanges[0])
        self._check_listed(ex, symbol)
        now = self._clock()
        since = since_ms if since_ms is not None else self._last_tick.get(symbol)
        tf = "1m"
        if since is not None:
            tf = next((t for t in _RANGE_TF if now - since <= 999 * timeframe_ms(t)),
                      _RANGE_TF[-1])
            step = timeframe_ms(tf)
            since = max(since // step * step, now // step * step - 999 * step)
        # Only the bars needed (weight 1 under 100 bars, 5 for 1,000).
        limit = 1 if since is None else min(1000, (now - since) // timeframe_ms(tf) + 2)
        bars = await self._call(ex, f"fetch_ohlcv {symbol} {tf}",
                                lambda: ex.fetch_ohlcv(symbol, tf, since, limit),
                                klines_weight(limit))
        m = _ohlcv_matrix(bars, 6)
        if len(m) == 0:
            raise MarketDataError(f"{ex.id} returned no recent price for {symbol}")
        self._last_tick[symbol] = int(m[-1, 0])
        return PriceTick(symbol, float(m[-1, 4]), float(m[:, 2].max()), float(m[:, 3].min()), now)

    # -- candles ----------------------------------------------------------------------------

    def _check_listed(self, ex: Any, symbol: str) -> None:
        if symbol not in ex.markets:
            raise BadSymbolError(f"{symbol} is not listed on {ex.id}.")

    async def _candles(self, ex: Any, symbol: str, start: int,
                       now: int) -> tuple[CandleRows, CandleRows]:
        """All candles from ``start`` (cache + new pages) and the freshly fetched part."""
        cached = empty_rows()
        if self.cache is not None:
            cached = self.cache.candles(ex.id, symbol, self.timeframe, start)
            if len(cached) and cached.ts[0] > start + self.tf_ms:
                cached = empty_rows()  # the cache starts too late: backfill the whole range
        since = int(cached.ts[-1]) if len(cached) else start  # re-fetch the forming candle
        fresh = await self._candle_pages(ex, symbol, since, now)
        return cached.merge(fresh).since(start), fresh

    async def _candle_pages(self, ex: Any, symbol: str, since: int, now: int) -> CandleRows:
        raw = self.raw_klines and ex.id.startswith("binance") and ex.markets[symbol].get("linear")
        expected = max(1, math.ceil((now - since) / (self.tf_ms * self.page_limit)))
        pages: list[np.ndarray] = []
        cursor, page = since, 0
        while cursor <= now:
            # Only the candles up to now: a steady recompute asks for a few (weight 1).
            limit = max(1, min(self.page_limit, (now - cursor) // self.tf_ms + 2))

            def one(c: int = cursor, n: int = limit) -> Awaitable[np.ndarray]:
                return self._klines_page(ex, symbol, c, now, raw, n)
            m = await self._call(ex, f"klines {symbol} {self.timeframe} from {cursor}", one,
                                 klines_weight(limit))
            page += 1
            if expected > 2:
                log.info("backfill %s %s %s: page %d/~%d", ex.id, symbol, self.timeframe,
                         page, expected)
            if len(m) == 0:
                break
            pages.append(m)
            last = int(m[-1, 0])
            if last + self.tf_ms > now or len(m) < limit:
                break
            cursor = last + self.tf_ms
        return CandleRows.from_matrix(np.vstack(pages) if pages else np.zeros((0, 7)))

    async def _klines_page(self, ex: Any, symbol: str, since: int, now: int,
                           raw: bool, limit: int) -> np.ndarray:
        """One page as an (n, 7) matrix; raises MalformedResponse for unusable bodies and for
        an empty page before the present (a missing page mid-range)."""
        if raw:
            body = await ex.fapiPublicGetKlines({
                "symbol": ex.markets[symbol]["id"], "interval": self.timeframe,
                "startTime": since, "limit": limit})
            m = _ohlcv_matrix(body, 11)
            # Columns 9–10: taker-buy base volume, taker-buy quote volume.
            m = np.column_stack([m[:, :6], m[:, 9]]) if len(m) else np.zeros((0, 7))
        else:
            bars = await ex.fetch_ohlcv(symbol, self.timeframe, since, limit)
            m = _ohlcv_matrix(bars, 6)
            m = np.column_stack([m[:, :6], np.full(len(m), np.nan)]) if len(m) else np.zeros((0, 7))
        if len(m) == 0 and since + 2 * self.tf_ms <= now:
            raise MalformedResponse(f"empty page from {since} before the present ({now})")
        if len(m) and (m[0, 0] < since or bool(np.any(np.diff(m[:, 0]) <= 0))):
            raise MalformedResponse("klines out of order or before startTime")
        return m

    # -- open interest ----------------------------------------------------------------------

    def _oi_timeframe(self, name: str) -> str:
        offered = OI_LIMITS.get(name, _DEFAULT_OI_LIMIT)[2]
        if self.timeframe in offered:
            return self.timeframe
        coarser = [tf for tf in _OI_FALLBACK_TF if tf in offered and timeframe_ms(tf) <= max(
            self.tf_ms, timeframe_ms("5m"))]
        return coarser[-1] if coarser else "1h"

    async def _oi(self, name: str, symbol: str, start: int,
                  now: int) -> tuple[OiHistory, OiHistory, str]:
        """(history from ``start``, the freshly fetched part, OI timeframe) for one exchange."""
        ex = await self._exchange(name)
        if not ex.has.get("fetchOpenInterestHistory"):
            raise MarketDataError("no public OI history in ccxt")
        if symbol not in ex.markets:
            raise MarketDataError(f"{symbol} not listed")
        tf = self._oi_timeframe(name)
        tf_ms = timeframe_ms(tf)
        limit, max_days, _ = OI_LIMITS.get(name, _DEFAULT_OI_LIMIT)
        first = start if max_days is None else max(start, now - max_days * DAY_MS + tf_ms)
        cached = OiHistory.from_rows([])
        if self.cache is not None:
            # Keyed by the candle timeframe: the OI timeframe follows from it per exchange.
            cached = self.cache.oi(name, symbol, self.timeframe, first)
            if len(cached) and cached.timestamp[0] > first + 2 * tf_ms:
                cached = OiHistory.from_rows([])
        cursor = int(cached.timestamp[-1]) + 1 if len(cached) else first
        records: list[dict[str, Any]] = []
        while cursor <= now:
            until = min(cursor + (limit - 1) * tf_ms, now)

            async def one(c: int = cursor, u: int = until) -> Any:
                page = await ex.fetch_open_interest_history(symbol, tf, c, limit, {"until": u})
                # No await between ccxt storing the body and this check: no other call interleaves.
                if not isinstance(page, list) or not isinstance(ex.last_json_response,
                                                                list | dict):
                    raise MalformedResponse("OI history body is not JSON")
                return page
            page = await self._call(ex, f"open interest {symbol} {tf} from {cursor}", one)
            records.extend(page)
            cursor = until + 1
        fresh = OiHistory.from_ccxt(records)
        merged = OiHistory(np.concatenate([cached.timestamp, fresh.timestamp]),
                           np.concatenate([cached.amount, fresh.amount]),
                           np.concatenate([cached.value, fresh.value]))
        return OiHistory.from_rows(zip(merged.timestamp.tolist(), merged.amount.tolist(),
                                       merged.value.tolist(), strict=True)), fresh, tf

    # -- leverage tiers ---------------------------------------------------------------------

    async def _leverage_tiers(self, ex: Any, symbol: str) -> tuple[TierTable | None, str,
                                                                   str | None]:
        """(tiers, where from, warning). Binance needs an API key → default table."""
        if symbol in self._tiers:
            return self._tiers[symbol]
        result: tuple[TierTable | None, str, str | None]
        default_warning = (f"leverage tiers for {symbol} unavailable from {ex.id}: using the "
                           "default Binance BTCUSDT table")
        needs_key = ex.id.startswith("binance") and not ex.apiKey
        if needs_key or not ex.has.get("fetchMarketLeverageTiers"):
            result = (BINANCE_BTCUSDT, "default table", default_warning)
        else:
            try:
                tiers = await self._call(ex, f"leverage tiers {symbol}",
                                         lambda: ex.fetch_market_leverage_tiers(symbol))
                result = (tiers_from_ccxt(tiers), f"{ex.id} fetch_leverage_tiers", None)
            except (MarketDataError, ValueError) as exc:
                log.warning("leverage tiers %s: %s", symbol, exc)
                result = (BINANCE_BTCUSDT, "default table", default_warning)
        self._tiers[symbol] = result
        return result


def tiers_from_ccxt(tiers: Sequence[dict[str, Any]]) -> TierTable:
    """TierTable from ccxt leverage-tier structures (minNotional, maxNotional, maxLeverage,
    maintenanceMarginRate); cum is derived the Binance way. ValueError if inconsistent."""
    rows = sorted(
        (float(t["minNotional"]), float(t["maxNotional"]), float(t["maxLeverage"]),
         float(t["maintenanceMarginRate"])) for t in tiers)
    return TierTable.from_brackets(rows)


async def _checked_markets(ex: Any, reload: bool = False) -> Any:
    old = ex.markets
    markets = await ex.load_markets(reload)
    if not isinstance(markets, dict) or not markets:
        ex.markets = old
        raise MalformedResponse("no markets")
    return markets


def _ohlcv_matrix(body: Any, width: int) -> np.ndarray:
    """A list of kline rows → float matrix of the first ``width`` columns; MalformedResponse
    if the body is not that."""
    if not isinstance(body, list):
        raise MalformedResponse(f"expected a list of candles, got {type(body).__name__}")
    if not body:
        return np.zeros((0, width))
    try:
        m = np.array([row[:width] for row in body], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as exc:
        raise MalformedResponse(f"candles not numeric: {exc}") from exc
    if m.ndim != 2 or m.shape[1] != width or not bool(np.all(np.isfinite(m))):
        raise MalformedResponse("candles have the wrong shape or non-finite values")
    return m
