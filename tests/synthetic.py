"""Seeded synthetic candle series for tests and benchmarks (a geometric random walk)."""

from __future__ import annotations

import numpy as np

from estimator import Candles


def random_walk(n: int, *, start: float, step_ms: int, vol: float, wick: float,
                oi_usd: float | None, oi_vol: float = 0.002, taker: bool = False,
                volume_scale: float = 50.0, seed: int = 3,
                t0_ms: int = 1_700_000_000_000) -> Candles:
    """``n`` candles of ``step_ms`` starting at ``start`` USD; close-to-close log returns with
    st.dev. ``vol``, wicks of st.dev. ``wick`` (fraction of price); open interest around
    ``oi_usd`` USD (None = no OI column) and, with ``taker``, a taker-buy column."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, wick, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, wick, n)))
    volume = rng.gamma(2.0, volume_scale, n)
    oi = None if oi_usd is None else oi_usd * np.exp(np.cumsum(rng.normal(0, oi_vol, n)))
    taker_buy = volume * rng.uniform(0.3, 0.7, n) if taker else None
    ts = t0_ms + np.arange(n, dtype=np.int64) * step_ms
    return Candles(ts, open_, high, low, close, volume, oi, taker_buy)
