"""Several dispatchers on one outbox (``liqbot run --role dispatch``): each row sent once, a
chat's rows in order and never two at once, a dead dispatcher's claims recovered, and on
PostgreSQL a new row wakes the dispatch job at once (LISTEN/NOTIFY). Each dispatcher has its
own Store connection, as separate processes have."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.config import Config, ConsoleSection, ScheduleSection
from bot.dispatcher import Alert, Dispatcher
from bot.service import Service
from bot.store import Chat
from bot.wiring import make_source
from tests.bot.conftest import OpenStore
from tests.bot.engine_helpers import SYM, T0


def event(chat: int, ref: str) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYM, ref=ref, epoch=0,
                      price=93_700.0, ts_ms=T0, side="short", low=94_000.0, high=94_400.0,
                      notional_usd=1e9, distance_pct=0.32)


class SlowPlatform:
    """One chat platform seen by every dispatcher: records sends, notes two at once to a
    chat."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.sent: list[tuple[str, str]] = []  # (chat id, dedupe key) in send order
        self.inflight: Counter[str] = Counter()
        self.overlaps = 0

    def notifier(self, tag: str, by: Counter[str]) -> _Notifier:
        return _Notifier(self, tag, by)


class _Notifier:
    def __init__(self, platform: SlowPlatform, tag: str, by: Counter[str]) -> None:
        self.platform, self.tag, self.by = platform, tag, by

    async def send(self, chat: Chat, alert: Alert) -> None:
        p = self.platform
        p.inflight[chat.chat_id] += 1
        if p.inflight[chat.chat_id] > 1:
            p.overlaps += 1
        await asyncio.sleep(p.delay_s)
        p.inflight[chat.chat_id] -= 1
        p.sent.append((chat.chat_id, alert.dedupe_key))
        self.by[self.tag] += 1


async def test_two_dispatchers_send_each_row_once_in_order(open_store: OpenStore) -> None:
    a, b = open_store(), open_store()
    chats = [a.upsert_chat("console", f"c{i}").id for i in range(8)]
    for step in range(3):  # three rows per chat, queued in order
        a.commit_tick(SYM, SymbolState(), [], [event(c, f"S{step}") for c in chats], now=T0)
    keys = [str(r[0]) for r in a.db.execute("SELECT dedupe_key FROM outbox")]
    assert len(keys) == 24
    platform = SlowPlatform()
    by: Counter[str] = Counter()
    da = Dispatcher(a, {"console": platform.notifier("a", by)}, clock=lambda: T0, shared=True,
                    batch=4)
    db = Dispatcher(b, {"console": platform.notifier("b", by)}, clock=lambda: T0, shared=True,
                    batch=4)
    for _ in range(20):
        await asyncio.gather(da.run_once(), db.run_once())
        if a.pending_count() == 0:
            break
    assert a.outbox_counts()["sent"] == 24
    sent_keys = [k for _, k in platform.sent]
    assert sorted(sent_keys) == sorted(keys)  # every row once: none lost, none twice
    assert platform.overlaps == 0  # never two sends to one chat at once
    ids = {r[0]: int(r[1]) for r in a.db.execute("SELECT dedupe_key, id FROM outbox")}
    for chat in {c for c, _ in platform.sent}:
        mine = [ids[k] for c, k in platform.sent if c == chat]
        assert mine == sorted(mine), f"chat {chat} got its alerts out of order"
    assert by["a"] > 0 and by["b"] > 0  # both took a share


async def test_a_dead_dispatchers_claim_is_recovered_after_stale_ms(open_store: OpenStore) -> None:
    dead, live = open_store(), open_store()
    chat = dead.upsert_chat("console", "c1").id
    dead.commit_tick(SYM, SymbolState(), [], [event(chat, "S1"), event(chat, "S2")], now=T0)
    claimed = dead.claim_due(T0, 10, platforms=["console"])
    assert [r.event.ref for r in claimed] == ["S1"]  # ... and that process is killed
    platform = SlowPlatform(0)
    by: Counter[str] = Counter()
    clock = [T0 + 30_000]
    d = Dispatcher(live, {"console": platform.notifier("live", by)}, clock=lambda: clock[0],
                   shared=True, stale_ms=60_000)
    await d.run_once()
    assert platform.sent == []  # maybe still being sent: the chat waits
    clock[0] = T0 + 61_000
    await d.run_once()
    await d.run_once()
    assert [k.split("|")[2] for _, k in platform.sent] == ["S1", "S2"]  # resent, then next
    assert live.outbox_counts()["sent"] == 2


async def test_a_new_row_wakes_the_dispatch_role_at_once(open_store: OpenStore) -> None:
    """PostgreSQL: the dispatch job listens for new rows; SQLite polls (one interval)."""
    store = open_store()
    other = open_store()  # a market worker's connection
    platform = SlowPlatform(0)
    by: Counter[str] = Counter()
    cfg = replace(Config(), console=ConsoleSection(enabled=False),
                  schedule=ScheduleSection(recompute_seconds=3600, price_seconds=3600,
                                           dispatch_seconds=20))
    service = Service(cfg, make_source(cfg), store, {"console": platform.notifier("d", by)},
                      role="dispatch")
    chat = other.upsert_chat("console", "c1").id
    await service.start()
    try:
        await asyncio.sleep(0.5)  # the first pass has run (PostgreSQL) and waits
        t0 = time.monotonic()
        other.commit_tick(SYM, SymbolState(), [], [event(chat, "S1")])
        while not platform.sent and time.monotonic() - t0 < 5:
            await asyncio.sleep(0.05)
        waited = time.monotonic() - t0
        sent = list(platform.sent)
    finally:
        await service.stop()  # (its last pass sends what is due)
    if store.db.dialect == "postgresql":
        assert sent and waited < 3, f"not woken: {waited:.1f} s"
    else:  # one process on SQLite: the next pass, one interval (20 s) after the start
        assert not sent
