"""Real ccxt (binanceusdm, async) against the loopback Binance fake: paging, OI join, faults,
cache, symbols, staleness, last price."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import numpy as np
import pytest

from bot.errors import BadSymbolError, MarketDataError, MarketUnavailableError
from bot.market import MarketSource
from bot.market.cache import MarketCache
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from estimator import BINANCE_BTCUSDT, build_book
from tests.bot.fake_binance import FakeBinance, oi_coins_at, price_at

SYM = "BTC/USDT:USDT"
KLINES, OI = "/fapi/v1/klines", "/futures/data/openInterestHist"
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
TF = 300_000


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(slow_s=2.0) as server:
        yield server


def dead_factory(name: str) -> Any:
    """An exchange whose every URL points at a closed loopback port."""
    ex = getattr(ccxt, name)({"enableRateLimit": True, "timeout": 300})
    for key, url in list(ex.urls["api"].items()):
        if isinstance(url, str):
            ex.urls["api"][key] = "http://127.0.0.1:9"
    return ex


def source(fake: FakeBinance, **kw: Any) -> CcxtSource:
    # Rate limiter on, as in production, but with a 2 ms budget so the suite stays fast.
    binance = binance_factory(fake.url, timeout_ms=1000, rateLimit=2)
    kw.setdefault("lookback_days", 2)
    kw.setdefault("page_limit", 200)
    return CcxtSource(
        exchange_factory=lambda n: binance(n) if n == "binanceusdm" else dead_factory(n),
        retry=FAST, clock=lambda: fake.now_ms, **kw)


@pytest.fixture
async def src(fake: FakeBinance) -> AsyncIterator[CcxtSource]:
    s = source(fake)
    yield s
    await s.close()


async def test_pagination_over_three_pages_with_taker_volume(fake: FakeBinance,
                                                              src: CcxtSource) -> None:
    assert isinstance(src, MarketSource)
    snap = await src.fetch(SYM)
    c = snap.candles
    # 2 days of 5m candles plus the forming one: 577 rows in pages of 200.
    assert len(c) == 577 and fake.count(KLINES) == 3
    starts = [int(q["startTime"]) for p, q in fake.requests if p == KLINES]
    assert starts == [int(c.timestamp[0]), int(c.timestamp[200]), int(c.timestamp[400])]
    assert bool(np.all(np.diff(c.timestamp) == TF))
    assert c.timestamp[-1] == fake.now_ms // TF * TF
    assert c.close[10] == pytest.approx(price_at(int(c.timestamp[10]) + TF), abs=0.01)
    assert c.taker_buy_volume is not None and snap.taker_source == "binanceusdm klines"
    assert bool(np.all(c.taker_buy_volume <= c.volume))
    assert not snap.stale and not snap.proxy and snap.tiers is BINANCE_BTCUSDT
    assert any("default Binance BTCUSDT table" in w for w in snap.warnings)


async def test_open_interest_joins_candle_closes_in_usd(fake: FakeBinance,
                                                        src: CcxtSource) -> None:
    snap = await src.fetch(SYM)
    c, oi = snap.candles, snap.candles.open_interest_usd
    assert oi is not None and snap.oi_sources == ("binanceusdm",)
    assert snap.oi_notes == {"binanceusdm": "OI for 577/577 candles (100%)"}
    assert fake.count(OI) == 2  # 577 snapshots, 500 per call
    closes = c.timestamp[:-1] + TF
    expected = np.array([oi_coins_at(int(t)) * price_at(int(t)) for t in closes])
    np.testing.assert_allclose(oi[:-1], expected, rtol=1e-6)
    # The forming candle's close is in the future: it takes the newest snapshot (its open).
    t = int(c.timestamp[-1])
    assert oi[-1] == pytest.approx(oi_coins_at(t) * price_at(t), rel=1e-6)
    book = build_book(c)  # and the estimator takes it
    assert not book.proxy and book.long_usd.sum() + book.short_usd.sum() > 0


async def test_fetch_ohlcv_path_pages_and_falls_back_to_candle_colour(fake: FakeBinance) -> None:
    s = source(fake, raw_klines=False)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    assert len(snap.candles) == 577 and fake.count(KLINES) == 3
    assert snap.candles.taker_buy_volume is None and snap.taker_source == "candle colour"
    assert "no taker-buy volume: long/short split by candle colour" in snap.warnings


async def test_one_minute_candles_join_five_minute_oi(fake: FakeBinance) -> None:
    s = source(fake, timeframe="1m", lookback_days=0.5, page_limit=500)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    c, oi = snap.candles, snap.candles.open_interest_usd
    assert len(c) == 721 and fake.count(KLINES) == 2
    assert [q["period"] for p, q in fake.requests if p == OI] == ["5m"]
    assert oi is not None and snap.oi_notes["binanceusdm"].startswith("OI for")
    # A candle closing on a 5m boundary sees that snapshot; the next four keep it (as-of).
    i = int(np.nonzero((c.timestamp + 60_000) % TF == 0)[0][3])
    t = int(c.timestamp[i]) + 60_000
    assert oi[i] == pytest.approx(oi_coins_at(t) * price_at(t), rel=1e-6)
    assert bool(np.all(oi[i:i + 5] == oi[i]))


async def test_missing_exchange_is_tolerated_and_reported(fake: FakeBinance) -> None:
    s = source(fake, exchanges=["binanceusdm", "bybit"])
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    assert snap.oi_sources == ("binanceusdm",)
    assert snap.oi_notes["bybit"].startswith("missing: bybit load_markets: network error")
    assert "open interest from binanceusdm only" in snap.warnings


async def test_oi_history_limit_cuts_only_the_start(fake: FakeBinance) -> None:
    fake.oi_days = 1
    s = source(fake)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    oi = snap.candles.open_interest_usd
    note = snap.oi_notes["binanceusdm"]
    match = re.fullmatch(r"OI for (\d+)/\1 candles \(100%\), none for the first (\d+)", note)
    assert match is not None, note
    lead = int(match[2])
    assert abs(lead - 288) <= 1 and lead + int(match[1]) == 577
    assert oi is not None and bool(np.all(oi[:lead] == oi[lead]))  # back-filled: ΔOI = 0
    assert oi[lead + 1] != oi[lead]


async def test_oi_hole_below_coverage_falls_back_to_proxy(fake: FakeBinance) -> None:
    fake.oi_missing = (fake.now_ms - 30 * 3_600_000, fake.now_ms - 20 * 3_600_000)
    s = source(fake)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    assert snap.proxy and snap.oi_sources == ()
    assert snap.oi_notes["binanceusdm"].startswith("left out: OI for")
    assert any("proxy" in w for w in snap.warnings)


@pytest.mark.parametrize("kind", ["429", "418", "500", "503", "slow", "malformed", "empty"])
@pytest.mark.parametrize("path", [KLINES, OI])
async def test_each_fault_once_is_retried_to_the_same_result(fake: FakeBinance, kind: str,
                                                             path: str) -> None:
    clean = source(fake)
    try:
        want = (await clean.fetch(SYM)).candles
    finally:
        await clean.close()
    before = fake.count(path)
    fake.inject(path, "ok", kind)  # the second page fails once
    cache = MarketCache()
    s = source(fake, cache=cache)
    try:
        got = (await s.fetch(SYM)).candles
    finally:
        await s.close()
    if kind == "empty" and path == OI:
        # An empty OI window is a hole, not an error: reported via coverage, nothing retried.
        assert fake.count(path) - before == 2
        return
    assert fake.count(path) - before == 3 + (path == KLINES)  # pages + one retry
    np.testing.assert_array_equal(got.timestamp, want.timestamp)
    np.testing.assert_array_equal(got.close, want.close)
    np.testing.assert_array_equal(got.open_interest_usd, want.open_interest_usd)
    assert cache.counts() == {"candles": 577, "open_interest": 577}


@pytest.mark.parametrize(("kind", "message"), [
    ("429", "rate limited / IP banned"),
    ("418", "rate limited / IP banned"),
    ("503", "network error"),
    ("slow", "timed out"),
    ("malformed", "malformed response"),
    ("empty", "malformed response: empty page"),
])
async def test_persistent_fault_is_a_clear_error_and_nothing_is_cached(
        fake: FakeBinance, kind: str, message: str) -> None:
    fake.inject(KLINES, "ok", *[kind] * FAST.attempts)
    cache = MarketCache()
    s = source(fake, cache=cache)
    try:
        with pytest.raises(MarketUnavailableError, match=message) as info:
            await s.fetch(SYM)
    finally:
        await s.close()
    assert isinstance(info.value.__cause__, Exception)  # chained from ccxt / the parser
    assert "binanceusdm klines BTC/USDT:USDT 5m from" in str(info.value)
    assert cache.counts() == {"candles": 0, "open_interest": 0}


async def test_oi_failure_after_retries_keeps_candles_and_reports(fake: FakeBinance) -> None:
    fake.inject(OI, *["500"] * FAST.attempts)
    cache = MarketCache()
    s = source(fake, cache=cache)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    assert snap.proxy and snap.oi_notes["binanceusdm"].startswith("missing: binanceusdm open")
    assert cache.counts() == {"candles": 577, "open_interest": 0}


async def test_cache_makes_a_restart_fetch_only_what_is_new(fake: FakeBinance) -> None:
    cache = MarketCache()
    first = source(fake, cache=cache)
    try:
        a = await first.fetch(SYM)
    finally:
        await first.close()
    fake.now_ms += 3_600_000
    fake.requests.clear()
    second = source(fake, cache=cache)  # a "restart" with the same cache
    try:
        b = await second.fetch(SYM)
        # One klines page from the last cached (formerly forming) candle, one OI page.
        assert [int(q["startTime"]) for p, q in fake.requests if p == KLINES] == [
            int(a.candles.timestamp[-1])]
        assert fake.count(OI) == 1
        assert len(b.candles) == 577 and b.candles.timestamp[0] == a.candles.timestamp[12]
        assert b.candles.open_interest_usd is not None
        # A failing later fetch leaves the cache as it was.
        counts = cache.counts()
        fake.now_ms += 3_600_000
        fake.inject(KLINES, *["500"] * FAST.attempts)
        with pytest.raises(MarketUnavailableError):
            await second.fetch(SYM)
        assert cache.counts() == counts
    finally:
        await second.close()


async def test_stale_when_newest_candle_is_older_than_two_timeframes(fake: FakeBinance) -> None:
    s = CcxtSource(exchange_factory=binance_factory(fake.url, 1000, rateLimit=2), lookback_days=1,
                   retry=FAST, clock=lambda: fake.now_ms + 11 * 60_000)
    try:
        snap = await s.fetch(SYM)
    finally:
        await s.close()
    assert snap.stale and any("stale" in w for w in snap.warnings)


@pytest.mark.parametrize("text", ["BTC", "btcusdt", "BTC/USDT", "BTC/USDT:USDT", "btc-usdt-swap"])
async def test_normalise_user_symbols(src: CcxtSource, text: str) -> None:
    assert await src.normalise(text) == SYM


async def test_unknown_and_inactive_symbols_are_user_safe_errors(src: CcxtSource) -> None:
    with pytest.raises(BadSymbolError, match=r"^DOGE is not a perpetual on binanceusdm\.$"):
        await src.normalise("doge")
    with pytest.raises(BadSymbolError,
                       match="^ETC is not a perpetual on binanceusdm; did you mean ETH, BTC\\?$"):
        await src.normalise("ETC")
    with pytest.raises(BadSymbolError, match="LUNA/USDT:USDT is listed on binanceusdm but not"):
        await src.normalise("LUNA")
    with pytest.raises(BadSymbolError, match="is not a symbol"):
        await src.normalise("<script>")
    with pytest.raises(BadSymbolError, match="not listed on binanceusdm"):
        await src.fetch("DOGE/USDT:USDT")


async def test_exchange_bad_symbol_maps_to_bad_symbol_error(fake: FakeBinance,
                                                            src: CcxtSource) -> None:
    fake.inject(KLINES, "badsymbol")
    with pytest.raises(BadSymbolError) as info:
        await src.fetch(SYM)
    assert isinstance(info.value.__cause__, ccxt.BadSymbol)
    assert fake.count(KLINES) == 1  # not retried


async def test_last_price_reports_range_since_previous_tick(fake: FakeBinance,
                                                            src: CcxtSource) -> None:
    first = await src.last_price(SYM)
    minute = fake.now_ms // 60_000 * 60_000
    assert first.price == pytest.approx(price_at(minute + 60_000), abs=0.01)
    assert first.low <= first.price <= first.high
    fake.now_ms += 10 * 60_000
    second = await src.last_price(SYM)
    highs = [price_at(t) for t in range(minute, fake.now_ms + 60_000, 60_000)]
    assert second.high == pytest.approx(max(highs) * 1.001, abs=0.02)
    assert second.low == pytest.approx(min(highs) * 0.999, abs=0.02)
    assert second.timestamp == fake.now_ms


async def test_market_data_error_for_unknown_exchange() -> None:
    with pytest.raises(ValueError, match="unknown exchange"):
        CcxtSource(exchanges=["nope"])
    assert issubclass(MarketUnavailableError, MarketDataError)
