"""Fair delivery (issues 16 and 24): a throttled or failing chat waits alone, in order, once.

Real PTB 22 against the loopback Bot API fake and real discord.py against the loopback Discord
fake, through the real Dispatcher and Store. The dispatcher runs on a controlled clock (retry
times), the sends in real time; delays are measured from the platform fakes' arrival times.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.alerts.messages import render
from bot.config import Secret, TelegramSection
from bot.dispatcher import Dispatcher
from bot.store import Store
from bot.telegram_adapter import TelegramAdapter, TelegramNotifier
from tests.bot.fake_telegram import GROUP, FakeTelegram
from tests.bot.test_discord import bind, discord_api, started_bot

SYM = "BTC/USDT:USDT"
T0 = 1_764_000_000_000
HEALTHY_BOUND_S = 1.5  # a healthy chat's alert, measured from the pass start (loopback)


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def approach(chat: int, i: int) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYM, ref=f"S{i}", epoch=0,
                      price=93_700.0, ts_ms=T0, side="short", low=94_000.0 + i,
                      high=94_400.0 + i, notional_usd=1e9, distance_pct=0.32)


def enqueue(store: Store, events: list[AlertEvent]) -> None:
    assert store.commit_tick(SYM, SymbolState(), None, events, now=T0) == len(events)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22: RetryAfter as timedelta, no warning


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, TelegramNotifier, Store]]:
    """The adapter's own Application (its rate limiter) on the fake, ready to send alerts."""
    async with FakeTelegram(retry_after=3) as fake:
        adapter = TelegramAdapter(TelegramSection(enabled=True, base_url=fake.base_url,
                                                  token=Secret(fake.token)))
        await adapter.app.initialize()
        adapter.notifier.started = True
        store = Store(memory=True)
        try:
            yield fake, adapter.notifier, store
        finally:
            await adapter.app.shutdown()
            store.close()


async def test_a_throttled_telegram_group_waits_alone_in_order_and_once(telegram) -> None:
    """Three 429s (retry_after 3 s) for a group whose three alerts come first: 20 private
    chats get theirs at once; the group's retry_after is honoured for the group only; its
    alerts then arrive in order, each once. Before: PTB's limiter paused every chat for each
    429 (≥ 6 s) and the group's later alerts overtook the throttled one."""
    fake, notifier, store = telegram
    group = store.upsert_chat("telegram", GROUP["id"], is_group=True)
    privates = [store.upsert_chat("telegram", 5_000 + i) for i in range(20)]
    group_events = [approach(group.id, i) for i in range(3)]
    enqueue(store, group_events + [approach(c.id, 0) for c in privates])
    fake.inject("sendMessage", "429", "429", "429", chat_id=GROUP["id"])
    clock = Clock()
    dispatcher = Dispatcher(store, {"telegram": notifier}, clock=clock)

    t0 = time.monotonic()
    stats = await dispatcher.run_once()
    healthy = [m for m in fake.sent if m["chat_id"] != GROUP["id"]]
    assert len(healthy) == 20 and stats.sent == 20 and stats.retried == 1
    assert max(m["t"] for m in healthy) - t0 < HEALTHY_BOUND_S
    assert fake.sent_to(GROUP["id"]) == []
    first = store.db.execute("SELECT next_try_ms FROM outbox WHERE chat = ? ORDER BY id",
                             (group.id,)).fetchall()
    assert first[0][0] == T0 + 3_000  # retry_after (3 s) honoured, above the 2 s backoff
    assert dispatcher.held_until(group.id) == T0 + 3_000

    clock.t += 2_999  # not yet: nothing goes to the group
    assert (await dispatcher.run_once()).sent == 0
    for _ in range(3):  # two more 429s, then the group's three alerts
        clock.t += 60_000
        await dispatcher.run_once()
    texts = [m["text"] for m in fake.sent_to(GROUP["id"])]
    assert texts == [render(e, group.timezone) for e in group_events]  # creation order
    assert Counter((m["chat_id"], m["text"]) for m in fake.sent).most_common(1)[0][1] == 1
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": 23, "failed": 0}
    assert [k for k, _ in fake.fault_times] == ["429"] * 3


async def test_a_429_on_a_reply_holds_that_chat_only(telegram) -> None:
    """Command replies are retried on a 429 inside the limiter; while one chat waits out its
    retry_after (3 s), another chat's reply goes at once. Before: PTB's AIORateLimiter paused
    every request until the retry."""
    fake, notifier, _store = telegram
    bot = notifier.app.bot
    fake.inject("sendMessage", "429", chat_id=111)
    t0 = time.monotonic()
    slow = asyncio.create_task(bot.send_message(111, "reply to a throttled chat"))
    await asyncio.sleep(0.2)  # the 429 has come back; 111 is waiting it out
    await bot.send_message(222, "reply to another chat")
    other = fake.sent_to(222)[0]["t"] - t0
    await slow
    assert other < HEALTHY_BOUND_S
    assert fake.sent_to(111)[0]["t"] - t0 >= 3.0
    assert len(fake.sent) == 2


