"""The estimated liquidation book: at the last candle, and over time (heatmap).

Fast path of the position model (DESIGN.md), over the levels of estimator.levels: the book at
one time is a bincount, the heatmap a short recurrence over its columns (not over candles).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from estimator.candles import Candles, FloatArray, IntArray
from estimator.grid import PriceGrid
from estimator.levels import LevelModel, level_model, survivors_model
from estimator.params import ModelParams


@dataclass(frozen=True)
class Book:
    """Estimated liquidation notional (USD) per price bucket at the last candle.

    ``long_by_lev[i, j]`` / ``short_by_lev[i, j]``: ladder leverage ``leverages[i]``, bucket
    ``k0 + j``. ``proxy`` is True when new notional came from the volume proxy (no OI).
    """

    grid: PriceGrid
    k0: int
    leverages: tuple[float, ...]
    long_by_lev: FloatArray
    short_by_lev: FloatArray
    last_price: float
    timestamp: int
    proxy: bool

    @property
    def long_usd(self) -> FloatArray:
        return np.asarray(self.long_by_lev.sum(axis=0), dtype=np.float64)

    @property
    def short_usd(self) -> FloatArray:
        return np.asarray(self.short_by_lev.sum(axis=0), dtype=np.float64)

    @property
    def buckets(self) -> IntArray:
        return np.arange(self.k0, self.k0 + self.long_by_lev.shape[1], dtype=np.int64)

    @property
    def prices(self) -> FloatArray:
        """Bucket mid prices (USD)."""
        return self.grid.centre(self.buckets)


@dataclass(frozen=True)
class Heatmap:
    """Estimated liquidation notional (USD) over time: ``long[c, j]`` / ``short[c, j]`` is the
    book at the close of candle ``candle_index[c]`` (time ``timestamp[c]``, ms) in bucket
    ``k0 + j``."""

    grid: PriceGrid
    k0: int
    candle_index: IntArray
    timestamp: IntArray
    long: FloatArray
    short: FloatArray
    proxy: bool

    @property
    def total(self) -> FloatArray:
        return self.long + self.short

    @property
    def prices(self) -> FloatArray:
        return self.grid.centre(np.arange(self.k0, self.k0 + self.long.shape[1]))


def _bucket_range(buckets: list[IntArray], fallback_price: float,
                  grid: PriceGrid) -> tuple[int, int]:
    """Buckets k0..k1 (exclusive) spanning every bucket in ``buckets``."""
    present = [b for b in buckets if len(b)]
    if present:
        return min(int(b.min()) for b in present), max(int(b.max()) for b in present) + 1
    k = int(grid.index(fallback_price))
    return k, k + 1


def build_book(c: Candles, params: ModelParams | None = None) -> Book:
    """The estimated book at the close of the last candle."""
    p = params if params is not None else ModelParams()
    # Only the rows alive at the end: book_at(level_model(c, p), len(c) - 1, c, p), bit for
    # bit, in memory for the survivors rather than for every level ever created.
    model = survivors_model(c, p)
    alive = [np.arange(lo, hi) for lo, hi in _sides(model)]
    return _book_of_rows(model, alive, len(c) - 1, 0, c, p)


def book_at(model: LevelModel, t: int, c: Candles, params: ModelParams,
            start: int = 0) -> Book:
    """The book of candles ``start``..``t`` read from ``model``, a model of ``c`` (which may
    run past ``t``): equal to ``build_book(c.slice(start, t + 1), params)``.

    A row counts while its death index is > ``t`` (candles ≤ ``t`` decide that), when it was
    born in the window (with open interest, not on its first candle: a slice has no ΔOI
    there), valued from ``start`` on.
    """
    rows = model.rows
    born_from = _born_from(model, start)
    alive = []
    for lo, hi in _sides(model):
        # Rows of one side are ordered by birth: the born-in-window ones are one slice.
        a = lo + int(np.searchsorted(rows.born[lo:hi], born_from, side="left"))
        b = lo + int(np.searchsorted(rows.born[lo:hi], t, side="right"))
        alive.append(a + np.flatnonzero(model.death[a:b] > t))
    return _book_of_rows(model, alive, t, start, c, params)


def books_at(model: LevelModel, times: Sequence[int] | IntArray, c: Candles,
             params: ModelParams, starts: Sequence[int] | IntArray | None = None,
             ) -> Iterator[Book]:
    """``book_at(model, t, c, params, start)`` for each ``t`` of ``times`` (and ``start`` of
    ``starts``, default 0), both non-decreasing. Keeps the live rows from one book to the
    next, so each costs O(live rows + rows born since the last one), not O(rows born so far).
    """
    rows = model.rows
    live = [np.zeros(0, dtype=np.int64) for _ in range(2)]
    added = [lo for lo, _ in _sides(model)]  # next row not yet seen, per side
    last_t, last_start = -1, 0
    for i, t in enumerate(times):
        t = int(t)
        start = 0 if starts is None else int(starts[i])
        if t < last_t or start < last_start:
            raise ValueError(f"books_at: times and starts must not decrease (at {i})")
        last_t, last_start = t, start
        born_from = _born_from(model, start)
        for side, (_lo, hi) in enumerate(_sides(model)):
            b = added[side] + int(np.searchsorted(rows.born[added[side]:hi], t, side="right"))
            cand = np.concatenate([live[side], np.arange(added[side], b, dtype=np.int64)])
            added[side] = b
            # Dead rows and rows older than the window never come back: drop them for good.
            keep = model.death[cand] > t
            if born_from:
                keep &= rows.born[cand] >= born_from
            live[side] = cand[keep]
        yield _book_of_rows(model, live, t, start, c, params)


def _sides(model: LevelModel) -> tuple[tuple[int, int], tuple[int, int]]:
    """Row ranges of the longs and of the shorts."""
    n_long = model.rows.n_long
    return (0, n_long), (n_long, len(model.rows.born))


def _born_from(model: LevelModel, start: int) -> int:
    # A slice starting at ``start`` has no ΔOI on its first candle: nothing is born there.
    return start if model.proxy or start == 0 else start + 1


def _book_of_rows(model: LevelModel, alive: list[IntArray], t: int, start: int, c: Candles,
                  params: ModelParams) -> Book:
    """The book at ``t`` of the live rows ``alive`` (longs, shorts), each in birth order."""
    rows = model.rows
    bucket = [model.bucket_of(idx) for idx in alive]
    k0, k1 = _bucket_range(bucket, float(c.close[t]), params.grid)
    width = k1 - k0
    n_lev = len(params.leverages)
    sides = []
    for idx, b in zip(alive, bucket, strict=True):
        flat = rows.lev[idx] * width + (b - k0)
        counts = np.bincount(flat, weights=model.value_at(idx, t, start), minlength=n_lev * width)
        sides.append(np.asarray(counts, dtype=np.float64).reshape(n_lev, width))
    return Book(params.grid, k0, tuple(params.leverages), sides[0], sides[1], float(c.close[t]),
                int(c.timestamp[t]), model.proxy)


def build_heatmap(c: Candles, params: ModelParams | None = None, columns: int = 200,
                  start: int = 0) -> Heatmap:
    """The book at ``columns`` evenly spaced candles from ``start`` to the last one.

    Positions created before ``start`` count (they are still live); only the sampling starts
    there. Computed by a recurrence over columns: V[c] = V[c−1]·g[c] + born[c] − died[c].
    """
    p = params if params is not None else ModelParams()
    n = len(c)
    if not 0 <= start < n:
        raise ValueError(f"heatmap: start {start!r} outside 0..{n - 1}")
    if columns < 1:
        raise ValueError(f"heatmap: columns must be ≥ 1, got {columns!r}")
    spaced = np.linspace(start, n - 1, num=min(columns, n - start))
    cols = np.unique(spaced.round().astype(np.int64))
    model = level_model(c, p)
    rows, n_cols = model.rows, len(cols)
    # Every row at once, no filtering: its first column at/after its birth and at/after its
    # death (n_cols: never, or after the last column), by one look-up per candle index.
    col_at = np.repeat(np.arange(n_cols + 1), np.diff(cols, prepend=-1, append=n))
    fc = col_at[rows.born]
    ec = col_at[model.death]
    hidden = fc == ec  # died before the first column at/after its birth: never shown
    # Every row's bucket (a fresh array: shifted into a cell index in place below).
    cell = model.grid.index(rows.level) if model.bucket is None else model.bucket.copy()
    k0, k1 = _shown_range(cell, hidden, _sides(model), float(c.close[-1]), p.grid)
    width = k1 - k0
    # Value at the first and at the end column, from the survival the model already holds.
    log_born = model.log_f[rows.born]
    log_col = np.append(model.log_f[cols], 0.0)  # end column n_cols: never taken out
    add = log_col[fc]
    add -= log_born
    np.exp(add, out=add)
    add *= rows.notional
    rem = log_col[ec]
    rem -= log_born
    del log_born
    np.exp(rem, out=rem)
    rem *= rows.notional
    if model.zeros[-1]:  # an OI wipe-out between birth and column: worth 0 there
        zeros_col = np.append(model.zeros[cols], 0)
        zeros_born = model.zeros[rows.born]
        add[zeros_col[fc] > zeros_born] = 0.0
        rem[zeros_col[ec] > zeros_born] = 0.0
    # A hidden row is added and taken out in one cell: give it no weight, and a cell in range.
    np.copyto(add, 0.0, where=hidden)
    np.copyto(rem, 0.0, where=hidden)
    # Cell of a row in a (column 0..n_cols, side, bucket) matrix: one row of 2·width cells
    # per column (shorts after the longs), so the recurrence below steps through contiguous
    # rows.
    span = 2 * width
    cell -= k0
    np.clip(cell, 0, width - 1, out=cell)
    cell[rows.n_long:] += width
    fc *= span
    fc += cell
    ec *= span
    ec += cell
    size = (n_cols + 1) * span
    # (asarray: with no rows at all, bincount gives integers)
    # Removals taken out in place (ufunc.at): no second matrix to allocate and page in.
    mat = np.asarray(np.bincount(fc, weights=add, minlength=size), dtype=np.float64)
    np.subtract.at(mat, ec, rem)
    # Live-level counts follow the same recurrence exactly (integers), so a bucket whose
    # levels are all gone is exactly 0, not the rounding left over from the subtraction.
    net = np.bincount(fc, minlength=size)
    np.subtract.at(net, ec, 1)
    del add, rem, cell, fc, ec, hidden
    mat2 = mat.reshape(n_cols + 1, span)
    net2 = net.reshape(n_cols + 1, span)
    # Survival between consecutive columns.
    gain = np.ones(n_cols)
    if n_cols > 1:
        gain[1:] = np.exp(model.log_f[cols[1:]] - model.log_f[cols[:-1]])
        gain[1:] = np.where(model.zeros[cols[1:]] > model.zeros[cols[:-1]], 0.0, gain[1:])
    # The recurrence V[c] = V[c−1]·g[c] + born[c] − died[c], in place, both sides at once.
    live = np.zeros(span, dtype=np.int64)
    empty = np.empty(span, dtype=bool)
    carried = np.empty(span)
    for col in range(n_cols):
        cur = mat2[col]
        if col:
            np.multiply(mat2[col - 1], gain[col], out=carried)
            cur += carried
        live += net2[col]
        np.maximum(cur, 0.0, out=cur)
        np.equal(live, 0, out=empty)
        np.copyto(cur, 0.0, where=empty)
    # Each side is a view of its half of the rows (no copy).
    return Heatmap(p.grid, k0, cols, c.timestamp[cols], mat2[:n_cols, :width],
                   mat2[:n_cols, width:], model.proxy)


def _shown_range(bucket: IntArray, hidden: NDArray[np.bool_], sides: Sequence[tuple[int, int]],
                 fallback_price: float, grid: PriceGrid) -> tuple[int, int]:
    """Buckets k0..k1 (exclusive) spanning the rows shown in some column (not ``hidden``)."""
    big = np.iinfo(np.int64).max
    lo = hi = None
    for a, b in sides:
        shown = ~hidden[a:b]
        if shown.any():
            k_lo = int(bucket[a:b].min(where=shown, initial=big))
            k_hi = int(bucket[a:b].max(where=shown, initial=-big)) + 1
            lo = k_lo if lo is None else min(lo, k_lo)
            hi = k_hi if hi is None else max(hi, k_hi)
    if lo is None or hi is None:
        return _bucket_range([], fallback_price, grid)
    return lo, hi
