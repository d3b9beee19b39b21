"""Request-weight budgeting against the loopback Binance fake enforcing Binance's rules:
weight per window (X-MBX-USED-WEIGHT-1M), 429 over the limit, 418 ban for a request sent while
told to wait. Windows are 4 s here instead of 60 s so the test is quick."""

from __future__ import annotations

import asyncio
import time

from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.market.weight import WeightBudget, klines_weight
from tests.bot.fake_binance import FakeBinance

NAMES = [f"C{i:02d}USDT" for i in range(10)]
RETRY = RetryPolicy(attempts=6, base_delay_s=0.05, max_delay_s=0.2)
WINDOW_S, LIMIT = 4.0, 60  # 4 s: a request sent late in a window, answered in the next, fits


def _source(fake: FakeBinance) -> CcxtSource:
    # rateLimit 1 ms: ccxt's own pacing is no help here, the weight budget has to hold.
    return CcxtSource(exchanges=["binanceusdm"], lookback_days=4, retry=RETRY,
                      exchange_factory=binance_factory(fake.url, timeout_ms=5000, rateLimit=1),
                      clock=lambda: fake.now_ms, weight_window_s=WINDOW_S)


async def _fetch_all(source: CcxtSource) -> int:
    snaps = await asyncio.gather(*(source.fetch(f"{n[:-4]}/USDT:USDT") for n in NAMES))
    return sum(len(s.candles) for s in snaps)


async def test_weight_stays_under_the_budget_with_headroom_and_no_429() -> None:
    async with FakeBinance() as fake:
        fake.add_perpetuals(NAMES)
        fake.weight_limit, fake.weight_window_s, fake.ban_s = LIMIT, WINDOW_S, 3.0
        source = _source(fake)
        source.budgets["binanceusdm"] = WeightBudget(LIMIT, 0.7, WINDOW_S)
        try:
            assert await _fetch_all(source) == 10 * (4 * 288 + 1)
        finally:
            await source.close()
        assert fake.limited == 0 and fake.bans == 0
        assert fake.peak_weight <= 0.7 * LIMIT  # ≥ 30 % headroom in every window
        # The same load without the budget runs into the fake's limit: the check can fail.
        fake.add_perpetuals([])
        bare = _source(fake)
        bare.budgets.clear()
        try:
            await asyncio.sleep(WINDOW_S)
            await _fetch_all(bare)
        except Exception:
            pass
        finally:
            await bare.close()
        assert fake.limited > 0


async def test_a_429_pauses_every_call_so_none_earns_a_418_ban() -> None:
    window = 4.0
    async with FakeBinance() as fake:
        fake.add_perpetuals(NAMES)
        fake.weight_limit, fake.weight_window_s, fake.ban_s = LIMIT, window, 3.0
        source = _source(fake)
        source.budgets["binanceusdm"] = WeightBudget(LIMIT, 0.9, window)
        try:
            await source.normalise("C00")  # markets loaded
            while time.time() % window > 1.0:  # at least 3 s of the window left
                await asyncio.sleep(0.05)
            fake.used = LIMIT  # another process on the IP used this window's weight
            fake._window = int(time.time() // window)
            first = asyncio.create_task(source.fetch("C00/USDT:USDT"))
            await asyncio.sleep(0.6)
            assert fake.limited >= 1  # told to wait…
            # …so a call made meanwhile waits for the window's end instead of being sent.
            assert len((await source.fetch("C01/USDT:USDT")).candles) == 4 * 288 + 1
            await first
        finally:
            await source.close()
        assert fake.bans == 0


def test_klines_weight_follows_binance() -> None:
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1500)] == [1, 1, 2, 2, 5, 5, 10]
