"""/subscribe_top: the daily /top digest, at ``[alerts] top_digest_hour`` UTC, through the
outbox — exactly once per chat and day (restart included), on the console, Telegram and
Discord; /unsubscribe_top stops it.

Real parts: ccxt against the Binance fake (estimates with open interest, so /top has lines),
the Service and its dispatcher, a SQLite store file reopened for the restart; the Telegram
Bot API fake and the Discord fake for those platforms.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bot.alerts import top_digest
from bot.alerts.top_digest import DAY_MS, HOUR_MS
from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import AlertsSection, Config, ConsoleSection, SourceSection, load_config
from bot.console import ConsoleNotifier
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from tests.bot.fake_binance import FakeBinance
from tests.bot.fake_telegram import ANN, PRIVATE
from tests.bot.helpers import private
from tests.bot.test_discord import CHANNEL, discord_api, reply_embed, started_bot
from tests.bot.test_telegram import running

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
HOUR = 8  # the default top_digest_hour


@dataclass
class Rig:
    fake: FakeBinance
    source: CcxtSource
    cfg: Config
    path: Path
    clock: list[int]
    store: Store = field(init=False)
    service: Service = field(init=False)
    core: CommandCore = field(init=False)
    console: ConsoleNotifier = field(init=False)

    def digests(self) -> list[str]:
        return [a.text for a in self.console.sent if a.text.startswith("📊 Daily /top digest")]

    async def ask(self, text: str) -> str:
        reply = await self.core.handle(text, private("u1"))
        assert reply is not None
        return ("ERROR " if reply.error else "") + reply.text

    async def at(self, t: int) -> int:
        """The digest job and a dispatch pass at time ``t``; returns the rows queued."""
        self.clock[0] = t
        n = await self.service.top_digest_job()
        await self.service.dispatch()
        return n

    async def restart(self) -> None:
        """A new process on the same store file (nothing of the old one kept)."""
        self.store.close()
        self._open()
        await self.service.recompute(BTC)
        await self.service.recompute(ETH)

    def _open(self) -> None:
        self.store = Store(self.path)
        self.console = ConsoleNotifier(io.StringIO())
        self.service = Service(self.cfg, self.source, self.store, {"console": self.console},
                               clock_ms=lambda: self.clock[0])
        self.core = CommandCore(self.cfg, self.service.board, self.source, self.store,
                                ChartCache(), ondemand=self.service.ondemand)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeBinance() as fake:
        source = CcxtSource(["binanceusdm"], lookback_days=1,
                            retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05),
                            exchange_factory=binance_factory(fake.url, rateLimit=2),
                            clock=lambda: fake.now_ms)
        cfg = replace(Config(), bot=replace(Config().bot, symbols=(BTC, ETH)),
                      source=SourceSection(kind="live", lookback_days=1.0),
                      console=ConsoleSection(enabled=False))
        day = fake.now_ms - fake.now_ms % DAY_MS
        r = Rig(fake, source, cfg, tmp_path / "liqbot.db", [day])
        r._open()
        await r.service.recompute(BTC)
        await r.service.recompute(ETH)
        try:
            yield r
        finally:
            r.store.close()
            await source.close()


async def test_digest_arrives_once_a_day_at_the_hour_even_across_a_restart(rig: Rig) -> None:
    day = rig.clock[0]
    assert cfg_hour(rig) == HOUR
    reply = await rig.ask("/subscribe_top 3")
    assert reply.startswith("Daily /top digest on: the 3 largest estimated clusters near price, "
                            "every day at 08:00 UTC")
    assert (await rig.ask("/alerts")) == ("Daily /top digest: the 3 largest clusters, at "
                                          "08:00 UTC (/unsubscribe_top)")
    assert await rig.at(day + HOUR * HOUR_MS - 60_000) == 0  # 07:59: not yet
    assert rig.digests() == []
    top = await rig.ask("/top 3")  # what /top says at the hour
    assert await rig.at(day + HOUR * HOUR_MS + 30_000) == 1  # 08:00:30
    (digest,) = rig.digests()
    head, body = digest.split("\n", 1)
    assert head == "📊 Daily /top digest · " + top_digest.time_text(day + HOUR * HOUR_MS + 30_000)
    assert body == top and len(top.splitlines()) == 4  # the heading and 3 /top lines
    assert " % of OI, " in top.splitlines()[1]
    assert await rig.at(day + HOUR * HOUR_MS + 5 * 60_000) == 0  # the job again: nothing new

    # A restart within the hour: the new process queues nothing, sends nothing again.
    await rig.restart()
    assert await rig.at(day + HOUR * HOUR_MS + 10 * 60_000) == 0
    assert rig.digests() == []
    # The next day at the hour: one more.
    assert await rig.at(day + DAY_MS + HOUR * HOUR_MS + 1_000) == 1
    assert len(rig.digests()) == 1
    # Unsubscribed: the day after, none.
    assert await rig.ask("/unsubscribe_top") == "Daily /top digest off."
    assert await rig.at(day + 2 * DAY_MS + HOUR * HOUR_MS + 1_000) == 0
    assert len(rig.digests()) == 1
    assert (await rig.ask("/unsubscribe_top")).startswith("ERROR This chat has no daily /top")
    assert (await rig.ask("/alerts")).startswith("No alerts in this chat yet")


async def test_a_digest_queued_but_not_sent_before_a_crash_goes_out_once_after(rig: Rig) -> None:
    day = rig.clock[0]
    await rig.ask("/subscribe_top 2 short")
    rig.clock[0] = day + HOUR * HOUR_MS + 1_000
    assert await rig.service.top_digest_job() == 1  # queued; the process dies before sending
    await rig.restart()
    assert await rig.at(day + HOUR * HOUR_MS + 120_000) == 0  # not queued twice
    (digest,) = rig.digests()  # sent by the new process, once
    assert "Largest estimated short clusters" in digest
    await rig.service.dispatch()
    assert len(rig.digests()) == 1


async def test_outside_the_hour_nothing_is_queued_and_args_are_checked(rig: Rig) -> None:
    day = rig.clock[0]
    await rig.ask("/subscribe_top long")
    assert await rig.at(day + (HOUR + 1) * HOUR_MS) == 0  # 09:00: the hour is over
    assert await rig.at(day + (HOUR - 1) * HOUR_MS) == 0
    assert rig.digests() == []
    assert (await rig.ask("/subscribe_top lots")).startswith("ERROR 'lots' is neither a count")
    assert (await rig.ask("/subscribe_top 99")).startswith("ERROR '99' is neither a count")
    assert (await rig.ask("/unsubscribe_top now")).startswith("ERROR /unsubscribe_top takes")


def cfg_hour(rig: Rig) -> int:
    return rig.cfg.alerts.top_digest_hour


def test_top_digest_hour_is_checked_in_the_config(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text("[alerts]\ntop_digest_hour = 24\n")
    with pytest.raises(ConfigError, match="top_digest_hour"):
        load_config(path, env={})
    path.write_text("[alerts]\ntop_digest_hour = 6\n")
    assert load_config(path, env={}).alerts.top_digest_hour == 6


async def test_telegram_chat_gets_the_digest() -> None:
    async with running() as h:
        reply = await h.ask(PRIVATE, ANN, "/subscribe_top 2")
        assert reply["text"].startswith("Daily /top digest on")
        now = h.service.dispatcher.clock()
        # The digest hour is the replay clock's current hour.
        h.service.cfg = replace(h.service.cfg, alerts=replace(
            h.service.cfg.alerts, top_digest_hour=now % DAY_MS // HOUR_MS))
        n = len(h.fake.sent)
        assert await h.service.top_digest_job() == 1
        await h.service.dispatch()
        (msg,) = (await h.fake.wait_sent(n + 1))[n:]
        assert msg["chat_id"] == PRIVATE["id"]
        assert msg["text"].startswith("📊 Daily /top digest")
        assert "Largest estimated clusters within ±5 % of price" in msg["text"]
        assert await h.service.top_digest_job() == 0


async def test_discord_slash_commands_and_channel_digest() -> None:
    from tests.bot.fake_discord import MANAGE_CHANNELS, SEND_MESSAGES

    async with discord_api() as fake, started_bot(fake) as bot:
        await bot.call("subscribe_top", {"count": 4, "side": "long"},
                       permissions=SEND_MESSAGES | MANAGE_CHANNELS)
        ok = reply_embed(bot.fake.callbacks[-1].payload)["description"]
        assert ok.startswith("Daily /top digest on: the 4 largest estimated long clusters")
        chat = bot.store.find_chat("discord", CHANNEL)
        assert chat is not None
        assert bot.store.top_subscription(chat.id) == top_digest.TopSubscription(chat.id, 4,
                                                                                 "long")
        now = bot.service.dispatcher.clock()
        bot.service.cfg = replace(bot.service.cfg, alerts=AlertsSection(
            min_usd=1_000_000.0, top_digest_hour=now % DAY_MS // HOUR_MS))
        assert await bot.service.top_digest_job() == 1
        await bot.service.dispatch()
        (posted,) = bot.fake.messages[CHANNEL]
        embed = posted["embeds"][0]
        assert embed["title"] == "Daily /top digest"
        assert "Largest estimated long clusters" in embed["description"]
        assert [f["name"] for f in embed["fields"]] == ["Clusters"]
        await bot.call("unsubscribe_top", {}, permissions=SEND_MESSAGES | MANAGE_CHANNELS)
        assert reply_embed(bot.fake.callbacks[-1].payload)["description"] == (
            "Daily /top digest off.")
        assert bot.store.top_subscription(chat.id) is None
