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
    log_f: FloatArray  # cumulative Σ log f over non-zero factors
    zeros: IntArray  # cumulative count of zero factors (OI wiped out)
    proxy: bool

    def bucket_of(self, sel: NDArray[np.bool_] | IntArray) -> IntArray:
        """Price bucket of the selected rows (computed on demand: a book needs only the live
        ones)."""
        return self.grid.index(self.rows.level[sel])

    def value_at(self, sel: NDArray[np.bool_] | IntArray, t: IntArray | int) -> FloatArray:
        """Value (USD) at the close of candle ``t`` of the selected rows (alive or not)."""
        born = self.rows.born[sel]
        if np.ndim(t) == 0:
            tt = int(t)
            factor = np.exp(self.log_f[tt] - self.log_f[born])
            factor[self.zeros[born] < self.zeros[tt]] = 0.0
        else:
            t_arr = np.broadcast_to(np.asarray(t, dtype=np.int64), born.shape)
            factor = np.exp(self.log_f[t_arr] - self.log_f[born])
            factor = np.where(self.zeros[t_arr] > self.zeros[born], 0.0, factor)
        return np.asarray(self.rows.notional[sel] * factor, dtype=np.float64)


def level_model(c: Candles, params: ModelParams) -> LevelModel:
    """Created levels of ``c`` under ``params``, each with its death index."""
    rows, proxy = created_levels(c, params)
    longs, shorts = slice(0, rows.n_long), slice(rows.n_long, None)
    death = np.empty(len(rows.born), dtype=np.int64)
    death[longs] = first_low_at_or_below(c.low, rows.born[longs], rows.level[longs])
    death[shorts] = first_high_at_or_above(c.high, rows.born[shorts], rows.level[shorts])
    f = survival_factors(c, params)
    zero = f <= 0.0
    log_f = np.cumsum(np.log(np.where(zero, 1.0, f)))
    zeros = np.cumsum(zero.astype(np.int64))
    return LevelModel(rows, death, params.grid, log_f, zeros, proxy)
