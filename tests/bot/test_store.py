"""Store: chats, subscriptions, levels, caps, engine state (on both backends: the store
fixture of tests/bot/conftest.py)."""

from __future__ import annotations

import pytest

from bot.alerts import SymbolState
from bot.errors import LimitExceededError, UserInputError
from bot.store import MAX_LEVELS, MAX_SUBSCRIPTIONS, Store
from tests.bot.engine_helpers import SYM, short


def test_chat_upsert_defaults_and_reactivation(store: Store) -> None:
    c = store.upsert_chat("telegram", -100123, thread_id=42, is_group=True)
    assert (c.platform, c.chat_id, c.thread_id, c.is_group, c.active, c.timezone) == (
        "telegram", "-100123", "42", True, True, "UTC")
    assert store.find_chat("telegram", "-100123", 42) == c
    assert store.find_chat("telegram", "-100123") is None  # other thread
    store.deactivate_chat(c.id, "blocked")
    assert not store.get_chat(c.id).active
    again = store.upsert_chat("telegram", -100123, thread_id=42, is_group=True)
    assert again.id == c.id and again.active
    store.set_timezone(c.id, "Asia/Tokyo")
    assert store.get_chat(c.id).timezone == "Asia/Tokyo"


def test_subscriptions_add_update_remove(store: Store) -> None:
    c = store.upsert_chat("discord", 1).id
    store.subscribe(c, SYM)
    store.subscribe(c, SYM, min_usd=5e8, approach_pct=1.234)  # update, not a second row
    subs = store.list_subscriptions(c)
    assert len(subs) == 1 and subs[0].min_usd == 5e8 and subs[0].approach_pct == 1.23
    assert store.subscriber_counts() == {SYM: 1}
    assert store.unsubscribe(c, SYM) and not store.unsubscribe(c, SYM)
    assert store.list_subscriptions(c) == []


def test_subscription_cap(store: Store) -> None:
    c = store.upsert_chat("telegram", 1).id
    for i in range(MAX_SUBSCRIPTIONS):
        store.subscribe(c, f"S{i}")
    store.subscribe(c, "S0", min_usd=1e9)  # updating an existing one is fine at the cap
    with pytest.raises(LimitExceededError, match="20 subscriptions"):
        store.subscribe(c, "ONE/MORE")
    assert len(store.list_subscriptions(c)) == MAX_SUBSCRIPTIONS


def test_levels_owner_only_removal_and_cap(store: Store) -> None:
    a = store.upsert_chat("telegram", 1).id
    b = store.upsert_chat("telegram", 2).id
    lv = store.add_level(a, SYM, 95_000, "up", "breakout")
    assert store.list_levels(a) == [lv]
    assert not store.remove_level(b, lv.id)  # not b's level
    assert store.remove_level(a, lv.id)
    for i in range(MAX_LEVELS):
        store.add_level(a, SYM, 90_000 + i)
    with pytest.raises(LimitExceededError, match="50 levels"):
        store.add_level(a, SYM, 1)
    assert len(store.list_levels(a, SYM)) == MAX_LEVELS


@pytest.mark.parametrize("kwargs", [dict(price=0), dict(price=-1), dict(direction="sideways"),
                                    dict(symbol="")])
def test_bad_level_input_is_a_user_error(store: Store, kwargs: dict) -> None:
    c = store.upsert_chat("telegram", 1).id
    args = dict(symbol=SYM, price=100.0, direction="any") | kwargs
    with pytest.raises(UserInputError):
        store.add_level(c, args["symbol"], args["price"], args["direction"])


def test_active_watches_exclude_inactive_chats(store: Store) -> None:
    a = store.upsert_chat("telegram", 1).id
    b = store.upsert_chat("telegram", 2).id
    store.subscribe(a, SYM)
    store.subscribe(b, SYM)
    store.add_level(b, "ETH/USDT:USDT", 3000)
    v = store.watch_version()
    store.deactivate_chat(b, "blocked")
    assert store.watch_version() > v
    assert [s.chat for s in store.active_subscriptions(SYM)] == [a]
    assert store.active_levels() == []
    assert store.watched_symbols() == [SYM]
    assert store.subscriber_counts() == {SYM: 1}


def test_engine_and_cluster_state_round_trip(store: Store) -> None:
    assert store.load_state(SYM) == SymbolState()
    assert store.load_clusters(SYM) == []
    state = SymbolState(last_ms=5, last_price=1.5, zones={"S1": {"0.5": [1, 2]}})
    store.commit_tick(SYM, state, [short()], [])
    assert store.load_state(SYM) == state
    assert store.load_clusters(SYM) == [short()]
    store.commit_tick(SYM, state, None, [])  # None keeps the clusters
    assert store.load_clusters(SYM) == [short()]
