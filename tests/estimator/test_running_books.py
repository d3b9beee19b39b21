"""running_books (the backtest's running total) against books_at (each book from its live
levels): the same bucket ranges exactly, the same values to float rounding."""

import dataclasses

import numpy as np
import pytest

from estimator import ModelParams, books_at, level_model
from estimator.running import running_books
from tests.synthetic import random_walk


def with_wipe_out():
    """Hourly candles with OI, where the OI drops to 0 once (a zero survival factor)."""
    c = random_walk(1500, start=60_000.0, step_ms=3_600_000, vol=0.006, wick=0.003,
                    oi_usd=8e9, oi_vol=0.01, taker=True, seed=11)
    oi = c.open_interest_usd.copy()
    oi[700] = 0.0
    return dataclasses.replace(c, open_interest_usd=oi)


def minute_proxy():
    """1m candles, volume only: far levels live for the whole series."""
    return random_walk(6000, start=60_000.0, step_ms=60_000, vol=0.0008, wick=0.0005,
                       oi_usd=None, seed=5)


@pytest.mark.parametrize("candles", [with_wipe_out, minute_proxy])
@pytest.mark.parametrize("half_life", [None, 6.0, 168.0])
@pytest.mark.parametrize("lookback", [None, 24, 400])
def test_running_books_equal_books_at_to_rounding(candles, half_life, lookback):
    c = candles()
    p = ModelParams(half_life_hours=half_life)
    times = np.arange(99, len(c), 7)
    times = np.concatenate([times[:5], [times[5]] * 3, times[6:]])  # repeated times too
    starts = None if lookback is None else np.maximum(times + 1 - lookback, 0)
    model = level_model(c, p)
    pairs = zip(books_at(model, times, c, p, starts), running_books(model, times, c, p, starts),
                strict=True)
    for want, got in pairs:
        assert (got.k0, got.last_price, got.timestamp, got.proxy) == (
            want.k0, want.last_price, want.timestamp, want.proxy)
        for g, w in ((got.long_by_lev, want.long_by_lev), (got.short_by_lev, want.short_by_lev)):
            assert g.shape == w.shape
            assert (g >= 0).all()
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9 * max(float(w.max()), 1.0))


def test_times_must_not_decrease():
    c = minute_proxy()
    p = ModelParams()
    with pytest.raises(ValueError, match="must not decrease"):
        list(running_books(level_model(c, p), [200, 100], c, p))
