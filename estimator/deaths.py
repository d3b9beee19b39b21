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


def first_column_at_or_below(low: FloatArray, born: IntArray, level: FloatArray,
                             cols: IntArray, born_col: IntArray) -> IntArray:
    """For each long level: the first of the sampled candles ``cols`` (increasing, the last
    one len(low) - 1) at or after its death, as an index into ``cols`` (len(cols) if it never
    dies). ``born_col``: the first index into ``cols`` at or after each ``born``. Equal to the
    column of :func:`first_low_at_or_below`'s answer, without finding the candle itself."""
    return _first_crossing_column(low, born, level, cols, born_col)


def first_column_at_or_above(high: FloatArray, born: IntArray, level: FloatArray,
                             cols: IntArray, born_col: IntArray) -> IntArray:
    """:func:`first_column_at_or_below` for short levels (consumed when a high reaches them)."""
    neg_level = np.negative(level)
    return _first_crossing_column(np.negative(high), born, neg_level, cols, born_col)


def _first_crossing_column(x: FloatArray, born: IntArray, level: FloatArray, cols: IntArray,
                           born_col: IntArray) -> IntArray:
    """First column ``c`` ≥ ``born_col`` whose stretch of candles (cols[c-1], cols[c]] holds an
    ``x`` ≤ ``level`` after ``born``; len(cols) if none.

    Two cases per level: price crosses in the rest of its birth stretch (born, cols[born_col]]
    (then the answer is ``born_col``), or in a later stretch, the first whose minimum is ≤ the
    level. For the second, the stretches' minima are ranked (a few hundred values), each level
    is ranked among them (_count_at_or_below), and a table of "the next stretch after c with a
    minimum of rank < r" answers it by one look-up: no per-candle search at all.
    """
    n_cols = len(cols)
    rest_min, stretch_min = _stretch_minima(x, cols)
    # Crossed in the rest of the birth stretch (born, cols[born_col]]: the rest minimum from
    # the candle after each birth, +inf for a birth at a stretch's end (nothing after it).
    after_birth = rest_min[1:]
    after_birth[cols] = np.inf
    late = after_birth[born] > level
    # Later stretches, by rank: nxt[c, r] = first stretch after c whose minimum ranks < r
    # (a suffix minimum, over the stretches, of "this stretch if its rank is < r").
    ranks_sorted = np.unique(stretch_min)
    rank = np.searchsorted(ranks_sorted, stretch_min)
    n_ranks = len(ranks_sorted) + 1
    small = np.int16 if n_cols < 2**15 else np.int64  # (a smaller table to fill and read)
    nxt = np.full((n_cols + 1, n_ranks), n_cols, dtype=small)
    crossing = rank[:, None] < np.arange(n_ranks)[None, :]
    np.copyto(nxt[:n_cols], np.arange(n_cols, dtype=small)[:, None], where=crossing)
    np.minimum.accumulate(nxt[::-1], axis=0, out=nxt[::-1])
    r = _count_at_or_below(ranks_sorted, level)  # stretch minima ≤ the level
    r += born_col * n_ranks
    r += n_ranks  # row c + 1 of nxt: stretches after c only
    later = np.take(nxt.ravel(), r, mode="clip")  # (in range: no checks)
    out = np.where(late, later, born_col)  # (as int64, born_col's type)
    return out


def _stretch_minima(x: FloatArray, cols: IntArray) -> tuple[FloatArray, FloatArray]:
    """``rest[i]``: minimum of ``x`` from candle i to the end of its stretch (with +inf at
    index len(x)); ``stretch[c]``: minimum of stretch c, (cols[c-1], cols[c]].

    The stretches after the first are near-equal in length: reversed, padded with +inf into
    the rows of one matrix, they take one running minimum along the rows."""
    n, n_cols = len(x), len(cols)
    x_ext = np.append(x, np.inf)
    rest = np.empty(n + 1)
    rest[n] = np.inf
    stretch = np.empty(n_cols)
    first = slice(0, int(cols[0]) + 1)  # the first one may be long: it starts at candle 0
    np.minimum.accumulate(x[first][::-1], out=rest[first][::-1])
    stretch[0] = rest[0]
    if n_cols > 1:
        ends = cols[1:]
        starts = cols[:-1] + 1
        width = int((ends - starts).max()) + 1
        at = ends[:, None] - np.arange(width)[None, :]  # each stretch from its end backwards
        np.copyto(at, n, where=at < starts[:, None])  # padding: the +inf at x_ext[n]
        run = x_ext[at]
        np.minimum.accumulate(run, axis=1, out=run)
        rest[at] = run  # (the padding writes +inf to rest[n], as it already holds)
        stretch[1:] = run[:, -1]
    return rest, stretch


# Resolution of the coarse rank look-up: at most this many cells (2^16: a 30-day series'
# ~100k levels a side then share a cell with a stretch minimum ~1% of the time).
_KEY_CELLS_LOG2 = 16


def _count_at_or_below(sorted_values: FloatArray, x: FloatArray) -> IntArray:
    """``np.searchsorted(sorted_values, x, side="right")``, exactly, mostly without a binary
    search: each float is mapped to an integer key that never decreases as the float grows
    (its IEEE bits, in order, shifted down to at most 2^16 cells over the range of ``x``). A
    value in a cell below x's is ≤ x and one in a cell above is > x, so one look-up in a
    per-cell count answers every x whose cell holds no sorted value; only those that share
    a cell with one are searched."""
    out = np.zeros(len(x), dtype=np.int64)
    if len(x) == 0 or len(sorted_values) == 0:
        return out
    x_key = _order_key(np.ascontiguousarray(x, dtype=np.float64))
    k_min, k_max = int(x_key.min()), int(x_key.max())
    shift = max(0, (k_max - k_min).bit_length() - _KEY_CELLS_LOG2)
    x_key >>= shift
    k_min >>= shift
    x_key -= k_min
    cells = (k_max >> shift) - k_min + 1
    v_key = _order_key(np.ascontiguousarray(sorted_values, dtype=np.float64))
    v_key >>= shift  # (in order, as the values are)
    below = int(np.searchsorted(v_key, k_min))  # values in cells below every x
    end = int(np.searchsorted(v_key, k_min + cells))
    per_cell = np.bincount(v_key[below:end] - k_min, minlength=cells)
    at_or_below = np.cumsum(per_cell)
    at_or_below += below
    np.take(at_or_below, x_key, out=out, mode="clip")  # (in range: no checks)
    shared = np.flatnonzero(per_cell.astype(bool)[x_key])  # (a byte per x to gather)
    out[shared] = np.searchsorted(sorted_values, x[shared], side="right")
    return out


def _order_key(v: FloatArray) -> IntArray:
    """Integers in the order of the floats ``v`` (not NaN): their bits, with the magnitude
    bits of the negative ones flipped (a fresh array)."""
    bits = v.view(np.int64)
    key = bits >> 63
    key &= np.int64(0x7FFF_FFFF_FFFF_FFFF)
    key ^= bits
    return key
