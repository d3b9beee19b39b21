"""Exchange faults through the whole service: real ccxt (CcxtSource) against the loopback
Binance fake, the real Service, engine, store, dispatcher and command core.

For each fault the bot must keep answering commands (/levels from the last good estimate,
marked), /status must say what is failing or stale, no alert may be computed while the data is
failing, stale or partial (the outbox stays as it was although price crosses a user level), and
alerts must resume once the exchange is healthy again.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp import web

from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.commands.reply import Caller
from bot.config import Config, ConsoleSection, SourceSection
from bot.console import ConsoleNotifier
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from tests.bot.fake_binance import FakeBinance

SYM = "BTC/USDT:USDT"
KLINES, OI, INFO = "/fapi/v1/klines", "/futures/data/openInterestHist", "/fapi/v1/exchangeInfo"
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
MIN = 60_000
USER = Caller("console", "c1", "u1")


class GappyBinance(FakeBinance):
    """The Binance fake with candles missing in ``[gap[0], gap[1])`` for ``gap_intervals``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.gap: tuple[int, int] | None = None
        self.gap_intervals = ("5m",)

    async def _klines(self, request: web.Request) -> web.Response:
        response = await super()._klines(request)
        if self.gap is None or response.status != 200 or (
                request.query.get("interval") not in self.gap_intervals):
            return response
        import json

        assert isinstance(response, web.Response) and response.text is not None
        rows = [r for r in json.loads(response.text)
                if not self.gap[0] <= int(r[0]) < self.gap[1]]
        return web.json_response(rows)


@dataclass
class Rig:
    fake: GappyBinance
    source: CcxtSource
    service: Service
    core: CommandCore
    store: Store
    notifier: ConsoleNotifier
    chat: int

    def outbox_total(self) -> int:
        return sum(self.store.outbox_counts().values())

    async def cycle(self, minutes: int = 5, recompute: bool = True) -> None:
        """Time passes; one recompute (optional), one price tick, one dispatch."""
        self.fake.now_ms += minutes * MIN
        if recompute:
            await self.service.recompute(SYM)
        await self.service.price_tick(SYM)
        await self.service.dispatch()

    def level_just_above(self) -> None:
        """A user level the next tick crosses: the fake's 1m highs are 0.1 % above price."""
        price = self.store.load_state(SYM).last_price
        assert price is not None
        self.store.add_level(self.chat, SYM, price * 1.0005)

    async def ask(self, text: str) -> str:
        reply = await self.core.handle(text, USER)
        assert reply is not None and not reply.error, reply
        return reply.text


def live_config() -> Config:
    base = Config()
    return replace(base, source=SourceSection(kind="live", lookback_days=1.0),
                   console=ConsoleSection(enabled=False))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with GappyBinance(slow_s=2.0) as fake:
        source = CcxtSource(exchange_factory=binance_factory(fake.url, timeout_ms=1000,
                                                             rateLimit=2),
                            lookback_days=1, retry=FAST, clock=lambda: fake.now_ms)
        store = Store(memory=True)
        notifier = ConsoleNotifier(io.StringIO())
        cfg = live_config()
        service = Service(cfg, source, store, {"console": notifier},
                          clock_ms=lambda: fake.now_ms)
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        chat = store.upsert_chat("console", "c1").id
        store.subscribe(chat, SYM, min_usd=0.0, approach_pct=20.0)
        rig = Rig(fake, source, service, core, store, notifier, chat)
        await service.recompute(SYM)
        assert service.board.status(SYM).last_error is None
        await rig.cycle(1, recompute=False)  # baseline tick (approach alerts may fire)
        try:
            yield rig
        finally:
            await source.close()
            store.close()


async def assert_alerts_resume(rig: Rig) -> None:
    """After recovery: a fresh recompute, a tick to learn the price, then a crossed level
    is queued and delivered."""
    rig.fake.faults.clear()
    rig.fake.gap = None
    await rig.cycle(5)
    status = rig.service.board.status(SYM)
    assert status.last_error is None and not status.stale
    assert "fresh" in await rig.ask("/status")
    rig.level_just_above()
    before, delivered = rig.outbox_total(), rig.notifier.count
    await rig.cycle(1, recompute=False)
    assert rig.outbox_total() > before, "no alert after recovery"
    new = rig.notifier.count - delivered
    assert new > 0
    assert any("crossed" in a.text or "level" in a.text for a in list(rig.notifier.sent)[-new:])


FAULTS = [  # (fault kind on klines, what /status must say)
    ("429", "rate limited / IP banned"),
    ("418", "rate limited / IP banned"),
    ("500", "network error"),
    ("503", "network error"),
    ("slow", "timed out"),
    ("malformed", "malformed response"),
    ("empty", "malformed response: empty page"),
    ("badsymbol", "the exchange does not list this symbol"),  # delisted mid-run
]


