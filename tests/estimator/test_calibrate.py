"""Ladder calibration: predicted liquidations against the per-candle loop, NNLS against brute
force, recovery of a known ladder from its own liquidations, and bad input."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from estimator import ModelParams, fit_ladder, predicted_liquidations
from estimator.calibrate import nnls
from tests.estimator.strategies import candle_series, model_params
from tests.reference_model import reference_liquidations
from tests.synthetic import random_walk

TRUE_WEIGHTS = (0.05, 0.1, 0.15, 0.3, 0.4)
TRUE_SHARE = 0.65


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=candle_series(), p=model_params())
def test_predicted_liquidations_match_reference(c, p):
    fast = predicted_liquidations(c, p)
    ref = reference_liquidations(c, p)
    scale = max(float(np.abs(ref).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-9 * scale)


def brute_force_nnls(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest residual over every support set whose least-squares solution is ≥ 0."""
    best = float(np.linalg.norm(b))
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            x = np.linalg.lstsq(a[:, cols], b, rcond=None)[0]
            if np.all(x >= 0):
                best = min(best, float(np.linalg.norm(a[:, cols] @ x - b)))
    return best


@st.composite
def small_problems(draw):
    m, n = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    # Quarter steps: brute force solves each support exactly, so no near-singular columns
    # (a 1e-184 entry "fits" anything with x = 1e184; nnls rightly calls that gradient 0).
    elems = st.integers(-40, 40).map(lambda k: k / 4)
    a = draw(arrays(np.float64, (m, n), elements=elems))
    if draw(st.booleans()) and n > 1:
        a[:, -1] = a[:, 0]  # rank-deficient: a repeated column
    return a, draw(arrays(np.float64, (m,), elements=elems))


@settings(max_examples=50, deadline=None)
@given(problem=small_problems())
def test_nnls_matches_brute_force(problem):
    a, b = problem
    x, resid = nnls(a, b)
    assert np.all(x >= 0)
    assert resid == pytest.approx(float(np.linalg.norm(a @ x - b)))
    scale = 1e-9 * (1 + float(np.abs(a).max()) * float(np.abs(b).max()))
    assert resid <= brute_force_nnls(a, b) + scale
    # KKT: no free direction improves the fit.
    grad = a.T @ (b - a @ x)
    assert np.all(grad <= 1e-7 * (1 + float(np.abs(a).max()) ** 2 * float(np.abs(b).max())))


def test_nnls_known_solutions():
    x, resid = nnls(np.eye(2), np.array([1.0, -1.0]))
    np.testing.assert_allclose(x, [1.0, 0.0])
    assert resid == pytest.approx(1.0)
    # Both columns want to be used, but the unconstrained fit makes the second negative.
    a = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    x, _ = nnls(a, np.array([2.0, 3.0, -1.0]))
    np.testing.assert_allclose(x, [2.5, 0.0])
    with pytest.raises(ValueError, match="shape|matrix"):
        nnls(np.ones(3), np.ones(3))


def synthetic(n=3000, seed=5, **walk):
    c = random_walk(n, start=30_000.0, step_ms=3_600_000, vol=0.006, wick=0.004, oi_usd=1e9,
                    seed=seed, **walk)
    true = dataclasses.replace(ModelParams(), weights=TRUE_WEIGHTS, dominant_share=TRUE_SHARE)
    per_side = predicted_liquidations(c, true).sum(axis=1)
    side, t = np.nonzero(per_side > 0)
    # One event per (side, candle), 1 s into the candle: the tape never starts at the open.
    return c, c.timestamp[t] + 1000, side == 1, per_side[side, t]


@pytest.mark.parametrize("taker", [False, True])
def test_recovers_a_known_ladder_from_its_own_liquidations(taker):
    c, ts, short, usd = synthetic(taker=taker)
    fit = fit_ladder(c, ModelParams(), ts, short, usd * 0.2)
    np.testing.assert_allclose(fit.weights, TRUE_WEIGHTS, atol=1e-6)
    assert fit.dominant_share == pytest.approx(TRUE_SHARE)
    assert fit.scale == pytest.approx(0.2, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0) and fit.r2 > fit.r2_default
    assert fit.n_liquidations == len(ts) and fit.observed_usd == pytest.approx(usd.sum() * 0.2)
    assert not fit.proxy and fit.start_ms <= ts.min() and ts.max() < fit.end_ms
    params = fit.params(ModelParams(half_life_hours=24.0))
    assert params.weights == fit.weights and params.dominant_share == fit.dominant_share
    assert params.half_life_hours == 24.0


def test_recovers_roughly_from_a_noisy_partial_tape():
    c, ts, short, usd = synthetic()
    rng = np.random.default_rng(0)
    keep = rng.random(len(ts)) < 0.8  # the tape misses some …
    noisy = usd * rng.lognormal(0.0, 0.25, len(ts))  # … and sizes are off
    fit = fit_ladder(c, ModelParams(), ts[keep], short[keep], noisy[keep])
    # Loose on purpose: the fit is rough, and the report says so (bench/calibrate_bench.py
    # prints the errors over 10 seeds at this noise; README, "Calibrating the ladder").
    np.testing.assert_allclose(fit.weights, TRUE_WEIGHTS, atol=0.15)
    assert abs(fit.dominant_share - TRUE_SHARE) <= 0.05
    assert fit.r2 > fit.r2_default and fit.r2 > fit.r2_flat


def test_bad_input_names_the_problem():
    c, ts, short, usd = synthetic(n=300)
    base = ModelParams()
    with pytest.raises(ValueError, match="no liquidations"):
        fit_ladder(c, base, [], [], [])
    with pytest.raises(ValueError, match="no liquidation falls within the candles"):
        fit_ladder(c, base, ts + 10**12, short, usd)
    with pytest.raises(ValueError, match="liquidation 1 has a negative"):
        fit_ladder(c, base, ts[:3], short[:3], [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="differ in shape"):
        fit_ladder(c, base, ts, short[:-1], usd)
    with pytest.raises(ValueError, match="total 0 USD"):
        fit_ladder(c, base, ts, short, np.zeros(len(ts)))
    with pytest.raises(ValueError, match="at least 2 candles"):
        fit_ladder(c.slice(0, 1), base, c.timestamp[:1], [False], [1.0])


def test_no_predicted_liquidations_is_an_error():
    # Flat prices: nothing is ever consumed, so there is nothing to fit the tape to.
    c = random_walk(50, start=100.0, step_ms=60_000, vol=0.0, wick=0.0, oi_usd=1e6)
    with pytest.raises(ValueError, match="predicts no liquidations"):
        fit_ladder(c, ModelParams(), c.timestamp[10:12], [False, True], [5.0, 5.0])
