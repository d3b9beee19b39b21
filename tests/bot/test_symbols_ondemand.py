"""Every listed perpetual on request: real ccxt (CcxtSource) against the loopback Binance fake,
the real Service and command core. Untracked symbols are estimated on the first /levels and
kept (LRU, TTL); subscribing makes a symbol tracked until a grace period after the last chat
leaves; unknown symbols get the closest listed ones."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np
import pytest

from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.commands.top_cmds import top_rows
from bot.config import BotSection, Config, ConsoleSection, LimitsSection, SourceSection
from bot.console import ConsoleNotifier
from bot.estimates import Estimate
from bot.market.ccxt_source import MARKETS_TTL_S, CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from bot.tracking import even_phases, free_phase, plan_tracked
from estimator import Candles, Cluster
from tests.bot.fake_binance import FakeBinance
from tests.bot.helpers import private

BTC, SOL, ETH = "BTC/USDT:USDT", "SOL/USDT:USDT", "ETH/USDT:USDT"
KLINES = "/fapi/v1/klines"
FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)


@dataclass
class Rig:
    fake: FakeBinance
    service: Service
    core: CommandCore
    store: Store
    now: list[float]

    async def ask(self, text: str, user: str = "u1") -> str:
        reply = await self.core.handle(text, private(user))
        assert reply is not None
        return ("ERROR " if reply.error else "") + reply.text


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with FakeBinance() as fake:
        make = binance_factory(fake.url, timeout_ms=2000, rateLimit=2)
        source = CcxtSource(exchanges=["binanceusdm"], lookback_days=1, retry=FAST,
                            exchange_factory=make, clock=lambda: fake.now_ms)
        store = Store(memory=True)
        cfg = replace(Config(), bot=replace(Config().bot, symbols=(BTC,)),
                      source=SourceSection(kind="live", lookback_days=1.0),
                      limits=LimitsSection(on_demand_symbols=1, tracked_symbols=2),
                      console=ConsoleSection(enabled=False))
        assert isinstance(cfg.bot, BotSection)
        service = Service(cfg, source, store, {"console": ConsoleNotifier(io.StringIO())},
                          clock_ms=lambda: fake.now_ms)
        now = [1000.0]
        assert service.ondemand is not None
        service.ondemand._clock = lambda: now[0]
        core = CommandCore(cfg, service.board, source, store, ChartCache(),
                           ondemand=service.ondemand)
        await service.recompute(BTC)
        try:
            yield Rig(fake, service, core, store, now)
        finally:
            await source.close()
            store.close()


async def test_untracked_symbol_is_fetched_on_first_request_then_reused(rig: Rig) -> None:
    before = rig.fake.count(KLINES)
    text = await rig.ask("/levels SOL")
    assert text.startswith("SOL/USDT:USDT · price") and "estimate from a model" in text
    fetched = rig.fake.count(KLINES)
    assert fetched > before
    assert "ERROR" not in await rig.ask("/heatmap SOL 12h")
    assert "ERROR" not in await rig.ask("/ifbreak SOL 100")
    assert rig.fake.count(KLINES) == fetched  # within the TTL: no refetch
    rig.now[0] += rig.service.cfg.schedule.recompute_seconds  # TTL = the recompute interval
    await rig.ask("/levels SOL")
    assert rig.fake.count(KLINES) > fetched
    assert SOL not in rig.service.board.symbols  # asked for, not tracked


async def test_on_demand_symbols_are_kept_lru_bounded(rig: Rig) -> None:
    await rig.ask("/levels SOL")
    assert rig.service.ondemand is not None and rig.service.ondemand.symbols == (SOL,)
    await rig.ask("/levels ETH")  # capacity 1: SOL (least recently used) is dropped
    assert rig.service.ondemand.symbols == (ETH,)
    n = rig.fake.count(KLINES)
    await rig.ask("/levels SOL")
    assert rig.fake.count(KLINES) > n  # fetched again


async def test_unknown_symbol_gets_closest_listed_perpetuals(rig: Rig) -> None:
    text = await rig.ask("/levels BTCX")
    assert text.startswith("ERROR BTCX is not a perpetual on binanceusdm; did you mean BTC?")
    text = await rig.ask("/levels SOLL")
    assert "SOLL is not a perpetual on binanceusdm; did you mean SOL?" in text
    assert "did you mean" not in await rig.ask("/levels QQQQQQ")
    # A dated future is listed but not a perpetual.
    assert "is not a perpetual" in await rig.ask("/levels BTCUSDT_261225")


async def test_subscribing_tracks_a_symbol_until_a_grace_after_the_last_chat(rig: Rig) -> None:
    await rig.ask("/levels SOL")
    n = rig.fake.count(KLINES)
    assert "Subscribed" in await rig.ask("/subscribe SOL 1m 1")
    assert await rig.service.sync_tracked(now_s=0.0) == (BTC, SOL)
    assert rig.fake.count(KLINES) == n  # tracked from the on-demand estimate, no refetch
    assert rig.service.board.get(SOL) is not None
    assert "Subscribed" in await rig.ask("/subscribe SOL 1m 1", user="u2")  # same chat
    # The cap: BTC + SOL = 2 tracked symbols.
    text = await rig.ask("/subscribe ETH 1m 1")
    assert text.startswith("ERROR This bot already tracks 2 symbols") and "tracked_symbols" in text
    assert "ERROR" not in await rig.ask("/unsubscribe SOL")
    grace = rig.service.track_grace_s
    assert grace == 15 * 60  # the README says 15 minutes
    assert await rig.service.sync_tracked(now_s=10.0) == (BTC, SOL)  # within the grace
    assert await rig.service.sync_tracked(now_s=10.0 + grace - 1) == (BTC, SOL)
    assert await rig.service.sync_tracked(now_s=10.0 + grace) == (BTC,)
    assert "ERROR" not in await rig.ask("/subscribe ETH 1m 1")  # room again
    assert await rig.service.sync_tracked(now_s=20.0 + grace) == (BTC, ETH)
    assert rig.service.board.get(ETH) is not None  # fetched when it became tracked


async def test_symbols_lists_tracked_and_says_any_perpetual_can_be_asked(rig: Rig) -> None:
    text = await rig.ask("/symbols")
    assert "Tracked symbols: BTC/USDT:USDT" in text
    assert "Any perpetual listed on binanceusdm can be asked for" in text


def test_plan_keeps_configured_first_and_caps_subscribed() -> None:
    plan = plan_tracked((), ("A",), ["C", "B", "D"], cap=3, leaving={}, now_s=0)
    assert plan.tracked == ("A", "B", "C") and plan.added == ("A", "B", "C")
    plan = plan_tracked(plan.tracked, ("A",), ["D"], cap=3, leaving={}, now_s=0)
    assert plan.tracked == ("A", "B", "C") and plan.leaving == {"B": 0, "C": 0}
    plan = plan_tracked(plan.tracked, ("A",), ["D"], cap=3, leaving=plan.leaving, now_s=1e9)
    assert plan.tracked == ("A", "D") and plan.dropped == ("B", "C")


def test_recomputes_are_spread_over_the_interval() -> None:
    phases = even_phases(200, 300.0)
    assert phases[0] == 0 and phases[1] == 1.5 and max(phases) < 300
    assert free_phase([0.0, 100.0], 300.0) == 200.0  # middle of the 100..300 gap
    assert free_phase([], 300.0) == 0.0


def _variant(est: Estimate, symbol: str, oi_usd: float, *clusters: Cluster) -> Estimate:
    """``est`` as another symbol with a flat open interest and the given clusters."""
    c = est.snapshot.candles
    candles = Candles(c.timestamp, c.open, c.high, c.low, c.close, c.volume,
                      np.full(len(c), oi_usd), c.taker_buy_volume)
    return replace(est, symbol=symbol, snapshot=replace(est.snapshot, symbol=symbol,
                                                        candles=candles), clusters=clusters)


def _cluster(cid: str, side: str, low: float, high: float, usd: float, dist: float) -> Cluster:
    return Cluster(cid, side, low, high, (low + high) / 2, usd, dist)


async def test_top_ranks_clusters_near_price_by_share_of_open_interest(rig: Rig) -> None:
    est = rig.service.board.get(BTC)
    assert est is not None
    small = _variant(est, SOL, 1.3e9, _cluster("s1", "long", 182.4, 183.9, 41e6, -1.2),
                     _cluster("s2", "short", 200, 201, 90e6, 7.5))  # 6.9 % of OI but too far
    big = _variant(est, BTC, 60e9, _cluster("b1", "short", 96_000, 96_500, 300e6, 2.0),
                   _cluster("b2", "long", 90_000, 90_400, 120e6, -4.0))
    rows = top_rows([big, small], 5)
    assert [r.line() for r in rows] == [
        "SOL long 182.40–183.90 $41.0M = 3.2 % of OI, -1.2 %",
        "BTC short 96,000–96,500 $300M = 0.5 % of OI, +2.0 %",
        "BTC long 90,000–90,400 $120M = 0.2 % of OI, -4.0 %"]
    assert [r.symbol for r in top_rows([big, small], 5, "long")] == [SOL, BTC]
    assert len(top_rows([big, small], 1)) == 1
    # Through the command: BTC and ETH tracked, the reply is labelled an estimate.
    assert "Subscribed" in await rig.ask("/subscribe ETH 1m 1")
    await rig.service.sync_tracked(now_s=0.0)
    text = await rig.ask("/top 3 short")
    lines = text.splitlines()
    assert lines[0].startswith("Largest estimated short clusters within ±5 % of price across 2 "
                               "tracked symbol(s)") and "estimate from a model" in lines[0]
    assert 1 <= len(lines) - 1 <= 3 and all(" short " in x and "% of OI" in x for x in lines[1:])
    assert (await rig.ask("/top lots")).startswith("ERROR 'lots' is neither a count")


async def test_market_list_is_reloaded_daily_so_new_listings_can_be_asked_for(rig: Rig) -> None:
    rig.fake.add_perpetuals(["NEWUSDT"])  # listed after the bot loaded the market list
    assert "NEW is not a perpetual on binanceusdm" in await rig.ask("/levels NEW")
    source = rig.service.source
    assert isinstance(source, CcxtSource)
    source._markets_at["binanceusdm"] -= MARKETS_TTL_S  # a day later
    assert (await rig.ask("/levels NEW")).startswith("NEW/USDT:USDT · price")


async def test_started_service_spreads_recompute_jobs_and_tracks_subscriptions(rig: Rig) -> None:
    chat = rig.store.upsert_chat("console", "c9").id
    rig.store.subscribe(chat, SOL, min_usd=1e6, approach_pct=1.0)
    await rig.service.start()
    try:
        assert rig.service.board.symbols == (BTC, SOL)  # subscribed at start: tracked
        sch = rig.service.scheduler
        assert sch is not None
        runs = sorted(sch.get_job(f"recompute:{s}").next_run_time for s in (BTC, SOL))
        interval = rig.service.cfg.schedule.recompute_seconds
        assert abs((runs[1] - runs[0]).total_seconds() - interval / 2) < 1  # not both at once
        assert sch.get_job("track") is not None
        assert "already tracks 2 symbols" in await rig.ask("/subscribe ETH 1m 1")  # the cap
    finally:
        await rig.service.stop()
