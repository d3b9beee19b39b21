"""Alert lifecycle: approach → inside → broke of one (chat, cluster) is one message edited in
place (new messages only for the first approach and the break), against both loopback fakes,
including an edit the platform refuses (message deleted) and a restart between the steps."""

from __future__ import annotations

import io
import sqlite3
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from discord.http import Route

from bot.alerts import AlertEvent, EventKind, Subscription, lifecycle
from bot.config import Secret, TelegramSection
from bot.console import ConsoleNotifier
from bot.discord_adapter import DiscordNotifier, LiqClient
from bot.dispatcher import Dispatcher, Notifier
from bot.store import MIGRATIONS, SCHEMA_VERSION, Store
from bot.telegram_adapter import TelegramAdapter
from tests.bot.engine_helpers import SYM, T0, Run, short
from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.fake_discord import FakeDiscord
from tests.bot.fake_telegram import FakeTelegram

CHANNEL = 555_000_000_000_000_001
TG_CHAT = 111


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22 deprecation warning otherwise


def steps(chat: int) -> list[list[AlertEvent]]:
    """The real engine on one short cluster 94,000–94,400: [approach], [inside], [break]."""
    run = Run([Subscription(chat, SYM, min_usd=1e6, approach_pct=0.5)])
    c = [short()]
    run.tick(93_000, c)  # baseline, far away
    out = [run.tick(93_700, c), run.tick(94_100, c), run.tick(94_450, c, high=94_500)]
    assert [[e.kind for e in ev] for ev in out] == [
        [EventKind.APPROACH], [EventKind.INSIDE], [EventKind.BREAK]]
    return out


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        self.t += 1_000
        return self.t


def queue(store: Store, events: Sequence[AlertEvent]) -> None:
    assert store.commit_tick(SYM, run_state(), None, events, now=T0) == len(events)


def run_state():  # the engine state is not what these tests look at
    from bot.alerts import SymbolState
    return SymbolState()


# --- pure rules ---------------------------------------------------------------------------
def test_plan_edits_the_open_message_and_breaks_start_a_new_one() -> None:
    approach, inside, broke = (ev[0] for ev in steps(1))
    p1 = lifecycle.plan(approach, None)
    assert p1.edit_id is None and not p1.closed and len(p1.timeline) == 1
    t1 = lifecycle.Thread(1, "S1", "m1", p1.timeline, p1.closed)
    p2 = lifecycle.plan(inside, t1)
    assert p2.edit_id == "m1" and [k for k, _, _ in p2.timeline] == ["approach", "inside"]
    t2 = lifecycle.Thread(1, "S1", "m1", p2.timeline, p2.closed)
    p3 = lifecycle.plan(broke, t2)
    assert p3.edit_id is None and p3.closed
    assert [k for k, _, _ in p3.timeline] == ["approach", "inside", "break"]
    # After the break, the next approach (re-armed) is a new message with a fresh timeline.
    t3 = lifecycle.Thread(1, "S1", "m2", p3.timeline, True)
    p4 = lifecycle.plan(approach._replace(epoch=1), t3)
    assert p4.edit_id is None and len(p4.timeline) == 1
    text = lifecycle.text(broke, p3.timeline)
    assert text.splitlines()[1] == ("timeline: approach 12:02 at 93,700 → inside 12:03 at "
                                    "94,100 → broke 12:04 at 94,450")


def test_inside_fires_once_per_visit_and_not_with_the_approach_that_entered() -> None:
    run = Run([Subscription(1, SYM, min_usd=1e6, approach_pct=0.5)])
    c = [short()]
    run.tick(93_000, c)
    assert [e.kind for e in run.tick(94_100, c)] == [EventKind.APPROACH]  # jumped in: one
    assert run.tick(94_200, c) == []  # still inside: nothing more
    run.tick(93_000, c, dt=2 * 3_600_000)  # away (re-arms), past the cooldown
    assert [e.kind for e in run.tick(93_700, c)] == [EventKind.APPROACH]
    [inside] = run.tick(94_050, c)
    assert inside.kind is EventKind.INSIDE and inside.epoch == 1  # its second visit


