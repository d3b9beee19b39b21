"""Discord's /subscribe carries the layer (follow: estimate | confirmed | both) to the core,
through the loopback Discord fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from bot.config import PositionsSection, SourceSection
from bot.discord_adapter import DiscordAdapter
from bot.store import Store
from bot.wiring import make_service
from tests.bot.fake_discord import MANAGE_CHANNELS, SEND_MESSAGES
from tests.bot.helpers import SYMBOL
from tests.bot.test_discord import CHANNEL, GUILD, Bot, discord_api, discord_config, reply_embed
from tests.bot.test_hyperliquid_service import CANDLES, SNAPS


@asynccontextmanager
async def positions_bot(positions: bool) -> AsyncIterator[Bot]:
    cfg = discord_config()
    if positions:
        cfg = replace(cfg, source=SourceSection(kind="replay", path=str(CANDLES),
                                                warmup_candles=120, timeframe="1h"),
                      positions=PositionsSection(enabled=True, path=str(SNAPS)))
    async with discord_api() as fake:
        store = Store(memory=True)
        adapter = DiscordAdapter(cfg.discord, gateway=False)
        service, core = make_service(cfg, store, [adapter])
        try:
            await service.recompute(SYMBOL)
            await adapter.start(core)
            yield Bot(fake, adapter, service, core, store)
        finally:
            await adapter.stop()
            await service.source.close()
            store.close()


async def test_subscribe_follow_confirmed_through_discord() -> None:
    async with positions_bot(True) as bot:
        synced = {c["name"]: c for c in bot.fake.synced[str(GUILD)]}
        follow = {o["name"]: o for o in synced["subscribe"]["options"]}["follow"]
        assert [c["value"] for c in follow["choices"]] == ["estimate", "confirmed", "both"]
        await bot.call("subscribe", {"symbol": "BTC", "min_usd": "300k", "follow": "confirmed"},
                       permissions=SEND_MESSAGES | MANAGE_CHANNELS)
        text = reply_embed(bot.fake.callbacks[-1].payload)["description"]
        assert "Following confirmed clusters only" in text
        chat = bot.store.find_chat("discord", CHANNEL)
        assert chat is not None
        (sub,) = bot.store.confirmed_subscriptions(chat=chat.id)
        assert (sub.symbol, sub.min_usd) == (SYMBOL, 300_000.0)
        assert bot.store.list_subscriptions(chat.id) == []


async def test_subscribe_follow_confirmed_refused_without_positions() -> None:
    async with positions_bot(False) as bot:
        await bot.call("subscribe", {"symbol": "BTC", "follow": "confirmed"},
                       permissions=SEND_MESSAGES | MANAGE_CHANNELS)
        payload = bot.fake.callbacks[-1].payload
        assert "Confirmed levels are off on this bot" in reply_embed(payload)["description"]
        assert payload["data"]["flags"] & 64  # ephemeral, as every error
