"""new_cluster: appearance above a subscriber's size, growth ≥ 1.5×, silent baseline."""

from bot.alerts import EventKind, Subscription
from tests.bot.engine_helpers import SYM, Run, short

FAR = 88_000.0  # beyond approach distance of every cluster, within the 10 % news range


def nc(ev):
    return [(e.chat, e.ref, e.epoch, e.grown_from_usd) for e in ev
            if e.kind is EventKind.NEW_CLUSTER]


def test_clusters_of_the_first_evaluation_are_a_silent_baseline() -> None:
    run = Run([Subscription(1, SYM)])
    assert run.tick(FAR, [short()]) == []


def test_new_cluster_above_min_fires_once() -> None:
    run = Run([Subscription(1, SYM), Subscription(2, SYM, min_usd=2e9)])
    run.tick(FAR, [])
    assert nc(run.tick(FAR, [short("S9", usd=1.2e9)])) == [(1, "S9", 0, None)]
    assert run.tick(FAR, [short("S9", usd=1.2e9)]) == []


def test_small_new_cluster_is_ignored_then_announced_when_it_reaches_min() -> None:
    run = Run([Subscription(1, SYM, min_usd=500e6)])
    run.tick(FAR, [])
    assert run.tick(FAR, [short("S9", usd=400e6)]) == []
    assert nc(run.tick(FAR, [short("S9", usd=420e6)])) == []
    assert nc(run.tick(FAR, [short("S9", usd=520e6)])) == [(1, "S9", 0, None)]
    assert run.tick(FAR, [short("S9", usd=490e6)]) == []  # dips below and back: peak rule
    assert run.tick(FAR, [short("S9", usd=510e6)]) == []


def test_growth_by_factor_is_announced_with_a_new_epoch() -> None:
    run = Run([Subscription(1, SYM)], )
    run.tick(FAR, [short(usd=1e9)])  # baseline at $1B
    assert run.tick(FAR, [short(usd=1.4e9)]) == []
    ev = run.tick(FAR, [short(usd=1.5e9)])
    assert nc(ev) == [(1, "S1", 1, 1e9)]
    assert run.tick(FAR, [short(usd=2.0e9)]) == []  # 1.33× the announced $1.5B


def test_growth_tells_newcomers_it_is_new_not_grown() -> None:
    run = Run([Subscription(1, SYM, min_usd=100e6), Subscription(2, SYM, min_usd=1e9)])
    run.tick(FAR, [])
    assert nc(run.tick(FAR, [short("S9", usd=500e6)])) == [(1, "S9", 0, None)]
    assert nc(run.tick(FAR, [short("S9", usd=1.2e9)], dt=61 * 60_000)) == [
        (1, "S9", 1, 500e6), (2, "S9", 1, None)]


def test_vanished_cluster_keeps_its_epochs_until_forgotten() -> None:
    """The estimator may give a vanished cluster its id back (48 h memory): the engine keeps
    its epochs meanwhile, so a return is not 'new' and new alerts get fresh dedupe keys."""
    run = Run([Subscription(1, SYM)])
    run.tick(FAR, [short(usd=1e9)])
    run.tick(FAR, [])
    run.tick(FAR, [], dt=24 * 3_600_000)
    assert "S1" in run.state.sizes
    assert run.tick(FAR, [short(usd=1e9)]) == []  # back within the memory: not new
    run.tick(FAR, [])
    run.tick(FAR, [], dt=73 * 3_600_000)
    assert run.state.sizes == {} and run.state.seen == {}


def test_clusters_beyond_the_news_range_are_tracked_silently() -> None:
    run = Run([Subscription(1, SYM)])
    run.tick(80_000.0, [])
    # 94,000 is 17.5 % above 80,000: beyond new_cluster_range_pct (10 %).
    assert run.tick(80_000.0, [short("S9", usd=1.2e9)]) == []
    assert run.tick(80_000.0, [short("S9", usd=2.4e9)]) == []  # growth out of range: silent
    # In range, the growth since it was first seen is news (from the first-seen base).
    assert nc(run.tick(88_000.0, [short("S9", usd=2.4e9)])) == [(1, "S9", 1, 1.2e9)]


def test_sizes_are_compared_only_within_one_oi_composition() -> None:
    """Started while one of two exchanges' OI was missing: when it comes back every cluster
    doubles. That is not growth (no 'grew'), and a cluster first seen on that tick is not new;
    growth under the new composition is measured from the re-based size."""
    run = Run([Subscription(1, SYM, min_usd=0)])
    run.tick(FAR, [short("S1", usd=1e9)], oi_mix="binanceusdm")  # baseline
    assert nc(run.tick(FAR, [short("S1", usd=1.1e9)], oi_mix="binanceusdm")) == []
    both = "binanceusdm+bybit"
    assert nc(run.tick(FAR, [short("S1", usd=2.2e9), short("S2", 80_000, 80_400, 5e8)],
                       oi_mix=both)) == []
    assert run.state.oi_mix == both
    assert nc(run.tick(FAR, [short("S1", usd=2.3e9)], oi_mix=both)) == []
    # Real growth within the composition is still news, from the re-based $2.2B, new epoch.
    assert nc(run.tick(FAR, [short("S1", usd=3.3e9)], oi_mix=both)) == [(1, "S1", 1, 2.2e9)]
    # An exchange drops out (sizes halve) and returns: nothing either way, epochs kept.
    assert nc(run.tick(FAR, [short("S1", usd=1.65e9)], oi_mix="binanceusdm")) == []
    assert nc(run.tick(FAR, [short("S1", usd=3.3e9)], oi_mix=both)) == []
    assert run.state.sizes["S1"] == [3.3e9, 3.3e9, 1]
    # S2 vanished before the last two changes: it is re-based when it comes back, silently.
    assert nc(run.tick(FAR, [short("S1", usd=3.3e9), short("S2", 80_000, 80_400, 9e8)],
                       oi_mix=both)) == []
