"""Outbox: dedupe in commit_tick, and the dispatcher against a recording notifier."""

from __future__ import annotations

import logging

from bot.alerts import (
    AlertEvent,
    EventKind,
    SymbolState,
    SymbolWatch,
    Tick,
    evaluate,
)
from bot.dispatcher import Alert, Dispatcher
from bot.errors import PermanentDeliveryError, TransientDeliveryError
from bot.store import Chat, Store
from tests.bot.engine_helpers import SYM, T0, short


class Recorder:
    """A notifier that records what it sends; can be told to fail per chat id."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (chat id, dedupe key)
        self.texts: list[str] = []
        self.fail: dict[str, Exception] = {}

    async def send(self, chat: Chat, alert: Alert) -> None:
        exc = self.fail.get(chat.chat_id)
        if exc is not None:
            raise exc
        self.sent.append((chat.chat_id, alert.dedupe_key))
        self.texts.append(alert.text)


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t




def event(chat: int, ref: str = "S1", epoch: int = 0) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYM, ref=ref, epoch=epoch,
                      price=93_700.0, ts_ms=T0, side="short", low=94_000.0, high=94_400.0,
                      notional_usd=1e9, distance_pct=0.32)


def test_commit_tick_is_idempotent_per_dedupe_key(store: Store) -> None:
    c = store.upsert_chat("telegram", 1).id
    assert store.commit_tick(SYM, SymbolState(), [], [event(c), event(c, epoch=1)]) == 2
    assert store.commit_tick(SYM, SymbolState(), [], [event(c), event(c, epoch=1)]) == 0
    assert store.pending_count() == 2


def test_events_for_inactive_chats_are_not_queued(store: Store) -> None:
    c = store.upsert_chat("telegram", 1).id
    store.deactivate_chat(c, "blocked")
    assert store.commit_tick(SYM, SymbolState(), [], [event(c)]) == 0


def test_replayed_tick_after_commit_inserts_nothing(store: Store) -> None:
    """Engine + store: running the same tick again from the stored state adds no row."""
    c = store.upsert_chat("telegram", 1).id
    store.subscribe(c, SYM)
    store.add_level(c, SYM, 93_500)
    watch = SymbolWatch(SYM, store.active_subscriptions(SYM), store.active_levels(SYM))
    ticks = [Tick(93_000, 93_000, 93_000, T0), Tick(93_700, 93_800, 92_900, T0 + 60_000)]
    for tick in ticks:
        ev, st = evaluate(store.load_state(SYM), SYM, tick, [short()], watch)
        store.commit_tick(SYM, st, [short()], ev)
    assert store.pending_count() == 2  # approach + level cross
    for tick in ticks:  # the service restarts and replays both ticks
        ev, st = evaluate(store.load_state(SYM), SYM, tick, [short()], watch)
        assert store.commit_tick(SYM, st, [short()], ev) == 0
    assert store.pending_count() == 2


async def test_dispatcher_sends_and_marks_sent(store: Store) -> None:
    c = store.upsert_chat("telegram", "42", timezone="Europe/Berlin").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)], now=T0)
    rec = Recorder()
    d = Dispatcher(store, {"telegram": rec}, clock=Clock())
    stats = await d.run_once()
    assert (stats.sent, rec.sent) == (1, [("42", f"{c}|approach|S1|0")])
    assert "13:00 CET" in rec.texts[0]
    assert (await d.run_once()).sent == 0
    assert store.outbox_counts()["sent"] == 1


async def test_rows_for_other_platforms_wait(store: Store) -> None:
    c = store.upsert_chat("discord", "9").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)])
    d = Dispatcher(store, {"telegram": Recorder()}, clock=Clock())
    assert (await d.run_once()).sent == 0
    assert store.pending_count() == 1


async def test_permanent_failure_deactivates_chat(store: Store, caplog) -> None:
    blocked = store.upsert_chat("telegram", "1").id
    ok = store.upsert_chat("telegram", "2").id
    store.subscribe(blocked, SYM)
    store.commit_tick(SYM, SymbolState(), [], [event(blocked), event(blocked, "S2"),
                                                event(ok)], now=T0)
    rec = Recorder()
    rec.fail["1"] = PermanentDeliveryError("Forbidden: bot was blocked by the user")
    d = Dispatcher(store, {"telegram": rec}, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="bot.dispatcher"):
        stats = await d.run_once()
    assert stats.deactivated == 1 and stats.sent == 1
    assert rec.sent == [("2", f"{ok}|approach|S1|0")]
    assert not store.get_chat(blocked).active
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": 1, "failed": 2}
    assert store.active_subscriptions() == []
    assert "deactivated" in caplog.text


async def test_transient_failure_backs_off_then_gives_up(store: Store, caplog) -> None:
    c = store.upsert_chat("telegram", "1").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)], now=T0)
    rec = Recorder()
    rec.fail["1"] = TransientDeliveryError("502 Bad Gateway")
    clock = Clock()
    d = Dispatcher(store, {"telegram": rec}, clock=clock, backoff_base_ms=1_000,
                   backoff_max_ms=8_000, give_up_after_ms=60_000)
    waits = []
    while store.pending_count():
        stats = await d.run_once()
        if stats.retried:
            row = store.db.execute("SELECT next_try_ms FROM outbox").fetchone()
            waits.append(row[0] - clock.t)
            assert (await d.run_once()).retried == 0  # not due yet
            clock.t = row[0]
    assert waits[:5] == [1_000, 2_000, 4_000, 8_000, 8_000]
    assert clock.t - T0 <= 60_000
    assert store.outbox_counts()["failed"] == 1
    assert "giving up" in caplog.text


async def test_transient_then_success_and_retry_after(store: Store) -> None:
    c = store.upsert_chat("telegram", "1").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)], now=T0)
    rec = Recorder()
    rec.fail["1"] = TransientDeliveryError("429", retry_after_s=30)
    clock = Clock()
    d = Dispatcher(store, {"telegram": rec}, clock=clock)
    assert (await d.run_once()).retried == 1
    assert store.db.execute("SELECT next_try_ms FROM outbox").fetchone()[0] == T0 + 30_000
    del rec.fail["1"]
    clock.t += 30_000
    assert (await d.run_once()).sent == 1


async def test_adapter_bug_is_retried_not_fatal(store: Store, caplog) -> None:
    c = store.upsert_chat("telegram", "1").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)], now=T0)
    rec = Recorder()
    rec.fail["1"] = KeyError("oops")
    stats = await Dispatcher(store, {"telegram": rec}, clock=Clock()).run_once()
    assert stats.retried == 1 and "unexpected notifier error" in caplog.text


async def test_recover_requeues_in_flight_rows(store: Store) -> None:
    c = store.upsert_chat("telegram", "1").id
    store.commit_tick(SYM, SymbolState(), [], [event(c)], now=T0)
    row = store.due(T0)[0]
    assert store.claim(row.id, T0)  # ... and the process dies here
    assert store.due(T0 + 10**9) == []
    d = Dispatcher(store, {"telegram": Recorder()}, clock=Clock(T0))
    assert d.recover() == 1
    assert (await d.run_once()).sent == 1


def test_status_counts(store: Store) -> None:
    a = store.upsert_chat("telegram", "1").id
    store.subscribe(a, SYM)
    store.add_level(a, SYM, 1.0)
    store.commit_tick(SYM, SymbolState(), [], [event(a)])
    assert store.subscriber_counts() == {SYM: 1}
    assert store.pending_count() == 1
    assert store.prune_outbox(before=T0 * 10) == 0  # pending rows are never pruned


async def test_rows_for_a_platform_not_running_do_not_block_the_others():
    store = Store(memory=True)
    gone, here = store.upsert_chat("telegram", "1"), store.upsert_chat("console", "2")
    events = [AlertEvent(EventKind.LEVEL_CROSS, chat.id, SYM, f"level:{i}", 0, 100.0, T0,
                         level_price=99.0, direction="up")
              for i in range(250) for chat in (gone, here)]
    store.commit_tick(SYM, SymbolState(), None, events, now=0)
    rec = Recorder()
    stats = await Dispatcher(store, {"console": rec}, clock=lambda: 10).run_once()
    # 250 console rows queued alongside 250 telegram rows: all sent in one pass (3 batches),
    # while the telegram rows wait for their platform.
    assert stats.sent == 250 and len({key for _chat, key in rec.sent}) == 250
    assert store.outbox_counts()["pending"] == 250
    store.close()
