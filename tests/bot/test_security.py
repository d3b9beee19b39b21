"""Security: tokens never leave where they belong, admin-only actions are refused, per-user
chart limits and per-chat caps hold, SQL is parameterised, private files are 0600.

Real adapters (PTB 22, discord.py 2) against the loopback fakes; nothing of ours is mocked.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import stat
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)

from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.commands.table import COMMANDS
from bot.config import Config, SourceSection
from bot.dispatcher import Dispatcher
from bot.errors import LimitExceededError
from bot.market.cache import MarketCache
from bot.store import MAX_LEVELS, MAX_SUBSCRIPTIONS, Store
from bot.wiring import make_source
from tests.bot.fake_discord import MANAGE_CHANNELS, SEND_MESSAGES, interaction_payload
from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.fake_telegram import ANN, BOB, CAT, GROUP, PRIVATE
from tests.bot.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.bot.helpers import private, started_service
from tests.bot.test_discord import discord_api, started_bot
from tests.bot.test_telegram import running

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT:USDT"
T0 = 1_764_000_000_000
ADMIN_COMMANDS = {c.name for c in COMMANDS if c.admin_in_groups}


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


def event(chat: int, epoch: int = 0) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYMBOL, ref="S1", epoch=epoch,
                      price=93_700.0, ts_ms=T0, side="short", low=94_000.0, high=94_400.0,
                      notional_usd=1.04e9, distance_pct=0.32)


FAKE_SERVER_LOGS = ("aiohttp.access", "aiohttp.server")  # the loopback fakes' own logs


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the bot's records would print: messages, tracebacks, stack info."""
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [r for r in caplog.records if not r.name.startswith(FAKE_SERVER_LOGS)]
    return "\n".join([fmt.format(r) for r in records] + [r.exc_text or "" for r in records])


# --- tokens -------------------------------------------------------------------------------------
async def test_telegram_token_stays_out_of_logs_replies_and_bodies(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = TELEGRAM_TOKEN.split(":")[1]
    async with running(max_retries=0) as h:
        fake = h.fake
        fake.inject("getUpdates", "500", "500")  # polling errors (PTB logs the URL)
        fake.inject("sendMessage", "400", chat_id=111)  # the reply fails → handler error
        await h.ask(PRIVATE, ANN, "/start")  # → apology
        fake.inject("getChatMember", "500")
        await h.ask(GROUP, BOB, "/subscribe BTC")  # admin lookup fails → refused, logged
        fake.inject("answerCallbackQuery", "500")
        fake.button(PRIVATE, ANN, "/levels")
        await fake.wait_sent(3)
        chats = [h.store.upsert_chat("telegram", i).id for i in (901, 902, 903, 904, 905)]
        h.store.commit_tick(SYMBOL, SymbolState(), None, [event(c) for c in chats], now=T0)
        for i, kind in zip((901, 902, 903, 904), ("403", "429", "500", "gone"), strict=True):
            fake.inject("sendMessage", kind, chat_id=i)
        stats = await Dispatcher(h.store, {"telegram": h.adapter.notifier},
                                 clock=lambda: T0).run_once()
        assert (stats.sent, stats.deactivated, stats.retried) == (1, 2, 2)
    text = logged(caplog)
    assert "HTTP Request: POST" in text and "<telegram-token>" in text  # redacted, not absent
    assert "error handling update" in text and "getChatMember failed" in text
    assert TELEGRAM_TOKEN not in text and secret not in text
    bodies = json.dumps([p for _, p in fake.calls], default=repr)
    replies = json.dumps(fake.sent, default=repr)
    assert secret not in bodies and secret not in replies
    assert len(fake.calls) > 10


async def test_discord_token_stays_out_of_logs_replies_and_bodies(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    interaction_token = "interaction-token-SECRET"
    async with discord_api() as fake, started_bot(fake) as b:
        adapter, store = b.adapter, b.store
        fake.inject("callback", 400)  # the answer fails → on_tree_error → apology
        adapter.client._connection.parse_interaction_create(interaction_payload(  # type: ignore[arg-type]
            "alerts", interaction_id=77, channel_id=1, token=interaction_token))
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "CommandTree-invoker"]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        chans = (501, 502, 503, 504)
        fake.forbidden.add(501)
        fake.deleted.add(502)
        fake.inject("messages", 503)
        ids = [store.upsert_chat("discord", c, is_group=True).id for c in chans]
        store.commit_tick(SYMBOL, SymbolState(), None, [event(c) for c in ids], now=T0)
        stats = await Dispatcher(store, {"discord": adapter.notifier},
                                 clock=lambda: T0).run_once()
        assert (stats.sent, stats.deactivated, stats.retried) == (1, 2, 1)
    text = logged(caplog)
    assert "discord /alerts failed" in text and "Missing Permissions" in text
    assert DISCORD_TOKEN not in text
    warnings_up = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                            if r.levelno >= logging.INFO
                            and not r.name.startswith(FAKE_SERVER_LOGS))
    assert interaction_token not in warnings_up
    for p in fake.posted:  # the bot token belongs in the Authorization header only
        assert DISCORD_TOKEN not in json.dumps(p.payload)
        assert DISCORD_TOKEN not in json.dumps({k: v for k, v in p.headers.items()
                                                if k.lower() != "authorization"})
        assert DISCORD_TOKEN not in p.path
    assert any(p.headers.get("Authorization") == f"Bot {DISCORD_TOKEN}" for p in fake.posted)


