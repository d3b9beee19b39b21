"""break: the traded range crossed the cluster's far edge from its near side."""

from bot.alerts import EventKind, Subscription
from tests.bot.engine_helpers import SYM, Run, long, short


def kinds(ev):
    return sorted(e.kind.value for e in ev)


def test_short_cluster_break_on_candle_high() -> None:
    run = Run([Subscription(1, SYM, approach_pct=0.1)])
    run.tick(93_000, [short()])
    ev = run.tick(93_500, [short()], high=94_450, low=92_990)
    assert kinds(ev) == ["break"]
    assert ev[0].ref == "S1" and ev[0].epoch == 0


def test_touching_the_near_edge_is_not_a_break() -> None:
    run = Run([Subscription(1, SYM, approach_pct=0.1)])
    run.tick(93_000, [short()])
    assert EventKind.BREAK not in {e.kind for e in run.tick(94_100, [short()], high=94_399)}


def test_long_cluster_break_on_candle_low() -> None:
    run = Run([Subscription(1, SYM, approach_pct=0.1)])
    run.tick(92_000, [long()])
    ev = run.tick(91_500, [long()], high=92_000, low=90_700)
    assert kinds(ev) == ["break"]


def test_break_fires_once_until_price_returns() -> None:
    run = Run([Subscription(1, SYM, approach_pct=0.1)])
    run.tick(93_000, [short()])
    assert kinds(run.tick(94_500, [short()], high=94_600)) == ["break"]
    run.tick(94_200, [short()], low=94_100)
    assert run.tick(94_500, [short()], high=94_600) == []  # not back below the cluster
    run.tick(93_500, [short()], low=93_400, dt=61 * 60_000)  # re-armed (< low − 0.25 %)
    ev = run.tick(94_500, [short()], high=94_600)
    assert kinds(ev) == ["break"] and ev[0].epoch == 1


def test_no_break_without_a_previous_price() -> None:
    run = Run([Subscription(1, SYM)])
    assert run.tick(94_500, [short()], high=94_600, low=93_000) == []


def test_break_respects_min_usd() -> None:
    run = Run([Subscription(1, SYM, min_usd=5e9, approach_pct=0.1)])
    run.tick(93_000, [short()])
    assert run.tick(94_500, [short()], high=94_600) == []


def test_wick_through_then_close_inside_does_not_become_an_approach() -> None:
    """Regression (found by the crash test): a candle whose low breaks a long cluster and
    closes back inside it fires a break only — not an approach on this tick, a replay of
    it, or the next ticks while the break is disarmed."""
    from bot.alerts import Tick, evaluate

    run = Run([Subscription(1, SYM)])
    run.tick(92_000, [long()])
    assert kinds(run.tick(91_000, [long()], low=90_700)) == ["break"]
    replay = Tick(91_000, 91_000, 90_700, run.t)
    assert evaluate(run.state, SYM, replay, [long()], run.watch)[0] == []
    assert run.tick(91_050, [long()]) == []
    run.tick(91_500, [long()])  # > high + 0.25 %: break re-armed (zone still inside)
    run.tick(92_500, [long()], dt=61 * 60_000)  # zone re-armed too (1.4 % away)
    assert kinds(run.tick(91_600, [long()])) == ["approach"]
