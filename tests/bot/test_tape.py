"""The liquidation tape: real ccxt.pro (binanceusdm) against loopback fakes of Binance's REST API
and forceOrder websocket stream — parsing to USD, reconnect, de-duplication, burst summaries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bot.errors import MarketDataError
from bot.tape import (
    BINANCE_NOTE,
    Backoff,
    Liquidation,
    MinuteTotals,
    TapeSource,
    binance_ws_factory,
    parse_liquidation,
    summarise,
)
from tests.bot.fake_binance import FakeBinance
from tests.bot.fake_binance_ws import FakeBinanceWs, force_order

SYM = "BTC/USDT:USDT"
T0 = 1_764_000_000_000
FAST = Backoff(base_s=0.05, max_s=0.2)


@pytest.fixture
async def rest() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def ws() -> AsyncIterator[FakeBinanceWs]:
    async with FakeBinanceWs() as server:
        yield server


async def until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``cond`` every 10 ms until true (fails the test after ``timeout_s``)."""
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout_s)


def tape(rest: FakeBinance, ws: FakeBinanceWs, got: list[Liquidation]) -> TapeSource:
    return TapeSource([SYM], ws_factory=binance_ws_factory(ws.url, rest.url, timeout_ms=1000),
                      on_event=got.append, backoff=FAST)


async def test_events_parsed_to_usd_with_position_sides(rest: FakeBinance,
                                                        ws: FakeBinanceWs) -> None:
    got: list[Liquidation] = []
    async with tape(rest, ws, got) as t:
        await ws.wait_subscribed(1)
        assert ws.subscriptions == [["btcusdt@forceOrder"]]
        await ws.push(force_order("BTCUSDT", "SELL", 50_000.0, 0.5, T0),
                      force_order("BTCUSDT", "BUY", 51_000.0, 2.0, T0 + 1000),
                      force_order("ETHUSDT", "SELL", 2_500.0, 10.0, T0 + 1500))  # not watched
        await until(lambda: len(got) == 2)
    long, short = got
    # A SELL forced order closes a long; a BUY forced order closes a short.
    assert (long.side, long.price, long.notional_usd, long.timestamp) == (
        "long", 50_000.0, pytest.approx(25_000.0), T0)
    assert (short.side, short.notional_usd, short.symbol) == (
        "short", pytest.approx(102_000.0), SYM)
    assert t.totals.total(SYM) == {"long": pytest.approx(25_000.0),
                                   "short": pytest.approx(102_000.0)}
    assert t.status["binanceusdm"].note == BINANCE_NOTE
    assert "undercounts" in BINANCE_NOTE


async def test_reconnects_after_drop_without_duplicates(rest: FakeBinance,
                                                        ws: FakeBinanceWs) -> None:
    got: list[Liquidation] = []
    first = force_order("BTCUSDT", "SELL", 50_000.0, 0.5, T0)
    async with tape(rest, ws, got) as t:
        await ws.wait_subscribed(1)
        await ws.push(first)
        await until(lambda: len(got) == 1)
        # After the reconnect the fake repeats the last event before a new one.
        ws.on_subscribe = [first]
        await ws.drop()
        await ws.wait_subscribed(2)
        await ws.push(force_order("BTCUSDT", "SELL", 50_000.0, 0.5, T0 + 1000))
        await until(lambda: len(got) == 2)
        await asyncio.sleep(0.1)  # a late duplicate would show up here
        status = t.status["binanceusdm"]
    assert ws.connections == 2
    assert [e.timestamp for e in got] == [T0, T0 + 1000]
    assert status.reconnects >= 1 and status.duplicates == 1 and status.events == 2
    assert status.last_error is not None and "network error" in status.last_error


async def test_burst_of_500_in_one_second_is_one_summary(rest: FakeBinance,
                                                          ws: FakeBinanceWs) -> None:
    got: list[Liquidation] = []
    burst = [force_order("BTCUSDT", "SELL" if i % 4 else "BUY", 50_000.0 - i, 0.1, T0 + 2 * i)
             for i in range(500)]
    async with tape(rest, ws, got) as t:
        await ws.wait_subscribed(1)
        await ws.push(*burst)
        await until(lambda: len(got) == 500)
    assert len({e.key for e in got}) == 500
    minute = T0 // 60_000 * 60_000
    totals = t.totals.minutes(SYM)
    assert sum(v["long"] + v["short"] for v in totals.values()) == pytest.approx(
        sum(e.notional_usd for e in got))
    assert totals[minute]["short"] == pytest.approx(sum(
        e.notional_usd for e in got if e.side == "short" and e.timestamp < minute + 60_000))
    messages = summarise(got, window_s=60)
    assert len(messages) == 1
    assert messages[0].startswith("🔥 500 BTC liquidations in 1 s:")
    assert "longs" in messages[0] and "shorts" in messages[0]


def test_summarise_keeps_single_events_and_splits_windows() -> None:
    def ev(t: int, side: str = "long") -> Liquidation:
        return Liquidation("binanceusdm", t, SYM, side, 91_234.0, 25.0, 2_280_850.0)  # type: ignore[arg-type]
    assert summarise([ev(T0)], 60) == ["🔥 $2.3M BTC long liquidated at 91,234"]
    texts = summarise([ev(T0), ev(T0 + 30_000, "short"), ev(T0 + 61_000)], 60)
    assert len(texts) == 2 and texts[0].startswith("🔥 2 BTC liquidations in 30 s")
    assert summarise([], 60) == []


def test_parse_rejects_unusable_and_handles_inverse() -> None:
    base = {"symbol": SYM, "side": "sell", "price": 50_000.0, "contracts": 2.0,
            "timestamp": T0}
    assert parse_liquidation("x", {**base, "side": None}) is None
    assert parse_liquidation("x", {**base, "price": 0}) is None
    assert parse_liquidation("x", {**base, "contracts": "n/a"}) is None
    inv = parse_liquidation("x", {**base, "side": "buy"}, {"inverse": True, "contractSize": 100})
    assert inv is not None and inv.side == "short" and inv.notional_usd == pytest.approx(200.0)


def test_minute_totals_forget_old_minutes() -> None:
    totals = MinuteTotals(keep_minutes=2)
    for m in range(5):
        totals.add(Liquidation("b", T0 + m * 60_000, SYM, "long", 1.0, 1.0, 10.0))
    assert len(totals.minutes(SYM)) == 2


async def test_unsupported_exchange_ends_with_market_data_error(rest: FakeBinance,
                                                                ws: FakeBinanceWs) -> None:
    def factory(name: str) -> object:
        ex = binance_ws_factory(ws.url, rest.url, timeout_ms=1000)(name)
        ex.has["watchLiquidationsForSymbols"] = False
        return ex
    t = TapeSource([SYM], ws_factory=factory, backoff=FAST)
    await t.start()
    await until(lambda: t.status["binanceusdm"].error is not None)
    await t.stop()
    assert isinstance(t.status["binanceusdm"].error, MarketDataError)
