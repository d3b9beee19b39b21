"""The position model as a plain per-candle loop: the oracle the fast estimator must match.

Deliberately simple: the set of live positions, walked candle by candle (numpy arrays only
to keep the per-candle filtering affordable; no cumulative factors, no death search). It
reuses only the *inputs* of the model (new notional, long share, survival factor,
liquidation ratio), each tested on its own against the closed forms.
"""

from __future__ import annotations

import numpy as np

from estimator import Candles, ModelParams, liquidation_price
from estimator.positions import long_share, new_notional, survival_factors


def _walk(c: Candles, params: ModelParams):
    """Per-candle loop. Yields, for each candle t, the positions price consumed at t (side,
    ladder index, USD before t's survival factor) and the live ones after t (side, ladder
    index, level, USD)."""
    n = len(c)
    notional, _proxy = new_notional(c, params)
    share = long_share(c, params)
    f = survival_factors(c, params)
    tp = c.typical_price
    ratio = {
        side: [liquidation_price(1.0, lev, side, tiers=params.tiers) for lev in params.leverages]
        for side in ("long", "short")
    }
    # Live positions as parallel arrays: side (0 long / 1 short), ladder index, level, USD.
    side = np.zeros(0, dtype=np.int8)
    lev = np.zeros(0, dtype=np.int64)
    level = np.zeros(0)
    amount = np.zeros(0)
    n_lev = len(params.weights)
    new_side = np.repeat(np.array([0, 1], dtype=np.int8), n_lev)
    new_lev = np.tile(np.arange(n_lev), 2)
    new_ratio = np.concatenate([ratio["long"], ratio["short"]])
    weights = np.tile(np.asarray(params.weights, dtype=float), 2)
    for t in range(n):
        crossed = np.zeros(len(side), dtype=bool)
        if t > 0:
            crossed = np.where(side == 0, c.low[t] <= level, c.high[t] >= level)
        died = (side[crossed], lev[crossed], amount[crossed])
        if t > 0:
            keep = ~crossed
            side, lev, level = side[keep], lev[keep], level[keep]
            amount = amount[keep] * f[t]
        new_amount = notional[t] * np.where(new_side == 0, share[t], 1.0 - share[t]) * weights
        made = new_amount > 0
        side = np.concatenate([side, new_side[made]])
        lev = np.concatenate([lev, new_lev[made]])
        level = np.concatenate([level, tp[t] * new_ratio[made]])
        amount = np.concatenate([amount, new_amount[made]])
        yield t, died, (side, lev, level, amount)


def reference_books(c: Candles, params: ModelParams, at: list[int] | None = None):
    """Per-candle loop. Returns {candle index: (long dict, short dict)} for the candles in ``at``
    (default: the last), each dict mapping (leverage index, bucket) → USD."""
    wanted = set(at if at is not None else [len(c) - 1])
    out = {}
    for t, _died, (side, lev, level, amount) in _walk(c, params):
        if t in wanted:
            buckets = params.grid.index(level)
            books: dict[int, dict] = {0: {}, 1: {}}
            for s_, i, k, a in zip(side, lev, buckets, amount, strict=True):
                key = (int(i), int(k))
                books[int(s_)][key] = books[int(s_)].get(key, 0.0) + float(a)
            out[t] = (books[0], books[1])
    return out


def reference_liquidations(c: Candles, params: ModelParams) -> np.ndarray:
    """Per-candle loop. USD consumed by price, out[side, ladder index, candle]."""
    out = np.zeros((2, len(params.leverages), len(c)))
    for t, (side, lev, amount), _live in _walk(c, params):
        np.add.at(out, (side.astype(np.int64), lev, np.full(len(side), t)), amount)
    return out


def dense(book_side: dict, n_lev: int, k0: int, width: int) -> np.ndarray:
    """(leverage, bucket) dict → dense array over buckets k0..k0+width (extra keys must be 0)."""
    arr = np.zeros((n_lev, width))
    for (i, k), v in book_side.items():
        j = k - k0
        if 0 <= j < width:
            arr[i, j] += v
        else:
            assert v == 0, f"reference has {v} USD outside the fast book's range at bucket {k}"
    return arr
