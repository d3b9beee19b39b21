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
from estimator.deaths import first_column_at_or_above, first_column_at_or_below
from estimator.grid import PriceGrid
from estimator.levels import LevelModel, survival, survivors_model
from estimator.params import ModelParams
from estimator.positions import created_levels


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
    there. Each level is added at the first column at/after its birth and taken out at the
    first column at/after its death (found at column resolution: the candle itself is never
    needed); the columns follow V[c] = V[c−1]·g[c] + born[c] − died[c], solved as scaled
    cumulative sums rather than column by column.
    """
    p = params if params is not None else ModelParams()
    n = len(c)
    if not 0 <= start < n:
        raise ValueError(f"heatmap: start {start!r} outside 0..{n - 1}")
    if columns < 1:
        raise ValueError(f"heatmap: columns must be ≥ 1, got {columns!r}")
    spaced = np.linspace(start, n - 1, num=min(columns, n - start))
    cols = np.unique(spaced.round().astype(np.int64))
    rows, proxy = created_levels(c, p)
    _, log_f, zeros = survival(c, p)
    log_col, zeros_col = log_f[cols], zeros[cols]  # at each column
    n_cols, n_long = len(cols), rows.n_long
    # Every row at once, no filtering: its first column at/after its birth and at/after its
    # death (n_cols: never, or after the last column), by one look-up per candle index.
    col_at = np.repeat(np.arange(n_cols + 1), np.diff(cols, prepend=-1, append=n))
    fc = col_at[rows.born]
    ec = np.empty_like(fc)
    longs, shorts = slice(0, n_long), slice(n_long, None)
    ec[longs] = first_column_at_or_below(c.low, rows.born[longs], rows.level[longs], cols,
                                         fc[longs])
    ec[shorts] = first_column_at_or_above(c.high, rows.born[shorts], rows.level[shorts], cols,
                                          fc[shorts])
    if zeros[-1]:  # an OI wipe-out zeroes every older level: taken out at the first column
        np.minimum(ec, np.searchsorted(zeros_col, zeros[rows.born], side="right"), out=ec)
    hidden = fc == ec  # gone before the first column at/after its birth: never shown
    # Every row's bucket (a fresh array: shifted into a cell index in place below).
    cell = p.grid.index(rows.level)
    k0, k1 = _shown_range(cell, hidden, ((0, n_long), (n_long, len(fc))), float(c.close[-1]),
                          p.grid)
    width = k1 - k0
    # Each row's weight where it is added and where it is taken out, in the scale of the run
    # of columns it falls in (see _column_runs): notional × survival from birth to the run's
    # first column.
    runs = _column_runs(log_col, zeros_col)
    if len(runs) == 1 and not zeros[-1]:  # one run, no OI wipe-out: both weights the same
        scaled = np.subtract(log_col[0], log_f)
        np.exp(scaled, out=scaled)
        add = scaled[rows.born]
        add *= rows.notional
        rem = add
    else:
        base = np.empty(n_cols + 1)
        for a, b, _ in runs:
            base[a:b] = log_col[a]
        base[n_cols] = log_f[-1]  # end column n_cols: never taken out (any finite weight)
        log_born = log_f[rows.born]
        add = base[fc] - log_born
        np.exp(add, out=add)
        add *= rows.notional
        rem = base[ec] - log_born
        del log_born
        np.exp(rem, out=rem)
        rem *= rows.notional
        if zeros[-1]:  # taken out at an OI wipe-out: worth 0 there (added: never wiped)
            rem[np.append(zeros_col, 0)[ec] > zeros[rows.born]] = 0.0
    # A hidden row is added and taken out in one cell: give it no weight, and a cell in range.
    np.copyto(add, 0.0, where=hidden)
    if rem is not add:
        np.copyto(rem, 0.0, where=hidden)
    # Cell of a row in a (column 0..n_cols, side, bucket) matrix: one row of 2·width cells
    # per column (shorts after the longs).
    span = 2 * width
    cell -= k0
    np.clip(cell, 0, width - 1, out=cell)
    cell[n_long:] += width
    end_col = ec.astype(np.int16 if n_cols < 2**15 else np.int32)
    fc *= span
    fc += cell
    ec *= span
    ec += cell
    size = (n_cols + 1) * span
    # (asarray: with no rows at all, bincount gives integers)
    # Removals taken out in place (ufunc.at): no second matrix to allocate and page in.
    mat = np.asarray(np.bincount(fc, weights=add, minlength=size), dtype=np.float64)
    np.subtract.at(mat, ec, rem)
    # Exact emptiness, so a bucket whose levels are all gone is 0, not the rounding left over
    # from the subtraction: a cell at column c holds a level iff one added at or before c is
    # taken out after c, i.e. iff the latest end column of those added up to c is > c.
    until = np.zeros(size, dtype=end_col.dtype)
    np.maximum.at(until, fc, end_col)
    del add, rem, cell, fc, ec, hidden, end_col
    mat2 = mat.reshape(n_cols + 1, span)[:n_cols]
    until2 = until.reshape(n_cols + 1, span)[:n_cols]
    for col in range(1, n_cols):  # running maximum (row by row: faster than along axis 0)
        np.maximum(until2[col - 1], until2[col], out=until2[col])
    _carry_columns(mat2, log_col, runs)
    # Rounding below 0, and values decayed below the smallest normal float (the per-candle
    # product underflows to 0 there), are 0; so is a bucket with no live level.
    np.copyto(mat2, 0.0, where=mat2 < _TINY)
    np.copyto(mat2, 0.0, where=until2 <= np.arange(n_cols, dtype=until.dtype)[:, None])
    # Each side is a view of its half of the rows (no copy).
    return Heatmap(p.grid, k0, cols, c.timestamp[cols], mat2[:, :width], mat2[:, width:], proxy)


_TINY = float(np.finfo(np.float64).tiny)
# Largest drop of log-survival within one run of columns: weights scaled by up to e^600
# stay far from overflow.
_MAX_LOG_SPAN = 600.0


def _column_runs(log_col: FloatArray, zeros_col: IntArray) -> list[tuple[int, int, bool]]:
    """Runs of columns [a, b) solved in one scale: each ends before an OI wipe-out (which
    zeroes everything older: the next run carries nothing over) or where the survival since
    the run's first column drops below e^−600. (a, b, whether the run carries the column
    before it over)."""
    n_cols = len(log_col)
    wiped = np.ones(n_cols + 1, dtype=bool)  # (True at n_cols: the end)
    wiped[1:n_cols] = zeros_col[1:] > zeros_col[:-1]
    runs, a = [], 0
    while a < n_cols:
        b = int(np.searchsorted(-log_col, -log_col[a] + _MAX_LOG_SPAN, side="right"))
        b = max(a + 1, min(b, a + 1 + int(np.argmax(wiped[a + 1:]))))
        runs.append((a, b, a > 0 and not wiped[a]))
        a = b
    return runs


def _carry_columns(mat: FloatArray, log_col: FloatArray,
                   runs: list[tuple[int, int, bool]]) -> None:
    """In place: rows of ``mat`` (each column's additions minus removals, in its run's
    scale) into the columns' values, V[c] = V[c−1]·g[c] + mat[c] with
    g[c] = exp(log_col[c] − log_col[c−1]). Within a run from column ``a``,
    V[c] = G[c]·(V[a−1]·g[a] + Σ mat[c']) with G[c] = exp(log_col[c] − log_col[a]): a
    running sum, then one scaling.
    """
    for a, b, carry in runs:
        if carry:
            mat[a] += mat[a - 1] * np.exp(log_col[a] - log_col[a - 1])
        for c in range(a + 1, b):  # (row by row: faster than cumsum along the columns)
            np.add(mat[c - 1], mat[c], out=mat[c])
        mat[a:b] *= np.exp(log_col[a:b] - log_col[a])[:, None]


def _shown_range(bucket: IntArray, hidden: NDArray[np.bool_], sides: Sequence[tuple[int, int]],
                 fallback_price: float, grid: PriceGrid) -> tuple[int, int]:
    """Buckets k0..k1 (exclusive) spanning the rows shown in some column (not ``hidden``)."""
    big = np.iinfo(np.int64).max
    lo = hi = None
    for a, b in sides:
        if a == b:
            continue
        part, part_hidden = bucket[a:b], hidden[a:b]
        i_lo, i_hi = int(part.argmin()), int(part.argmax())
        if not (part_hidden[i_lo] or part_hidden[i_hi]):  # the extremes are shown (usually)
            k_lo, k_hi = int(part[i_lo]), int(part[i_hi]) + 1
        elif not part_hidden.all():
            shown = ~part_hidden
            k_lo = int(part.min(where=shown, initial=big))
            k_hi = int(part.max(where=shown, initial=-big)) + 1
        else:
            continue
        lo = k_lo if lo is None else min(lo, k_lo)
        hi = k_hi if hi is None else max(hi, k_hi)
    if lo is None or hi is None:
        return _bucket_range([], fallback_price, grid)
    return lo, hi
