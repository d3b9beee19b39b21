"""level_cross: user levels crossed within the traded range, per direction, with re-arm."""

import json
from dataclasses import replace

from bot.alerts import EngineConfig, EventKind, SymbolWatch, UserLevel
from tests.bot.engine_helpers import MIN, SYM, Run

NOCOOL = EngineConfig(cooldown_ms=0)


def crosses(ev):
    """(chat, ref, direction, epoch) of the level crosses; the epoch is the tick's time."""
    return [(e.chat, e.ref, e.direction, e.epoch) for e in ev if e.kind is EventKind.LEVEL_CROSS]


def test_cross_up_within_candle_high() -> None:
    run = Run(levels=[UserLevel(7, 1, SYM, 95_000, "up", "breakout")])
    run.tick(94_000)
    ev = run.tick(94_500, high=95_010, low=94_000)
    assert crosses(ev) == [(1, "level:7", "up", run.t)]
    assert ev[0].note == "breakout" and ev[0].level_price == 95_000


def test_direction_filters() -> None:
    levels = [UserLevel(1, 1, SYM, 100, "up"), UserLevel(2, 2, SYM, 100, "down"),
              UserLevel(3, 3, SYM, 100, "any")]
    run = Run(levels=levels, config=NOCOOL)
    run.tick(99)
    first = run.t + MIN
    assert sorted(crosses(run.tick(101))) == [(1, "level:1", "up", first),
                                              (3, "level:3", "up", first)]
    run.tick(102)  # ≥ 0.1 % away: re-armed
    assert sorted(crosses(run.tick(98))) == [(2, "level:2", "down", run.t),
                                             (3, "level:3", "down", run.t)]
    assert run.t != first  # the re-armed level 3 fires under a new dedupe key


def test_first_tick_and_stale_ticks_infer_no_cross() -> None:
    run = Run(levels=[UserLevel(1, 1, SYM, 100, "any")])
    assert run.tick(101, low=99) == []  # no previous price
    run.tick(99)  # crosses down: fires
    assert len(run.events) == 1
    assert run.tick(102, stale=True) == []
    assert run.tick(101, low=100.5) == []  # previous price forgotten while stale


def test_oscillation_inside_margin_fires_once() -> None:
    run = Run(levels=[UserLevel(1, 1, SYM, 100.0, "any")], config=NOCOOL)
    run.tick(99.5)
    for p in (100.05, 99.95, 100.08, 99.93, 100.01, 99.99):
        run.tick(p)
    assert len(crosses(run.events)) == 1


def test_cooldown_applies_to_levels() -> None:
    run = Run(levels=[UserLevel(1, 1, SYM, 100.0, "any")])
    run.tick(99)
    run.tick(101)
    run.tick(99)  # re-armed at 101 (1 % away) but inside the 60 min cooldown
    assert len(run.events) == 1


def test_level_leaving_the_watch_comes_back_with_a_fresh_epoch() -> None:
    """A level whose chat is deactivated drops out of the watch; if the chat comes back the
    level must not reuse its old dedupe key (that alert would be silently dropped)."""
    lv = UserLevel(1, 1, SYM, 100.0, "any")
    run = Run(levels=[lv], config=NOCOOL)
    run.tick(99)
    first = crosses(run.tick(100.05))
    assert run.state.levels_off == {"1": [100.0, 1.0]}
    run.watch = type(run.watch)(SYM, [], [])
    run.tick(100.02)
    assert run.state.levels_off == {}
    run.watch = type(run.watch)(SYM, [], [lv])
    again = crosses(run.tick(99.5))
    assert again == [(1, "level:1", "down", run.t)] and again[0][3] != first[0][3]


def test_deleted_levels_leave_nothing_in_the_state() -> None:
    """Levels are added, crossed, re-armed and deleted all day long: the engine state must
    hold only the levels that exist (it used to keep an epoch for every level ever seen)."""
    run = Run(config=NOCOOL)
    run.tick(100.0)
    for k in range(1, 301):
        run.watch = SymbolWatch(SYM, [], [UserLevel(k, 1, SYM, 100.5, "any")])
        assert len(crosses(run.tick(101.0))) == 1
        run.tick(100.0)  # re-armed (≥ 0.1 % away)
        run.watch = SymbolWatch(SYM, [], [])  # the user deletes it
        run.tick(100.0)
    state = json.loads(run.state.to_json())
    assert state["levels_off"] == {}
    assert len(run.state.to_json()) < 400, run.state.to_json()


def test_wicks_through_a_level_alert_once_until_a_real_move_away() -> None:
    """Three wicks above a level while price stays below used to alert three times; now the
    level re-arms only once price really went through it (≥ 0.1 % beyond, on the side it was
    crossed to) or moved ≥ 1 % away from it."""
    hour = 2 * 60 * 60_000  # past the cooldown each time
    run = Run(levels=[UserLevel(1, 1, SYM, 100.0, "any")])
    run.tick(99.5)
    for _ in range(3):
        run.tick(99.6, high=100.2, dt=hour)  # a wick: high touched it, price back below
        run.tick(99.5, dt=hour)
    assert [e.direction for e in run.events] == ["up"]
    run.tick(98.9, dt=hour)  # 1.1 % away: re-armed
    run.tick(99.6, high=100.2, dt=hour)
    assert [e.direction for e in run.events] == ["up", "up"]
    run.tick(100.3, high=100.3, dt=hour)  # now really through (still disarmed: no alert) …
    run.tick(99.7, low=99.7, dt=hour)  # … so the way back down alerts
    assert [e.direction for e in run.events] == ["up", "up", "down"]


def test_a_level_disarmed_by_an_older_state_still_rearms() -> None:
    """States written before the side was kept hold a bare price: either side re-arms."""
    run = Run(levels=[UserLevel(1, 1, SYM, 100.0, "any")], config=NOCOOL)
    run.tick(100.5)
    run.state = replace(run.state, levels_off={"1": 100.0})
    run.tick(100.2)  # 0.2 % away on either side: re-armed (the old rule)
    assert run.state.levels_off == {}
