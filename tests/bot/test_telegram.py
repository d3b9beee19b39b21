"""Telegram adapter end to end: real PTB 22 against a loopback Bot API server.

Built from real parts: the demo's replay config (bundled candles), an in-memory Store, the real
Service (its dispatcher on the replay's virtual clock, so backoff is replayed time) and the real
CommandCore. Nothing of ours is mocked; only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.charts import ChartCache
from bot.commands.core import APOLOGY, CommandCore
from bot.commands.table import COMMANDS
from bot.config import Config, ConsoleSection, Secret, TelegramSection, parse_config
from bot.demo import DemoOptions, demo_config
from bot.errors import ConfigError
from bot.market.replay import ReplaySource
from bot.service import Service
from bot.store import Chat, OutboxRow, Store
from bot.telegram_adapter import TelegramAdapter
from bot.wiring import make_adapters, make_service, make_source
from tests.bot.fake_telegram import ANN, BOB, CAT, FORUM, GROUP, PRIVATE, TOKEN, FakeTelegram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAYS = 10  # replayed from the end of the bundled file: alerts fire within the first day


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (PTBDeprecationWarning) when it builds RetryAfter with int seconds unless
    # opted in to timedeltas; pytest turns warnings into errors, which would break the retry.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@dataclass
class Harness:
    fake: FakeTelegram
    adapter: TelegramAdapter
    service: Service
    store: Store
    replay: ReplaySource
    cfg: Config
    steps: int = 0

    @property
    def symbol(self) -> str:
        return self.cfg.bot.symbols[0]

    async def ask(self, chat: dict[str, Any], user: dict[str, Any], text: str,
                  **kw: Any) -> dict[str, Any]:
        """Push one command update; return the bot's next message."""
        n = len(self.fake.sent)
        self.fake.command(chat, user, text, **kw)
        return (await self.fake.wait_sent(n + 1))[n]

    async def step(self, dispatch: bool = True) -> None:
        """One replayed candle: recompute every 4 (like the demo), price tick, dispatch."""
        assert self.replay.advance(), "replay ran out"
        self.steps += 1
        if self.steps % 4 == 0:
            await self.service.recompute(self.symbol)
        await self.service.price_tick(self.symbol)
        if dispatch:
            await self.service.dispatch()

    def chat(self, chat_id: int, thread: int | None = None) -> Chat:
        chat = self.store.find_chat("telegram", chat_id, thread)
        assert chat is not None, f"no chat {chat_id}"
        return chat


def telegram_config(base_url: str, token: str, admins: tuple[str, ...] = ()) -> Config:
    cfg = demo_config(DemoOptions(days=DAYS), ":memory:")
    return replace(cfg, console=ConsoleSection(enabled=False),
                   bot=replace(cfg.bot, admins=admins),
                   telegram=TelegramSection(enabled=True, base_url=base_url,
                                            token=Secret(token)))


@asynccontextmanager
async def running(max_retries: int = 1, retry_after: int = 1,
                  admins: tuple[str, ...] = ()) -> AsyncIterator[Harness]:
    async with FakeTelegram(retry_after=retry_after, max_poll_s=0.2) as fake:
        cfg = telegram_config(fake.base_url, fake.token, admins)
        store = Store(memory=True)
        source = make_source(cfg)
        assert isinstance(source, ReplaySource)
        adapter = TelegramAdapter(cfg.telegram, poll_timeout_s=1, max_retries=max_retries)
        service = Service(cfg, source, store, {adapter.platform: adapter.notifier},
                          clock_ms=lambda: source.now_ms)
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        await service.recompute(cfg.bot.symbols[0])
        await adapter.start(core)
        try:
            yield Harness(fake, adapter, service, store, source, cfg)
        finally:
            await adapter.stop()
            store.close()


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        yield harness


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in messages]


# --- commands ------------------------------------------------------------------------------------
async def test_startup_sets_the_menu_from_the_command_table(h: Harness) -> None:
    await h.fake.wait_calls("getUpdates")
    methods = [m for m, _ in h.fake.calls]
    assert methods[:4] == ["getMe", "setMyCommands", "deleteWebhook", "getUpdates"]
    assert h.fake.commands == [{"command": c.name, "description": c.help} for c in COMMANDS]


