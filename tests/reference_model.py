"""The position model as a plain per-candle loop: the oracle the fast estimator must match.

Deliberately simple: a list of live positions, walked candle by candle. It reuses only the
*inputs* of the model (new notional, long share, survival factor, liquidation ratio), each of
which is tested on its own against the closed forms.
"""

from __future__ import annotations

import numpy as np

from estimator import Candles, ModelParams, liquidation_price
from estimator.positions import long_share, new_notional, survival_factors


def reference_books(c: Candles, params: ModelParams, at: list[int] | None = None):
    """Per-candle loop. Returns {candle index: (long dict, short dict)} for the candles in ``at``
    (default: the last), each dict mapping (leverage index, bucket) → USD."""
    n = len(c)
    wanted = set(at if at is not None else [n - 1])
    notional, _proxy = new_notional(c, params)
    share = long_share(c, params)
    f = survival_factors(c, params)
    tp = c.typical_price
    ratio = {
        side: [liquidation_price(1.0, lev, side, tiers=params.tiers) for lev in params.leverages]
        for side in ("long", "short")
    }
    live: list[list] = []  # [side, lev index, level, amount]
    out = {}
    for t in range(n):
        if t > 0:
            survivors = []
            for pos in live:
                side, _i, level, _amount = pos
                crossed = c.low[t] <= level if side == "long" else c.high[t] >= level
                if not crossed:
                    pos[3] *= f[t]
                    survivors.append(pos)
            live = survivors
        for side, sh in (("long", share[t]), ("short", 1.0 - share[t])):
            for i, w in enumerate(params.weights):
                amount = notional[t] * sh * w
                if amount > 0:
                    live.append([side, i, tp[t] * ratio[side][i], amount])
        if t in wanted:
            books: dict[str, dict] = {"long": {}, "short": {}}
            for side, i, level, amount in live:
                key = (i, int(params.grid.index(level)))
                books[side][key] = books[side].get(key, 0.0) + amount
            out[t] = (books["long"], books["short"])
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
