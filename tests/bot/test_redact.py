"""The one redaction home (bot/redact.py): token shapes, the log filter on the root handlers,
``-v`` (DEBUG) output of discord.py with a real interaction, and the outbox's stored errors.

Real adapters against the loopback fakes; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from bot import redact
from bot.alerts import SymbolState
from bot.dispatcher import Dispatcher
from bot.store import Store
from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.fake_discord import interaction_payload
from tests.bot.fake_telegram import FAULTS
from tests.bot.test_discord import CHANNEL, SYMBOL, discord_api, started_bot
from tests.bot.test_security import event
from tests.bot.test_telegram import running

# Token-shaped strings that no adapter registered (another bot's, pasted into an error text).
TG_SHAPED = "7654321098:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
DC_SHAPED = "MTA5ODc2NTQzMjEwOTg3NjU0MzIx.GaBcDe.k3yL0ng3rTh4nTw3nty7Ch4rsXyZ_0123456789"
INTERACTION = ("aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTp2eU5QWnRLZ0pXaWJ6eGFSWmZ0SVFpc0J4U"
               "HdHR2FNQ2VZUEFTdnM1")


# --- the function ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "gone"), [
    (f"POST https://api.telegram.org/bot{TG_SHAPED}/sendMessage", TG_SHAPED),
    (f"token {DC_SHAPED} refused", DC_SHAPED),
    (f"POST https://discord.com/api/v10/interactions/1234/{INTERACTION}/callback", INTERACTION),
    (f"POST https://discord.com/api/v10/webhooks/900/{INTERACTION}?wait=1", INTERACTION),
    (f"https://discord.com/api/webhooks/900/{INTERACTION}/messages/@original", INTERACTION),
    (f"{{'t': 'INTERACTION_CREATE', 'd': {{'id': '5', 'token': '{INTERACTION}'}}}}", INTERACTION),
    (json.dumps({"op": 2, "d": {"token": "any-secret-value-1"}}), "any-secret-value-1"),
    ("{'Authorization': 'Bot abc.def-ghi_jkl'}", "abc.def-ghi_jkl"),
])
def test_token_shapes_are_redacted(text: str, gone: str) -> None:
    clean = redact.redact(text)
    assert gone not in clean and clean != text


def test_registered_secrets_and_extra_strings_are_redacted() -> None:
    redact.register("plain-secret-of-some-bot", "<label>")
    assert redact.redact("x plain-secret-of-some-bot y") == "x <label> y"
    assert redact.redact("a one-off-secret b", also=("one-off-secret", None)) == "a <secret> b"
    redact.register("abc")  # too short to be a secret: ignored, words survive
    assert redact.redact("abcdef") == "abcdef"


@pytest.mark.parametrize("text", [
    "BTC/USDT:USDT crossed your level 95,000 at 2026-11-25 12:00:00 UTC",
    "POST https://discord.com/api/v10/channels/555000000000000001/messages has returned 200",
    "HTTP Request: POST http://127.0.0.1:8081/bot<telegram-token>/getUpdates",
    "bot.commands.market_cmds: command /levels failed",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.redact(text) == text


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args,
                             (type(exc), exc, None) if exc else None)


def test_filter_scrubs_messages_args_tracebacks_and_stacks() -> None:
    rec = _record("HTTP Request: POST %s", f"https://api.telegram.org/bot{TG_SHAPED}/getMe")
    assert redact.FILTER.filter(rec)
    assert rec.getMessage() == (
        f"HTTP Request: POST https://api.telegram.org/bot{redact.TELEGRAM}/getMe")
    rec = _record("failed", exc=RuntimeError(f"GET /bot{TG_SHAPED}/x"))
    rec.stack_info = f"Stack: {DC_SHAPED}"
    redact.FILTER.filter(rec)
    text = logging.Formatter().format(rec)
    assert TG_SHAPED not in text and DC_SHAPED not in text and redact.TELEGRAM in text


# --- -v output with discord.py's own DEBUG lines ------------------------------------------------
@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A DEBUG handler on the root logger, like ``liqbot run -v``'s basicConfig handler."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


async def test_verbose_discord_logs_carry_no_interaction_or_bot_token(
        caplog: pytest.LogCaptureFixture, root_stream: io.StringIO) -> None:
    caplog.set_level(logging.DEBUG)
    async with discord_api() as fake, started_bot(fake, gateway=True):
        deadline = asyncio.get_running_loop().time() + 10
        while not fake.identify:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        # A chart: the interaction token is in the gateway event, the callback URL and the
        # follow-up's webhook URL.
        await fake.dispatch("INTERACTION_CREATE", interaction_payload(
            "map", {"symbol": "BTC"}, interaction_id=5, channel_id=CHANNEL,
            token=INTERACTION))
        while not fake.followups:
            assert asyncio.get_running_loop().time() < deadline + 20
            await asyncio.sleep(0.02)
    assert fake.callbacks[0].path.endswith(f"/{INTERACTION}/callback")  # it was really used
    records = "\n".join(r.getMessage() + (r.exc_text or "") + (r.stack_info or "")
                        for r in caplog.records)
    printed = root_stream.getvalue() + caplog.text
    for text in (records, printed):
        assert INTERACTION not in text
        assert DISCORD_TOKEN not in text
    assert "WebSocket Event" in printed and "INTERACTION_CREATE" in printed  # DEBUG was on
    assert f"/interactions/5/{redact.INTERACTION}/callback" in printed


# --- the outbox's last_error ------------------------------------------------------------------
def test_store_keeps_errors_redacted() -> None:
    store = Store(memory=True)
    try:
        chat = store.upsert_chat("telegram", 1)
        assert store.commit_tick(SYMBOL, SymbolState(), None,
                                 [event(chat.id, 0), event(chat.id, 1)], now=1) == 2
        first, second = store.due(10**13)
        store.mark_retry(first.id, 5, f"NetworkError: POST /bot{TG_SHAPED}/sendMessage")
        store.mark_failed(second.id, f"rejected: {DC_SHAPED}")
        store.deactivate_chat(chat.id, f"forbidden: {TG_SHAPED}")
        stored = json.dumps(list(store.db.query(
            "SELECT last_error FROM outbox")) + list(store.db.query(
                "SELECT deactivated_reason FROM chats")))
        assert TG_SHAPED not in stored and DC_SHAPED not in stored
        assert redact.TELEGRAM in stored and redact.DISCORD in stored
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


async def test_a_token_in_a_platform_error_reaches_neither_store_nor_logs(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bot API error descriptions carrying token-shaped text, through the real notifier and
    dispatcher: a 500 (retried), a 400 (rejected) and a 403 (chat deactivated)."""
    caplog.set_level(logging.DEBUG)
    leak = f"{TG_SHAPED} {DC_SHAPED}"
    monkeypatch.setitem(FAULTS, "leak500", (500, f"Internal Server Error: {leak}", None))
    monkeypatch.setitem(FAULTS, "leak400", (400, f"Bad Request: {leak}", None))
    monkeypatch.setitem(FAULTS, "leak403", (403, f"Forbidden: {leak}", None))
    async with running(max_retries=0) as h:
        chats = [h.store.upsert_chat("telegram", i).id for i in (901, 902, 903)]
        h.store.commit_tick(SYMBOL, SymbolState(), None, [event(c) for c in chats], now=1)
        for chat_id, kind in zip((901, 902, 903), ("leak500", "leak400", "leak403"), strict=True):
            h.fake.inject("sendMessage", kind, chat_id=chat_id)
        stats = await Dispatcher(h.store, {"telegram": h.adapter.notifier},
                                 clock=lambda: 2).run_once()
        assert (stats.retried, stats.failed, stats.deactivated) == (1, 2, 1)
        stored = json.dumps(list(h.store.db.query("SELECT last_error FROM outbox"))
                            + list(h.store.db.query("SELECT deactivated_reason FROM chats")))
    assert "Internal Server Error" in stored and "rejected: bad request" in stored
    logged = caplog.text + "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "rejected row" in logged and "deactivated" in logged
    for text in (stored, logged):
        assert TG_SHAPED not in text and DC_SHAPED not in text

