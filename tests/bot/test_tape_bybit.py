"""The liquidation tape on Bybit: real ccxt.pro bybit against a loopback fake of Bybit's v5
public linear websocket (allLiquidation topics) and its instruments-info endpoint — position
sides, one stream per symbol on one connection, reconnect, de-duplication, a burst, and a
burst through the store and outbox to one chat message."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import ccxt.pro
import pytest

from bot.config import parse_config
from bot.console import ConsoleNotifier
from bot.dispatcher import Dispatcher
from bot.store import Store
from bot.tape import Liquidation
from bot.tape.feed import GRACE_MS, LiveFeed, TapeDesk
from bot.tape.source import TapeSource, bybit_ws_factory
from bot.wiring import make_tape
from tests.bot.fake_bybit_ws import FakeBybitWs, all_liquidation
from tests.bot.test_tape import FAST, T0, until  # the Binance tape tests' time and polling

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
async def ws() -> AsyncIterator[FakeBybitWs]:
    async with FakeBybitWs() as server:
        yield server


def tape(ws: FakeBybitWs, symbols: list[str], got: list[Liquidation]) -> TapeSource:
    return TapeSource(symbols, ["bybit"], bybit_ws_factory(ws.url, ws.rest_url, timeout_ms=1000),
                      on_event=got.append, backoff=FAST)


async def test_events_parsed_to_usd_with_position_sides(ws: FakeBybitWs) -> None:
    got: list[Liquidation] = []
    async with tape(ws, [BTC], got) as t:
        await ws.wait_subscribed(1)
        assert ws.subscriptions == [["allLiquidation.BTCUSDT"]]
        # Bybit's S is the liquidated position's side: Buy = a long was liquidated.
        await ws.push(all_liquidation("BTCUSDT", ("Buy", 50_000.0, 0.5, T0),
                                      ("Sell", 51_000.0, 2.0, T0 + 1000)),
                      all_liquidation("ETHUSDT", ("Buy", 2_500.0, 10.0, T0 + 1500)))  # unwatched
        await until(lambda: len(got) == 2)
    long, short = got
    assert (long.side, long.price, long.notional_usd, long.timestamp, long.exchange) == (
        "long", 50_000.0, pytest.approx(25_000.0), T0, "bybit")
    assert (short.side, short.notional_usd, short.symbol) == (
        "short", pytest.approx(102_000.0), BTC)
    assert t.totals.total(BTC) == {"long": pytest.approx(25_000.0),
                                   "short": pytest.approx(102_000.0)}
    assert t.status["bybit"].note is None  # Binance's one-per-second caveat is Binance's
    # Markets come from the linear instruments only (no spot, inverse, option or coin calls).
    assert {q["category"] for q in ws.rest_requests} == {"linear"}


async def test_two_symbols_are_two_streams_on_one_connection(ws: FakeBybitWs) -> None:
    # ccxt.pro bybit watches one symbol per call: the tape runs one task per symbol.
    assert ccxt.pro.bybit().has["watchLiquidationsForSymbols"] is False
    got: list[Liquidation] = []
    async with tape(ws, [BTC, ETH], got) as t:
        await ws.wait_subscribed(2)
        assert sorted(ws.subscriptions) == [["allLiquidation.BTCUSDT"],
                                            ["allLiquidation.ETHUSDT"]]
        assert len(t.tasks) == 2 and list(t.status) == ["bybit"]
        await ws.push(all_liquidation("ETHUSDT", ("Sell", 2_500.0, 4.0, T0)),
                      all_liquidation("BTCUSDT", ("Buy", 50_000.0, 1.0, T0 + 10)),
                      all_liquidation("ETHUSDT", ("Buy", 2_490.0, 8.0, T0 + 20)))
        await until(lambda: t.status["bybit"].events == 3)
    assert ws.connections == 1
    assert [(e.symbol, e.side, e.notional_usd) for e in got] == [
        (ETH, "short", pytest.approx(10_000.0)), (BTC, "long", pytest.approx(50_000.0)),
        (ETH, "long", pytest.approx(19_920.0))]


async def test_reconnects_after_drop_without_duplicates(ws: FakeBybitWs) -> None:
    got: list[Liquidation] = []
    first = all_liquidation("BTCUSDT", ("Buy", 50_000.0, 0.5, T0))
    async with tape(ws, [BTC, ETH], got) as t:
        await ws.wait_subscribed(2)
        await ws.push(first)
        await until(lambda: len(got) == 1)
        # After the reconnect the fake repeats the last BTC event before a new one.
        ws.on_subscribe = [first]
        await ws.drop()
        await ws.wait_subscribed(4)
        await ws.push(all_liquidation("BTCUSDT", ("Buy", 50_000.0, 0.5, T0 + 1000)))
        await until(lambda: len(got) == 2)
        await asyncio.sleep(0.1)  # a late duplicate would show up here
        status = t.status["bybit"]
    assert ws.connections == 2
    assert [e.timestamp for e in got] == [T0, T0 + 1000]
    assert status.duplicates == 1 and status.events == 2
    assert status.reconnects == 2  # both symbols' streams restarted
    assert status.last_error is not None and "network error" in status.last_error


async def test_burst_of_200_all_arrive_once(ws: FakeBybitWs) -> None:
    """Bybit batches a symbol's liquidations into one message; ccxt hands back one event
    per await, the rest of a burst only reaches the tape through ccxt's cache."""
    got: list[Liquidation] = []
    messages = [all_liquidation(sym, *[("Buy" if i % 3 else "Sell", price - i, 1.0,
                                        T0 + 100 * m + i) for i in range(10)])
                for m in range(10) for sym, price in (("BTCUSDT", 50_000.0), ("ETHUSDT", 2_500.0))]
    async with tape(ws, [BTC, ETH], got) as t:
        await ws.wait_subscribed(2)
        await ws.push(*messages)
        await until(lambda: t.status["bybit"].events == 200)
        await asyncio.sleep(0.1)  # nothing taken twice shows up here
    assert len(got) == 200 and len({e.key for e in got}) == 200
    assert t.status["bybit"].duplicates == 0
    sent = [(f"{d['s'][:3]}/USDT:USDT", d["T"]) for m in messages for d in m["data"]]
    assert [(e.symbol, e.timestamp) for e in got] == sent  # arrival order
    assert sum(e.notional_usd for e in got if e.symbol == ETH) == pytest.approx(
        10 * sum(2_500.0 - i for i in range(10)))


