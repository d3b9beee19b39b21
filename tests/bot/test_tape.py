"""The liquidation tape: real ccxt.pro (binanceusdm) against loopback fakes of Binance's REST API
and forceOrder websocket stream — parsing to USD, reconnect, de-duplication, and a burst through
the store and outbox to one chat message (no duplicate after a reconnect or a restart)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import pytest

from bot.config import parse_config
from bot.console import ConsoleNotifier
from bot.dispatcher import Dispatcher
from bot.errors import MarketDataError
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.service import Service
from bot.store import Store, now_ms
from bot.tape import BINANCE_NOTE, Liquidation, MinuteTotals, parse_liquidation
from bot.tape.feed import GRACE_MS, LiveFeed, TapeDesk
from bot.tape.source import Backoff, TapeSource, binance_ws_factory
from bot.wiring import make_tape
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


async def test_burst_of_500_in_one_second_is_one_alert_message(rest: FakeBinance,
                                                                ws: FakeBinanceWs,
                                                                tmp_path) -> None:
    store = Store(tmp_path / "bot.db")
    chat = store.upsert_chat("console", "c1")
    store.subscribe_liqs(chat.id, SYM, min_usd=1e6, sum_usd=10e6, now=0)
    source = TapeSource([SYM], ws_factory=binance_ws_factory(ws.url, rest.url, timeout_ms=1000),
                        backoff=FAST)
    desk = TapeDesk(LiveFeed(source), store, [SYM], window_ms=60_000, keep_ms=86_400_000,
                    clock=lambda: 1)
    # $50k each: none reaches $1M, together they pass the $10M window total.
    burst = [force_order("BTCUSDT", "SELL" if i % 4 else "BUY", 50_000.0 - i, 1.0, T0 + 2 * i)
             for i in range(500)]
    assert desk.flush(T0 - 10_000) == 0  # first flush: nothing before it is news
    async with source:
        await ws.wait_subscribed(1)
        await ws.push(*burst)
        await until(lambda: source.status["binanceusdm"].events == 500)
        assert desk.flush(T0 + 30_000) == 0  # the window is still open
        assert desk.flush(T0 + 60_000 + GRACE_MS) == 1
        # A reconnect repeats the burst's last event; it must not alert again.
        ws.on_subscribe = [burst[-1]]
        await ws.drop()
        await ws.wait_subscribed(2)
        await ws.push(force_order("BTCUSDT", "SELL", 49_000.0, 1.0, T0 + 61_000))
        await until(lambda: source.status["binanceusdm"].events == 501)
        assert source.status["binanceusdm"].duplicates == 1
        assert desk.flush(T0 + 130_000) == 0  # $49k alone: below both thresholds
    minute = T0 // 60_000 * 60_000
    totals = source.totals.minutes(SYM)
    assert totals[minute]["short"] == pytest.approx(125 * 50_000.0, rel=0.01)
    assert len(store.liquidations(SYM, 0)) == 501
    # A restarted process (new desk, same store file) alerts nothing twice.
    again = TapeDesk(LiveFeed(TapeSource([SYM])), store, [SYM], window_ms=60_000,
                     keep_ms=86_400_000, clock=lambda: 2)
    assert again.flush(T0 + 130_000) == 0
    notifier = ConsoleNotifier(out=io.StringIO())
    stats = await Dispatcher(store, {"console": notifier}).run_once()
    assert stats.sent == 1 and len(notifier.sent) == 1
    text = notifier.sent[0].text
    assert text.startswith(f"🔥 {SYM} 500 liquidations on binanceusdm: $18.7M of longs, "
                           "$6.2M of shorts between 49,501 and 50,000")
    assert "exchange data" in text


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
        ex.has["watchLiquidationsForSymbols"] = ex.has["watchLiquidations"] = False
        return ex
    t = TapeSource([SYM], ws_factory=factory, backoff=FAST)
    await t.start()
    await until(lambda: t.status["binanceusdm"].error is not None)
    await t.stop()
    assert isinstance(t.status["binanceusdm"].error, MarketDataError)


async def test_live_service_runs_the_tape_from_its_config(rest: FakeBinance,
                                                          ws: FakeBinanceWs) -> None:
    """`[tape]` of a live config → ccxt.pro feed → the scheduler's tape job → outbox →
    dispatch job → one chat message, in real time (1 s windows)."""
    cfg = parse_config(f"""
[source]
kind = "live"
lookback_days = 1.0
[tape]
enabled = true
window_seconds = 1
flush_seconds = 0.2
ws_url = "{ws.url}"
rest_url = "{rest.url}"
[console]
enabled = false
""")
    store = Store(memory=True)
    notifier = ConsoleNotifier(io.StringIO())
    source = CcxtSource(exchange_factory=binance_factory(rest.url, timeout_ms=1000),
                        lookback_days=1, clock=lambda: rest.now_ms)
    service = Service(cfg, source, store, {"console": notifier})
    service.tape = make_tape(cfg, store, service.dispatcher.clock)
    chat = store.upsert_chat("console", "c1")
    store.subscribe_liqs(chat.id, SYM, min_usd=1e6, sum_usd=1e7, now=0)
    await service.start()
    try:
        await ws.wait_subscribed(1)
        await until(lambda: store.tape_flushed(SYM) is not None)
        await ws.push(force_order("BTCUSDT", "SELL", 50_000.0, 40.0, now_ms()))  # $2M
        await until(lambda: len(notifier.sent) == 1)
    finally:
        await service.stop()
        await source.close()
    assert notifier.sent[0].text.startswith(
        f"🔥 {SYM} $2.0M long liquidated at 50,000 on binanceusdm")
    assert len(store.liquidations(SYM, 0)) == 1
