"""Walk-forward backtest: the metric on series where the answer is known, no look-ahead,
seeded baselines, scoring rules on hand-made paths, the block bootstrap."""

import numpy as np
import pytest

from bot.backtest import BacktestOptions, run_backtest
from bot.backtest.bootstrap import BlockBootstrap, interval
from bot.backtest.score import outcomes, random_sides
from bot.backtest.walk import Estimates, estimate_at, evaluation_times, parse_duration, walk
from estimator import Candles, ClusterRule, ModelParams

STEP = 3_600_000
PARAMS = ModelParams(half_life_hours=72.0)
OPTS = BacktestOptions(warmup="10d", params=PARAMS, resamples=500)
WARMUP, EVERY = 240, 24


def candles_from(r, wick, volume, start=10_000.0):
    """Candles from close-to-close log returns, relative wicks and volumes (1h spacing)."""
    close = start * np.exp(np.cumsum(r))
    open_ = np.concatenate([[start], close[:-1]])
    ts = 1_600_000_000_000 + np.arange(len(r), dtype=np.int64) * STEP
    return Candles(ts, open_, np.maximum(open_, close) * (1 + wick),
                   np.minimum(open_, close) * (1 - wick), close, volume)


def series(n, seed, magnet, vol=0.005, pull=12):
    """A random walk; with ``magnet``, built to revisit its clusters: at every evaluation time
    the next ``pull`` candles drift to 1.3 × the distance of the nearest top cluster (as the
    model sees it from candles ≤ t), and the ``pull`` after that drift back (no net trend, so a
    side-blind rule gains nothing)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, vol, n)
    wick = np.abs(rng.normal(0, vol / 2, n))
    volume = rng.gamma(2.0, 50.0, n)
    if magnet:
        for t in range(WARMUP - 1, n - 1, EVERY):
            c = candles_from(r[: t + 1], wick[: t + 1], volume[: t + 1])
            rows, price, _ = estimate_at(c, t, PARAMS, ClusterRule(), 5)
            if rows:
                centres = np.array([(lo + hi) / 2 for _, lo, hi, _ in rows])
                target = centres[np.argmin(np.abs(np.log(centres / price)))]
                step = np.log(target / price) * 1.3 / pull
                r[t + 1: t + 1 + pull] += step
                r[t + 1 + pull: t + 1 + 2 * pull] -= step  # and back: no net trend
    return candles_from(r, wick, volume)


def shuffled(c, seed):
    """The same candles (returns, wicks, volumes) in a random order: time structure gone."""
    r = np.diff(np.log(np.concatenate([[c.open[0]], c.close])))
    wick = c.high / np.maximum(c.open, c.close) - 1
    perm = np.random.default_rng(seed).permutation(len(c))
    return candles_from(r[perm], wick[perm], c.volume[perm], start=float(c.open[0]))


N, SEED = 3600, 4  # 150 days of 1h candles, ~140 evaluations


@pytest.fixture(scope="module")
def magnet():
    return series(N, SEED, magnet=True)


def test_series_that_revisits_its_clusters_shows_lift_a_random_walk_does_not(magnet):
    built = run_backtest(magnet, OPTS)
    walk_ = run_backtest(series(N, SEED, magnet=False), OPTS)
    assert built["lift_ci95"][0] > 1.05, built
    assert walk_["lift_ci95"][0] < 1.0 < walk_["lift_ci95"][1], walk_
    assert built["lift"] > walk_["lift"] + 0.15
    # Lift can never pass the oracle's ceiling; headroom is the share of it the model takes.
    assert 1.0 < built["lift"] < built["ceiling"]
    assert 0 < built["headroom"] < 1


def test_shuffling_time_removes_the_lift(magnet):
    built = run_backtest(magnet, OPTS)
    mixed = [run_backtest(shuffled(magnet, seed), OPTS) for seed in range(4)]
    for r in mixed:
        assert r["lift"] < built["lift"] - 0.1, r
        assert r["lift_ci95"][0] < 1.0, r
    assert abs(np.mean([r["lift"] for r in mixed]) - 1.0) < 0.05


def test_estimate_at_t_ignores_every_candle_after_t():
    c = series(900, 4, magnet=False)
    cut = 600
    rng = np.random.default_rng(0)
    later = slice(cut + 1, None)
    jolt = np.ones(len(c))
    jolt[later] = np.exp(rng.normal(0, 0.05, len(c) - cut - 1))
    high = c.high * jolt * 1.02
    high[: cut + 1] = c.high[: cut + 1]
    changed = Candles(c.timestamp, c.open * jolt, high, c.low * jolt, c.close * jolt,
                      c.volume * np.where(jolt != 1, 7.0, 1.0))
    times = evaluation_times(len(c), WARMUP, EVERY, 30)
    a = walk(c, times, PARAMS, ClusterRule(), 5)
    b = walk(changed, times, PARAMS, ClusterRule(), 5)
    upto = np.searchsorted(times, cut, side="right")
    keep_a, keep_b = a.eval_idx < upto, b.eval_idx < upto
    assert keep_a.sum() > 50
    for field in ("eval_idx", "low", "high", "notional", "is_short"):
        assert np.array_equal(getattr(a, field)[keep_a], getattr(b, field)[keep_b]), field
    assert np.array_equal(a.price[:upto], b.price[:upto])
    # …and the candles after the cut do change the later estimates (the test has teeth).
    assert not np.array_equal(a.price[upto:], b.price[upto:])


def test_evaluation_times_leave_room_to_score_and_respect_the_warmup():
    t = evaluation_times(1000, 240, 24, 30)
    assert t[0] == 239 and np.all(np.diff(t) == 24) and t[-1] + 30 <= 999
    with pytest.raises(ValueError, match="too short"):
        evaluation_times(200, 240, 24, 30)
    assert parse_duration("24h") == 86_400_000 and parse_duration("30m") == 1_800_000
    with pytest.raises(ValueError, match="unit"):
        parse_duration("24")


def test_b1_draws_are_seeded_and_reproducible():
    assert np.array_equal(random_sides(500, 20, 7), random_sides(500, 20, 7))
    assert not np.array_equal(random_sides(500, 20, 7), random_sides(500, 20, 8))
    c = series(1200, 9, magnet=False)
    one, two = run_backtest(c, OPTS), run_backtest(c, OPTS)
    other = run_backtest(c, BacktestOptions(warmup="10d", params=PARAMS, resamples=500, seed=1))
    for r in (one, two, other):
        r.pop("elapsed_s")
        r.pop("walk_s")
    assert one == two
    assert other["baseline_touch_rate"] != one["baseline_touch_rate"]
    assert other["touch_rate"] == one["touch_rate"]
    assert abs(other["baseline_touch_rate"] - one["baseline_touch_rate"]) < 0.02


def hand_made(path_high, path_low, lo, hi):
    """Flat candles at 100 USD for 3 hours, then the given highs/lows; one zone [lo, hi] set at
    the close of candle 2 (price 100)."""
    n0 = 3
    high = np.concatenate([np.full(n0, 100.0), path_high])
    low = np.concatenate([np.full(n0, 100.0), path_low])
    close = (high + low) / 2
    close[:n0] = 100.0
    ts = np.arange(len(high), dtype=np.int64) * STEP
    c = Candles(ts, close, high, low, close, np.ones(len(high)))
    est = Estimates(times=np.array([n0 - 1]), price=np.array([100.0]),
                    eval_idx=np.array([0]), low=np.array([lo]), high=np.array([hi]),
                    notional=np.array([1.0]), is_short=np.array([hi > 100]), proxy=True)
    return c, est


def test_touch_and_reaction_on_a_hand_made_path():
    # Price climbs to 102.5 in 4 h: the zone above [101, 101.5] is touched and left ≥ 0.5 %
    # behind (101.5 × 1.005 = 102.0); its mirror [98.5, 99] below is never reached.
    up = np.array([100.5, 101.2, 101.8, 102.5, 101, 100, 100, 100])
    c, est = hand_made(up, up - 0.4, 101.0, 101.5)
    o = outcomes(c, est, horizon=4, reaction=3)
    assert o.model.touched[0] and o.model.continued[0] and o.model_is_above[0]
    assert o.above.touched[0] and not o.below.touched[0]
    # Touched but turned back: no reaction.
    back = np.array([100.5, 101.2, 100.6, 100.2, 100, 100, 100, 100])
    c, est = hand_made(back, back - 0.4, 101.0, 101.5)
    o = outcomes(c, est, horizon=4, reaction=3)
    assert o.model.touched[0] and not o.model.continued[0]
    # Reached only after the horizon: not a touch.
    late = np.array([100.2, 100.3, 100.4, 100.5, 101.2, 102, 102, 102])
    c, est = hand_made(late, late - 0.2, 101.0, 101.5)
    assert not outcomes(c, est, horizon=4, reaction=3).model.touched[0]


def test_block_bootstrap_sums_and_interval():
    v = np.arange(10, dtype=float)
    boot = BlockBootstrap(10, 3, 50, seed=0)
    for starts, got in zip(boot.starts, boot.sums(v), strict=True):
        idx = np.concatenate([(s + np.arange(3)) % 10 for s in starts])[:10]
        assert got == pytest.approx(v[idx].sum())
    same = boot.ratio(2 * v + 1, v + 0.5)
    assert interval(same) == pytest.approx((2.0, 2.0))
