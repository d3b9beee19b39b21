"""The vectorised death search against a brute-force scan: every level, both sides."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from estimator.deaths import (
    _count_at_or_below,
    first_column_at_or_above,
    first_column_at_or_below,
    first_high_at_or_above,
    first_low_at_or_below,
)
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


def column_of(death, cols, n):
    """The first of ``cols`` at/after each death (len(cols) for none), as the heatmap reads it."""
    return np.searchsorted(np.append(cols, n), death, side="left")


@settings(max_examples=scaled(300, minimum=100), deadline=None)
@given(n=st.integers(1, 90), m=st.integers(0, 60), n_cols=st.integers(1, 12),
       first=st.integers(0, 89), seed=st.integers(0, 2**32 - 1), ties=st.booleans())
def test_death_column_matches_the_candle_search(n, m, n_cols, first, seed, ties):
    rng = np.random.default_rng(seed)
    series = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if ties:
        series = np.round(series)
    first = min(first, n - 1)  # the heatmap's start: columns from there to the last candle
    cols = np.unique(np.linspace(first, n - 1, num=min(n_cols, n - first)).round().astype(int))
    born = np.sort(rng.integers(0, n, m))  # in birth order, as created levels are
    level = series[rng.integers(0, n, m)] * rng.choice([0.97, 1.0, 1.03], m)
    born_col = column_of(born, cols, n)
    for column, candle in ((first_column_at_or_below, first_low_at_or_below),
                           (first_column_at_or_above, first_high_at_or_above)):
        assert np.array_equal(column(series, born, level, cols, born_col),
                              column_of(candle(series, born, level), cols, n))


@settings(max_examples=scaled(300, minimum=100), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), m=st.integers(0, 300),
       exponent=st.integers(-300, 300), sign=st.sampled_from([-1.0, 1.0, 0.0]),
       ties=st.booleans())
def test_coarse_rank_equals_searchsorted(seed, n, m, exponent, sign, ties):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** exponent
    values = rng.random(n) * scale
    x = rng.random(m) * scale * 10.0 ** rng.integers(-3, 4)
    if sign:
        values, x = values * sign, x * sign
    else:  # both signs
        values, x = values - scale / 2, x - scale / 2
    if ties and n and m:  # exactly on a value, and one step of a float above it
        x[: m // 2] = rng.choice(values, m // 2)
        x[m // 2: m // 2 + 3] = np.nextafter(x[m // 2: m // 2 + 3], np.inf)
    values = np.unique(values)
    assert np.array_equal(_count_at_or_below(values, x),
                          np.searchsorted(values, x, side="right"))
