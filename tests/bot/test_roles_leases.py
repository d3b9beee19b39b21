"""Symbol leases (bot.leases) between two workers, each on its own Store connection, and the
tick fence (Store.commit_tick with lease_owner); on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import math
import threading
import time

import pytest

from bot.alerts import SymbolState
from bot.errors import LeaseLostError
from bot.leases import MARKET_JOBS, SymbolLeases
from bot.store import Store
from tests.bot.conftest import OpenStore
from tests.pg_server import PgServer

TTL = 30_000
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT",
           "DOGE/USDT:USDT")


@pytest.fixture
def two(open_store: OpenStore) -> tuple[Store, Store]:
    """Two connections to one store (SQLite file / PostgreSQL), as two worker processes have."""
    return open_store(), open_store()


def test_first_worker_takes_all_then_shares_fairly(two: tuple[Store, Store]) -> None:
    a, b = (SymbolLeases(s, name, TTL) for s, name in zip(two, ("a", "b"), strict=True))
    t = 1_000_000
    got = a.balance(SYMBOLS, t)
    assert got.held == tuple(sorted(SYMBOLS)) and got.acquired == got.held and not got.lost
    # b joins: every symbol is taken, so b gets none yet, but it now counts as live.
    assert b.balance(SYMBOLS, t + 1).held == ()
    # a's next round: 2 live workers → a keeps ceil(5 / 2) = 3 and hands 2 over.
    got = a.balance(SYMBOLS, t + TTL // 3)
    assert len(got.held) == 3 and len(got.lost) == 2
    got = b.balance(SYMBOLS, t + TTL // 3 + 1)
    assert set(got.held) == set(SYMBOLS) - set(a.held(t + TTL // 3 + 1))
    assert len(got.held) == 2
    owners = a.owners()
    assert sorted(owners) == sorted(SYMBOLS)
    assert {o for o, _ in owners.values()} == {"a", "b"}
    # Rounds later, nothing moves (no flapping).
    for k in range(2, 6):
        now = t + k * TTL // 3
        assert not a.balance(SYMBOLS, now).lost and not b.balance(SYMBOLS, now + 1).lost
    assert all(len(w.held(t + 2 * TTL)) <= math.ceil(len(SYMBOLS) / 2) for w in (a, b))


def test_dead_worker_symbols_move_within_two_ttl(two: tuple[Store, Store]) -> None:
    a, b = (SymbolLeases(s, name, TTL) for s, name in zip(two, ("a", "b"), strict=True))
    t = 5_000_000
    a.balance(SYMBOLS, t)
    b.balance(SYMBOLS, t)
    a.balance(SYMBOLS, t + 10)
    b.balance(SYMBOLS, t + 20)
    dead = set(a.held(t + 20))
    assert dead and len(b.held(t + 20)) == len(SYMBOLS) - len(dead)
    # a is killed after its renewal at t + 10; b keeps its rounds every TTL / 3.
    now = t + 20
    moved_at = None
    while now < t + 10 + 2 * TTL:
        now += TTL // 3
        b.balance(SYMBOLS, now)
        if set(b.held(now)) == set(SYMBOLS):
            moved_at = now
            break
    assert moved_at is not None, "a dead worker's symbols never moved"
    assert moved_at - (t + 10) <= 2 * TTL
    # Not before its leases expired: no symbol is held by two live leases at once.
    assert moved_at > t + 10 + TTL
    # a's own view: its leases expired, it no longer holds them even before hearing of it.
    assert a.held(moved_at) == ()


def test_a_live_lease_is_not_taken(two: tuple[Store, Store]) -> None:
    a, b = (SymbolLeases(s, name, TTL) for s, name in zip(two, ("a", "b"), strict=True))
    t = 7_000_000
    assert a.try_take("BTC/USDT:USDT", t)
    assert not b.try_take("BTC/USDT:USDT", t + TTL - 1)
    assert b.try_take("BTC/USDT:USDT", t + TTL)  # expired: free
    assert a.owners()["BTC/USDT:USDT"][0] == "b"


def test_clean_stop_hands_over_at_once(two: tuple[Store, Store]) -> None:
    a, b = (SymbolLeases(s, name, TTL) for s, name in zip(two, ("a", "b"), strict=True))
    t = 9_000_000
    a.balance(SYMBOLS, t)
    assert a.try_take(MARKET_JOBS, t)
    b.balance(SYMBOLS, t)
    a.release_all()
    assert b.live_workers(t + 1) == 1
    assert set(b.balance(SYMBOLS, t + 1).held) == set(SYMBOLS)
    assert b.try_take(MARKET_JOBS, t + 1)


def test_fence_a_worker_whose_lease_was_taken_cannot_commit(two: tuple[Store, Store]) -> None:
    sa, sb = two
    a, b = SymbolLeases(sa, "a", TTL), SymbolLeases(sb, "b", TTL)
    sym = "BTC/USDT:USDT"
    t = 11_000_000
    assert a.try_take(sym, t)
    first = SymbolState(last_price=100.0, last_ms=t)
    sa.commit_tick(sym, first, None, [], now=t, lease_owner="a")
    assert sb.load_state(sym).last_ms == t
    # a stalls past its lease; b takes over and ticks.
    assert b.try_take(sym, t + TTL)
    sb.commit_tick(sym, SymbolState(last_price=101.0, last_ms=t + TTL), None, [],
                   now=t + TTL, lease_owner="b")
    # a wakes up with a tick it evaluated from its old state: dropped, nothing written.
    with pytest.raises(LeaseLostError, match="no longer a's"):
        sa.commit_tick(sym, SymbolState(last_price=99.0, last_ms=t + 5), None, [],
                       now=t + TTL + 1, lease_owner="a")
    assert sb.load_state(sym).last_ms == t + TTL
    assert sa.load_state(sym).last_price == 101.0
    # Without lease_owner (role all) the fence is not asked for.
    sa.commit_tick("ETH/USDT:USDT", first, None, [], now=t)


def test_workers_gone_long_ago_are_forgotten(two: tuple[Store, Store]) -> None:
    a, b = (SymbolLeases(s, name, TTL) for s, name in zip(two, ("a", "b"), strict=True))
    t = 13_000_000
    a.heartbeat(t)
    b.heartbeat(t + 1)
    assert a.live_workers(t + 2) == 2
    b.heartbeat(t + 10 * TTL + 1)  # a was never seen again
    rows = b.store.db.execute("SELECT worker FROM cluster_workers").fetchall()
    assert [r[0] for r in rows] == ["b"]


def test_fence_a_takeover_waits_for_the_tick_in_progress(pg_server: PgServer) -> None:
    """PostgreSQL: the tick transaction locks the lease row first, so a takeover that comes
    while a tick commits waits for it, and the new owner reads the state with that tick in
    it (the tick is not evaluated twice). A trigger makes the tick's state write slow."""
    dsn = pg_server.create_database("fence_wait")
    sa, sb = Store(dsn=dsn), Store(dsn=dsn)
    try:
        sa.db.execute("CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS"
                      " $$ BEGIN PERFORM pg_sleep(1.0); RETURN NEW; END $$")
        sa.db.execute("CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON engine_state"
                      " FOR EACH ROW EXECUTE FUNCTION slow_write()")
        a, b = SymbolLeases(sa, "a", TTL), SymbolLeases(sb, "b", TTL)
        sym = "BTC/USDT:USDT"
        t = 15_000_000
        assert a.try_take(sym, t)
        tick = SymbolState(last_price=100.0, last_ms=t + TTL)
        done: dict[str, float] = {}

        def commit() -> None:
            sa.commit_tick(sym, tick, None, [], now=t + TTL, lease_owner="a")
            done["a"] = time.monotonic()

        worker = threading.Thread(target=commit)
        worker.start()
        time.sleep(0.3)  # a's tick holds the lease row, its state write is under way
        assert b.try_take(sym, t + TTL)  # a's lease has expired by now: b takes it ...
        took = time.monotonic()
        worker.join()
        assert took >= done["a"] - 0.05  # ... only once a's tick had committed
        assert sb.load_state(sym) == tick  # and b starts from it
        with pytest.raises(LeaseLostError):  # a's next tick is fenced off
            sa.commit_tick(sym, tick, None, [], now=t + TTL + 1, lease_owner="a")
    finally:
        sa.close()
        sb.close()
        pg_server.drop_database(dsn)
