"""``liqbot record`` against the loopback Binance REST and forceOrder websocket fakes: the files
it writes load with the replay CSV loader and the backtest's liquidations loader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bot.backtest.liquidations import load_liquidations
from bot.errors import MarketDataError
from bot.market.ccxt_source import binance_factory
from bot.market.errors import RetryPolicy
from bot.market.replay import load_csv
from bot.tape.record import record, write_candles_daily
from bot.tape.source import Backoff, binance_ws_factory
from tests.bot.fake_binance import FakeBinance
from tests.bot.fake_binance_ws import FakeBinanceWs, force_order

DAY_MS = 86_400_000
TF = 300_000


async def test_record_writes_daily_candles_and_liquidations(tmp_path: Path) -> None:
    async with FakeBinance() as rest, FakeBinanceWs() as ws:
        now = rest.now_ms
        midnight = now // DAY_MS * DAY_MS
        stop = asyncio.Event()
        task = asyncio.create_task(record(
            ["BTC"], tmp_path, minutes=5, stop=stop, clock=lambda: now,
            exchange_factory=binance_factory(rest.url, timeout_ms=1000, rateLimit=2),
            ws_factory=binance_ws_factory(ws.url, rest.url, timeout_ms=1000),
            retry=RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05),
            backoff=Backoff(0.05, 0.2)))
        await ws.wait_subscribed(1)
        await ws.push(force_order("BTCUSDT", "SELL", 50_000.0, 0.5, midnight - 500),
                      force_order("BTCUSDT", "BUY", 51_000.0, 2.0, midnight + 1000),
                      force_order("BTCUSDT", "SELL", 49_000.0, 1.0, now - 5000))

        def rows() -> int:
            return sum(len(p.read_text().splitlines()) - 1
                       for p in tmp_path.glob("*_liquidations_*.csv"))
        async def wait() -> None:
            while rows() < 3:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait(), 10)
        stop.set()
        result = await asyncio.wait_for(task, 20)

    day0, day1 = (f"2025-11-{d}" for d in (23, 24))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"BTCUSDT_binanceusdm_5m_{day0}.csv", f"BTCUSDT_binanceusdm_5m_{day1}.csv",
                     f"BTCUSDT_binanceusdm_liquidations_{day0}.csv",
                     f"BTCUSDT_binanceusdm_liquidations_{day1}.csv"]
    assert result.liquidations == {"BTC/USDT:USDT": 3}
    assert any("undercounts" in n for n in result.notes)

    liq0 = load_liquidations(tmp_path / names[2])
    liq1 = load_liquidations(tmp_path / names[3])
    assert liq0.timestamp.tolist() == [midnight - 500] and not liq0.is_short[0]
    assert liq1.is_short.tolist() == [True, False]
    assert liq1.notional.tolist() == pytest.approx([102_000.0, 49_000.0])

    first, second = load_csv(tmp_path / names[0]), load_csv(tmp_path / names[1])
    assert first.open_interest_usd is not None and first.taker_buy_volume is not None
    assert second.open_interest_usd is not None and second.taker_buy_volume is not None
    assert int(first.timestamp[-1]) + TF == midnight == int(second.timestamp[0])
    assert int(second.timestamp[-1]) + TF <= now  # the forming candle is not written
    assert bool(np.all(np.diff(second.timestamp) == TF))
    assert result.candles["BTC/USDT:USDT"] == len(first) + len(second)


def test_candle_files_merge_with_an_earlier_run(tmp_path: Path) -> None:
    cols = ["timestamp", "open", "high", "low", "close", "volume"]
    t0 = 1_764_000_000_000 // DAY_MS * DAY_MS

    def run(ts: list[int], close: float) -> None:
        n = len(ts)
        write_candles_daily({"timestamp": ts, **{c: [close] * n for c in cols[1:]}},
                            tmp_path, "X")
    run([t0, t0 + TF], 1.0)
    run([t0 + TF, t0 + 2 * TF], 2.0)
    (path,) = tmp_path.iterdir()
    c = load_csv(path)
    assert c.timestamp.tolist() == [t0, t0 + TF, t0 + 2 * TF]
    assert c.close.tolist() == [1.0, 2.0, 2.0]


async def test_record_stops_early_when_the_feed_gives_up(tmp_path: Path) -> None:
    async with FakeBinance() as rest, FakeBinanceWs() as ws:
        def no_stream(name: str) -> object:
            ex = binance_ws_factory(ws.url, rest.url, timeout_ms=1000)(name)
            ex.has["watchLiquidationsForSymbols"] = ex.has["watchLiquidations"] = False
            return ex
        with pytest.raises(MarketDataError, match="feed stopped"):
            await asyncio.wait_for(record(
                ["BTC"], tmp_path, minutes=5, clock=lambda: rest.now_ms, ws_factory=no_stream,
                exchange_factory=binance_factory(rest.url, timeout_ms=1000, rateLimit=2)), 20)
    # The candles are still written; there were no liquidations.
    assert len(list(tmp_path.glob("BTCUSDT_binanceusdm_5m_*.csv"))) == 2
    assert not list(tmp_path.glob("*_liquidations_*"))
