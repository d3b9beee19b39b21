"""Model parameters: leverage ladder, side split, closures, price buckets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from estimator.grid import PriceGrid
from estimator.tiers import BINANCE_BTCUSDT, TierTable


@dataclass(frozen=True)
class ModelParams:
    """How new open interest is turned into liquidation levels.

    - ``leverages`` / ``weights``: the ladder new notional is spread over (weights sum to 1).
    - ``dominant_share``: the long share of new notional when taker buys are ≥ 55 % of volume (or
      the candle is green); ``1 − dominant_share`` when ≤ 45 % (or red); linear in between.
    - ``half_life_hours``: exponential age decay of live positions (None = off).
    - ``proxy_fraction``: without OI, new notional per candle = fraction × volume × typical price.
    - ``grid``: price buckets (relative 0.1 % by default).
    - ``tiers``: bracket table for MMR/cum (each level is priced as a small position).
    """

    leverages: tuple[float, ...] = (5, 10, 25, 50, 100)
    weights: tuple[float, ...] = (0.15, 0.30, 0.25, 0.20, 0.10)
    dominant_share: float = 0.75
    half_life_hours: float | None = None
    proxy_fraction: float = 0.1
    grid: PriceGrid = PriceGrid.relative(0.1)
    tiers: TierTable = BINANCE_BTCUSDT

    def __post_init__(self) -> None:
        if not self.leverages or len(self.leverages) != len(self.weights):
            raise ValueError(
                f"ladder: {len(self.leverages)} leverages but {len(self.weights)} weights"
            )
        if len(set(self.leverages)) != len(self.leverages):
            raise ValueError(f"ladder: duplicate leverage in {self.leverages}")
        for lev in self.leverages:
            if not (math.isfinite(lev) and lev >= 1):
                raise ValueError(f"ladder: leverage must be ≥ 1, got {lev!r}")
            self.tiers.smallest_for_leverage(lev)
        for w in self.weights:
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"ladder: weight must be ≥ 0, got {w!r}")
        if abs(sum(self.weights) - 1.0) > 1e-9:
            raise ValueError(f"ladder: weights sum to {sum(self.weights)!r}, expected 1")
        if not 0.5 <= self.dominant_share <= 1.0:
            raise ValueError(f"dominant_share must be in [0.5, 1], got {self.dominant_share!r}")
        if self.half_life_hours is not None and not (
            math.isfinite(self.half_life_hours) and self.half_life_hours > 0
        ):
            raise ValueError(f"half_life_hours must be positive, got {self.half_life_hours!r}")
        if not (math.isfinite(self.proxy_fraction) and self.proxy_fraction > 0):
            raise ValueError(f"proxy_fraction must be positive, got {self.proxy_fraction!r}")
