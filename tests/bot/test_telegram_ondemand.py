"""Telegram and a cold on-demand request: "Computing SOL…" at once, then edited into the answer.

Real PTB 22 against the loopback Bot API fake; real ccxt (CcxtSource) against the Binance fake
for the untracked symbol; the real Service and command core. A warm request (kept or tracked
symbol) is answered directly; an error is one message, no placeholder left behind; a chart
(a photo: a text message cannot become one) is sent, then the placeholder is deleted.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import (
    Config,
    ConsoleSection,
    LimitsSection,
    Secret,
    SourceSection,
    TelegramSection,
)
from bot.console import ConsoleNotifier
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store
from bot.telegram_adapter import TelegramAdapter, computing_text
from tests.bot.fake_binance import FakeBinance
from tests.bot.fake_telegram import ANN, PRIVATE, FakeTelegram

BTC, SOL = "BTC/USDT:USDT", "SOL/USDT:USDT"
KLINES = "/fapi/v1/klines"
CHAT = PRIVATE["id"]


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # as in test_telegram.py


@dataclass
class Rig:
    tg: FakeTelegram
    binance: FakeBinance

    def send_calls(self) -> list[str]:
        """The text of every sendMessage call, in order (what the chat saw first)."""
        return [p["text"] for m, p in self.tg.calls if m == "sendMessage"]

    async def ask(self, text: str, methods: dict[str, int]) -> None:
        """Send ``text`` and wait until the bot made ``methods`` calls (cumulative counts)."""
        self.tg.command(PRIVATE, ANN, text)
        for method, n in methods.items():
            await self.tg.wait_calls(method, n)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with FakeTelegram(max_poll_s=0.2) as tg, FakeBinance() as binance:
        source = CcxtSource(["binanceusdm"], lookback_days=1,
                            retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05),
                            exchange_factory=binance_factory(binance.url, rateLimit=2),
                            clock=lambda: binance.now_ms)
        cfg = replace(Config(), bot=replace(Config().bot, symbols=(BTC,)),
                      source=SourceSection(kind="live", lookback_days=1.0),
                      limits=LimitsSection(on_demand_symbols=5),
                      console=ConsoleSection(enabled=False),
                      telegram=TelegramSection(enabled=True, base_url=tg.base_url,
                                               token=Secret(tg.token)))
        store = Store(memory=True)
        adapter = TelegramAdapter(cfg.telegram, poll_timeout_s=1)
        service = Service(cfg, source, store, {"console": ConsoleNotifier(io.StringIO())},
                          clock_ms=lambda: binance.now_ms)
        core = CommandCore(cfg, service.board, source, store, ChartCache(),
                           ondemand=service.ondemand)
        await service.recompute(BTC)
        await adapter.start(core)
        try:
            yield Rig(tg, binance)
        finally:
            await adapter.stop()
            await source.close()
            store.close()


def _only_message(rig: Rig) -> dict[str, Any]:
    (msg,) = rig.tg.sent_to(CHAT)
    return msg


async def test_cold_levels_posts_computing_then_edits_it_into_the_answer(rig: Rig) -> None:
    await rig.ask("/levels SOL", {"sendMessage": 1, "editMessageText": 1})
    assert rig.send_calls() == [computing_text(SOL)]
    assert computing_text(SOL).startswith("Computing SOL…")
    msg = _only_message(rig)  # one message in the chat: the placeholder, now the answer
    assert msg["text"].startswith("SOL/USDT:USDT · price") and msg["edits"] == 1
    (edit,) = rig.tg.edited
    assert edit["message_id"] == msg["message_id"]
    edit_call = next(p for m, p in rig.tg.calls if m == "editMessageText")
    assert "Heatmap 24h" in edit_call["reply_markup"]  # the answer's buttons came with it

    # Warm: kept now, so answered directly, no placeholder, no edit.
    fetched = rig.binance.count(KLINES)
    await rig.ask("/levels SOL", {"sendMessage": 2})
    assert rig.send_calls()[1].startswith("SOL/USDT:USDT · price")
    assert rig.tg.count("editMessageText") == 1 and rig.binance.count(KLINES) == fetched


async def test_a_tracked_symbol_gets_no_placeholder(rig: Rig) -> None:
    await rig.ask("/levels BTC", {"sendMessage": 1})
    assert rig.send_calls()[0].startswith("BTC/USDT:USDT · price")
    await rig.ask("/heatmap BTC 12h", {"sendPhoto": 1})
    assert len(rig.send_calls()) == 1
    assert rig.tg.count("editMessageText") == 0 and rig.tg.count("deleteMessage") == 0


async def test_unknown_symbol_is_one_reply_without_placeholder(rig: Rig) -> None:
    await rig.ask("/levels BTCX", {"sendMessage": 1})
    msg = _only_message(rig)
    assert msg["text"].startswith("BTCX is not a perpetual on binanceusdm; did you mean BTC?")
    assert "Computing" not in msg["text"] and msg["edits"] == 0
    assert rig.tg.count("deleteMessage") == 0


async def test_a_failed_fetch_turns_the_placeholder_into_the_error(rig: Rig) -> None:
    rig.binance.inject(KLINES, "500", "500", "500", "500")  # every try of the fetch fails
    await rig.ask("/levels SOL", {"sendMessage": 1, "editMessageText": 1})
    msg = _only_message(rig)  # one message: no placeholder left behind
    assert msg["text"].startswith("Could not estimate SOL/USDT:USDT just now")


async def test_cold_chart_is_sent_as_a_photo_and_the_placeholder_deleted(rig: Rig) -> None:
    await rig.ask("/heatmap SOL 12h", {"sendMessage": 1, "sendPhoto": 1, "deleteMessage": 1})
    placeholder, photo = rig.tg.sent_to(CHAT)
    assert placeholder["text"] == computing_text(SOL)
    assert photo["caption"].startswith("SOL/USDT:USDT liquidation heatmap, 12h")
    assert rig.tg.bot_deleted == [(CHAT, placeholder["message_id"])]
    order = [m for m, _ in rig.tg.calls if m in ("sendMessage", "sendPhoto", "deleteMessage")]
    assert order == ["sendMessage", "sendPhoto", "deleteMessage"]  # deleted once it is there
    # Warm now: the map comes at once as a photo, nothing to delete.
    await rig.ask("/map SOL", {"sendPhoto": 2})
    assert rig.tg.count("sendMessage") == 1 and rig.tg.count("deleteMessage") == 1
