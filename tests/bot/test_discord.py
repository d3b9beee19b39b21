"""Discord adapter: real discord.py against the loopback REST fake, real core/store/dispatcher.

Slash commands are called through their real callbacks (``tree.get_command(name).callback``)
with a ``discord.Interaction`` built from a raw gateway payload; responses and follow-ups go
through discord.py's HTTP client to the fake. Alerts go through the real dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import pytest
import yarl

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.charts.style import LONG, SHORT
from bot.commands.core import APOLOGY, CommandCore
from bot.commands.table import COMMANDS
from bot.config import AlertsSection, Config, DiscordSection, Secret, SourceSection
from bot.discord_adapter import DiscordAdapter, alert_nonce, symbol_autocomplete
from bot.dispatcher import Alert, Dispatcher
from bot.errors import ConfigError, TransientDeliveryError
from bot.estimates import WINDOWS_H
from bot.service import Service
from bot.store import Store
from bot.wiring import make_adapters, make_service
from tests.bot.fake_discord import (
    MANAGE_CHANNELS,
    SEND_MESSAGES,
    TOKEN,
    FakeDiscord,
    interaction_payload,
)

SYMBOL = "BTC/USDT:USDT"
GUILD = 7
CHANNEL = 555_000_000_000_000_001
PNG = b"\x89PNG\r\n\x1a\n"
T0 = 1_764_000_000_000


def discord_config(**discord_opts: object) -> Config:
    base = Config()
    return replace(
        base,
        source=SourceSection(kind="replay", warmup_candles=19_500, lookback_days=60.0),
        alerts=AlertsSection(min_usd=1_000_000.0),
        console=replace(base.console, enabled=False),
        discord=DiscordSection(**{"enabled": True, "guild_ids": (GUILD,),  # type: ignore[arg-type]
                                  "token": Secret(TOKEN), **discord_opts}),
    )


@dataclass
class Bot:
    fake: FakeDiscord
    adapter: DiscordAdapter
    service: Service
    core: CommandCore
    store: Store
    ids: int = 1_000

    def interaction(self, name: str, options: dict | None = None, **kw: object
                    ) -> discord.Interaction:
        self.ids += 1
        kw.setdefault("channel_id", CHANNEL)
        data = interaction_payload(name, options, interaction_id=self.ids, **kw)  # type: ignore[arg-type]
        return discord.Interaction(data=data, state=self.adapter.client._connection)

    async def call(self, name: str, options: dict | None = None, **kw: object) -> None:
        """Run the real app-command callback with these options."""
        command = self.adapter.tree.get_command(name)
        assert isinstance(command, discord.app_commands.Command)
        await command.callback(self.interaction(name, options, **kw), **(options or {}))


@asynccontextmanager
async def discord_api() -> AsyncIterator[FakeDiscord]:
    """The loopback Discord fake, with discord.py's REST base pointed at it."""
    async with FakeDiscord() as f:
        old = Route.BASE
        Route.BASE = f.base
        try:
            yield f
        finally:
            Route.BASE = old


@asynccontextmanager
async def started_bot(fake: FakeDiscord, *, gateway: bool = False,
                      **discord_opts: object) -> AsyncIterator[Bot]:
    """The real service and Discord adapter on ``fake``, one recompute done: REST only, or
    with ``gateway`` the gateway task too (discord.py pointed at the fake's gateway).
    ``discord_opts``: ``[discord]`` settings (see :func:`discord_config`)."""
    cfg = discord_config(**discord_opts)
    store = Store(memory=True)
    adapter = DiscordAdapter(cfg.discord, gateway=gateway)
    service, core = make_service(cfg, store, [adapter])
    old_gateway = DiscordWebSocket.DEFAULT_GATEWAY
    if gateway:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        await service.recompute(SYMBOL)
        await adapter.start(core)
        yield Bot(fake, adapter, service, core, store)
    finally:
        await adapter.stop()
        await service.source.close()
        store.close()
        DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with discord_api() as f:
        yield f


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:
    async with started_bot(fake) as b:
        yield b


def reply_embed(posted_payload: dict) -> dict:
    """The embed of an interaction callback (type 4) or a follow-up body."""
    body = posted_payload.get("data", posted_payload)
    return body["embeds"][0]


# --- commands -------------------------------------------------------------------------------
async def test_login_and_guild_sync_mirror_the_command_table(bot: Bot) -> None:
    synced = bot.fake.synced[str(GUILD)]
    assert [c["name"] for c in synced] == [c.name for c in COMMANDS]
    assert [c["description"] for c in synced] == [c.help[:100] for c in COMMANDS]
    by_name = {c["name"]: {o["name"]: o for o in c.get("options", [])} for c in synced}
    assert [ch["value"] for ch in by_name["heatmap"]["window"]["choices"]] == list(WINDOWS_H)
    for name in ("levels", "heatmap", "map", "subscribe", "unsubscribe", "level"):
        assert by_name[name]["symbol"]["autocomplete"] is True
    assert by_name["subscribe"]["within_pct"]["type"] == 10  # a number, validated by Discord
    assert "global" not in bot.fake.synced  # guild_ids set → no global sync