# --- store migration ----------------------------------------------------------------------
def test_a_v2_store_file_migrates_to_threads_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    for stmt in MIGRATIONS[0] + MIGRATIONS[1]:
        conn.execute(stmt)
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO chats (platform, chat_id, created_ms) VALUES ('telegram', '7', 0)")
    conn.execute("INSERT INTO subscriptions (chat, symbol, min_usd, approach_pct, created_ms)"
                 " VALUES (1, ?, 1e6, 0.5, 0)", (SYM,))
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 3
    assert [s.symbol for s in store.list_subscriptions(1)] == [SYM]
    [approach] = steps(1)[0]
    queue(store, [approach])
    [row] = store.due(T0)
    store.mark_sent_thread(row.id, T0, 1, "S1", "42", (("approach", T0, 93_700.0),), False)
    thread = store.thread(1, "S1")
    assert thread is not None and thread.message_id == "42" and not thread.closed
    assert store.outbox_counts()["sent"] == 1
    assert store.prune_threads(T0 + 1) == 1 and store.thread(1, "S1") is None
    store.close()


# --- platforms ----------------------------------------------------------------------------
@asynccontextmanager
async def telegram(fake: FakeTelegram) -> AsyncIterator[Notifier]:
    adapter = TelegramAdapter(TelegramSection(enabled=True, base_url=fake.base_url,
                                              token=Secret(fake.token)))
    await adapter.app.initialize()
    adapter.notifier.started = True
    try:
        yield adapter.notifier
    finally:
        await adapter.stop()


@asynccontextmanager
async def discord_notifier(fake: FakeDiscord) -> AsyncIterator[Notifier]:
    old, Route.BASE = Route.BASE, fake.base
    client = LiqClient()
    await client.login(DISCORD_TOKEN)
    notifier = DiscordNotifier(client)
    notifier.online = True
    try:
        yield notifier
    finally:
        await client.close()
        Route.BASE = old


class Platform:
    """What a test reads back from a fake: the messages in the chat and their texts."""

    def __init__(self, name: str, fake: Any, chat_id: int) -> None:
        self.name, self.fake, self.chat_id = name, fake, chat_id

    def messages(self) -> list[tuple[str, str]]:
        """(message id, current text) in the order they were created."""
        if self.name == "telegram":
            return [(str(m["message_id"]), m["text"]) for m in self.fake.sent_to(self.chat_id)]
        return [(m["id"], m["embeds"][0]["description"]) for m in self.fake.messages[self.chat_id]]

    def edits(self) -> int:
        return len(self.fake.edited)

    def delete(self, message_id: str) -> None:
        if self.name == "telegram":
            self.fake.delete_message(self.chat_id, int(message_id))
        else:
            self.fake.deleted_messages.add(int(message_id))


@asynccontextmanager
async def platform(name: str) -> AsyncIterator[tuple[Platform, Callable[[], Any]]]:
    if name == "telegram":
        async with FakeTelegram() as fake:
            yield Platform(name, fake, TG_CHAT), lambda: telegram(fake)
    else:
        async with FakeDiscord() as fake:
            yield Platform(name, fake, CHANNEL), lambda: discord_notifier(fake)


PLATFORMS = ["telegram", "discord"]


async def deliver(store: Store, name: str, notifier: Notifier, events: Sequence[AlertEvent],
                  clock: Clock) -> None:
    queue(store, events)
    stats = await Dispatcher(store, {name: notifier}, clock=clock).run_once()
    assert (stats.sent, stats.failed, stats.retried) == (len(events), 0, 0)


@pytest.mark.parametrize("name", PLATFORMS)
async def test_approach_inside_break_is_one_edited_message_then_a_new_one(
        name: str, store: Store) -> None:
    clock = Clock()
    async with platform(name) as (p, connect), connect() as notifier:
        chat = store.upsert_chat(name, p.chat_id, is_group=name == "discord").id
        approach, inside, broke = steps(chat)
        await deliver(store, name, notifier, approach, clock)
        [(first_id, first_text)] = p.messages()
        assert "approaching" in first_text and "timeline" not in first_text
        await deliver(store, name, notifier, inside, clock)
        [(same_id, edited)] = p.messages()  # no new message: the first one now says inside
        assert same_id == first_id and p.edits() == 1
        assert "is inside" in edited and "timeline: approach 12:02" in edited
        await deliver(store, name, notifier, broke, clock)
        msgs = p.messages()
        assert len(msgs) == 2 and p.edits() == 1  # the break is a new message (a buzz)
        assert "broke through" in msgs[1][1]
        assert "approach 12:02 at 93,700 → inside 12:03 at 94,100 → broke 12:04" in msgs[1][1]
        thread = store.thread(chat, "S1")
        assert thread is not None and thread.closed and thread.message_id == msgs[1][0]
    store.close()


