"""Books at many times from one level model, by a running total: what a walk-forward backtest
reads at each evaluation.

Per side, a dense (leverage × bucket) total of the live levels' values. From one evaluation
``t'`` to the next ``t`` it is scaled by the survival between them (Π f[k], t' < k ≤ t; 0 when a
factor was 0), then the levels born since (and alive at ``t``) are added at their value at ``t``
and the levels that died (or left the ``lookback`` window) are taken out at their value at ``t``.
Each evaluation costs O(leverages × buckets + levels born or dead since the last one), not
O(live levels): on 1m data far levels live for months.

Equal to :func:`estimator.book.books_at` up to float rounding (same levels, same bucket range;
sums taken in another order and scaled step by step, ~1e-12 relative). A live-level count per
cell follows the same recurrence in integers, so a cell whose levels are all gone is exactly 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from estimator.book import Book, _born_from, _sides
from estimator.candles import Candles, IntArray
from estimator.levels import LevelModel
from estimator.params import ModelParams


def running_books(model: LevelModel, times: Sequence[int] | IntArray, c: Candles,
                  params: ModelParams, starts: Sequence[int] | IntArray | None = None,
                  ) -> Iterator[Book]:
    """``book_at(model, t, c, params, start)`` for each ``t`` of ``times`` (``start`` of
    ``starts``, default 0), both non-decreasing, to float rounding (see the module)."""
    times = np.asarray(times, dtype=np.int64)
    if len(times) > 1 and (np.any(np.diff(times) < 0)
                           or (starts is not None and np.any(np.diff(starts) < 0))):
        raise ValueError("running_books: times and starts must not decrease")
    rows = model.rows
    n_lev = len(params.leverages)
    buckets = [model.bucket[lo:hi].copy() if model.bucket is not None
               else model.grid.index(rows.level[lo:hi]) for lo, hi in _sides(model)]
    present = [b for b in buckets if len(b)]
    kmin = min((int(b.min()) for b in present), default=0)
    width = max((int(b.max()) + 1 for b in present), default=kmin + 1) - kmin
    state = []
    # Live levels per bucket (all leverages, both sides): the book's bucket range without a
    # pass over the leverage × bucket counts at each evaluation.
    per_bucket = np.zeros(width, dtype=np.int64)
    for (lo, hi), b in zip(_sides(model), buckets, strict=True):
        b -= kmin
        b += rows.lev[lo:hi] * width  # cell = leverage × width + bucket, in place
        state.append(_Side(model, lo, hi, b, times, per_bucket))
    del buckets, present
    prev_t, prev_bf = -1, 0
    for e, t in enumerate(times):
        t = int(t)
        start = 0 if starts is None else int(starts[e])
        bf = _born_from(model, start)
        if prev_t < 0:
            gain = 1.0
        elif model.zeros[t] > model.zeros[prev_t]:
            gain = 0.0
        else:
            gain = float(np.exp(model.log_f[t] - model.log_f[prev_t]))
        for s in state:
            s.step(e, t, prev_t, bf, prev_bf, gain, n_lev * width)
        occupied = np.flatnonzero(per_bucket)
        if len(occupied):
            a, b_ = int(occupied[0]), int(occupied[-1]) + 1
            long_, short = (s.view(n_lev, width, a, b_) for s in state)
            k0 = kmin + a
        else:  # nothing alive: one empty bucket at the close, as build_book gives
            k0 = int(params.grid.index(float(c.close[t])))
            long_, short = np.zeros((n_lev, 1)), np.zeros((n_lev, 1))
        yield Book(params.grid, k0, tuple(params.leverages), long_, short,
                   float(c.close[t]), int(c.timestamp[t]), model.proxy)
        prev_t, prev_bf = t, bf


class _Side:
    """The running total of one side (rows ``lo``..``hi`` of the model, in birth order)."""

    def __init__(self, model: LevelModel, lo: int, hi: int, cell: IntArray,
                 times: IntArray, per_bucket: IntArray) -> None:
        self.model, self.lo, self.hi = model, lo, hi
        self.cell = cell.astype(np.int32) if cell.size and cell.max() < 2**31 else cell
        self.per_bucket = per_bucket  # shared by both sides
        self.total = np.zeros(0)
        self.count = np.zeros(0, dtype=np.int64)
        self.added = lo  # next row (birth order) not yet looked at
        born, death = model.rows.born[lo:hi], model.death[lo:hi]
        # Evaluation that first sees each row born / dead; rows seen alive by none are skipped.
        e_dead = np.searchsorted(times, death, side="left").astype(np.int32)
        seen = np.flatnonzero(np.searchsorted(times, born, side="left") < e_dead).astype(np.int32)
        e_dead = e_dead[seen]
        order = np.argsort(e_dead, kind="stable")
        self.dying = seen[order]  # rows (from lo) by removal evaluation
        del seen
        self.bounds = np.searchsorted(e_dead[order], np.arange(len(times) + 1), side="left")

    def step(self, e: int, t: int, prev_t: int, bf: int, prev_bf: int, gain: float,
             size: int) -> None:
        if not self.total.size:
            self.total = np.zeros(size)
            self.count = np.zeros(size, dtype=np.int64)
        m, born = self.model, self.model.rows.born
        if gain != 1.0:
            self.total *= gain
        out = []
        # Left the window: born in [prev_bf, bf), seen by now, alive at the previous evaluation.
        if bf > prev_bf:
            side_born = born[self.lo:self.hi]
            a = self.lo + int(np.searchsorted(side_born, prev_bf, side="left"))
            b = min(self.lo + int(np.searchsorted(side_born, bf, side="left")), self.added)
            if b > a:
                aged = np.arange(a, b)
                out.append(aged[m.death[aged] > prev_t])
        # Died since the previous evaluation (and still inside the window).
        dead = self.lo + self.dying[self.bounds[e]:self.bounds[e + 1]].astype(np.int64)
        if bf and len(dead):
            dead = dead[born[dead] >= bf]
        out.append(dead)
        # Born since the previous evaluation, inside the window, alive now.
        end = self.added + int(np.searchsorted(born[self.added:self.hi], t, side="right"))
        new = np.arange(self.added, end)
        self.added = end
        if bf and len(new):
            new = new[born[new] >= bf]
        new = new[m.death[new] > t]
        gone = np.concatenate(out) if len(out) > 1 else out[0]
        self._apply(new, t, 1)
        touched = self._apply(gone, t, -1)
        if len(touched):
            # Only a cell something was taken out of can dip below 0 (rounding) or be left
            # with rounding and no level: the scaling and the additions keep every other
            # cell as it was. O(levels changed), not O(leverages × buckets).
            kept = np.maximum(self.total[touched], 0.0)
            kept[self.count[touched] == 0] = 0.0
            self.total[touched] = kept

    def _apply(self, idx: IntArray, t: int, sign: int) -> np.ndarray:
        """Add (sign 1) or take out (-1) the rows ``idx`` at their value at ``t``, in place
        (ufunc.at: O(rows), not a bincount over every cell); returns their cells."""
        if not len(idx):
            return np.zeros(0, dtype=np.int64)
        cell = self.cell[idx - self.lo]
        v = self.model.value_at(idx, t)
        width = len(self.per_bucket)
        if sign > 0:
            np.add.at(self.total, cell, v)
            np.add.at(self.count, cell, 1)
            np.add.at(self.per_bucket, cell % width, 1)
        else:
            np.subtract.at(self.total, cell, v)
            np.subtract.at(self.count, cell, 1)
            np.subtract.at(self.per_bucket, cell % width, 1)
        return cell

    def view(self, n_lev: int, width: int, a: int, b: int) -> np.ndarray:
        return np.array(self.total.reshape(n_lev, width)[:, a:b], dtype=np.float64)
