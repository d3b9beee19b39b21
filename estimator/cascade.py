"""The cascade path: estimated liquidation notional between the last price and a target.

A move from the last price to ``target`` passes the buckets in between: a move down
liquidates longs, a move up shorts. ``cumulative_usd`` is the whole side's book summed over the
buckets whose centre lies between the last price and the target (both ends included), added
outward from the price, so a farther target never gives less. The clusters passed are listed
in order (touching ones as one zone, as /levels shows them) with the band of the book they
cover (clipped to the path) and the running sum up to their far edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from estimator.book import Book
from estimator.candles import FloatArray
from estimator.clusters import Cluster, merge_touching

#: Targets farther than this from the last price (in %) are refused: the book is a model of
#: positions near price, not of a halving or a doubling.
MAX_DISTANCE_PCT = 50.0


@dataclass(frozen=True)
class Band:
    """One cluster on the path: its range clipped to the path (USD), the book's notional in
    that range and the cumulative notional from the last price through its far edge."""

    low: float
    high: float
    notional_usd: float
    cumulative_usd: float


@dataclass(frozen=True)
class Cascade:
    """What a move from ``price`` to ``target`` would liquidate (an estimate)."""

    price: float
    target: float
    side: str  # "long" (target below price) or "short" (target above)
    cumulative_usd: float
    bands: tuple[Band, ...]
    proxy: bool
    timestamp: int

    @property
    def distance_pct(self) -> float:
        return (self.target - self.price) / self.price * 100.0


def side_for(price: float, target: float) -> str:
    """The side a move from ``price`` to ``target`` liquidates; ValueError when they are
    equal, not finite/positive, or more than :data:`MAX_DISTANCE_PCT` apart."""
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a positive price, got {target!r}")
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price must be a positive price, got {price!r}")
    if target == price:
        raise ValueError("target equals the current price: nothing lies between them")
    distance = abs(target - price) / price * 100.0
    if distance > MAX_DISTANCE_PCT * (1 + 1e-12):  # 50 % computed back from a price is fine
        raise ValueError(f"target is {distance:.1f} % from the current price; at most "
                         f"{MAX_DISTANCE_PCT:g} %")
    return "long" if target < price else "short"


def cumulative_curve(book: Book, side: str) -> tuple[FloatArray, FloatArray]:
    """(bucket centres, cumulative notional) of ``side`` from the last price outward: down
    for longs (centres descending), up for shorts (ascending). Sequential sums of
    non-negative values, so the curve never decreases."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    centres = book.prices
    values = book.long_usd if side == "long" else book.short_usd
    price = book.last_price
    if side == "long":
        keep = centres <= price
        c, v = centres[keep][::-1], values[keep][::-1]
    else:
        keep = centres >= price
        c, v = centres[keep], values[keep]
    return np.asarray(c, dtype=np.float64), np.cumsum(v, dtype=np.float64)


def _reach(centres: FloatArray, cum: FloatArray, side: str, x: float) -> float:
    """The curve at ``x``: notional of the buckets with centre between the price and ``x``."""
    if side == "long":  # centres descending: count those ≥ x
        n = int(np.searchsorted(-centres, -x, side="right"))
    else:
        n = int(np.searchsorted(centres, x, side="right"))
    return float(cum[n - 1]) if n else 0.0


def cascade_path(book: Book, clusters: Iterable[Cluster], target: float) -> Cascade:
    """The cascade from ``book.last_price`` to ``target`` (see the module docstring).

    Raises ValueError for a target equal to the price, not positive, or farther than
    :data:`MAX_DISTANCE_PCT` %.
    """
    price = book.last_price
    side = side_for(price, target)
    centres, cum = cumulative_curve(book, side)
    lo, hi = min(price, target), max(price, target)
    all_centres = book.prices
    values = book.long_usd if side == "long" else book.short_usd
    on_path = (all_centres >= lo) & (all_centres <= hi)
    bands = []
    passed = sorted((c for c in merge_touching(clusters)  # touching clusters: one band
                     if c.side == side and c.high > lo and c.low < hi),
                    key=lambda c: -c.high if side == "long" else c.low)
    for c in passed:
        b_lo, b_hi = max(c.low, lo), min(c.high, hi)
        inside = on_path & (all_centres >= b_lo) & (all_centres <= b_hi)
        far = b_lo if side == "long" else b_hi
        bands.append(Band(low=b_lo, high=b_hi, notional_usd=float(values[inside].sum()),
                          cumulative_usd=_reach(centres, cum, side, far)))
    return Cascade(price=price, target=float(target), side=side,
                   cumulative_usd=_reach(centres, cum, side, float(target)),
                   bands=tuple(bands), proxy=book.proxy, timestamp=book.timestamp)
