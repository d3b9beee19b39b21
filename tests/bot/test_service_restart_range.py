"""A restart must not lose what traded while the bot was down: real ccxt (CcxtSource) against
the loopback Binance fake, the real Service, engine and SQLite store file.

The engine's previous tick (time and price) is in the store; after a restart the first price
tick asks the exchange for the range since then, so a user level that price crossed and came
back from while the bot was stopped alerts once.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.alerts.events import EventKind
from bot.config import Config, ConsoleSection, SourceSection
from bot.console import ConsoleNotifier
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from tests.bot.fake_binance import FakeBinance, kline

SYM = "BTC/USDT:USDT"
MIN = 60_000
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)


class SpikyBinance(FakeBinance):
    """The Binance fake with one 1m candle whose high is ``spike = (open ms, high)``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.spike: tuple[int, float] | None = None

    async def _klines(self, request: web.Request) -> web.Response:
        response = await super()._klines(request)
        if self.spike is None or request.query.get("interval") != "1m" or response.status != 200:
            return response
        assert isinstance(response, web.Response) and response.text is not None
        rows = json.loads(response.text)
        for r in rows:
            if int(r[0]) == self.spike[0]:
                r[2] = f"{self.spike[1]:.2f}"
        return web.json_response(rows)


def start(fake: FakeBinance, path: Path) -> tuple[Service, CcxtSource, Store]:
    """A fresh process: new source (no memory of earlier calls), store opened from the file."""
    source = CcxtSource(exchange_factory=binance_factory(fake.url, timeout_ms=1000, rateLimit=2),
                        lookback_days=1, retry=FAST, clock=lambda: fake.now_ms)
    store = Store(path)
    cfg = replace(Config(), source=SourceSection(kind="live", lookback_days=1.0),
                  console=ConsoleSection(enabled=False))
    service = Service(cfg, source, store, {"console": ConsoleNotifier(io.StringIO())},
                      clock_ms=lambda: fake.now_ms)
    return service, source, store


def level_crosses(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT dedupe_key FROM outbox WHERE kind = ?", (EventKind.LEVEL_CROSS.value,))]


async def test_level_crossed_and_recrossed_while_down_alerts_once_after_restart(
        tmp_path: Path) -> None:
    path = tmp_path / "liqbot.db"
    async with SpikyBinance() as fake:
        service, source, store = start(fake, path)
        chat = store.upsert_chat("console", "c1").id
        await service.recompute(SYM)
        await service.price_tick(SYM)
        price = store.load_state(SYM).last_price
        assert price is not None
        level = round(price * 1.02, 2)  # 2 % up: the fake's own wave needs hours for that
        store.add_level(chat, SYM, level, "any")
        fake.now_ms += MIN
        await service.price_tick(SYM)
        assert level_crosses(store) == []
        await source.close()
        store.close()  # the bot stops

        # While it is down, one 1m candle trades through the level; price comes back.
        spike_open = (fake.now_ms // MIN + 3) * MIN
        fake.spike = (spike_open, level * 1.005)
        fake.now_ms += 10 * MIN

        service, source, store = start(fake, path)  # the bot starts again
        try:
            await service.recompute(SYM)
            result = await service.price_tick(SYM)
            assert result.skipped == ""
            fired = [e for e in result.events if e.kind is EventKind.LEVEL_CROSS]
            assert [(e.level_price, e.direction) for e in fired] == [(level, "up")]
            assert fired[0].price < level  # price is back below the level
            for _ in range(3):  # later ticks do not fire it again
                fake.now_ms += MIN
                await service.price_tick(SYM)
            assert len(level_crosses(store)) == 1
        finally:
            await source.close()
            store.close()


async def test_a_long_outage_is_covered_by_coarser_bars() -> None:
    """Down for 30 h (more than 1,000 one-minute bars): the range comes from 5m bars and still
    spans the whole outage; 60 days down: 1h bars, the newest 1,000 hours."""
    async with FakeBinance() as fake:
        source = CcxtSource(exchange_factory=binance_factory(fake.url, timeout_ms=1000,
                                                             rateLimit=2),
                            retry=FAST, clock=lambda: fake.now_ms)
        try:
            since = fake.now_ms - 30 * 3_600_000
            tick = await source.last_price(SYM, since_ms=since)
            interval, start = [(q["interval"], int(q["startTime"])) for p, q in fake.requests
                               if p == "/fapi/v1/klines"][-1]
            assert (interval, start) == ("5m", since // 300_000 * 300_000)
            bars = [kline(t, 300_000, 1.0) for t in range(start, fake.now_ms, 300_000)]
            assert tick.high == max(float(b[2]) for b in bars)
            await source.last_price(SYM, since_ms=fake.now_ms - 60 * 86_400_000)
            interval, start = [(q["interval"], int(q["startTime"])) for p, q in fake.requests
                               if p == "/fapi/v1/klines"][-1]
            hour = 3_600_000
            assert interval == "1h" and start == fake.now_ms // hour * hour - 999 * hour
        finally:
            await source.close()
