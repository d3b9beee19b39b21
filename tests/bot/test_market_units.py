"""Pure parts of the market package: symbol syntax, OI alignment (Bybit coins → USD) and
aggregation, ccxt error mapping and retry timing, the SQLite cache, ccxt leverage tiers."""

from __future__ import annotations

import inspect
import math

import ccxt.async_support as ccxt
import numpy as np
import pytest

import bot.market
from bot.errors import BadSymbolError, MarketDataError, MarketUnavailableError
from bot.market.cache import CandleRows, MarketCache
from bot.market.ccxt_source import CcxtSource, tiers_from_ccxt
from bot.market.errors import (
    MalformedResponse,
    RetryPolicy,
    map_exception,
    retry_after_s,
    with_retry,
)
from bot.market.oi import OiHistory, aggregate, align_usd, fill
from bot.market.symbols import normalise, resolve

TF = 300_000
T0 = 1_700_000_100_000 // TF * TF


def test_public_api_is_explicit() -> None:
    public = {n for n, v in vars(bot.market).items()
              if not n.startswith("_") and not inspect.ismodule(v)}
    assert sorted(bot.market.__all__) == sorted(public)


@pytest.mark.parametrize(("text", "want"), [
    ("BTC", "BTC/USDT:USDT"), (" btcusdt ", "BTC/USDT:USDT"), ("BTC/USDT", "BTC/USDT:USDT"),
    ("BTC/USDT:USDT", "BTC/USDT:USDT"), ("eth-usdt-swap", "ETH/USDT:USDT"),
    ("SOLUSDT.P", "SOL/USDT:USDT"), ("BTCUSDC", "BTC/USDC:USDC"), ("btc_usdt", "BTC/USDT:USDT"),
    ("1000pepeusdt", "1000PEPE/USDT:USDT"), ("BTCPERP", "BTC/USDT:USDT"),
    ("BTC/USD:BTC", "BTC/USD:BTC"),
])
def test_normalise(text: str, want: str) -> None:
    assert normalise(text) == want


@pytest.mark.parametrize("text", ["", "   ", "BTC/", "a b/c:d:e", "BTC$", "x" * 200, "/USDT"])
def test_normalise_rejects_garbage_with_a_short_message(text: str) -> None:
    with pytest.raises(BadSymbolError, match="is not a symbol") as info:
        normalise(text)
    assert len(str(info.value)) < 100


def test_resolve_by_unified_symbol_or_exchange_id() -> None:
    markets = {
        "BTC/USDT:USDT": {"symbol": "BTC/USDT:USDT", "id": "BTCUSDT", "contract": True},
        "XBT/USD:XBT": {"symbol": "XBT/USD:XBT", "id": "XBTUSD", "contract": True},
        "ETH/USDT": {"symbol": "ETH/USDT", "id": "ETHUSDT", "contract": False},
    }
    assert resolve("btc", markets) == "BTC/USDT:USDT"
    assert resolve("xbtusd", markets) == "XBT/USD:XBT"  # by exchange id
    with pytest.raises(BadSymbolError, match="^ETH is not a perpetual on x\\.$"):
        resolve("ETH", markets, "x")  # spot only
    with pytest.raises(BadSymbolError,
                       match=r"^BTC/USD:USD is not a perpetual; did you mean BTC\?$"):
        resolve("BTCUSD", markets)  # same base, other quote


def oi_records(ts: list[int], amount: list[float | None],
               value: list[float | None]) -> list[dict[str, object]]:
    """ccxt open-interest structures as fetch_open_interest_history returns them."""
    return [{"symbol": "BTC/USDT:USDT", "openInterestAmount": a, "openInterestValue": v,
             "timestamp": t, "datetime": None, "info": {}} for t, a, v in zip(ts, amount, value,
                                                                             strict=True)]


def test_bybit_style_coins_are_converted_with_the_candle_close() -> None:
    candle_ts = T0 + TF * np.arange(4)
    close = np.array([100.0, 110.0, 120.0, 130.0])
    # Bybit linear: openInterestAmount in coins, no USD value; snapshots at each candle close.
    bybit = OiHistory.from_ccxt(oi_records([int(t) + TF for t in candle_ts],
                                           [10.0, 11.0, 12.0, 13.0], [None] * 4))
    usd = align_usd(bybit, candle_ts, close, TF, 2 * TF)
    np.testing.assert_allclose(usd, [1000.0, 1210.0, 1440.0, 1690.0])
    # Binance-style USD value wins over amount × close.
    binance = OiHistory.from_ccxt(oi_records([int(t) + TF for t in candle_ts],
                                             [1.0] * 4, [5e3, 6e3, 7e3, 8e3]))
    np.testing.assert_allclose(align_usd(binance, candle_ts, close, TF, 2 * TF),
                               [5e3, 6e3, 7e3, 8e3])