async def test_private_chat_commands(h: Harness) -> None:
    start = await h.ask(PRIVATE, ANN, "/start")
    assert "liqbot estimates" in start["text"] and start["parse_mode"] == "HTML"

    help_ = await h.ask(PRIVATE, ANN, "/help")
    for c in COMMANDS:
        assert c.usage in help_["text"]

    levels = await h.ask(PRIVATE, ANN, "/levels BTC")
    assert "Shorts above" in levels["text"] and "Longs below" in levels["text"]
    buttons = [b["callback_data"] for b in levels["reply_markup"]["inline_keyboard"][0]]
    assert buttons == ["/heatmap BTC 24h", "/map BTC", "/subscribe BTC"]

    chart = await h.ask(PRIVATE, ANN, "/heatmap BTC 24h")
    assert chart["photo"].startswith(PNG_SIGNATURE) and len(chart["photo"]) > 10_000
    assert chart["filename"] == "heatmap-24h.png"
    assert "liquidation heatmap, 24h" in chart["caption"]

    sub = await h.ask(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
    assert sub["text"].startswith("Subscribed to BTC/USDT:USDT")
    [s] = h.store.list_subscriptions(h.chat(111).id)
    assert (s.min_usd, s.approach_pct) == (1_000_000, 0.5)

    unsub = await h.ask(PRIVATE, ANN, "/unsubscribe BTC")
    assert unsub["text"] == "Unsubscribed from BTC/USDT:USDT."
    assert h.store.list_subscriptions(h.chat(111).id) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("/subscribe BTC lots", "Usage: /subscribe SYM [MIN_USD] [PCT]"),
    ("/heatmap BTC 2y", "Usage: /heatmap [SYM] [12h|24h|3d|7d|30d]"),
    ("/unlevel", "Usage: /unlevel ID"),
    ("/frobnicate", "Unknown command /frobnicate"),
])
async def test_malformed_commands_are_answered_with_usage(h: Harness, text: str,
                                                          expected: str) -> None:
    reply = await h.ask(PRIVATE, ANN, text)
    assert expected in reply["text"]


async def test_user_text_is_html_escaped(h: Harness) -> None:
    reply = await h.ask(PRIVATE, ANN, "/level BTC 8k <b>bold</b> & co")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in reply["text"]
    assert "<b>" not in reply["text"]


async def test_inline_button_runs_its_command(h: Harness) -> None:
    h.fake.button(PRIVATE, ANN, "/map BTC")
    [photo] = await h.fake.wait_sent(1)
    assert photo["photo"].startswith(PNG_SIGNATURE) and photo["filename"] == "map.png"
    assert len(h.fake.answered) == 1


# --- groups --------------------------------------------------------------------------------------
async def test_group_admin_check_uses_get_chat_member_only_when_needed(h: Harness) -> None:
    h.fake.admins.add((GROUP["id"], CAT["id"]))
    refused = await h.ask(GROUP, BOB, "/subscribe BTC 1m 0.5")
    assert refused["text"] == "Only chat admins can use /subscribe in a group."
    assert h.store.find_chat("telegram", GROUP["id"]) is None
    assert h.fake.count("getChatMember") == 1

    ok = await h.ask(GROUP, CAT, "/subscribe BTC 1m 0.5")
    assert ok["text"].startswith("Subscribed to BTC/USDT:USDT")
    assert h.chat(GROUP["id"]).is_group
    assert h.fake.count("getChatMember") == 2

    await h.ask(GROUP, CAT, "/unsubscribe BTC")  # cached: no new lookup
    levels = await h.ask(GROUP, BOB, "/levels")  # anyone, no lookup
    assert "Shorts above" in levels["text"]
    assert h.fake.count("getChatMember") == 2

    h.fake.button(GROUP, BOB, "/subscribe BTC")  # the button is no way around the check
    n = len(h.fake.sent)
    assert (await h.fake.wait_sent(n + 1))[n]["text"].startswith("Only chat admins")


