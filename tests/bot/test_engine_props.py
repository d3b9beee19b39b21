"""Property tests: hysteresis, cooldown, unique dedupe keys, JSON-state determinism."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import (
    EngineConfig,
    EventKind,
    Subscription,
    SymbolState,
    UserLevel,
    near_distance_pct,
)
from tests.bot.engine_helpers import SYM, Run, long, short

LEVEL = 100.0
CLUSTERS_AT_100 = [short("S1", 100.5, 100.9, 1e9), long("L1", 99.1, 99.5, 8e8)]

prices = st.lists(st.floats(min_value=98.0, max_value=102.0, allow_nan=False), min_size=2,
                  max_size=60)


def levels() -> list[UserLevel]:
    return [UserLevel(1, 1, SYM, LEVEL, "any"), UserLevel(2, 2, SYM, 100.7, "up"),
            UserLevel(3, 1, SYM, 99.3, "down")]


def subs() -> list[Subscription]:
    return [Subscription(1, SYM), Subscription(2, SYM, approach_pct=1.0),
            Subscription(3, SYM, min_usd=9e8, approach_pct=0.3)]


def run_path(path: list[float], cooldown_ms: int, dt: int = 60_000) -> Run:
    run = Run(subs(), levels(), config=EngineConfig(cooldown_ms=cooldown_ms))
    prev = path[0]
    for p in path:
        run.tick(p, CLUSTERS_AT_100, high=max(p, prev), low=min(p, prev), dt=dt)
        prev = p
    return run


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-0.099, max_value=0.099), min_size=1, max_size=80))
def test_oscillation_within_margin_fires_once(wiggles: list[float]) -> None:
    """A price that crosses a level once and then oscillates around it by less than the
    re-arm margin (0.1 %) fires exactly once, however many times it crosses back."""
    run = Run(levels=[UserLevel(1, 1, SYM, LEVEL, "any")], config=EngineConfig(cooldown_ms=0))
    run.tick(99.0)
    run.tick(100.0 + 0.05)  # the crossing
    for w in wiggles:
        run.tick(LEVEL * (1 + w / 100))
    assert len(run.events) == 1


@settings(max_examples=200, deadline=None)
@given(prices)
def test_dedupe_keys_are_unique(path: list[float]) -> None:
    run = run_path(path, cooldown_ms=0)
    keys = [e.dedupe_key for e in run.events]
    assert len(keys) == len(set(keys))


@settings(max_examples=200, deadline=None)
@given(prices)
def test_level_fires_again_only_after_moving_away(path: list[float]) -> None:
    """Between two fires of one level the price was ≥ 0.1 % away from it on some tick."""
    run = Run(levels=[UserLevel(1, 1, SYM, LEVEL, "any")], config=EngineConfig(cooldown_ms=0))
    fired_at: list[int] = []
    for i, p in enumerate(path):
        if run.tick(p, high=max(p, path[i - 1] if i else p), low=min(p, path[i - 1] if i else p)):
            fired_at.append(i)
    for a, b in zip(fired_at, fired_at[1:], strict=False):
        assert any(abs(q - LEVEL) >= LEVEL * 0.001 for q in path[a + 1:b])


@settings(max_examples=200, deadline=None)
@given(prices)
def test_approach_fires_again_only_after_leaving_zone_plus_margin(path: list[float]) -> None:
    run = Run([Subscription(1, SYM)], config=EngineConfig(cooldown_ms=0))
    c = short("S1", 100.5, 100.9, 1e9)
    fired_at = [i for i, p in enumerate(path)
                if any(e.kind is EventKind.APPROACH for e in run.tick(p, [c]))]
    for a, b in zip(fired_at, fired_at[1:], strict=False):
        # re-armed: on some tick between, price was > 0.5 % + 0.25 % from the cluster
        assert any(abs(near_distance_pct(c, q)) > 0.75 for q in path[a + 1:b])


@settings(max_examples=100, deadline=None)
@given(prices, st.sampled_from([0, 5 * 60_000, 60 * 60_000]))
def test_cooldown_spacing(path: list[float], cooldown_ms: int) -> None:
    run = run_path(path, cooldown_ms=cooldown_ms)
    last: dict[tuple[int, EventKind, str], int] = {}
    for e in run.events:
        k = (e.chat, e.kind, e.ref)
        if k in last:
            assert e.ts_ms - last[k] >= cooldown_ms
        last[k] = e.ts_ms


@settings(max_examples=100, deadline=None)
@given(prices)
def test_json_state_between_ticks_changes_nothing(path: list[float]) -> None:
    """Storing the state as JSON between every tick (as the store does) gives the same
    events as keeping it in memory."""
    direct = run_path(path, cooldown_ms=5 * 60_000)
    via_json = Run(subs(), levels(), config=EngineConfig(cooldown_ms=5 * 60_000))
    prev = path[0]
    for p in path:
        via_json.tick(p, CLUSTERS_AT_100, high=max(p, prev), low=min(p, prev))
        via_json.state = SymbolState.from_json(via_json.state.to_json())
        prev = p
    assert via_json.events == direct.events


def test_events_per_key_bounded_by_armings() -> None:
    """Sanity on a fixed zig-zag: 10 full swings through everything with no cooldown fire
    each watch at most once per swing direction."""
    path = [98.0, 102.0] * 10
    run = run_path(path, cooldown_ms=0)
    per: dict[tuple[int, EventKind, str], int] = defaultdict(int)
    for e in run.events:
        per[(e.chat, e.kind, e.ref)] += 1
    assert per and max(per.values()) <= len(path)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=98.0, max_value=102.0, allow_nan=False),
                          st.booleans(), st.booleans(), st.sampled_from([1.0, 1.2, 2.0])),
                min_size=2, max_size=60))
def test_dedupe_keys_unique_when_clusters_vanish_and_return(steps) -> None:
    """Clusters dropping out of a recompute and coming back under the same id (the
    estimator's id memory), and growing, never make the engine reuse a dedupe key."""
    run = Run(subs(), levels(), config=EngineConfig(cooldown_ms=0))
    prev = steps[0][0]
    s1, l1 = CLUSTERS_AT_100
    for p, has_s, has_l, grow in steps:
        present = [c for c, on in ((s1, has_s), (l1, has_l)) if on]
        present = [type(c)(c.id, c.side, c.low, c.high, c.price, c.notional_usd * grow,
                           c.distance_pct) for c in present]
        run.tick(p, present, high=max(p, prev), low=min(p, prev))
        prev = p
    keys = [e.dedupe_key for e in run.events]
    assert len(keys) == len(set(keys))
