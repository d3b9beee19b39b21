"""Any command re-activates a chat the bot had given up on (blocked / kicked / no access).

End to end on both platforms (real PTB and discord.py against the loopback fakes, the real
service, store, dispatcher and core), and every command of the table through the core.
"""

from __future__ import annotations

import pytest

from bot.alerts import SymbolState
from bot.commands.table import COMMANDS
from bot.dispatcher import Dispatcher
from tests.bot.fake_telegram import ANN, PRIVATE
from tests.bot.helpers import private, started_service
from tests.bot.test_discord import (
    CHANNEL,
    SYMBOL,
    Clock,
    bind,
    cluster_event,
    discord_api,
    enqueue,
    started_bot,
)
from tests.bot.test_telegram import pending_row_for, running

# A valid call of every command (the tape is off here, so the _liqs ones answer "tape off").
CALLS = {"start": "/start", "help": "/help", "levels": "/levels", "heatmap": "/heatmap",
         "map": "/map", "subscribe": "/subscribe BTC", "unsubscribe": "/unsubscribe BTC",
         "quiet": "/quiet BTC off",
         "subscribe_liqs": "/subscribe_liqs BTC", "unsubscribe_liqs": "/unsubscribe_liqs BTC",
         "alerts": "/alerts", "level": "/level BTC 90k", "unlevel": "/unlevel 1",
         "status": "/status", "symbols": "/symbols", "ifbreak": "/ifbreak BTC 9k",
         "mypos": "/mypos BTC long 10k 10x", "accuracy": "/accuracy BTC 7d", "top": "/top",
         "subscribe_top": "/subscribe_top 3", "unsubscribe_top": "/unsubscribe_top"}


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


def test_calls_cover_the_command_table() -> None:
    assert set(CALLS) == {c.name for c in COMMANDS}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_every_command_reactivates_through_the_core(name: str) -> None:
    _, core, store = await started_service()
    try:
        chat = store.upsert_chat("console", "c1")
        store.subscribe(chat.id, SYMBOL, min_usd=1e6, approach_pct=0.5)
        store.deactivate_chat(chat.id, "forbidden: bot was blocked by the user")
        assert store.active_subscriptions() == []
        await core.handle(CALLS[name], private())
        again = store.find_chat("console", "c1")
        assert again is not None and again.active
        if name != "unsubscribe":
            assert [s.chat for s in store.active_subscriptions()] == [chat.id]
    finally:
        store.close()


async def test_a_command_from_an_unknown_chat_creates_no_chat() -> None:
    _, core, store = await started_service()
    try:
        await core.handle("/levels", private(chat="never-seen"))
        assert store.find_chat("console", "never-seen") is None
    finally:
        store.close()


async def test_telegram_block_then_start_resumes_alerts() -> None:
    """Block (403) → alerts stop → unblock → /start → alerts resume."""
    async with running() as h:
        await h.ask(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
        await pending_row_for(h, 111)
        h.fake.inject("sendMessage", "403", chat_id=111)  # Ann blocked the bot
        assert (await h.service.dispatcher.run_once()).deactivated == 1
        assert not h.chat(111).active
        n = len(h.fake.sent)
        for _ in range(8):
            await h.step()
        assert all(m["chat_id"] != 111 for m in h.fake.sent[n:])

        start = await h.ask(PRIVATE, ANN, "/start")  # Ann unblocked the bot and says hello
        assert "liqbot estimates" in start["text"]
        assert h.chat(111).active
        n = len(h.fake.sent)
        for _ in range(80):
            await h.step()
            if any(m["chat_id"] == 111 for m in h.fake.sent[n:]):
                break
        assert any(m["chat_id"] == 111 for m in h.fake.sent[n:]), "alerts did not resume"


async def test_discord_lost_access_then_any_command_resumes_alerts() -> None:
    async with discord_api() as fake, started_bot(fake) as bot:
        chat = bind(bot, CHANNEL)
        fake.forbidden.add(CHANNEL)  # the bot lost access to the channel
        enqueue(bot, cluster_event(chat))
        clock = Clock()
        dispatcher = Dispatcher(bot.store, {"discord": bot.adapter.notifier}, clock=clock)
        assert (await dispatcher.run_once()).deactivated == 1
        # alerts stop: a new tick queues nothing for the channel
        assert bot.store.commit_tick(SYMBOL, SymbolState(), None,
                                     [cluster_event(chat, epoch=1)], now=clock.t) == 0

        fake.forbidden.discard(CHANNEL)  # access given back; a member (no Manage Channels)
        await bot.call("status")  # runs a read-only command there
        assert bot.store.get_chat(chat).active  # type: ignore[union-attr]
        enqueue(bot, cluster_event(chat, epoch=2))
        clock.t += 1
        assert (await dispatcher.run_once()).sent == 1
        assert len(fake.messages[CHANNEL]) == 1