async def test_levels_answers_with_an_embed(bot: Bot) -> None:
    await bot.call("levels", {"symbol": "btc"})
    (cb,) = bot.fake.callbacks
    assert cb.payload["type"] == 4  # CHANNEL_MESSAGE_WITH_SOURCE
    embed = reply_embed(cb.payload)
    assert embed["title"] == "/levels"
    assert "Shorts above" in embed["description"] and "Longs below" in embed["description"]
    assert "/heatmap BTC 24h" in embed["footer"]["text"]  # the core's buttons as hints


async def test_heatmap_defers_then_follows_up_with_the_png(bot: Bot) -> None:
    await bot.call("heatmap", {"symbol": "BTC", "window": "7d"})
    (cb,) = bot.fake.callbacks
    assert cb.payload["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    (fu,) = bot.fake.followups
    embed = reply_embed(fu.payload)
    assert embed["title"] == "/heatmap"
    assert embed["image"]["url"] == "attachment://heatmap-7d.png"
    assert "liquidation heatmap, 7d" in embed["description"]
    ((part, filename, data),) = fu.files
    assert (part, filename) == ("files[0]", "heatmap-7d.png")
    assert data.startswith(PNG) and len(data) > 10_000


async def test_bad_input_gets_the_cores_usage_line_ephemeral(bot: Bot) -> None:
    await bot.call("level", {"symbol": "BTC", "price": "lots"}, guild_id=None)
    embed = reply_embed(bot.fake.callbacks[0].payload)
    assert "not a valid price" in embed["description"]
    assert "Usage: /level SYM PRICE [NOTE]" in embed["description"]
    assert bot.fake.callbacks[0].payload["data"]["flags"] & 64  # ephemeral


async def test_subscribe_in_a_guild_channel_needs_manage_channels(bot: Bot) -> None:
    await bot.call("subscribe", {"symbol": "BTC", "min_usd": "50m"}, permissions=SEND_MESSAGES)
    refused = reply_embed(bot.fake.callbacks[-1].payload)
    assert "Only chat admins can use /subscribe" in refused["description"]
    chat = bot.store.find_chat("discord", CHANNEL)
    assert chat is None or not bot.store.list_subscriptions(chat.id)

    await bot.call("subscribe", {"symbol": "BTC", "min_usd": "50m", "within_pct": 0.8},
                   permissions=SEND_MESSAGES | MANAGE_CHANNELS)
    ok = reply_embed(bot.fake.callbacks[-1].payload)
    assert ok["description"].startswith(f"Subscribed to {SYMBOL}")
    chat = bot.store.find_chat("discord", CHANNEL)
    assert chat is not None and chat.is_group
    (sub,) = bot.store.list_subscriptions(chat.id)
    assert (sub.min_usd, sub.approach_pct) == (50e6, 0.8)


async def test_subscribe_in_a_dm_needs_no_permission(bot: Bot) -> None:
    await bot.call("subscribe", {"symbol": "BTC", "within_pct": 1.5}, guild_id=None,
                   permissions=0, channel_id=CHANNEL + 1)
    assert "Subscribed" in reply_embed(bot.fake.callbacks[-1].payload)["description"]
    chat = bot.store.find_chat("discord", CHANNEL + 1)
    assert chat is not None and not chat.is_group
    (sub,) = bot.store.list_subscriptions(chat.id)
    assert (sub.min_usd, sub.approach_pct) == (1_000_000.0, 1.5)  # config default filled in


async def test_symbol_autocomplete_offers_tracked_symbols(bot: Bot) -> None:
    choices = await symbol_autocomplete(bot.interaction("heatmap"), "bt")
    assert [c.value for c in choices] == [SYMBOL]
    assert await symbol_autocomplete(bot.interaction("heatmap"), "doge") == []


async def test_gateway_payload_runs_through_the_tree_and_errors_are_contained(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    """A raw INTERACTION_CREATE goes through discord.py's tree (option parsing, on_error)."""
    token = "interaction-token-SECRET"
    bot.fake.inject("callback", 400)  # the first answer fails → on_error → apology
    data = interaction_payload("alerts", interaction_id=77, channel_id=CHANNEL, token=token)
    with caplog.at_level(logging.ERROR, logger="bot.discord_adapter"):
        bot.adapter.client._connection.parse_interaction_create(data)  # type: ignore[arg-type]
        await _tree_tasks()
    (apology,) = bot.fake.callbacks
    assert apology.payload["data"]["content"] == APOLOGY
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "discord /alerts failed" in logged and "400" in logged
    assert token not in logged and TOKEN not in logged

    # The bot keeps answering: the next interaction through the tree works.
    data = interaction_payload("heatmap", {"window": "12h"}, interaction_id=78,
                               channel_id=CHANNEL)
    bot.adapter.client._connection.parse_interaction_create(data)  # type: ignore[arg-type]
    await _tree_tasks()
    assert reply_embed(bot.fake.followups[-1].payload)["image"]["url"] == (
        "attachment://heatmap-12h.png")


async def _tree_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "CommandTree-invoker"]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


# --- alerts ---------------------------------------------------------------------------------
class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def cluster_event(chat: int, side: str = "short", epoch: int = 0) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYMBOL, ref="S1", epoch=epoch,
                      price=93_700.0, ts_ms=T0, side=side, low=94_000.0, high=94_400.0,
                      notional_usd=1.04e9, distance_pct=0.32)