async def test_burst_is_one_alert_message(ws: FakeBybitWs, tmp_path) -> None:
    store = Store(tmp_path / "bot.db")
    chat = store.upsert_chat("console", "c1")
    store.subscribe_liqs(chat.id, BTC, min_usd=1e6, sum_usd=10e6, now=0)
    source = TapeSource([BTC], ["bybit"], bybit_ws_factory(ws.url, ws.rest_url, timeout_ms=1000),
                        backoff=FAST)
    desk = TapeDesk(LiveFeed(source), store, [BTC], window_ms=60_000, keep_ms=86_400_000,
                    clock=lambda: 1)
    # $60k each: none reaches $1M, together ($12M) they pass the $10M window total.
    events = [("Buy" if i % 4 else "Sell", 60_000.0 - i, 1.0, T0 + 2 * i) for i in range(200)]
    assert desk.flush(T0 - 10_000) == 0  # first flush: nothing before it is news
    async with source:
        await ws.wait_subscribed(1)
        await ws.push(*[all_liquidation("BTCUSDT", *events[k:k + 50]) for k in range(0, 200, 50)])
        await until(lambda: source.status["bybit"].events == 200)
        assert desk.flush(T0 + 30_000) == 0  # the window is still open
        assert desk.flush(T0 + 60_000 + GRACE_MS) == 1
    assert len(store.liquidations(BTC, 0)) == 200
    notifier = ConsoleNotifier(out=io.StringIO())
    stats = await Dispatcher(store, {"console": notifier}).run_once()
    assert stats.sent == 1 and len(notifier.sent) == 1
    # 150 "Buy" (longs liquidated) near $60k, 50 "Sell" (shorts).
    assert notifier.sent[0].text.startswith(
        f"🔥 {BTC} 200 liquidations on bybit: $9.0M of longs, $3.0M of shorts between "
        "59,801 and 60,000")


async def test_pings_are_answered_and_the_connection_kept(ws: FakeBybitWs) -> None:
    def factory(name: str) -> object:
        ex = bybit_ws_factory(ws.url, ws.rest_url, timeout_ms=1000)(name)
        ex.streaming["keepAlive"] = 100  # ms; two missed pongs would drop the connection
        return ex
    got: list[Liquidation] = []
    async with TapeSource([BTC], ["bybit"], factory, on_event=got.append, backoff=FAST) as t:
        await ws.wait_subscribed(1)
        await until(lambda: ws.pings >= 5)
        await ws.push(all_liquidation("BTCUSDT", ("Sell", 50_000.0, 1.0, T0)))
        await until(lambda: len(got) == 1)
    assert ws.connections == 1 and t.status["bybit"].reconnects == 0


async def test_config_urls_point_the_bybit_tape_at_the_fake(ws: FakeBybitWs) -> None:
    cfg = parse_config(f"""
[source]
kind = "live"
[tape]
enabled = true
exchanges = ["bybit"]
ws_url = "{ws.url}"
rest_url = "{ws.rest_url}"
[console]
enabled = false
""")
    desk = make_tape(cfg, Store(memory=True), lambda: 0)
    assert desk is not None
    await desk.feed.start()
    try:
        await ws.wait_subscribed(1)
        await ws.push(all_liquidation("BTCUSDT", ("Buy", 50_000.0, 2.0, T0)))
        await until(lambda: desk.ingest(T0 + 1) == 1)
    finally:
        await desk.feed.stop()
    assert [e.side for e in desk.recent(BTC, 0)] == ["long"]
    assert desk.feed.health()[0].startswith("bybit: ok, 1 events")
