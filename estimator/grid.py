"""Price buckets: a fixed grid, so books from different recomputes line up bucket by bucket."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class PriceGrid:
    """Either relative buckets (each ``pct`` % wide, edges at (1 + pct/100)^k USD) or fixed
    ``usd``-wide buckets (edges at k × usd). Bucket ``k`` covers [edge(k), edge(k + 1))."""

    pct: float | None = None
    usd: float | None = None

    def __post_init__(self) -> None:
        if (self.pct is None) == (self.usd is None):
            raise ValueError("price grid: give exactly one of pct or usd")
        step = self.pct if self.pct is not None else self.usd
        if step is None or not (math.isfinite(step) and step > 0):
            raise ValueError(f"price grid: step must be positive, got {step!r}")
        if self.pct is not None and self.pct >= 50:
            raise ValueError(f"price grid: pct must be < 50, got {self.pct!r}")

    @classmethod
    def relative(cls, pct: float) -> PriceGrid:
        return cls(pct=pct)

    @classmethod
    def fixed(cls, usd: float) -> PriceGrid:
        return cls(usd=usd)

    def index(self, price: ArrayLike) -> NDArray[np.int64]:
        """Bucket index of each price (USD, > 0)."""
        p = np.asarray(price, dtype=np.float64)
        if self.pct is not None:
            raw = np.log(p)
            raw /= math.log1p(self.pct / 100.0)
        else:
            assert self.usd is not None
            raw = p / self.usd
        # A hair of tolerance so a price exactly on an edge lands in the bucket it starts.
        raw += 1e-9
        # In place: one float temporary for a whole array of prices (same numbers).
        return np.floor(raw, out=raw if raw.ndim else None).astype(np.int64)

    def edge(self, k: ArrayLike) -> NDArray[np.float64]:
        """Lower edge (USD) of bucket(s) ``k``."""
        kk = np.asarray(k, dtype=np.float64)
        if self.pct is not None:
            return np.asarray(np.exp(kk * math.log1p(self.pct / 100.0)), dtype=np.float64)
        assert self.usd is not None
        return np.asarray(kk * self.usd, dtype=np.float64)

    def centre(self, k: ArrayLike) -> NDArray[np.float64]:
        """Mid price (USD) of bucket(s) ``k``."""
        kk = np.asarray(k, dtype=np.float64)
        return (self.edge(kk) + self.edge(kk + 1)) / 2.0

    def describe(self) -> str:
        return f"{self.pct:g} % buckets" if self.pct is not None else f"${self.usd:g} buckets"