# --- admin-only actions -------------------------------------------------------------------------
ADMIN_TEXT = {"subscribe": "/subscribe BTC 1m 0.5", "unsubscribe": "/unsubscribe BTC",
              "level": "/level BTC 8k", "unlevel": "/unlevel 1",
              "subscribe_liqs": "/subscribe_liqs BTC 1m",
              "unsubscribe_liqs": "/unsubscribe_liqs BTC", "quiet": "/quiet BTC off",
              "subscribe_top": "/subscribe_top 3", "unsubscribe_top": "/unsubscribe_top"}


def test_admin_text_covers_every_admin_command() -> None:
    assert set(ADMIN_TEXT) == ADMIN_COMMANDS


async def test_telegram_group_members_cannot_change_alerts() -> None:
    async with running() as h:
        h.fake.admins.add((GROUP["id"], CAT["id"]))
        assert (await h.ask(GROUP, CAT, ADMIN_TEXT["subscribe"]))["text"].startswith(
            "Subscribed")
        assert (await h.ask(GROUP, CAT, ADMIN_TEXT["level"]))["text"].startswith("Level #1")
        chat = h.chat(GROUP["id"])
        before = (h.store.list_subscriptions(chat.id), h.store.list_levels(chat.id))
        for name, text in ADMIN_TEXT.items():
            reply = await h.ask(GROUP, BOB, text)
            assert reply["text"] == f"Only chat admins can use /{name} in a group.", reply
        assert (h.store.list_subscriptions(chat.id), h.store.list_levels(chat.id)) == before
        for name in ("unlevel", "unsubscribe"):  # the admin may
            reply = await h.ask(GROUP, CAT, ADMIN_TEXT[name])
            assert "Only chat admins" not in reply["text"] and "removed" in reply["text"] or (
                "Unsubscribed" in reply["text"])
        assert h.store.list_subscriptions(chat.id) == [] == h.store.list_levels(chat.id)


