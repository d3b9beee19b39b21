"""Open interest from a changing set of exchanges: real ccxt (CcxtSource) against two loopback
Binance fakes — one for binanceusdm, one answering for the second exchange slot ("bybit"; the
slot's name only picks its OI paging limits) — with the real Service, engine, store and
command core.

When the second exchange's OI is missing, every cluster is about half its size; when it comes
back every cluster doubles. That must not be announced as growth ("grew ×2"), and /status must
say which exchanges fed the estimate.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.alerts.events import EventKind
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
OI = "/futures/data/openInterestHist"
FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)
MIN = 60_000
USER = Caller("console", "c1", "u1")


@dataclass
class Rig:
    first: FakeBinance
    second: FakeBinance
    service: Service
    core: CommandCore
    store: Store

    async def cycle(self, second_oi_ok: bool) -> None:
        """Five minutes pass; a recompute (the second exchange's OI failing or not) and a tick."""
        self.first.now_ms += 5 * MIN
        self.second.now_ms = self.first.now_ms
        self.second.faults.clear()
        if not second_oi_ok:
            self.second.inject(OI, *["500"] * 20)
        await self.service.recompute(SYM)
        assert self.service.board.status(SYM).last_error is None
        await self.service.price_tick(SYM)

    def mix(self) -> str:
        est = self.service.board.get(SYM)
        assert est is not None
        return est.oi_mix

    def sizes(self) -> dict[str, float]:
        est = self.service.board.get(SYM)
        assert est is not None
        return {c.id: c.notional_usd for c in est.clusters}

    def news(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.store.db.execute(
            "SELECT payload FROM outbox WHERE kind = ?", (EventKind.NEW_CLUSTER.value,))]

    async def status(self) -> str:
        reply = await self.core.handle("/status", USER)
        assert reply is not None and not reply.error
        return reply.text


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with FakeBinance() as first, FakeBinance() as second:
        one = binance_factory(first.url, timeout_ms=1000, rateLimit=2)
        two = binance_factory(second.url, timeout_ms=1000, rateLimit=2)
        source = CcxtSource(
            exchanges=["binanceusdm", "bybit"], lookback_days=1, retry=FAST,
            exchange_factory=lambda n: one(n) if n == "binanceusdm" else two("binanceusdm"),
            clock=lambda: first.now_ms)
        store = Store(memory=True)
        cfg = replace(Config(), source=SourceSection(kind="live", lookback_days=1.0,
                                                     exchanges=("binanceusdm", "bybit")),
                      console=ConsoleSection(enabled=False))
        service = Service(cfg, source, store, {"console": ConsoleNotifier(io.StringIO())},
                          clock_ms=lambda: first.now_ms)
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        chat = store.upsert_chat("console", "c1").id
        store.subscribe(chat, SYM, min_usd=0.0, approach_pct=0.1)
        try:
            yield Rig(first, second, service, core, store)
        finally:
            await source.close()
            store.close()


async def test_an_exchange_returning_is_not_announced_as_growth(rig: Rig) -> None:
    # The bot starts while the second exchange's OI is failing: its baseline has half the OI.
    await rig.cycle(second_oi_ok=False)
    assert rig.mix() == "binanceusdm"
    half = rig.sizes()
    status = await rig.status()
    assert "OI: binanceusdm ·" in status and "open interest from binanceusdm only" in status
    await rig.cycle(second_oi_ok=False)
    before = len(rig.news())

    # It comes back: every cluster about doubles. No "grew", no "new" for that.
    await rig.cycle(second_oi_ok=True)
    assert rig.mix() == "binanceusdm+bybit"
    full = rig.sizes()
    common = half.keys() & full.keys()
    assert common and all(full[k] > 1.6 * half[k] for k in common)
    assert rig.news()[before:] == []
    status = await rig.status()
    assert "OI: binanceusdm+bybit ·" in status
    assert "open interest sources changed at" in status
    assert "from binanceusdm to binanceusdm+bybit" in status

    # It drops out and comes back again: still nothing.
    await rig.cycle(second_oi_ok=False)
    await rig.cycle(second_oi_ok=True)
    assert rig.mix() == "binanceusdm+bybit"
    assert rig.news()[before:] == []
    assert rig.store.load_state(SYM).oi_mix == "binanceusdm+bybit"
