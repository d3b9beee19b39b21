"""Every listed perpetual on request: real ccxt (CcxtSource) against the loopback Binance fake,
the real Service and command core. Untracked symbols are estimated on the first /levels and
kept (LRU, TTL); subscribing makes a symbol tracked until a grace period after the last chat
leaves; unknown symbols get the closest listed ones."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import BotSection, Config, ConsoleSection, LimitsSection, SourceSection
from bot.console import ConsoleNotifier
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from bot.tracking import even_phases, free_phase, plan_tracked
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
