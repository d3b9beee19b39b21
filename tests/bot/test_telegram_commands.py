"""Telegram command front-end: the backlog after a restart, stale commands, reply retries, the
Subscribe button. Real PTB 22 against the loopback Bot API fake; nothing of ours is mocked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.charts import ChartCache
from bot.commands.core import APOLOGY, CommandCore
from bot.config import parse_config
from bot.errors import ConfigError
from bot.telegram_adapter import TelegramAdapter
from tests.bot.fake_telegram import ANN, PRIVATE
from tests.bot.test_telegram import Harness, running


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


@pytest.fixture
async def h():
    async with running() as harness:
        yield harness


async def restart_with(h: Harness, while_down: Callable[[], None]) -> TelegramAdapter:
    """Stop the bot's adapter, run ``while_down`` (users send commands), start a new one."""
    await h.adapter.stop()
    while_down()
    adapter = TelegramAdapter(h.cfg.telegram, poll_timeout_s=1, max_retries=1)
    await adapter.start(CommandCore(h.cfg, h.service.board, h.replay, h.store, ChartCache()))
    return adapter


def subscribed(h: Harness) -> list[tuple[str, float, float]]:
    return [(s.symbol, s.min_usd, s.approach_pct)
            for s in h.store.list_subscriptions(h.chat(111).id)]


# --- the backlog ----------------------------------------------------------------------------
async def test_a_command_sent_while_the_bot_was_down_is_applied(h: Harness) -> None:
    await h.ask(PRIVATE, ANN, "/subscribe BTC 7m 1.5")
    n = len(h.fake.sent)
    adapter = await restart_with(h, lambda: h.fake.command(PRIVATE, ANN, "/unsubscribe BTC"))
    try:
        reply = (await h.fake.wait_sent(n + 1))[n]
        assert reply["text"] == "Unsubscribed from BTC/USDT:USDT."
        assert subscribed(h) == []
    finally:
        await adapter.stop()


async def test_a_stale_command_gets_the_offline_reply_and_changes_nothing(h: Harness) -> None:
    await h.ask(PRIVATE, ANN, "/subscribe BTC 7m 1.5")
    before = subscribed(h)
    n = len(h.fake.sent)

    def old_unsubscribe() -> None:
        h.fake.command(PRIVATE, ANN, "/unsubscribe BTC")
        h.fake._updates[-1]["message"]["date"] -= 3600  # sent an hour ago (default limit 10 min)

    adapter = await restart_with(h, old_unsubscribe)
    try:
        reply = (await h.fake.wait_sent(n + 1))[n]
        assert reply["text"] == ("This bot was offline when you sent /unsubscribe (60 min ago), "
                                 "so it did nothing. Please send it again if you still want it.")
        assert subscribed(h) == before
        fresh = await h.ask(PRIVATE, ANN, "/unsubscribe BTC")  # sent again: done
        assert fresh["text"] == "Unsubscribed from BTC/USDT:USDT."
    finally:
        await adapter.stop()


def test_stale_command_minutes_is_a_checked_config_key() -> None:
    cfg = parse_config("[telegram]\nstale_command_minutes = 2.5\n")
    assert cfg.telegram.stale_command_minutes == 2.5
    assert parse_config("").telegram.stale_command_minutes == 10
    with pytest.raises(ConfigError, match=r"line 2: telegram.stale_command_minutes = 0 must"):
        parse_config("[telegram]\nstale_command_minutes = 0\n")


# --- reply retries --------------------------------------------------------------------------
async def test_a_5xx_on_a_reply_is_retried(h: Harness) -> None:
    h.fake.inject("sendMessage", "500", chat_id=111)
    reply = await h.ask(PRIVATE, ANN, "/start")
    assert "liqbot estimates" in reply["text"]
    assert [kind for kind, _ in h.fake.fault_times] == ["500"]
    assert h.fake.count("sendMessage") == 2 and len(h.fake.sent) == 1


async def test_a_persistent_5xx_ends_in_the_apology_after_three_tries(h: Harness) -> None:
    h.fake.inject("sendMessage", "500", "500", "500", chat_id=111)
    reply = await h.ask(PRIVATE, ANN, "/start")
    assert reply["text"] == APOLOGY
    times = [t for _, t in h.fake.fault_times]
    assert len(times) == 3 and times[2] - times[0] >= 2.9  # waited 1 s, then 2 s


async def test_a_refused_reply_is_not_retried(h: Harness) -> None:
    h.fake.inject("sendMessage", "400", chat_id=111)
    reply = await h.ask(PRIVATE, ANN, "/start")
    assert reply["text"] == APOLOGY and h.fake.count("sendMessage") == 2  # refused, apology


# --- the Subscribe button -------------------------------------------------------------------
async def test_subscribe_button_keeps_a_custom_subscription(h: Harness) -> None:
    await h.ask(PRIVATE, ANN, "/subscribe BTC 7m 1.5")
    levels = await h.ask(PRIVATE, ANN, "/levels BTC")
    button = levels["reply_markup"]["inline_keyboard"][0][2]
    assert (button["text"], button["callback_data"]) == ("Subscribe", "/subscribe BTC")
    n = len(h.fake.sent)
    h.fake.button(PRIVATE, ANN, button["callback_data"])
    reply = (await h.fake.wait_sent(n + 1))[n]
    assert reply["text"].startswith("Already subscribed to BTC/USDT:USDT: clusters ≥ $7.0M, "
                                    "alert within 1.5 %")
    assert "/subscribe BTC MIN_USD PCT" in reply["text"]
    assert subscribed(h) == [("BTC/USDT:USDT", 7e6, 1.5)]
    changed = await h.ask(PRIVATE, ANN, "/subscribe BTC 9m 1")  # explicit values still change
    assert changed["text"].startswith("Subscribed to BTC/USDT:USDT")
    assert subscribed(h) == [("BTC/USDT:USDT", 9e6, 1.0)]


async def test_subscribe_button_without_a_subscription_uses_the_defaults(h: Harness) -> None:
    h.fake.button(PRIVATE, ANN, "/subscribe BTC")
    [reply] = await h.fake.wait_sent(1)
    assert reply["text"].startswith("Subscribed to BTC/USDT:USDT")
    a = h.cfg.alerts
    assert subscribed(h) == [("BTC/USDT:USDT", a.min_usd, a.approach_pct)]
