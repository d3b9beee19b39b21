"""The cascade path (/ifbreak, /mypos): cumulative notional between price and a target."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import estimator
from estimator import MAX_DISTANCE_PCT, build_book, cascade_path, cumulative_curve, find_clusters
from tests.estimator.strategies import candle_series, model_params


def brute_sum(book: estimator.Book, side: str, target: float) -> float:
    """The book of ``side`` summed over the buckets whose centre lies between the last price
    and ``target`` (both included), one bucket at a time."""
    lo, hi = sorted((book.last_price, target))
    values = book.long_usd if side == "long" else book.short_usd
    return math.fsum(float(v) for p, v in zip(book.prices, values, strict=True)
                     if lo <= p <= hi)


@settings(max_examples=60, deadline=None)
@given(candle_series(), model_params(),
       st.lists(st.floats(0.01, MAX_DISTANCE_PCT), min_size=2, max_size=6),
       st.booleans())
def test_cumulative_is_monotone_in_distance_and_equals_the_book_sum(c, params, dists, down):
    book = build_book(c, params)
    clusters = find_clusters(book)
    price = book.last_price
    sign = -1 if down else 1
    previous = 0.0
    for d in sorted(dists):
        target = price * (1 + sign * d / 100)
        if target == price:
            continue
        cas = cascade_path(book, clusters, target)
        assert cas.side == ("long" if down else "short")
        assert cas.cumulative_usd >= previous  # farther never gives less
        previous = cas.cumulative_usd
        assert cas.cumulative_usd == pytest.approx(brute_sum(book, cas.side, target),
                                                   rel=1e-9, abs=1e-6)
        # Bands: in path order, inside the path, running sums never decrease and never pass
        # the whole path's sum; each band's notional fits under its running sum.
        running = [b.cumulative_usd for b in cas.bands]
        assert running == sorted(running)
        for b in cas.bands:
            assert min(price, target) <= b.low <= b.high <= max(price, target)
            assert 0 <= b.notional_usd <= b.cumulative_usd * (1 + 1e-9) + 1e-6
            assert b.cumulative_usd <= cas.cumulative_usd
            far = b.low if down else b.high
            assert b.cumulative_usd == pytest.approx(brute_sum(book, cas.side, far),
                                                     rel=1e-9, abs=1e-6)
        order = [-b.high for b in cas.bands] if down else [b.low for b in cas.bands]
        assert order == sorted(order)


@settings(max_examples=30, deadline=None)
@given(candle_series(), model_params(), st.booleans())
def test_the_curve_never_decreases(c, params, down):
    book = build_book(c, params)
    _, cum = cumulative_curve(book, "long" if down else "short")
    assert bool(np.all(np.diff(cum) >= 0))


def test_a_cluster_cut_by_the_target_is_clipped_to_the_path():
    from tests.synthetic import random_walk

    book = build_book(random_walk(2000, start=30_000.0, step_ms=3_600_000, vol=0.01,
                                  wick=0.004, oi_usd=1e9))
    longs = [c for c in find_clusters(book) if c.side == "long"]
    assert longs, "the synthetic book has long clusters"
    c = max(longs, key=lambda c: c.notional_usd)
    mid = (c.low + c.high) / 2
    whole = cascade_path(book, [c], c.low * 0.999)
    half = cascade_path(book, [c], mid)
    [bw], [bh] = whole.bands, half.bands
    assert (bw.low, bw.high) == (c.low, c.high)
    assert (bh.low, bh.high) == (mid, c.high)
    assert bh.notional_usd < bw.notional_usd
    assert bh.cumulative_usd == half.cumulative_usd


def test_touching_clusters_are_one_band():
    from tests.synthetic import random_walk

    book = build_book(random_walk(2000, start=30_000.0, step_ms=3_600_000, vol=0.01,
                                  wick=0.004, oi_usd=1e9))
    price = book.last_price
    a = estimator.Cluster("L1", "long", price * 0.95, price * 0.96, price * 0.955, 1e6, -4.5)
    b = estimator.Cluster("L2", "long", price * 0.96, price * 0.97, price * 0.965, 2e6, -3.5)
    [band] = cascade_path(book, [a, b], price * 0.9).bands
    assert (band.low, band.high) == (a.low, b.high)


@pytest.mark.parametrize(("target", "message"), [
    (100.0, "equals the current price"),
    (49.0, "51.0 % from the current price"),
    (151.0, "51.0 % from the current price"),
    (0.0, "positive price"),
    (math.nan, "positive price"),
])
def test_bad_targets_are_refused(target, message):
    from estimator.cascade import side_for

    with pytest.raises(ValueError, match=message):
        side_for(100.0, target)
