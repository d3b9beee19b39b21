"""Step 3 of the model, vectorised: when each created level is consumed by price.

A long level p born at candle t dies at the first t' > t with low[t'] ≤ p; a short level at the
first t' > t with high[t'] ≥ p. Found for all levels at once by binary lifting over a sparse
table of window minima/maxima: O((N + P) log N) array work, no per-candle Python loop.

Speed (bench/estimator_bench.py): levels that price never reaches are settled first by one
look-up in the suffix extreme; the others are lifted in chunks small enough for their working
arrays to stay in cache, with a branch-free position update.
"""

from __future__ import annotations

import numpy as np

from estimator.candles import FloatArray, IntArray

# Levels lifted together: their position / value / flag arrays (~150 KiB) stay in the L2 cache.
_CHUNK = 8192


def first_low_at_or_below(low: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose low ≤ ``level`` (len(low) if none)."""
    return _first_crossing(low, born, level, below=True)


def first_high_at_or_above(high: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose high ≥ ``level`` (len(high) if none)."""
    return _first_crossing(high, born, level, below=False)


def _max_tables(x: FloatArray) -> list[FloatArray]:
    """tables[k][i] = max(x[i : i + 2^k]) clipped at the end, with a +inf sentinel at index n,
    so any window that reaches the end of the series "crosses"."""
    n = len(x)
    tables = [np.append(x, np.inf)]
    step = 1
    while step * 2 <= n:
        prev = tables[-1]
        nxt = prev.copy()
        np.maximum(prev[: n + 1 - step], prev[step:], out=nxt[: n + 1 - step])
        tables.append(nxt)
        step *= 2
    return tables


def _first_crossing(series: FloatArray, born: IntArray, level: FloatArray, below: bool) -> IntArray:
    n = len(series)
    out = np.full(len(born), n, dtype=np.int64)
    if len(born) == 0:
        return out
    # Work on a sign-flipped copy so one code path ("window max < level" never crosses) serves
    # both sides: a long crosses when low ≤ p, i.e. −low ≥ −p.
    x = -series if below else series
    # Levels beyond the extreme of everything after their birth never die: one look-up each.
    suffix_max = np.empty(n + 1)
    suffix_max[n] = -np.inf
    suffix_max[:n] = np.maximum.accumulate(x[::-1])[::-1]
    start = born + 1
    reach = suffix_max[start]
    if below:
        np.negative(reach, out=reach)
        dies = np.nonzero(reach <= level)[0]  # min(low after birth) ≤ level
    else:
        dies = np.nonzero(reach >= level)[0]
    del reach, suffix_max
    tables = _max_tables(x)
    m = min(_CHUNK, len(dies))
    window = np.empty(m)
    safe = np.empty(m, dtype=bool)
    jump = np.empty(m, dtype=np.int64)
    for s in range(0, len(dies), _CHUNK):
        rows = dies[s: s + _CHUNK]
        k_n = len(rows)
        q = start[rows]  # first index not yet known to be crossing-free
        target = level[rows]
        if below:
            np.negative(target, out=target)
        w, sf, jp = window[:k_n], safe[:k_n], jump[:k_n]
        for k in range(len(tables) - 1, -1, -1):
            np.take(tables[k], q, out=w)
            np.less(w, target, out=sf)  # the whole window [q, q + 2^k) stays clear of the level
            np.multiply(sf, 1 << k, out=jp)
            q += jp
        out[rows] = q
    return out