async def test_anonymous_admin_posting_as_the_group_is_an_admin(h: Harness) -> None:
    anon = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username":
            "GroupAnonymousBot"}
    reply = await h.ask(GROUP, anon, "/subscribe BTC", sender_chat=GROUP)
    assert reply["text"].startswith("Subscribed")
    assert h.fake.count("getChatMember") == 0


async def test_configured_bot_admin_needs_no_lookup() -> None:
    async with running(admins=(str(BOB["id"]),)) as h:
        reply = await h.ask(GROUP, BOB, "/subscribe BTC")
        assert reply["text"].startswith("Subscribed")
        assert h.fake.count("getChatMember") == 0


async def test_forum_topic_replies_and_alerts_stay_in_the_topic(h: Harness) -> None:
    h.fake.admins.add((FORUM["id"], CAT["id"]))
    reply = await h.ask(FORUM, CAT, "/subscribe BTC 1m 0.5", thread=7)
    assert reply["thread"] == 7 and reply["text"].startswith("Subscribed")
    chat = h.chat(FORUM["id"], 7)
    assert chat.thread_id == "7"
    n = len(h.fake.sent)
    while len(h.fake.sent) == n:
        await h.step()
    assert {m["thread"] for m in h.fake.sent[n:]} == {7}


# --- alerts --------------------------------------------------------------------------------------
async def test_replayed_move_alert_arrives_exactly_once(h: Harness) -> None:
    h.fake.admins.add((GROUP["id"], CAT["id"]))
    await h.ask(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
    await h.ask(GROUP, CAT, "/subscribe BTC 1m 0.5")
    n = len(h.fake.sent)
    for _ in range(60):
        await h.step()
        if any("approaching" in t for t in texts(h.fake.sent_to(111)[1:])):
            break
    alerts = h.fake.sent[n:]
    approach = [t for t in texts(h.fake.sent_to(111)) if "approaching" in t]
    assert len(approach) == 1, approach
    for _ in range(3):  # more passes deliver nothing new
        await h.service.dispatch()
    assert h.fake.sent[n:] == alerts
    counts = h.store.outbox_counts()
    assert counts["sent"] == len(alerts) and counts["pending"] == counts["failed"] == 0
    per_chat = Counter((m["chat_id"], m["text"]) for m in alerts)
    assert set(per_chat.values()) == {1}
    assert {m["chat_id"] for m in alerts} == {111, GROUP["id"]}
    assert all(m["parse_mode"] == "HTML" for m in alerts)


async def pending_row_for(h: Harness, chat_id: int) -> None:
    """Replay (without dispatching) until ``chat_id`` has an alert due."""
    for _ in range(60):
        await h.step(dispatch=False)
        if any(r.chat.chat_id == str(chat_id) for r in h.store.due(h.replay.now_ms)):
            return
    raise AssertionError("no alert became due")


@pytest.mark.parametrize(("fault", "outcome"), [
    ("403", "deactivated"), ("gone", "deactivated"), ("migrate", "deactivated"),
    ("500", "retried"), ("400", "rejected"),
])
async def test_delivery_faults(h: Harness, fault: str, outcome: str,
                               caplog: pytest.LogCaptureFixture) -> None:
    await h.ask(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
    await pending_row_for(h, 111)
    n = len(h.fake.sent)
    h.fake.inject("sendMessage", fault, chat_id=111)
    stats = await h.service.dispatcher.run_once()
    assert [kind for kind, _ in h.fake.fault_times] == [fault]
    chat = h.chat(111)
    if outcome == "deactivated":
        assert not chat.active and stats.deactivated == 1
        assert h.store.due(h.replay.now_ms + 10**9) == []
        # no new rows for a deactivated chat
        for _ in range(8):
            await h.step()
        assert all(m["chat_id"] != 111 for m in h.fake.sent[n:])
    elif outcome == "rejected":  # this message fails at once; the chat stays active
        assert chat.active and stats.failed == 1 and stats.retried == 0
        assert h.store.outbox_counts()["failed"] == 1
    else:
        assert chat.active and stats.retried == 1
        assert h.store.outbox_counts()["pending"] >= 1
    if fault == "400":
        assert "alert to chat 111 (thread -) rejected" in caplog.text


async def test_retry_after_on_an_alert_reschedules_the_row() -> None:
    async with running(max_retries=0, retry_after=120) as h:
        await h.ask(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
        await pending_row_for(h, 111)
        now = h.replay.now_ms
        h.fake.inject("sendMessage", "429", chat_id=111)
        stats = await h.service.dispatcher.run_once()
        assert stats.retried >= 1

        def mine(rows: list[OutboxRow]) -> list[OutboxRow]:
            return [r for r in rows if r.chat.chat_id == "111"]

        assert mine(h.store.due(now + 119_000)) == []  # retry_after honoured, not 2 s backoff
        [row] = mine(h.store.due(now + 121_000))
        before = len(h.fake.sent_to(111))
        await h.step()  # one replayed hour later the row is due and goes out once
        assert len(h.fake.sent_to(111)) > before
        assert [r for r in h.store.due(h.replay.now_ms) if r.id == row.id] == []


async def test_retry_after_on_a_reply_is_waited_out_once(h: Harness) -> None:
    h.fake.inject("sendMessage", "429", chat_id=111)
    reply = await h.ask(PRIVATE, ANN, "/start")
    [(kind, t_fault)] = h.fake.fault_times
    assert kind == "429" and reply["t"] - t_fault >= 1.0
    assert len(h.fake.sent) == 1


# --- errors --------------------------------------------------------------------------------------
async def test_handler_error_is_logged_redacted_and_apologised(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    h.fake.inject("sendMessage", "400", chat_id=111)  # the reply itself is rejected
    apology = await h.ask(PRIVATE, ANN, "/start")
    assert apology["text"] == APOLOGY
    assert "error handling update in chat 111" in caplog.text
    assert "HTTP Request: POST" in caplog.text and "bot<telegram-token>/sendMessage" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


async def test_rejected_token_is_a_config_error_and_nothing_keeps_running() -> None:
    async with FakeTelegram() as fake:
        cfg = telegram_config(fake.base_url, "999:wrong")
        adapter = TelegramAdapter(cfg.telegram)
        store = Store(memory=True)
        service, core = make_service(cfg, store, [adapter])
        with pytest.raises(ConfigError, match="rejected the token") as info:
            await adapter.start(core)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert not adapter.app.running and fake.count("getUpdates") == 0
        await adapter.stop()  # idempotent
        store.close()


async def test_liqbot_run_with_telegram_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real CLI process: config → make_adapters → run → adapter.start/stop on SIGTERM."""
    async with FakeTelegram(max_poll_s=0.2) as fake:
        cfg = tmp_path / "liqbot.toml"
        cfg.write_text(f'[bot]\nstore = "{tmp_path / "bot.db"}"\n[console]\nenabled = false\n'
                       f'[telegram]\nenabled = true\nbase_url = "{fake.base_url}"\n')
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--config", str(cfg),
            env={**os.environ, "TELEGRAM_TOKEN": TOKEN}, stderr=asyncio.subprocess.PIPE)
        try:
            await fake.wait_calls("getUpdates", timeout=40)
            fake.command(PRIVATE, ANN, "/levels")
            [reply] = await fake.wait_sent(1, timeout=20)
            assert "Shorts above" in reply["text"]
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        log = err.decode()
        assert proc.returncode == 0, log
        assert "telegram: polling as @liqbot_test_bot" in log
        assert "stopped (store integrity ok)" in log
        assert TOKEN not in log and "<telegram-token>" in log  # httpx request lines, redacted


# --- wiring --------------------------------------------------------------------------------------
def test_config_with_telegram_enabled_builds_the_adapter() -> None:
    cfg = parse_config('[telegram]\nenabled = true\nbase_url = "http://127.0.0.1:9/bot"\n'
                       '[console]\nenabled = false\n', env={"TELEGRAM_TOKEN": TOKEN})
    [adapter] = make_adapters(cfg)
    assert isinstance(adapter, TelegramAdapter) and adapter.platform == "telegram"
    assert TOKEN not in repr(cfg)
