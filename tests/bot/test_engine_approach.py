"""approach: fires on entering the zone, once per arming, re-arms past the margin."""

from bot.alerts import EngineConfig, EventKind, Subscription
from tests.bot.engine_helpers import SYM, Run, long, short


def test_fires_when_price_enters_the_zone() -> None:
    run = Run([Subscription(1, SYM)])
    assert run.tick(92_900, [short()]) == []  # 1.18 % away, outside 0.5 %
    ev = run.tick(93_600, [short()])
    assert [(e.kind, e.chat, e.ref, e.epoch) for e in ev] == [(EventKind.APPROACH, 1, "S1", 0)]
    e = ev[0]
    assert (e.side, e.low, e.high, e.notional_usd, e.price) == ("short", 94_000, 94_400,
                                                                1.0e9, 93_600)
    assert abs(e.distance_pct - (94_000 - 93_600) / 93_600 * 100) < 1e-9


def test_long_cluster_below_price() -> None:
    run = Run([Subscription(1, SYM)])
    ev = run.tick(91_500, [long()])
    assert [e.kind for e in ev] == [EventKind.APPROACH]
    assert ev[0].distance_pct < 0


def test_respects_min_usd_and_pct_per_subscription() -> None:
    subs = [Subscription(1, SYM, min_usd=100e6, approach_pct=0.5),
            Subscription(2, SYM, min_usd=2e9, approach_pct=0.5),
            Subscription(3, SYM, min_usd=100e6, approach_pct=2.0)]
    run = Run(subs)
    ev = run.tick(92_900, [short()])  # 1.18 %: only the 2 % subscription
    assert [e.chat for e in ev] == [3]
    ev = run.tick(93_700, [short()])
    assert [e.chat for e in ev] == [1]  # chat 2's min is above $1B, chat 3 already inside


def test_stays_quiet_inside_the_zone_and_rearms_after_margin() -> None:
    cfg = EngineConfig(cooldown_ms=0)
    run = Run([Subscription(1, SYM)], config=cfg)
    assert len(run.tick(93_700, [short()])) == 1
    for p in (93_650, 93_800, 93_560, 93_900):  # all within 0.5 % + 0.25 %
        assert run.tick(p, [short()]) == []
    assert run.tick(93_200, [short()]) == []  # 0.86 % > 0.75 %: re-armed, not inside
    ev = run.tick(93_700, [short()])
    assert [(e.kind, e.epoch) for e in ev] == [(EventKind.APPROACH, 1)]


def test_cooldown_suppresses_a_rearmed_zone() -> None:
    run = Run([Subscription(1, SYM)])  # default 60 min cooldown
    assert len(run.tick(93_700, [short()])) == 1
    run.tick(93_000, [short()])
    assert run.tick(93_700, [short()]) == []  # re-armed but within 60 min
    run.tick(93_000, [short()], dt=61 * 60_000)
    assert len(run.tick(93_700, [short()])) == 1


def test_no_approach_for_a_cluster_price_is_already_beyond() -> None:
    run = Run([Subscription(1, SYM)])
    assert run.tick(94_500, [short()]) == []


def test_changing_approach_pct_never_reuses_an_epoch() -> None:
    cfg = EngineConfig(cooldown_ms=0)
    run = Run([Subscription(1, SYM, approach_pct=0.5)], config=cfg)
    assert [e.epoch for e in run.tick(93_700, [short()])] == [0]
    run.watch = type(run.watch)(SYM, [Subscription(1, SYM, approach_pct=1.0)], [])
    ev = run.tick(93_650, [short()])  # the 1 % zone is entered for the first time
    assert [(e.chat, e.epoch) for e in ev] == [(1, 1)]
