"""On Discord: /top is an app command, and a /levels that first fetches an untracked symbol
defers the interaction (Discord's 3 s answer window) and posts the answer as a follow-up.
Real discord.py against the Discord fake; real ccxt against the Binance fake for the
untracked symbol."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.ondemand import OnDemandEstimates
from tests.bot.fake_binance import FakeBinance
from tests.bot.test_discord import Bot, discord_api, reply_embed, started_bot

DEFERRED, MESSAGE = 5, 4


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    async with discord_api() as fake, started_bot(fake) as b:
        yield b


async def test_top_is_a_discord_command(bot: Bot) -> None:
    await bot.call("top", {"count": 3, "side": "long"})
    (cb,) = bot.fake.callbacks
    assert cb.payload["type"] == MESSAGE
    assert "Largest estimated long clusters within ±5 %" in reply_embed(cb.payload)["description"]


async def test_a_cold_on_demand_levels_is_deferred_then_answered(bot: Bot) -> None:
    async with FakeBinance() as exchange:
        source = CcxtSource(["binanceusdm"], lookback_days=1,
                            retry=RetryPolicy(attempts=2, base_delay_s=0.01),
                            exchange_factory=binance_factory(exchange.url, rateLimit=2),
                            clock=lambda: exchange.now_ms)
        # The live parts a live bot has (wiring does this for a live source).
        bot.core.source = source
        bot.core.ondemand = OnDemandEstimates(source, bot.service.params, 5, 300)
        try:
            await bot.call("levels", {"symbol": "SOL"})
            await bot.call("levels", {"symbol": "SOL"})  # now kept: answered at once
        finally:
            await source.close()
    first, second = bot.fake.callbacks
    assert first.payload["type"] == DEFERRED
    (fu,) = bot.fake.followups
    assert reply_embed(fu.payload)["description"].startswith("SOL/USDT:USDT · price")
    assert second.payload["type"] == MESSAGE
