"""The vectorised death search against a brute-force scan: every level, both sides."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from estimator.deaths import first_high_at_or_above, first_low_at_or_below
from tests.conftest import scaled


def brute(series, born, level, below):
    n = len(series)
    after = np.arange(n)[None, :] > born[:, None]
    hit = (series[None, :] <= level[:, None]) if below else (series[None, :] >= level[:, None])
    hit &= after
    return np.where(hit.any(axis=1), hit.argmax(axis=1), n)


def check(series, born, level):
    assert np.array_equal(first_low_at_or_below(series, born, level),
                          brute(series, born, level, below=True))
    assert np.array_equal(first_high_at_or_above(series, born, level),
                          brute(series, born, level, below=False))


@settings(max_examples=scaled(300, minimum=100), deadline=None)
@given(n=st.integers(1, 70), m=st.integers(0, 40), seed=st.integers(0, 2**32 - 1),
       ties=st.booleans())
def test_matches_brute_force(n, m, seed, ties):
    rng = np.random.default_rng(seed)
    series = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if ties:  # levels exactly on a candle's value, repeated values
        series = np.round(series)
    born = rng.integers(0, n, m)  # any order, repeats allowed
    level = series[rng.integers(0, n, m)] * rng.choice([0.97, 1.0, 1.03], m)
    check(series, born, level)


def test_many_levels_span_several_chunks():
    rng = np.random.default_rng(5)
    series = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    born = np.sort(rng.integers(0, 400, 30_000))
    level = series[born] * rng.uniform(0.9, 1.1, len(born))
    check(series, born, level)


def test_level_born_on_last_candle_never_dies():
    series = np.array([5.0, 1.0, 9.0])
    assert first_low_at_or_below(series, np.array([2]), np.array([100.0]))[0] == 3
    assert first_high_at_or_above(series, np.array([2]), np.array([0.0]))[0] == 3
