"""Candle series: the estimator's only input shape (arrays, one row per candle)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Candles:
    """An ascending candle series.

    ``timestamp`` is the candle open time in unix ms (UTC); prices are in quote currency (USD);
    ``volume`` is in base units (e.g. BTC). ``open_interest_usd`` is the open interest at the
    candle's close in USD; ``taker_buy_volume`` is the taker-buy part of ``volume`` (base units).
    Both are optional: without OI the estimator falls back to the volume proxy, without taker-buy
    volume it splits longs/shorts by candle colour.
    """

    timestamp: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    open_interest_usd: FloatArray | None = None
    taker_buy_volume: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        if n == 0:
            raise ValueError("candles: empty series")
        ts = np.asarray(self.timestamp, dtype=np.int64)
        object.__setattr__(self, "timestamp", ts)
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _column(name, getattr(self, name), n))
        for name in ("open_interest_usd", "taker_buy_volume"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _column(name, value, n))
        if n > 1 and not bool(np.all(np.diff(ts) > 0)):
            bad = int(np.argmin(np.diff(ts) > 0)) + 1
            raise ValueError(f"candles: timestamp not strictly ascending at row {bad}")
        for name in ("open", "high", "low", "close"):
            arr = getattr(self, name)
            if not bool(np.all(arr > 0)):
                raise ValueError(f"candles: non-positive {name} at row {int(np.argmin(arr > 0))}")
        if not bool(np.all(self.high >= self.low)):
            raise ValueError(f"candles: high < low at row {int(np.argmin(self.high >= self.low))}")
        for name in ("volume", "open_interest_usd", "taker_buy_volume"):
            arr = getattr(self, name)
            if arr is not None and not bool(np.all(arr >= 0)):
                raise ValueError(f"candles: negative {name} at row {int(np.argmin(arr >= 0))}")

    def __len__(self) -> int:
        return len(self.timestamp)

    @property
    def typical_price(self) -> FloatArray:
        """(high + low + close) / 3, USD: where a candle's new positions are assumed to open."""
        return (self.high + self.low + self.close) / 3.0

    def tail(self, n: int) -> Candles:
        """The last ``n`` candles (all of them when ``n`` ≥ len)."""
        return self.slice(max(len(self) - n, 0), len(self))

    def slice(self, start: int, stop: int) -> Candles:
        """Rows ``start:stop`` as a new series."""
        s = slice(start, stop)
        oi = None if self.open_interest_usd is None else self.open_interest_usd[s]
        tb = None if self.taker_buy_volume is None else self.taker_buy_volume[s]
        return Candles(
            self.timestamp[s], self.open[s], self.high[s], self.low[s], self.close[s],
            self.volume[s], oi, tb,
        )


def _column(name: str, values: object, n: int) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"candles: {name} has shape {arr.shape}, expected ({n},)")
    if not bool(np.all(np.isfinite(arr))):
        raise ValueError(f"candles: non-finite {name} at row {int(np.argmin(np.isfinite(arr)))}")
    return arr