@pytest.mark.parametrize("name", PLATFORMS)
async def test_an_edit_the_platform_refuses_becomes_a_new_message(name: str,
                                                                  store: Store) -> None:
    clock = Clock()
    async with platform(name) as (p, connect), connect() as notifier:
        chat = store.upsert_chat(name, p.chat_id, is_group=name == "discord").id
        approach, inside, _ = steps(chat)
        await deliver(store, name, notifier, approach, clock)
        [(first_id, _)] = p.messages()
        p.delete(first_id)  # the user deleted the approach message
        await deliver(store, name, notifier, inside, clock)
        msgs = p.messages()
        assert len(msgs) == 2 and p.edits() == 0
        assert "is inside" in msgs[1][1] and "timeline: approach" in msgs[1][1]
        thread = store.thread(chat, "S1")
        assert thread is not None and thread.message_id == msgs[1][0]  # later edits go there
    store.close()


@pytest.mark.parametrize("name", PLATFORMS)
async def test_a_restart_between_approach_and_inside_edits_the_stored_message(
        name: str, tmp_path: Path) -> None:
    path, clock = tmp_path / "liqbot.db", Clock()
    async with platform(name) as (p, connect):
        store = Store(path)
        chat = store.upsert_chat(name, p.chat_id, is_group=name == "discord").id
        approach, inside, broke = steps(chat)
        async with connect() as notifier:
            await deliver(store, name, notifier, approach, clock)
        store.close()  # the process stops; a new one opens the same file
        store = Store(path)
        async with connect() as notifier:
            await deliver(store, name, notifier, inside, clock)
            [(_, edited)] = p.messages()
            assert p.edits() == 1 and "is inside" in edited
            await deliver(store, name, notifier, broke, clock)
        assert len(p.messages()) == 2
        store.close()


async def test_console_prints_the_update_as_a_line_naming_the_earlier_alert(
        store: Store) -> None:
    clock, out = Clock(), io.StringIO()
    notifier = ConsoleNotifier(out)
    chat = store.upsert_chat("console", "console").id
    for events in steps(chat):
        await deliver(store, "console", notifier, events, clock)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ALERT ⚠️") and "approaching" in lines[0]
    assert lines[1].startswith("ALERT (updates the earlier alert on this cluster) ⚠️")
    assert "· timeline: approach 12:02 at 93,700 → inside 12:03" in lines[1]
    assert lines[2].startswith("ALERT 💥") and "→ broke 12:04" in lines[2]


async def test_telegram_edits_a_photo_caption_and_takes_not_modified_as_done() -> None:
    """A photo alert has no text to edit (editMessageCaption then); an edit repeated after
    a lost answer gets "message is not modified", which means it is already shown."""
    from bot.dispatcher import Alert

    store = Store(memory=True)
    async with FakeTelegram() as fake, telegram(fake) as notifier:
        chat = store.upsert_chat("telegram", TG_CHAT)
        assert hasattr(notifier, "app")
        photo = await notifier.app.bot.send_photo(TG_CHAT, b"\x89PNG\r\n\x1a\n", caption="old")
        [approach] = steps(chat.id)[0]
        alert = Alert("inside now", approach, approach.dedupe_key, updates=str(photo.message_id))
        await notifier.edit(chat, alert)
        await notifier.edit(chat, alert)  # the same edit again: "not modified", no error
        assert fake.sent_to(TG_CHAT)[0]["caption"] == "inside now"
        assert [m for m, _ in fake.calls if m.startswith("edit")] == [
            "editMessageText", "editMessageCaption", "editMessageText", "editMessageCaption"]
        assert len(fake.edited) == 1
    store.close()
