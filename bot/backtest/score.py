"""Scoring the walk-forward estimates against what price did next. Pure numpy.

Every cluster is scored in two *placements* with the same distance and width from the price at
its evaluation time: above price and below it (one of them is where the model put it, the other
its mirror image). For each placement:

- **touch**: some candle in the next ``horizon`` candles has a [low, high] range that meets the
  zone's [low, high];
- **reaction**: after the first touch (candle τ), some candle in τ … τ + ``reaction`` trades
  ≥ ``beyond`` (0.5 %) past the zone's far edge (above: high × 1.005; below: low × 0.995).

The model's score uses the placement it chose; the b1 baseline picks a side at random (seeded
draws); the rules pick a side from price alone; the oracle picks the side that was touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from bot.backtest.walk import Estimates
from estimator import Candles

Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Placement:
    """Outcome of one zone placement per cluster: touched, and continued past the far edge."""

    touched: Bools
    continued: Bools


@dataclass(frozen=True)
class Outcomes:
    """Per cluster: the model's own placement, and the above/below placements."""

    model: Placement
    above: Placement
    below: Placement
    model_is_above: Bools


def zones(est: Estimates) -> tuple[Floats, Floats, Floats, Floats]:
    """Relative bounds (fractions of price) of the model's zone and of its mirror image."""
    p = est.price[est.eval_idx]
    lo, hi = est.low / p - 1.0, est.high / p - 1.0
    return lo, hi, -hi, -lo


def _score(p: Floats, high_w: Floats, low_w: Floats, lo_rel: Floats, hi_rel: Floats,
           horizon: int, reaction: int, beyond: float, up: Bools) -> Placement:
    lo, hi = p * (1.0 + lo_rel), p * (1.0 + hi_rel)
    meets = (high_w[:, :horizon] >= lo[:, None]) & (low_w[:, :horizon] <= hi[:, None])
    touched: Bools = np.asarray(meets.any(axis=1), dtype=bool)
    tau = meets.argmax(axis=1)
    cols = np.arange(high_w.shape[1])
    window = (cols[None, :] >= tau[:, None]) & (cols[None, :] <= (tau + reaction)[:, None])
    past_up = np.where(window, high_w, -np.inf).max(axis=1) >= hi * (1.0 + beyond)
    past_down = np.where(window, low_w, np.inf).min(axis=1) <= lo * (1.0 - beyond)
    return Placement(touched, np.asarray(touched & np.where(up, past_up, past_down)))


_ROWS = 2048
"""Clusters scored together: their windows of horizon + reaction candles (rows × span, a few
copies) stay tens of MB even on 1m data, where all of them at once took gigabytes."""


def outcomes(c: Candles, est: Estimates, horizon: int, reaction: int,
             beyond: float = 0.005) -> Outcomes:
    """Touch and reaction of every cluster, as placed by the model and in both placements.

    Needs ``horizon + reaction`` candles after every evaluation time (see evaluation_times).
    """
    span = horizon + reaction
    t = est.times[est.eval_idx]
    if len(t) and int(t.max()) + span >= len(c):
        raise ValueError("an evaluation time has fewer than horizon + reaction candles after it")
    lo, hi, m_lo, m_hi = zones(est)
    model_up = (lo + hi) > 0.0
    up_lo, up_hi = np.where(model_up, lo, m_lo), np.where(model_up, hi, m_hi)
    dn_lo, dn_hi = np.where(model_up, m_lo, lo), np.where(model_up, m_hi, hi)
    price = est.price[est.eval_idx]
    n = len(t)
    above = Placement(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    below = Placement(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    # Row t of the window view = candles t+1 … t+span.
    high_v = sliding_window_view(c.high, span) if n else np.zeros((0, span))
    low_v = sliding_window_view(c.low, span) if n else np.zeros((0, span))
    for s in range(0, n, _ROWS):
        r = slice(s, s + _ROWS)
        high_w, low_w = high_v[t[r] + 1], low_v[t[r] + 1]
        k = len(high_w)
        for out, (z_lo, z_hi), up in ((above, (up_lo, up_hi), True),
                                      (below, (dn_lo, dn_hi), False)):
            got = _score(price[r], high_w, low_w, z_lo[r], z_hi[r], horizon, reaction, beyond,
                         np.full(k, up))
            out.touched[r] = got.touched
            out.continued[r] = got.continued
    model = Placement(np.where(model_up, above.touched, below.touched),
                      np.where(model_up, above.continued, below.continued))
    return Outcomes(model, above, below, model_up)


def random_sides(n: int, draws: int, seed: int) -> Bools:
    """``draws`` × ``n`` seeded coin flips: True = place above price (the b1 baseline)."""
    return np.random.default_rng([seed, 0]).random((draws, n)) < 0.5


def pick(o: Outcomes, up: Bools) -> Placement:
    """The placement chosen by ``up`` (broadcasts over leading draw axes)."""
    return Placement(np.where(up, o.above.touched, o.below.touched),
                     np.where(up, o.above.continued, o.below.continued))


def rule_sides(c: Candles, est: Estimates, lookback: int) -> dict[str, Bools]:
    """Sides (True = above) chosen by price-only rules at each cluster's evaluation time.

    - ``last_24h_move``: the side price moved to over the last ``lookback`` candles (24 h);
      a flat move counts as up;
    - ``always_below``: below price.
    """
    t = est.times[est.eval_idx]
    moved_up = c.close[t] >= c.close[np.maximum(t - lookback, 0)]
    return {"last_24h_move": moved_up, "always_below": np.zeros(len(t), dtype=bool)}


def per_eval(est: Estimates, values: NDArray[np.float64] | Bools) -> Floats:
    """Sum of a per-cluster quantity per evaluation time."""
    return np.bincount(est.eval_idx, weights=np.asarray(values, dtype=np.float64),
                       minlength=len(est.times)).astype(np.float64)