async def test_discord_members_without_manage_channels_cannot_change_alerts() -> None:
    options = {"subscribe": {"symbol": "BTC", "min_usd": "1m"}, "unsubscribe": {"symbol": "BTC"},
               "level": {"symbol": "BTC", "price": "8k"}, "unlevel": {"level_id": 1},
               "subscribe_liqs": {"symbol": "BTC", "min_usd": "1m"},
               "unsubscribe_liqs": {"symbol": "BTC"}, "quiet": {"symbol": "BTC", "mode": "off"},
               "subscribe_top": {"count": 3}, "unsubscribe_top": {}}
    assert set(options) == ADMIN_COMMANDS
    async with discord_api() as fake, started_bot(fake) as b:
        store = b.store

        async def call(name: str, permissions: int) -> str:
            n = len(fake.callbacks)
            await b.call(name, options[name], channel_id=77, permissions=permissions)
            text = str(fake.callbacks[n].payload["data"]["embeds"][0]["description"])
            return text.replace("\\_", "_")  # as Discord shows it (markdown is escaped)

        admin = SEND_MESSAGES | MANAGE_CHANNELS
        assert (await call("subscribe", admin)).startswith("Subscribed")
        assert (await call("level", admin)).startswith("Level #1")
        chat = store.find_chat("discord", 77)
        assert chat is not None
        before = (store.list_subscriptions(chat.id), store.list_levels(chat.id))
        for name in options:
            assert await call(name, SEND_MESSAGES) == (
                f"Only chat admins can use /{name} in a group.")
        assert (store.list_subscriptions(chat.id), store.list_levels(chat.id)) == before
        assert "removed" in await call("unlevel", admin)
        assert "Unsubscribed" in await call("unsubscribe", admin)


# --- rate limits and caps -----------------------------------------------------------------------
async def test_telegram_chart_rate_limit_is_per_user() -> None:
    async with running() as h:
        limit = h.cfg.limits.charts_per_minute
        replies = [await h.ask(PRIVATE, ANN, "/map") for _ in range(limit + 2)]
        assert [("photo" in r) for r in replies] == [True] * limit + [False] * 2
        assert all(r["text"].startswith("Chart limit reached") for r in replies[limit:])
        bob = await h.ask({"id": BOB["id"], "type": "private", "first_name": "Bob"}, BOB,
                          "/heatmap")
        assert "photo" in bob  # another user is not limited by Ann's use
        assert not (await h.ask(PRIVATE, ANN, "/levels"))["text"].startswith("Chart limit")


async def test_per_chat_caps_hold() -> None:
    service, core, store = await started_service()
    try:
        price = service.board.get(SYMBOL).price  # type: ignore[union-attr]
        for i in range(MAX_LEVELS):
            reply = await core.handle(f"/level BTC {price * (1 + i / 1000):.2f}", private())
            assert reply is not None and not reply.error, reply.text
        refused = await core.handle(f"/level BTC {price:.2f}", private())
        assert refused is not None and refused.error and "50 levels (the maximum)" in refused.text
        chat = store.find_chat("console", "c1")
        assert chat is not None and len(store.list_levels(chat.id)) == MAX_LEVELS == 50
        for i in range(MAX_SUBSCRIPTIONS):
            store.subscribe(chat.id, f"S{i}/USDT:USDT")
        with pytest.raises(LimitExceededError, match="20 subscriptions"):
            store.subscribe(chat.id, "ONE/MORE:USDT")
        store.subscribe(chat.id, "S0/USDT:USDT", min_usd=5.0)  # updating one is not a new one
        assert len(store.list_subscriptions(chat.id)) == MAX_SUBSCRIPTIONS == 20
    finally:
        store.close()


# --- SQL --------------------------------------------------------------------------------------
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE|DROP|ALTER|REPLACE|WHERE)\b")
# Interpolations that are not user data, each checked by hand (file, interpolated expression):
ALLOWED = {
    ("bot/db/sqlite.py", "synchronous"),  # PRAGMAs take no parameters; FULL|NORMAL checked first
    ("bot/db/sqlite.py", "int(version)"),  # PRAGMA user_version, an int from MIGRATIONS
    # IN lists of ? placeholders (bot.store._marks) and the fixed lock clause; values are params
    ("bot/store.py", "where"), ("bot/store.py", "lock"), ("bot/store.py", "marks"),
    ("bot/store.py", "_marks(len(ids))"),
    ("bot/market/cache.py", "table"),  # loop over the constant ("candles", "open_interest")
}