def test_alignment_is_as_of_with_tolerance_and_dedupe() -> None:
    candle_ts = T0 + TF * np.arange(6)
    close = np.full(6, 100.0)
    # Sparse snapshots; later duplicates win; unsorted input.
    hist = OiHistory.from_ccxt(oi_records([T0 + 3 * TF, T0, T0 + 3 * TF], [None] * 3,
                                          [7.0, 5.0, 9.0]))
    assert hist.timestamp.tolist() == [T0, T0 + 3 * TF] and hist.value.tolist() == [5.0, 9.0]
    usd = align_usd(hist, candle_ts, close, TF, 2 * TF)
    # Closes at T0+TF … T0+6TF: as-of T0 → 5 twice, then 9 until it is > 2 TF old.
    np.testing.assert_array_equal(usd, [5.0, 5.0, 9.0, 9.0, 9.0, np.nan])


def test_aggregate_sums_aligned_exchanges_and_reports_each() -> None:
    nan = math.nan
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    b = np.array([nan, nan, 10.0, 10.0, nan, 12.0, 12.0, 12.0, 12.0, 12.0])
    c = np.array([1.0, nan, nan, nan, nan, nan, 1.0, nan, nan, 1.0])
    agg = aggregate({"binanceusdm": a, "bybit": b, "okx": c}, {"bitget": "timed out"},
                    min_coverage=0.8)
    assert agg.sources == ("binanceusdm", "bybit")
    assert agg.usd is not None
    np.testing.assert_array_equal(agg.usd, a + [10, 10, 10, 10, 10, 12, 12, 12, 12, 12])
    assert agg.notes == {
        "bitget": "missing: timed out",
        "binanceusdm": "OI for 10/10 candles (100%)",
        "bybit": "OI for 7/8 candles (88%), none for the first 2",
        "okx": "left out: OI for 3/10 candles (30%, need 80%)",
    }
    none = aggregate({"okx": np.full(3, nan)})
    assert none.usd is None and none.notes["okx"] == "left out: no OI for these candles"
    np.testing.assert_array_equal(fill(np.array([nan, 2.0, nan, 4.0])), [2.0, 2.0, 2.0, 4.0])


@pytest.mark.parametrize(("exc", "ours", "text"), [
    (ccxt.BadSymbol("binanceusdm {\"code\":-1121}"), BadSymbolError, "does not list"),
    (ccxt.RateLimitExceeded("429"), MarketUnavailableError, "rate limited"),
    (ccxt.DDoSProtection("418"), MarketUnavailableError, "IP banned"),
    (ccxt.RequestTimeout("t"), MarketUnavailableError, "timed out"),
    (ccxt.ExchangeNotAvailable("down"), MarketUnavailableError, "network error"),
    (ccxt.BadResponse("x"), MarketUnavailableError, "malformed"),
    (MalformedResponse("x"), MarketUnavailableError, "malformed"),
    (ccxt.PermissionDenied("no"), MarketDataError, "PermissionDenied"),
])
def test_one_place_maps_ccxt_errors(exc: Exception, ours: type, text: str) -> None:
    mapped = map_exception(exc, "fetch")
    assert type(mapped) is ours and text in str(mapped) and str(mapped).startswith("fetch: ")


def test_retry_delay_caps_our_backoff_but_honours_the_servers_retry_after() -> None:
    p = RetryPolicy(attempts=4, base_delay_s=1.0, max_delay_s=3.0)
    assert [p.delay(i, None) for i in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert p.delay(0, 7.0) == 7.0 and p.delay(0, 600.0) == 600.0
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"Retry-After": "soon"}) is None and retry_after_s(None) is None


async def test_with_retry_retries_transient_then_succeeds_and_not_others() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ccxt.RateLimitExceeded("429")
        return "ok"

    fast = RetryPolicy(3, 0.001, 0.001)
    assert await with_retry("x", flaky, fast, lambda: {"Retry-After": "0"}) == "ok"
    assert len(calls) == 3

    async def denied() -> str:
        calls.append(1)
        raise ccxt.AuthenticationError("key")

    with pytest.raises(MarketDataError) as info:
        await with_retry("x", denied, fast)
    assert isinstance(info.value.__cause__, ccxt.AuthenticationError) and len(calls) == 4


