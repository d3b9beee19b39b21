"""Discord replies: chart-command errors stay private, charts are public, user text is escaped.

Real discord.py against the loopback Discord fake (``tests/bot/fake_discord.py``); real
service, store and core. Ephemeral = message flag 64 on the interaction response / follow-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.alerts import AlertEvent, EventKind
from bot.alerts.messages import render
from bot.dispatcher import Alert
from tests.bot.test_discord import (
    CHANNEL,
    PNG,
    SYMBOL,
    T0,
    Bot,
    bind,
    discord_api,
    reply_embed,
    started_bot,
)

EPHEMERAL = 64
DEFERRED = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
MESSAGE = 4  # CHANNEL_MESSAGE_WITH_SOURCE
NOTE = "[free money](https://evil.example/x) @everyone **now**"


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    async with discord_api() as fake, started_bot(fake) as b:
        yield b


def flags(payload: dict[str, Any]) -> int:
    body = payload.get("data", payload) or {}
    return int(body.get("flags") or 0)


# --- chart commands: errors private, charts public -------------------------------------------
@pytest.mark.parametrize(("name", "options", "error"), [
    ("heatmap", {"symbol": "DOGE"}, "DOGE"),  # unknown symbol
    ("map", {"symbol": "no such coin"}, "Usage: /map [SYM]"),
])
async def test_a_chart_command_error_is_answered_at_once_and_privately(
        bot: Bot, name: str, options: dict[str, str], error: str) -> None:
    await bot.call(name, options)
    (cb,) = bot.fake.callbacks  # one answer: no public "thinking…" defer before it
    assert cb.payload["type"] == MESSAGE
    assert flags(cb.payload) & EPHEMERAL
    assert error in reply_embed(cb.payload)["description"]
    assert bot.fake.followups == []


async def test_the_chart_rate_limit_answer_is_private(bot: Bot) -> None:
    for _ in range(bot.core.config.limits.charts_per_minute):
        await bot.call("map", {"symbol": "BTC"})
    n = len(bot.fake.callbacks)
    await bot.call("map", {"symbol": "BTC"})
    cb = bot.fake.callbacks[n]
    assert cb.payload["type"] == MESSAGE and flags(cb.payload) & EPHEMERAL
    assert reply_embed(cb.payload)["description"].startswith("Chart limit reached")


async def test_a_chart_is_deferred_and_posted_publicly(bot: Bot) -> None:
    await bot.call("heatmap", {"symbol": "BTC", "window": "24h"})
    (cb,) = bot.fake.callbacks
    assert cb.payload["type"] == DEFERRED and not flags(cb.payload) & EPHEMERAL
    (fu,) = bot.fake.followups
    assert not flags(fu.payload) & EPHEMERAL
    ((_, filename, data),) = fu.files
    assert filename == "heatmap-24h.png" and data.startswith(PNG)


# --- escaping ---------------------------------------------------------------------------------
async def test_a_level_note_is_escaped_in_the_reply_embed(bot: Bot) -> None:
    est = bot.service.board.get(SYMBOL)
    assert est is not None
    await bot.call("level", {"symbol": "BTC", "price": f"{est.price * 1.01:.0f}", "note": NOTE},
                   guild_id=None)
    text = reply_embed(bot.fake.callbacks[-1].payload)["description"]
    assert "\\[free money](https://evil.example/x)" in text  # no masked link
    assert "@\u200beveryone" in text and "\\*\\*now\\*\\*" in text
    assert NOTE not in text
    chat = bot.store.find_chat("discord", CHANNEL)
    assert chat is not None
    (level,) = bot.store.list_levels(chat.id)
    assert level.note == NOTE  # stored as typed; escaped only where Discord renders it

    await bot.call("alerts", guild_id=None)
    listing = reply_embed(bot.fake.callbacks[-1].payload)["description"]
    assert "\\[free money](https://evil.example/x)" in listing and NOTE not in listing


async def test_a_level_note_is_escaped_in_the_alert_embed(bot: Bot) -> None:
    chat = bot.store.get_chat(bind(bot, CHANNEL))
    assert chat is not None
    ev = AlertEvent(kind=EventKind.LEVEL_CROSS, chat=chat.id, symbol=SYMBOL, ref="level:1",
                    epoch=0, price=95_120.0, ts_ms=T0, level_price=95_000.0, direction="up",
                    note=NOTE)
    await bot.adapter.notifier.send(chat, Alert(render(ev), ev, ev.dedupe_key))
    embed = bot.fake.posted[-1].payload["embeds"][0]
    assert "\\[free money](https://evil.example/x)" in embed["description"]
    assert "@\u200beveryone" in embed["description"] and NOTE not in embed["description"]

