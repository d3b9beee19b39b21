"""The build-once walk against the walk that rebuilds the book at every evaluation
(tests/bot/backtest_reference.py): the same estimates — the same evaluations, clusters, sides
and bucket edges exactly, notionals to float rounding (the walk keeps a running total per
leverage × bucket, scaled by the survival between evaluations: sums taken in another order)."""

from pathlib import Path

import numpy as np
import pytest

from bot.backtest.walk import Estimates, evaluation_times, walk
from bot.market.replay import load_csv
from estimator import ClusterRule, ModelParams, book_at, build_book, level_model
from tests.bot.backtest_reference import walk_rebuilding
from tests.synthetic import random_walk

BUNDLED = Path(__file__).resolve().parents[2] / "bot" / "data" / "btcusd_coinbase_1h.csv"
EXACT = ("times", "price", "eval_idx", "low", "high", "is_short", "proxy")


def assert_same(a: Estimates, b: Estimates) -> None:
    assert len(a) > 100
    for name in EXACT:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    np.testing.assert_allclose(a.notional, b.notional, rtol=1e-9, atol=0)


@pytest.fixture(scope="module")
def bundled_head():
    return load_csv(BUNDLED).slice(0, 2500)  # volume only: the proxy path


@pytest.fixture(scope="module")
def with_oi():
    return random_walk(2000, start=60_000.0, step_ms=3_600_000, vol=0.006, wick=0.003,
                       oi_usd=8e9, oi_vol=0.01, taker=True, seed=11)


@pytest.mark.parametrize("lookback", [None, 300])
@pytest.mark.parametrize("half_life", [None, 48.0])
def test_walk_matches_rebuilding_on_the_bundled_file(bundled_head, lookback, half_life):
    p = ModelParams(half_life_hours=half_life)
    times = evaluation_times(len(bundled_head), 240, 12, 30)
    assert_same(walk(bundled_head, times, p, ClusterRule(), 5, lookback),
                walk_rebuilding(bundled_head, times, p, ClusterRule(), 5, lookback))


@pytest.mark.parametrize("lookback", [None, 24, 200])
def test_walk_matches_rebuilding_with_open_interest(with_oi, lookback):
    p = ModelParams(half_life_hours=24.0)
    times = evaluation_times(len(with_oi), 240, 10, 30)
    assert_same(walk(with_oi, times, p, ClusterRule(), 5, lookback),
                walk_rebuilding(with_oi, times, p, ClusterRule(), 5, lookback))


def test_book_at_any_window_is_the_book_of_that_slice(with_oi):
    p = ModelParams(half_life_hours=6.0)
    model = level_model(with_oi, p)
    for start, t in ((0, 0), (0, 1), (5, 5), (10, 700), (600, 1999), (1998, 1999)):
        got = book_at(model, t, with_oi, p, start)
        want = build_book(with_oi.slice(start, t + 1), p)
        assert (got.k0, got.last_price, got.timestamp) == (want.k0, want.last_price,
                                                           want.timestamp)
        assert np.array_equal(got.long_by_lev, want.long_by_lev)
        assert np.array_equal(got.short_by_lev, want.short_by_lev)


def test_progress_is_called_once_per_evaluation(with_oi):
    times = evaluation_times(len(with_oi), 240, 50, 30)
    seen = []
    walk(with_oi, times, ModelParams(), ClusterRule(), 5,
         progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k + 1, len(times)) for k in range(len(times))]