async def test_a_group_at_its_20_per_minute_cap_waits_alone(telegram) -> None:
    """25 alerts for one group, then one for each of 10 private chats: the group gets its 20
    (Telegram's per-group minute) and is held; the private chats do not queue behind it.
    Before: the 21st group message waited 3 s inside PTB's limiter, and everyone with it."""
    fake, notifier, store = telegram
    group = store.upsert_chat("telegram", GROUP["id"], is_group=True)
    privates = [store.upsert_chat("telegram", 6_000 + i) for i in range(10)]
    enqueue(store, [approach(group.id, i) for i in range(25)]
            + [approach(c.id, 0) for c in privates])
    clock = Clock()
    dispatcher = Dispatcher(store, {"telegram": notifier}, clock=clock)
    t0 = time.monotonic()
    await dispatcher.run_once()
    healthy = [m for m in fake.sent if m["chat_id"] != GROUP["id"]]
    assert len(healthy) == 10 and max(m["t"] for m in healthy) - t0 < HEALTHY_BOUND_S
    assert len(fake.sent_to(GROUP["id"])) == 20
    assert dispatcher.held_until(group.id) is not None
    assert store.outbox_counts()["pending"] == 5


async def test_a_failing_discord_channel_does_not_delay_the_others() -> None:
    """One channel answers 500 to everything (discord.py retries a 5xx for ~25 s inside the
    request): five healthy channels get their alerts at once; the failing one is cut off at
    ``send_timeout_s``, held, and retried later — never posted twice."""
    async with discord_api() as fake, started_bot(fake) as bot:
        failing, channels = 777_000_000_000_000_001, [777_000_000_000_000_010 + i
                                                      for i in range(5)]
        fake.failing[failing] = 500
        chats = [bind(bot, c) for c in [failing, *channels]]
        enqueue(bot.store, [approach(c, 0) for c in chats])
        clock = Clock()
        dispatcher = Dispatcher(bot.store, {"discord": bot.adapter.notifier}, clock=clock,
                                send_timeout_s=4.0)
        t0 = time.time()
        stats = await dispatcher.run_once()
        healthy = [p for p in fake.posted
                   if p.path.endswith("/messages") and str(failing) not in p.path]
        assert len(healthy) == 5 and max(p.t for p in healthy) - t0 < HEALTHY_BOUND_S
        assert (stats.sent, stats.retried) == (5, 1)
        assert dispatcher.held_until(chats[0]) is not None
        assert fake.messages[failing] == []
        del fake.failing[failing]
        clock.t += 60_000
        assert (await dispatcher.run_once()).sent == 1
        assert all(len(fake.messages[c]) == 1 for c in [failing, *channels])


async def test_a_discord_400_fails_the_row_at_once_and_keeps_the_channel() -> None:
    """A refused message (400 Invalid Form Body) is 'failed' at once; the channel stays
    active and its next alert goes out. Before: re-raised, retried for 6 h."""
    async with discord_api() as fake, started_bot(fake) as bot:
        chat = bind(bot, 777_000_000_000_000_100)
        enqueue(bot.store, [approach(chat, 0), approach(chat, 1)])
        fake.inject("messages", 400)
        stats = await Dispatcher(bot.store, {"discord": bot.adapter.notifier},
                                 clock=Clock()).run_once()
        assert (stats.failed, stats.retried, stats.sent) == (1, 0, 1)
        assert bot.store.get_chat(chat).active  # type: ignore[union-attr]
        assert bot.store.outbox_counts()["failed"] == 1


@pytest.mark.parametrize("fault", [500, "hang"])
async def test_stop_during_a_discord_outage_is_quick_and_leaves_rows_pending(
        fault: int | str) -> None:
    """The service's stop returns within 5 s while its dispatch job is stuck on a failing
    channel (discord.py sleeping between 5xx retries, or a request never answered); the
    alerts in flight are pending again, none 'sending', none posted. Before: 40 s."""
    async with discord_api() as fake, started_bot(fake) as bot:
        channel = 777_000_000_000_000_200
        fake.failing[channel] = fault
        chat = bind(bot, channel)
        enqueue(bot.store, [approach(chat, i) for i in range(3)])
        await bot.service.start()
        try:
            for _ in range(200):  # until the dispatch job's first post is in flight
                if any(str(channel) in p.path for p in fake.posted):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the dispatch job never posted")
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            await asyncio.wait_for(bot.service.stop(), timeout=5.0)
            assert time.monotonic() - t0 < 5.0
        finally:
            await bot.service.stop()
        counts = bot.store.outbox_counts()
        assert counts["sending"] == 0 and counts["sent"] == 0
        assert counts["pending"] == 3
        assert fake.messages[channel] == []