def rows(ts: list[int], taker: float = math.nan) -> CandleRows:
    n = len(ts)
    m = np.column_stack([ts, np.full(n, 1.0), np.full(n, 2.0), np.full(n, 0.5), np.full(n, 1.5),
                         np.full(n, 10.0), np.full(n, taker)])
    return CandleRows.from_matrix(m)


def test_cache_round_trip_keys_and_prune(tmp_path: object) -> None:
    cache = MarketCache()
    cache.write("BTC/USDT:USDT", "5m", {"binanceusdm": rows([T0, T0 + TF], taker=4.0)},
                {"binanceusdm": OiHistory.from_rows([(T0, 1.0, None), (T0 + TF, None, 9.0)]),
                 "bybit": OiHistory.from_rows([(T0, 2.0, None)])})
    got = cache.candles("binanceusdm", "BTC/USDT:USDT", "5m", 0)
    assert got.ts.tolist() == [T0, T0 + TF] and got.taker_buy.tolist() == [4.0, 4.0]
    assert len(cache.candles("binanceusdm", "BTC/USDT:USDT", "1h", 0)) == 0
    oi = cache.oi("binanceusdm", "BTC/USDT:USDT", "5m", T0 + 1)
    assert oi.timestamp.tolist() == [T0 + TF] and np.isnan(oi.amount[0]) and oi.value[0] == 9.0
    # Upsert: a re-fetched (completed) candle replaces the forming one; NaN taker → NULL.
    cache.write("BTC/USDT:USDT", "5m", {"binanceusdm": rows([T0 + TF, T0 + 2 * TF])}, {},
                prune_before_ms=T0 + 1)
    got = cache.candles("binanceusdm", "BTC/USDT:USDT", "5m", 0)
    assert got.ts.tolist() == [T0 + TF, T0 + 2 * TF] and bool(np.all(np.isnan(got.taker_buy)))
    assert cache.counts() == {"candles": 2, "open_interest": 1}
    merged = rows([T0, T0 + TF], taker=1.0).merge(rows([T0 + TF]))
    assert merged.ts.tolist() == [T0, T0 + TF] and np.isnan(merged.taker_buy[1])


def test_cache_on_disk_survives_reopen(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "market.db"  # type: ignore[operator]
    MarketCache(path).write("ETH/USDT:USDT", "1h", {"okx": rows([T0])}, {})
    assert len(MarketCache(path).candles("okx", "ETH/USDT:USDT", "1h", 0)) == 1


def test_leverage_tiers_from_ccxt_structures() -> None:
    # Bybit-shaped fetch_market_leverage_tiers output (unsorted on purpose).
    raw = [
        {"tier": 2, "minNotional": 2e6, "maxNotional": 4e6, "maxLeverage": 50,
         "maintenanceMarginRate": 0.01, "currency": "USDT", "info": {}},
        {"tier": 1, "minNotional": 0, "maxNotional": 2e6, "maxLeverage": 100,
         "maintenanceMarginRate": 0.005, "currency": "USDT", "info": {}},
    ]
    table = tiers_from_ccxt(raw)
    assert [t.max_leverage for t in table.tiers] == [100, 50]
    assert table.tiers[1].cum == pytest.approx(2e6 * 0.005)
    with pytest.raises(ValueError):
        tiers_from_ccxt([{**raw[0]}])  # does not start at 0


@pytest.mark.parametrize(("timeframe", "exchange", "oi_tf"), [
    ("5m", "binanceusdm", "5m"), ("1m", "binanceusdm", "5m"), ("15m", "okx", "5m"),
    ("4h", "okx", "1h"), ("1d", "okx", "1d"), ("1h", "bybit", "1h"), ("2h", "bybit", "1h"),
])
def test_oi_timeframe_respects_exchange_limits(timeframe: str, exchange: str, oi_tf: str) -> None:
    assert CcxtSource(timeframe=timeframe)._oi_timeframe(exchange) == oi_tf


async def test_default_exchanges_have_the_rate_limiter_on() -> None:
    src = CcxtSource(exchanges=["binanceusdm", "bybit"])
    ex = src._factory("bybit")
    try:
        assert ex.enableRateLimit is True and ex.timeout == 10_000
    finally:
        await ex.close()
