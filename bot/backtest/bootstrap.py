"""Circular block bootstrap over evaluation times, for ratios of sums (lift = Σ touch / Σ b1).

Whole blocks of consecutive evaluation times are resampled, so the interval keeps the
dependence between neighbouring evaluations (overlapping horizons, volatility regimes).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


class BlockBootstrap:
    """``resamples`` circular block resamples of ``n`` evaluation times, blocks of ``block``.

    Sums are taken from prefix sums, so memory is resamples × blocks, not resamples × n.
    """

    def __init__(self, n: int, block: int, resamples: int, seed: int) -> None:
        if n < 1 or block < 1 or resamples < 1:
            raise ValueError(f"bootstrap: need n, block, resamples ≥ 1 (got {n}, {block}, "
                             f"{resamples})")
        self.n, self.block = n, min(block, n)
        n_blocks = -(-n // self.block)
        rng = np.random.default_rng([seed, 1])
        self.starts = rng.integers(0, n, size=(resamples, n_blocks))
        self.last_len = n - (n_blocks - 1) * self.block  # the last block is cut to keep n

    def sums(self, values: Floats) -> Floats:
        """Σ values over each resample (one number per resample).

        The sum of the block starting at each time is taken once (prefix sums), then gathered
        per resample: the same terms added in the same order as gathering both prefix ends per
        resample, so the result is bit-identical to that, for one gather instead of two."""
        v = np.asarray(values, dtype=np.float64)
        ext = np.concatenate([[0.0], np.cumsum(np.concatenate([v, v[: self.block]]))])
        at = np.arange(self.n)
        blocks = (ext[at + self.block] - ext[at])[self.starts]
        blocks[:, -1] = (ext[at + self.last_len] - ext[at])[self.starts[:, -1]]
        return np.asarray(blocks.sum(axis=1))

    def ratio(self, num: Floats, den: Floats) -> Floats:
        """Σ num / Σ den per resample (nan where Σ den = 0)."""
        d = self.sums(den)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, self.sums(num) / np.where(d > 0, d, 1.0), np.nan)


def interval(samples: Floats, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (nan-aware)."""
    a = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(samples, [a, 1.0 - a])
    return float(lo), float(hi)


def default_block(n: int, horizon: int, every: int) -> int:
    """Block length in evaluation times: ≥ n^(1/3) and ≥ the evaluations one horizon spans."""
    return max(int(np.ceil(n ** (1.0 / 3.0))), -(-horizon // every) + 1)