def bind(bot: Bot, channel: int) -> int:
    chat = bot.store.upsert_chat("discord", channel, is_group=True)
    bot.store.subscribe(chat.id, SYMBOL, min_usd=1e6, approach_pct=0.5)
    return chat.id


async def test_channel_alert_is_an_embed_coloured_by_side_with_the_map(bot: Bot) -> None:
    chat_id = bind(bot, CHANNEL)
    chat = bot.store.get_chat(chat_id)
    assert chat is not None
    for side, colour in (("short", SHORT), ("long", LONG)):
        ev = cluster_event(chat_id, side)
        await bot.adapter.notifier.send(chat, Alert("text of " + side, ev, ev.dedupe_key + side))
        posted = bot.fake.posted[-1]
        embed = posted.payload["embeds"][0]
        assert embed["color"] == int(colour[1:], 16)
        assert embed["description"] == "text of " + side
        assert [f["name"] for f in embed["fields"]] == ["Range", "Size", "Distance", "Price"]
        assert [f["value"] for f in embed["fields"]] == [
            "94,000–94,400", f"$1.0B {side}s", "+0.3 %", "93,700"]
        assert posted.payload["nonce"] == alert_nonce(ev.dedupe_key + side)
        assert posted.payload["enforce_nonce"] is True
        assert embed["image"]["url"] == "attachment://map.png"
        ((_, filename, data),) = posted.files
        assert filename == "map.png" and data.startswith(PNG)
    assert len(bot.fake.messages[CHANNEL]) == 2


def enqueue(bot: Bot, *events: AlertEvent) -> None:
    assert bot.store.commit_tick(SYMBOL, SymbolState(), None, events, now=T0) == len(events)


