"""/quiet SYM on|off: new / grown cluster news in one digest per [alerts] digest_hours;
approach, inside, break and level crossings are never held back (issue 19)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.quiet_bench import compare, replay
from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.alerts.messages import render
from bot.store import MIGRATIONS, Store
from tests.bot.engine_helpers import SYM
from tests.bot.helpers import private, started_service

H = 3_600_000
SLOT = 1_764_072_000_000 - 1_764_072_000_000 % (4 * H)  # a 4 h slot start


def news(chat: int, ref: str, t: int, grown: float | None = None, epoch: int = 0
         ) -> AlertEvent:
    return AlertEvent(kind=EventKind.NEW_CLUSTER, chat=chat, symbol=SYM, ref=ref, epoch=epoch,
                      price=93_000.0, ts_ms=t, side="short", low=94_000.0, high=94_400.0,
                      notional_usd=1.2e8, distance_pct=1.08, grown_from_usd=grown)


def approach(chat: int, t: int) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYM, ref="S9", epoch=0,
                      price=93_700.0, ts_ms=t, side="short", low=94_000.0, high=94_400.0,
                      notional_usd=1e9, distance_pct=0.32)


def tick(store: Store, t: int, events: list[AlertEvent]) -> int:
    state = SymbolState(last_ms=t, last_price=93_000.0, baselined=True)
    return store.commit_tick(SYM, state, None, events, now=t, digest_hours=4)


def kinds(store: Store) -> list[str]:
    return [r.event.kind.value for r in store.due(10**15, limit=1000)]


def test_quiet_news_wait_for_one_digest_per_slot_the_rest_goes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = Store(path)
    quiet, loud = (store.upsert_chat("console", c).id for c in ("q", "l"))
    for chat in (quiet, loud):
        store.subscribe(chat, SYM)
    store.set_quiet(loud, SYM, False)
    assert store.quiet_symbols(quiet) == {SYM} and store.quiet_symbols(loud) == set()
    first = [news(c, "S1", SLOT + H) for c in (quiet, loud)] + [approach(quiet, SLOT + H)]
    assert tick(store, SLOT + H, first) == 2  # the loud chat's news and the approach
    assert tick(store, SLOT + 2 * H, [news(quiet, "S1", SLOT + 2 * H, grown=7e7, epoch=1)]) == 0
    assert store.held_count(quiet) == 2
    store.close()  # a restart while news are held keeps them
    store = Store(path)
    assert tick(store, SLOT + 3 * H, []) == 0  # the slot has not ended yet
    assert tick(store, SLOT + 4 * H, []) == 1  # it has: one digest
    assert tick(store, SLOT + 4 * H, []) == 0  # a replayed tick adds nothing
    assert store.held_count() == 0
    rows = store.due(10**15, limit=100)
    assert sorted(r.event.kind.value for r in rows) == ["approach", "digest", "new_cluster"]
    [digest] = [r for r in rows if r.event.kind is EventKind.DIGEST]
    assert digest.chat.id == quiet and digest.dedupe_key == f"{quiet}|digest|digest:{SYM}|{SLOT}"
    text = render(digest.event).splitlines()
    assert text[0] == f"🗞 {SYM} digest 2025-11-25 12:00–16:00 UTC: 2 cluster updates"
    assert "new $120M short cluster 94,000–94,400" in text[1]
    assert "grew to $120M (×1.7 from $70.0M" in text[2]
    assert text[-1].startswith("price 93,000 · estimate")
    store.close()


def test_subscriptions_from_before_quiet_keep_one_message_each(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for stmt in (s for m in MIGRATIONS[:4] for s in m):
        conn.execute(stmt)
    conn.execute("PRAGMA user_version=4")
    conn.execute("INSERT INTO chats (platform, chat_id, created_ms) VALUES ('console', 'c', 0)")
    conn.execute("INSERT INTO subscriptions (chat, symbol, min_usd, approach_pct, created_ms)"
                 " VALUES (1, ?, 1e8, 0.5, 0)", (SYM,))
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS) >= 5
    assert store.quiet_symbols(1) == set()  # existing: not quiet
    store.subscribe(1, "ETH/USDT:USDT")  # new: quiet by default
    assert store.quiet_symbols(1) == {"ETH/USDT:USDT"}
    assert tick(store, SLOT + H, [news(1, "S1", SLOT + H)]) == 1
    store.close()


async def test_quiet_command_through_the_core() -> None:
    service, core, store = await started_service()
    try:
        reply = await core.handle("/quiet BTC on", private())
        assert reply.error and "not subscribed" in reply.text and "/subscribe BTC" in reply.text
        reply = await core.handle("/subscribe BTC 100m 0.5", private())
        assert "one digest every 4 h (/quiet BTC off: one message each)" in reply.text
        for bad in ("/quiet BTC", "/quiet BTC maybe", "/quiet"):
            assert (await core.handle(bad, private())).error
        reply = await core.handle("/quiet btc off", private())
        assert not reply.error and "Quiet off" in reply.text
        assert "quiet" not in (await core.handle("/alerts", private())).text
        reply = await core.handle("/quiet BTC ON", private())
        assert "one digest every 4 h" in reply.text and "stay immediate" in reply.text
        assert "quiet: news in a 4 h digest" in (await core.handle("/alerts", private())).text
    finally:
        store.close()


async def test_quiet_loses_and_delays_no_approach_break_or_level_alert_on_the_replay() -> None:
    """The demo replay (10 days, with levels) twice: every approach / inside / break / level
    alert of the non-quiet run reaches the quiet chat at the same replayed time; the news come
    as fewer digests."""
    before = await replay(10, quiet=False, levels=6)
    after = await replay(10, quiet=True, levels=6)
    assert compare(before, after) == {"lost": 0, "delayed": 0, "extra": 0}
    immediate = {k for k, *_ in before.immediate()}
    assert {"approach", "break", "level_cross"} <= immediate
    b, a = before.by_kind(), after.by_kind()
    assert "digest" not in b and "new_cluster" not in a
    assert 0 < a["digest"] < b["new_cluster"]
    assert after.messages() == before.messages() - b["new_cluster"] + a["digest"]


@pytest.mark.parametrize("hours", [0, -1, 200])
def test_digest_hours_is_checked(tmp_path: Path, hours: float) -> None:
    from bot.config import load_config
    from bot.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(f"[alerts]\ndigest_hours = {hours}\n")
    with pytest.raises(ConfigError, match=r"digest_hours.*must be in \(0, 168\] hours"):
        load_config(path)


def test_a_chats_first_sight_of_a_cluster_is_new_for_that_chat(store: Store) -> None:
    """The engine announces growth ("grew ×1.6 from …") to every chat whose minimum the
    cluster met before; one that subscribed since (or was never told for another reason)
    gets "new" instead, whether its news are held for a digest or not."""
    from bot.alerts import Subscription
    from tests.bot.engine_helpers import Run, short
    old, late, quiet_late = (store.upsert_chat("console", c).id for c in ("o", "l", "q"))
    for chat in (old, late, quiet_late):
        store.subscribe(chat, SYM, min_usd=1e6)
    store.set_quiet(old, SYM, False)
    store.set_quiet(late, SYM, False)
    run = Run([Subscription(old, SYM, min_usd=1e6)])
    run.tick(93_000, [])
    [first] = run.tick(93_000, [short(usd=5e7)])
    assert first.kind is EventKind.NEW_CLUSTER and first.grown_from_usd is None
    assert tick(store, SLOT, [first]) == 1
    run.watch = type(run.watch)(SYM, [Subscription(c, SYM, min_usd=1e6)
                                      for c in (old, late, quiet_late)])
    grown = run.tick(93_000, [short(usd=8e7)], dt=2 * H)  # past the news cooldown
    assert {e.chat: e.grown_from_usd for e in grown} == {old: 5e7, late: 5e7, quiet_late: 5e7}
    assert tick(store, SLOT + H, grown) == 2
    texts = {r.chat.chat_id: render(r.event) for r in store.due(10**15)}
    assert "grew to $80.0M (×1.6 from $50.0M" in texts["o"]
    assert "new $80.0M short cluster" in texts["l"] and "grew" not in texts["l"]
    assert tick(store, SLOT + 4 * H, []) == 1  # the quiet chat's digest
    [digest] = [r for r in store.due(10**15) if r.chat.chat_id == "q"]
    assert "new $80.0M short cluster" in render(digest.event)
    store.close()


def test_a_long_digest_lists_ten_news_and_counts_the_rest() -> None:
    items = [news(1, f"S{i}", SLOT + i * 60_000).to_dict() for i in range(12)]
    digest = AlertEvent(kind=EventKind.DIGEST, chat=1, symbol=SYM, ref=f"digest:{SYM}",
                        epoch=SLOT, price=93_000.0, ts_ms=SLOT + 4 * H, items=items)
    lines = render(digest).splitlines()
    assert "12 cluster updates" in lines[0] and len(lines) == 1 + 10 + 1 + 1
    assert lines[1].startswith("• 12:00 new $120M short cluster") and lines[11] == "• … and 2 more"