def _sql_interpolations(tree: ast.AST) -> list[tuple[str, int]]:
    """(interpolated expression, line) of every SQL-looking string built by formatting."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values
                           if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL.search(text):
                found += [(ast.unparse(v.value), node.lineno) for v in node.values
                          if isinstance(v, ast.FormattedValue)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str) and SQL.search(
                        side.value):
                    other = node.right if side is node.left else node.left
                    if not (isinstance(other, ast.Constant) and isinstance(other.value, str)):
                        found.append((ast.unparse(other), node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
              and isinstance(node.func.value.value, str) and SQL.search(node.func.value.value)):
            found.append((ast.unparse(node), node.lineno))
    return found


def test_sql_is_only_built_from_constants_and_parameters() -> None:
    files = sorted((ROOT / "bot").rglob("*.py"))
    assert len(files) > 30
    seen, bad = set(), []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for expr, line in _sql_interpolations(ast.parse(path.read_text(), rel)):
            if (rel, expr) in ALLOWED:
                seen.add((rel, expr))
            else:
                bad.append(f"{rel}:{line}: SQL built with {expr!r}")
    assert bad == [], "\n".join(bad)
    assert seen == ALLOWED  # the allow-list is not stale
    synchronous = (ROOT / "bot/db/sqlite.py").read_text()
    assert 'if synchronous not in ("FULL", "NORMAL")' in synchronous


def test_the_scanner_catches_formatted_sql() -> None:
    tree = ast.parse('db.execute(f"SELECT * FROM t WHERE a = {x}")\n'
                     'db.execute("DELETE FROM t WHERE a = %s" % y)\n'
                     'db.query("UPDATE t SET a = " + z)\n'
                     'db.execute("SELECT {}".format(w))\n'
                     'db.execute("SELECT * FROM t WHERE a = ?", (v,))\n')
    assert [e for e, _ in _sql_interpolations(tree)] == [
        "x", "y", "z", "'SELECT {}'.format(w)"]


async def test_injection_payloads_are_stored_verbatim() -> None:
    service, core, store = await started_service()
    try:
        price = service.board.get(SYMBOL).price  # type: ignore[union-attr]
        note = "'); DROP TABLE levels; -- \" OR 1=1 <b>"
        reply = await core.handle(f"/level BTC {price:.0f} {note}", private())
        assert reply is not None and not reply.error
        [level] = store.active_levels()
        assert level.note == note
        bad = await core.handle("/subscribe BTC';DROP/**/TABLE/**/chats;--", private())
        assert bad is not None and bad.error
        assert store.integrity_ok() and store.find_chat("console", "c1") is not None
        listing = await core.handle("/alerts", private())
        assert listing is not None and note in listing.text
    finally:
        store.close()


# --- files --------------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "liqbot.db"
    store = Store(path)
    store.upsert_chat("telegram", 1)
    try:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("liqbot.db")]
        assert {p.name for p in files} >= {"liqbot.db", "liqbot.db-wal"}
        assert {p.name: _mode(p) for p in files} == dict.fromkeys((p.name for p in files),
                                                                  0o600)
    finally:
        store.close()


async def test_market_cache_next_to_the_store_is_private(tmp_path: Path) -> None:
    cache = MarketCache(tmp_path / "direct.market.db")
    assert _mode(tmp_path / "direct.market.db") == 0o600
    cache.db.close()
    cfg = replace(Config(), source=SourceSection(kind="live"),
                  bot=replace(Config().bot, store=str(tmp_path / "bot.db")))
    source = make_source(cfg)  # the live source wires its cache beside the store
    try:
        assert _mode(tmp_path / "bot.market.db") == 0o600
    finally:
        await source.close()