async def test_403_and_404_deactivate_the_channel(bot: Bot,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    ok, forbidden, deleted = CHANNEL, CHANNEL + 1, CHANNEL + 2
    bot.fake.forbidden.add(forbidden)
    bot.fake.deleted.add(deleted)
    chats = {c: bind(bot, c) for c in (ok, forbidden, deleted)}
    enqueue(bot, *(cluster_event(c) for c in chats.values()))
    dispatcher = Dispatcher(bot.store, {"discord": bot.adapter.notifier}, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="bot.dispatcher"):
        stats = await dispatcher.run_once()
    assert (stats.sent, stats.deactivated) == (1, 2)
    active = {c: bot.store.get_chat(i).active for c, i in chats.items()}  # type: ignore[union-attr]
    assert active == {ok: True, forbidden: False, deleted: False}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Missing Permissions" in logged and "Unknown Channel" in logged
    assert TOKEN not in logged
    assert (await dispatcher.run_once()).sent == 0  # nothing left to retry


async def test_5xx_is_retried_by_the_outbox(bot: Bot) -> None:
    chat = bind(bot, CHANNEL)
    enqueue(bot, cluster_event(chat))
    clock = Clock()
    dispatcher = Dispatcher(bot.store, {"discord": bot.adapter.notifier}, clock=clock)
    bot.fake.inject("messages", 503)
    assert (await dispatcher.run_once()).retried == 1
    assert bot.fake.messages[CHANNEL] == []
    clock.t += 60_000
    assert (await dispatcher.run_once()).sent == 1
    assert len(bot.fake.messages[CHANNEL]) == 1
    assert bot.store.get_chat(chat).active  # type: ignore[union-attr]


async def test_lost_response_and_crash_resend_post_exactly_once(bot: Bot) -> None:
    """Discord accepted the post but the answer was lost (503), and a crash left a row in
    flight: both resends carry the same nonce, so the channel shows each alert once."""
    lost, crashed = CHANNEL, CHANNEL + 1
    enqueue(bot, cluster_event(bind(bot, lost)), cluster_event(bind(bot, crashed)))
    clock = Clock()
    dispatcher = Dispatcher(bot.store, {"discord": bot.adapter.notifier}, clock=clock)

    (_, row_crashed) = bot.store.due(clock.t)
    # Crash simulation for the second row: claimed and delivered, never marked sent.
    assert bot.store.claim(row_crashed.id, clock.t)
    await bot.adapter.notifier.send(row_crashed.chat, Alert("x", row_crashed.event,
                                                            row_crashed.dedupe_key))
    bot.fake.inject("messages", "accept+503")
    stats = await dispatcher.run_once()
    assert (stats.sent, stats.retried) == (0, 1)  # the lost answer looks transient
    assert dispatcher.recover() == 1  # "restart": the in-flight row is pending again
    clock.t += 60_000
    assert (await dispatcher.run_once()).sent == 2
    assert (await dispatcher.run_once()).sent == 0
    assert len(bot.fake.messages[lost]) == 1 and len(bot.fake.messages[crashed]) == 1
    posts = [p for p in bot.fake.posted if p.path.endswith("/messages")]
    assert len(posts) == 4  # two POSTs per alert, one message each


async def test_alerts_flow_from_the_service_to_the_channel(bot: Bot) -> None:
    """Real recompute → price tick → engine → outbox → dispatcher → Discord channel."""
    chat = bot.store.upsert_chat("discord", CHANNEL, is_group=True)
    bot.store.subscribe(chat.id, SYMBOL, min_usd=1e6, approach_pct=5.0)
    replay = bot.service.replay
    assert replay is not None
    sent = 0
    for _ in range(48):
        if not replay.advance():
            break
        await bot.service.price_tick(SYMBOL)
        sent += await bot.service.dispatch()
        if sent:
            break
    assert sent >= 1
    messages = bot.fake.messages[CHANNEL]
    assert len(messages) == sent
    embed = messages[0]["embeds"][0]
    assert embed["title"].startswith(SYMBOL) and "estimate" in embed["footer"]["text"]


async def test_sending_before_login_is_transient() -> None:
    adapter = DiscordAdapter(discord_config().discord, gateway=False)
    chat = Store(memory=True)
    try:
        c = chat.upsert_chat("discord", CHANNEL)
        ev = cluster_event(c.id)
        with pytest.raises(TransientDeliveryError):
            await adapter.notifier.send(c, Alert("t", ev, ev.dedupe_key))
    finally:
        await adapter.stop()
        await adapter.stop()  # idempotent
        chat.close()


async def test_wiring_builds_the_discord_adapter() -> None:
    cfg = discord_config()
    (adapter,) = make_adapters(cfg)
    assert isinstance(adapter, DiscordAdapter) and adapter.platform == "discord"
    assert adapter.client.intents.value == discord.Intents(guilds=True).value  # no privileged
    await adapter.stop()


async def test_without_guild_ids_commands_sync_globally(fake: FakeDiscord) -> None:
    cfg = discord_config(guild_ids=())
    adapter = DiscordAdapter(cfg.discord, gateway=False)
    service, core = make_service(cfg, Store(memory=True), [adapter])
    try:
        await adapter.start(core)
        assert [c["name"] for c in fake.synced["global"]] == [c.name for c in COMMANDS]
        assert list(fake.synced) == ["global"]
    finally:
        await adapter.stop()
        service.store.close()


async def test_a_rejected_token_is_a_config_error(fake: FakeDiscord) -> None:
    cfg = discord_config(token=Secret("wrong-token"))
    adapter = DiscordAdapter(cfg.discord, gateway=False)
    service, core = make_service(cfg, Store(memory=True), [adapter])
    try:
        with pytest.raises(ConfigError, match="rejected the bot token") as info:
            await adapter.start(core)
        assert "wrong-token" not in str(info.value)
    finally:
        await adapter.stop()
        service.store.close()


async def _until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_start_runs_the_gateway_in_the_loop_and_answers_its_interactions(
        fake: FakeDiscord) -> None:
    """The production path: login, sync, gateway task; INTERACTION_CREATE → reply; stop."""
    async with started_bot(fake, gateway=True) as b:
        await _until(lambda: fake.identify)
        (identify,) = fake.identify
        assert identify["token"] == TOKEN
        assert identify["intents"] == discord.Intents(guilds=True).value  # nothing privileged
        await fake.dispatch("INTERACTION_CREATE", interaction_payload(
            "levels", {"symbol": "BTC"}, interaction_id=5, channel_id=CHANNEL))
        await _until(lambda: fake.callbacks)
        assert "Shorts above" in reply_embed(fake.callbacks[0].payload)["description"]
    assert b.adapter.client.is_closed()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "discord-gateway"]