@pytest.mark.parametrize(("kind", "said"), FAULTS)
async def test_fault_pauses_alerts_keeps_serving_and_recovers(rig: Rig, kind: str,
                                                              said: str) -> None:
    good_levels = await rig.ask("/levels")
    before, delivered = rig.outbox_total(), rig.notifier.count
    # A level the very next healthy tick would cross: during the fault it must not fire.
    rig.level_just_above()

    # 1. The fault lasts the whole recompute (every retry): the estimate is kept, marked.
    rig.fake.inject(KLINES, *[kind] * 50)
    rig.fake.now_ms += 5 * MIN
    await rig.service.recompute(SYM)
    st = rig.service.board.status(SYM)
    assert st.last_error is not None and said in st.last_error
    status = await rig.ask("/status")
    assert "FAILING" in status and said in status
    await rig.cycle(1, recompute=False)  # the price tick fails as well (same endpoint)
    assert rig.service.board.status(SYM).last_error is not None
    levels = await rig.ask("/levels")
    assert levels.split("\n")[:4] == good_levels.split("\n")[:4]  # last good estimate
    assert "last update failed" in levels and "alerts are paused" in levels
    assert "FAILING" in await rig.ask("/status")
    assert rig.outbox_total() == before

    # 2. The exchange answers prices again but no recompute has succeeded yet: the tick sees
    #    price cross the level, and still no alert is computed from the failed estimate.
    rig.fake.faults.clear()
    await rig.cycle(1, recompute=False)
    assert rig.service._states[SYM].last_price is None  # the crossing is not inferred later
    assert rig.outbox_total() == before and rig.notifier.count == delivered

    await assert_alerts_resume(rig)


async def test_short_5xx_burst_is_absorbed_by_retries(rig: Rig) -> None:
    """Two 503s then success: retried inside one recompute; nothing reported, alerts flow."""
    rig.fake.inject(KLINES, "503", "503")
    await rig.service.recompute(SYM)
    assert rig.service.board.status(SYM).last_error is None
    rig.level_just_above()
    before = rig.outbox_total()
    await rig.cycle(1, recompute=False)
    assert rig.outbox_total() > before


async def test_retry_after_is_honoured_at_service_level(rig: Rig) -> None:
    """A 429 with Retry-After: 1 makes the recompute wait ≥ 1 s, then succeed."""
    rig.source.retry = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=5.0)
    rig.fake.inject(KLINES, "429")
    t0 = time.monotonic()
    await rig.service.recompute(SYM)
    waited = time.monotonic() - t0
    assert waited >= 1.0 and rig.service.board.status(SYM).last_error is None


async def test_stale_tail_gap_pauses_alerts_until_candles_return(rig: Rig) -> None:
    """The exchange stops publishing 5m candles (1m prices still flow): the estimate is STALE
    and crossed levels do not fire until fresh candles arrive."""
    before = rig.outbox_total()
    rig.level_just_above()
    rig.fake.gap = (rig.fake.now_ms - 2 * MIN, rig.fake.now_ms + 60 * MIN)
    await rig.cycle(20)
    st = rig.service.board.status(SYM)
    assert st.stale and st.last_error is None
    status = await rig.ask("/status")
    assert "STALE" in status and "stale" in status
    assert "alerts are paused" in await rig.ask("/levels")
    await rig.cycle(1, recompute=False)
    assert rig.outbox_total() == before
    await assert_alerts_resume(rig)


async def test_candle_gap_inside_the_window_is_reported_not_fatal(rig: Rig) -> None:
    """An hour of candles missing in the middle of the lookback: the estimate is computed
    from the candles there are and /status notes the gap."""
    rig.fake.gap = (rig.fake.now_ms - 6 * 60 * MIN, rig.fake.now_ms - 5 * 60 * MIN)
    await rig.cycle(5)
    st = rig.service.board.status(SYM)
    assert st.last_error is None and not st.stale
    est = rig.service.board.get(SYM)
    assert est is not None and len(est.snapshot.candles) == 289 - 12
    assert "gap" in await rig.ask("/status")


async def test_open_interest_outage_keeps_the_last_full_estimate(rig: Rig) -> None:
    """OI history fails after every retry: a proxy estimate from partial data must not
    replace the OI-based one, and no alert is computed meanwhile."""
    good = rig.service.board.get(SYM)
    assert good is not None and not good.proxy
    before = rig.outbox_total()
    rig.level_just_above()
    rig.fake.inject(OI, *["500"] * 50)
    await rig.cycle(5)
    assert rig.service.board.get(SYM) is good
    st = rig.service.board.status(SYM)
    assert st.last_error is not None and "open interest" in st.last_error
    assert "FAILING" in await rig.ask("/status")
    await rig.cycle(1, recompute=False)
    assert rig.outbox_total() == before
    await assert_alerts_resume(rig)
    assert not rig.service.board.get(SYM).proxy  # type: ignore[union-attr]


async def test_exchange_info_outage_at_start_then_recovery() -> None:
    """The exchange is unreachable when the bot starts: no estimate, a clear reply, /status
    says never computed and why; the next recompute after recovery works."""
    async with FakeBinance() as fake:
        source = CcxtSource(exchange_factory=binance_factory(fake.url, timeout_ms=1000,
                                                             rateLimit=2),
                            lookback_days=1, retry=FAST, clock=lambda: fake.now_ms)
        store = Store(memory=True)
        cfg = live_config()
        service = Service(cfg, source, store, {}, clock_ms=lambda: fake.now_ms)
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        try:
            fake.inject(INFO, *["503"] * FAST.attempts)
            await service.recompute(SYM)
            assert service.board.get(SYM) is None
            reply = await core.handle("/status", USER)
            assert reply is not None and "never" in reply.text and "network error" in reply.text
            reply = await core.handle("/levels", USER)
            assert reply is not None and reply.error and "No estimate" in reply.text
            assert (await service.price_tick(SYM)).skipped == "no estimate yet"
            await service.recompute(SYM)
            assert service.board.get(SYM) is not None
        finally:
            await source.close()
            store.close()
