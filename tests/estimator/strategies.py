"""Hypothesis strategies for candle series: gaps, flat candles, zero volume, OI wipe-outs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from estimator import Candles, ModelParams, PriceGrid


@st.composite
def candle_series(draw, max_len: int = 60) -> Candles:
    n = draw(st.integers(1, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vol = draw(st.sampled_from([0.0005, 0.005, 0.03]))
    start = draw(st.floats(50.0, 100_000.0))
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate([[start], close[:-1]])
    wick = np.abs(rng.normal(0, vol, (2, n))) * close
    high = np.maximum(open_, close) + wick[0]
    low = np.maximum(np.minimum(open_, close) - wick[1], close * 0.01)
    flat = rng.random(n) < draw(st.sampled_from([0.0, 0.2]))
    for arr in (open_, high, low):
        arr[flat] = close[flat]
    volume = rng.gamma(2.0, 50.0, n)
    volume[rng.random(n) < 0.1] = 0.0
    step = draw(st.sampled_from([60_000, 3_600_000]))
    gaps = np.where(rng.random(n) < 0.1, rng.integers(2, 50, n), 1)
    ts = 1_600_000_000_000 + np.cumsum(gaps) * step
    oi = None
    if draw(st.booleans()):
        oi = np.maximum(1e6 * np.exp(np.cumsum(rng.normal(0, 0.05, n))) - 3e5, 0.0)
        oi[rng.random(n) < 0.05] = 0.0  # open interest wiped out
    taker = None
    if draw(st.booleans()):
        taker = volume * rng.random(n)
    return Candles(ts.astype(np.int64), open_, high, low, close, volume, oi, taker)


@st.composite
def model_params(draw) -> ModelParams:
    half_life = draw(st.sampled_from([None, 0.5, 24.0]))
    grid = draw(st.sampled_from([PriceGrid.relative(0.1), PriceGrid.relative(0.5),
                                 PriceGrid.fixed(10.0)]))
    ladder = draw(st.sampled_from([
        ((5, 10, 25, 50, 100), (0.15, 0.30, 0.25, 0.20, 0.10)),
        ((2, 125), (0.5, 0.5)),
        ((20,), (1.0,)),
    ]))
    return ModelParams(leverages=ladder[0], weights=ladder[1], half_life_hours=half_life,
                       grid=grid, dominant_share=draw(st.sampled_from([0.5, 0.75, 1.0])))
