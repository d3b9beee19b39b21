"""Created levels with their death index and cumulative survival: what the book, the heatmap
and the ladder calibration value.

Every created level gets its death index once; its value at candle T is notional × Π f[k] for
born < k ≤ T (survival factors), computed from cumulative log-factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from estimator.candles import Candles, FloatArray, IntArray
from estimator.deaths import first_high_at_or_above, first_low_at_or_below
from estimator.grid import PriceGrid
from estimator.params import ModelParams
from estimator.positions import CreatedLevels, created_levels, survival_factors


@dataclass(frozen=True)
class LevelModel:
    """Created levels with death index (len(candles) = still alive) and the cumulative survival
    needed to value them."""

    rows: CreatedLevels
    death: IntArray
    grid: PriceGrid
    log_step: FloatArray  # log f per candle (0 for a zero factor and for candle 0)
    log_f: FloatArray  # cumulative Σ log f over non-zero factors
    zeros: IntArray  # cumulative count of zero factors (OI wiped out)
    proxy: bool
    bucket: IntArray | None = None  # every row's price bucket, when asked for up front

    def bucket_of(self, sel: NDArray[np.bool_] | IntArray) -> IntArray:
        """Price bucket of the selected rows (one book needs only the live ones: computed on
        demand unless the model was built with ``buckets=True``)."""
        if self.bucket is not None:
            return self.bucket[sel]
        return self.grid.index(self.rows.level[sel])

    def value_at(self, sel: NDArray[np.bool_] | IntArray, t: IntArray | int,
                 start: int = 0) -> FloatArray:
        """Value (USD) at the close of candle ``t`` of the selected rows (alive or not).

        ``start`` > 0 (scalar ``t`` only): survival accumulated from candle ``start`` on, as a
        model of the series sliced there would accumulate it (same rounding).
        """
        born = self.rows.born[sel]
        if np.ndim(t) == 0:
            tt = int(t)
            if start:
                steps = self.log_step[start: tt + 1].copy()
                steps[0] = 0.0  # a slice's first candle has no previous one to scale
                log_f = np.cumsum(steps)
                factor = np.exp(log_f[tt - start] - log_f[born - start])
            else:
                factor = np.exp(self.log_f[tt] - self.log_f[born])
            if self.zeros[tt]:  # else no factor up to tt was zero: nothing to wipe out
                factor[self.zeros[born] < self.zeros[tt]] = 0.0
        else:
            t_arr = np.broadcast_to(np.asarray(t, dtype=np.int64), born.shape)
            factor = np.exp(self.log_f[t_arr] - self.log_f[born])
            if self.zeros[-1]:  # else no factor was ever zero: nothing to wipe out
                factor = np.where(self.zeros[t_arr] > self.zeros[born], 0.0, factor)
        return np.asarray(self.rows.notional[sel] * factor, dtype=np.float64)


def level_model(c: Candles, params: ModelParams, buckets: bool = False) -> LevelModel:
    """Created levels of ``c`` under ``params``, each with its death index (and, with
    ``buckets``, its price bucket: for reading many books from one model)."""
    rows, proxy = created_levels(c, params)
    longs, shorts = slice(0, rows.n_long), slice(rows.n_long, None)
    death = np.empty(len(rows.born), dtype=np.int64)
    death[longs] = first_low_at_or_below(c.low, rows.born[longs], rows.level[longs])
    death[shorts] = first_high_at_or_above(c.high, rows.born[shorts], rows.level[shorts])
    bucket = params.grid.index(rows.level) if buckets else None
    return LevelModel(rows, death, params.grid, *survival(c, params), proxy, bucket)


def survivors_model(c: Candles, params: ModelParams) -> LevelModel:
    """The model's rows still alive at the last candle (price never came back to them), each
    with death = len(c): all a book at the last candle reads, without ever holding the rows
    that died (most of them) or searching for their deaths. Same rows, same order, same
    values as those of :func:`level_model` with death > len(c) - 1."""
    n = len(c)
    later_low = np.full(n, np.inf)  # lowest low after each candle (none after the last)
    later_high = np.full(n, -np.inf)
    if n > 1:
        later_low[:-1] = np.minimum.accumulate(c.low[:0:-1])[::-1]
        later_high[:-1] = np.maximum.accumulate(c.high[:0:-1])[::-1]
    rows, proxy = created_levels(c, params, survive=(later_low, later_high))
    death = np.full(len(rows.born), n, dtype=np.int64)
    return LevelModel(rows, death, params.grid, *survival(c, params), proxy)


def survival(c: Candles, params: ModelParams) -> tuple[FloatArray, FloatArray, IntArray]:
    """log f per candle (0 for a zero factor), its cumulative sum, cumulative zero count."""
    f = survival_factors(c, params)
    zero = f <= 0.0
    log_step = np.log(np.where(zero, 1.0, f))
    return log_step, np.cumsum(log_step), np.cumsum(zero.astype(np.int64))
