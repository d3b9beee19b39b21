"""Books read from one level model (book_at, books_at) against build_book on the slice."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimator import ModelParams, book_at, books_at, build_book, level_model
from tests.conftest import scaled
from tests.estimator.strategies import candle_series, model_params


def same(a, b):
    return (a.k0 == b.k0 and a.last_price == b.last_price and a.timestamp == b.timestamp
            and a.proxy == b.proxy and np.array_equal(a.long_by_lev, b.long_by_lev)
            and np.array_equal(a.short_by_lev, b.short_by_lev))


@settings(max_examples=scaled(200, minimum=60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=candle_series(), p=model_params(), data=st.data())
def test_books_read_from_one_model_equal_books_built_on_each_slice(c, p, data):
    n = len(c)
    times = sorted(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
    lookback = data.draw(st.one_of(st.none(), st.integers(1, n)))
    starts = [0 if lookback is None else max(0, t + 1 - lookback) for t in times]
    model = level_model(c, p, buckets=data.draw(st.booleans()))
    read = list(books_at(model, times, c, p, starts))
    for t, start, book in zip(times, starts, read, strict=True):
        want = build_book(c.slice(start, t + 1), p)
        assert same(book, want)
        assert same(book_at(model, t, c, p, start), want)


def test_books_at_refuses_times_going_back():
    from tests.synthetic import random_walk

    c = random_walk(50, start=100.0, step_ms=60_000, vol=0.01, wick=0.005, oi_usd=None)
    p = ModelParams()
    with pytest.raises(ValueError, match="must not decrease"):
        list(books_at(level_model(c, p), [10, 5], c, p))
    with pytest.raises(ValueError, match="must not decrease"):
        list(books_at(level_model(c, p), [10, 12], c, p, starts=[3, 2]))
