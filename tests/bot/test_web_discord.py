"""Discord chart replies carry a link button to the web view (issue 23) when [web] is on:
real discord.py against the loopback Discord fake."""

from __future__ import annotations

from dataclasses import replace

from bot.config import WebSection
from tests.bot.test_discord import discord_api, started_bot

PUBLIC = "https://liq.example.org"
LINK = 5  # discord ButtonStyle.link


async def test_a_chart_reply_carries_a_link_button_only_when_the_web_view_is_on() -> None:
    async with discord_api() as fake, started_bot(fake) as bot:
        await bot.call("heatmap", {"symbol": "BTC", "window": "24h"})
        assert not fake.followups[-1].payload.get("components")
        bot.core.config = replace(bot.core.config, web=WebSection(enabled=True,
                                                                  public_url=PUBLIC))
        await bot.call("heatmap", {"symbol": "BTC", "window": "7d"})
        (row,) = fake.followups[-1].payload["components"]
        ((button),) = row["components"]
        assert {k: button[k] for k in ("type", "style", "label", "url")} == {
            "type": 2, "style": LINK, "label": "Interactive chart",
            "url": f"{PUBLIC}/s/BTCUSDT?window=7d"}
        await bot.call("map", {"symbol": "BTC"})
        (row,) = fake.followups[-1].payload["components"]
        assert row["components"][0]["url"] == f"{PUBLIC}/s/BTCUSDT"
