"""Step 3 of the model, vectorised: when each created level is consumed by price.

A long level p born at candle t dies at the first t' > t with low[t'] ≤ p; a short level at the
first t' > t with high[t'] ≥ p. Found for all levels at once by binary lifting over a sparse
table of window minima/maxima: O((N + P) log N) array work, no per-candle Python loop.
"""

from __future__ import annotations

import numpy as np

from estimator.candles import FloatArray, IntArray


def first_low_at_or_below(low: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose low ≤ ``level`` (len(low) if none)."""
    return _first_crossing(low, born, level, below=True)


def first_high_at_or_above(high: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose high ≥ ``level`` (len(high) if none)."""
    return _first_crossing(high, born, level, below=False)


def _first_crossing(series: FloatArray, born: IntArray, level: FloatArray, below: bool) -> IntArray:
    n = len(series)
    if len(born) == 0:
        return np.zeros(0, dtype=np.int64)
    # Work on a sign-flipped copy so one code path ("window max < level" never crosses) serves
    # both sides: a long crosses when low ≤ p, i.e. −low ≥ −p.
    x = -series if below else series
    target = -level if below else level
    # table[k][i] = max(x[i : i + 2^k]) clipped at the end; index n is a sentinel (+inf) that
    # always "crosses", so a jump never runs past the end of the series.
    tables = [np.append(x, np.inf)]
    step = 1
    while step * 2 <= n:
        prev = tables[-1]
        nxt = prev.copy()
        nxt[: n + 1 - step] = np.maximum(prev[: n + 1 - step], prev[step:])
        tables.append(nxt)
        step *= 2
    # pos = last index known to be crossing-free after born (starts at born itself).
    pos = born.astype(np.int64).copy()
    for k in range(len(tables) - 1, -1, -1):
        span = 1 << k
        window_max = tables[k][np.minimum(pos + 1, n)]
        safe = window_max < target
        pos = np.where(safe, np.minimum(pos + span, n - 1), pos)
    return pos + 1
