"""The fast (vectorised) book and heatmap against the per-candle reference loop."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from estimator import Candles, ModelParams, build_book, build_heatmap
from tests.conftest import scaled
from tests.estimator.strategies import candle_series, model_params
from tests.reference_model import dense, reference_books

RTOL = 1e-9


def assert_matches(fast: np.ndarray, ref: np.ndarray) -> None:
    # Relative to the matrix's scale: the heatmap recurrence subtracts consumed levels, which
    # leaves rounding of the order of eps × the largest value in that bucket.
    scale = max(float(np.abs(ref).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(fast, ref, rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=scaled(300, minimum=100), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=candle_series(), p=model_params())
def test_book_matches_reference(c, p):
    book = build_book(c, p)
    ref_long, ref_short = reference_books(c, p)[len(c) - 1]
    n_lev, width = book.long_by_lev.shape
    assert_matches(book.long_by_lev, dense(ref_long, n_lev, book.k0, width))
    assert_matches(book.short_by_lev, dense(ref_short, n_lev, book.k0, width))
    assert book.proxy == (c.open_interest_usd is None)


@settings(max_examples=scaled(200, minimum=60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=candle_series(), p=model_params())
def test_heatmap_columns_match_reference(c, p):
    start = len(c) // 3
    heat = build_heatmap(c, p, columns=7, start=start)
    ref = reference_books(c, p, at=[int(t) for t in heat.candle_index])
    width = heat.long.shape[1]
    n_lev = len(p.leverages)
    for side, fast in ((0, heat.long), (1, heat.short)):
        expected = np.array([dense(ref[int(t)][side], n_lev, heat.k0, width).sum(axis=0)
                             for t in heat.candle_index])
        assert_matches(fast, expected)
        # A bucket with nothing in it is exactly 0 (charts leave it blank), not rounding left
        # over from taking its levels out.
        assert (fast[expected == 0] == 0).all()


def test_heatmap_over_a_decay_past_the_scaled_range():
    """A survival falling by far more than e^600 over the window: the columns are solved in
    several runs, each in its own scale, and still match the per-candle loop."""
    rng = np.random.default_rng(11)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    oi = 1e6 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    c = Candles(np.arange(n, dtype=np.int64) * 3_600_000, close, close * 1.002, close * 0.998,
                close, np.ones(n), oi)
    p = ModelParams(half_life_hours=0.25)  # ×1/16 per hourly candle: e^−1,100 over the series
    heat = build_heatmap(c, p, columns=40)
    ref = reference_books(c, p, at=[int(t) for t in heat.candle_index])
    n_lev, width = len(p.leverages), heat.long.shape[1]
    for side, fast in ((0, heat.long), (1, heat.short)):
        expected = np.array([dense(ref[int(t)][side], n_lev, heat.k0, width).sum(axis=0)
                             for t in heat.candle_index])
        for row, want in zip(fast, expected, strict=True):  # each column at its own scale
            assert_matches(row, want)
        assert (fast[expected == 0] == 0).all()
    assert heat.long[-1].sum() > 0  # the recent levels are there, at full value


def series(closes, highs=None, lows=None, oi=None, volume=None, step=3_600_000):
    closes = np.asarray(closes, dtype=float)
    n = len(closes)
    return Candles(
        np.arange(n, dtype=np.int64) * step, closes, np.asarray(highs or closes, dtype=float),
        np.asarray(lows or closes, dtype=float), closes,
        np.asarray(volume if volume is not None else [1.0] * n, dtype=float),
        None if oi is None else np.asarray(oi, dtype=float),
    )


def test_single_candle_with_oi_has_empty_book():
    book = build_book(series([100.0], oi=[5e6]))
    assert book.long_usd.sum() == 0 and book.short_usd.sum() == 0 and not book.proxy


def test_oi_rise_creates_ladder_and_drop_shrinks_pro_rata():
    p = ModelParams(leverages=(10,), weights=(1.0,), dominant_share=1.0)
    c = series([100.0, 100.0, 100.0], oi=[1e6, 3e6, 1.5e6])
    c = Candles(c.timestamp, np.array([100.0, 99.0, 100.0]), c.high, c.low, c.close, c.volume,
                c.open_interest_usd)  # candle 1 is green → all of its new notional is long
    book = build_book(c, p)
    assert book.long_usd.sum() == pytest.approx(2e6 * 0.5)
    assert book.short_usd.sum() == 0
    level = book.prices[np.argmax(book.long_usd)]
    assert level == pytest.approx(100 * (1 - 0.1) / (1 - 0.004), rel=1e-3)


def test_crossing_candle_consumes_level_but_creating_candle_does_not():
    p = ModelParams(leverages=(100,), weights=(1.0,))
    # Candle 1 creates levels; its own low (98) is below the 100x long level: still alive.
    c = series([100.0, 100.0, 100.0], lows=[100.0, 98.0, 100.0], oi=[0.0, 1e6, 1e6])
    assert build_book(c, p).long_usd.sum() > 0
    # Candle 2 trades through it: consumed.
    c2 = series([100.0, 100.0, 100.0], lows=[100.0, 100.0, 98.0], oi=[0.0, 1e6, 1e6])
    assert build_book(c2, p).long_usd.sum() == 0


def test_oi_drop_to_zero_wipes_book_and_new_oi_rebuilds():
    c = series([100.0] * 4, oi=[0.0, 1e6, 0.0, 2e6])
    book = build_book(c)
    assert book.long_usd.sum() + book.short_usd.sum() == pytest.approx(2e6)


def test_volume_proxy_flagged_and_scaled_by_fraction():
    c = series([100.0, 100.0], volume=[3.0, 0.0])
    book = build_book(c, ModelParams(proxy_fraction=0.5))
    assert book.proxy
    assert book.long_usd.sum() + book.short_usd.sum() == pytest.approx(0.5 * 3.0 * 100.0)


def test_decay_halves_value_per_half_life_across_gaps():
    c = series([100.0, 100.0], oi=[0.0, 1e6], step=3_600_000)
    c = Candles(np.array([0, 3_600_000]), c.open, c.high, c.low, c.close, c.volume,
                c.open_interest_usd)
    later = Candles(np.array([0, 3_600_000, 3_600_000 * 25]), *(np.append(a, 100.0) for a in
                    (c.open, c.high, c.low, c.close)), np.array([1.0, 1.0, 1.0]),
                    np.array([0.0, 1e6, 1e6]))
    p = ModelParams(half_life_hours=24.0)
    assert build_book(later, p).long_usd.sum() + build_book(later, p).short_usd.sum() == \
        pytest.approx(0.5e6)


def test_fixed_usd_buckets_are_that_wide():
    from estimator import PriceGrid

    book = build_book(series([1000.0, 1000.0], oi=[0, 1e6]),
                      ModelParams(grid=PriceGrid.fixed(25.0)))
    assert np.allclose(np.diff(book.prices), 25.0)


def test_heatmap_rejects_bad_window():
    c = series([100.0, 101.0], oi=[0, 1e6])
    with pytest.raises(ValueError, match="start"):
        build_heatmap(c, start=5)
    with pytest.raises(ValueError, match="columns"):
        build_heatmap(c, columns=0)
