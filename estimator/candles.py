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


WICK_FACTOR = 20.0
"""A wick longer than this many median ranges is a bad print (see :func:`clip_bad_wicks`)."""
WICK_WINDOW = 25
"""Candles (centred on the one tested) whose median high−low range is the yardstick."""


def median_range(c: Candles, window: int = WICK_WINDOW) -> FloatArray:
    """Per candle, the median high−low range of the ``window`` candles centred on it (mirrored
    at the ends, so the first candle is judged by its neighbours, not by itself)."""
    half = min(window // 2, len(c) - 1)
    if half < 1:
        return c.high - c.low
    rng = np.pad(c.high - c.low, (half, half), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(rng, 2 * half + 1)
    # In blocks of rows: np.partition copies its input (window × n doubles at once would be
    # 25× the series: 700 MB for 3.5M candles).
    out = np.empty(len(windows))
    for i in range(0, len(windows), _MEDIAN_BLOCK):
        out[i:i + _MEDIAN_BLOCK] = np.partition(windows[i:i + _MEDIAN_BLOCK], half, axis=1)[:, half]
    return out


_MEDIAN_BLOCK = 65_536


def clip_bad_wicks(c: Candles, factor: float = WICK_FACTOR,
                   window: int = WICK_WINDOW) -> tuple[Candles, IntArray]:
    """Clip bad prints: a wick (high above max(open, close), or low below min(open, close))
    longer than ``factor`` × the median high−low range of the ``window`` candles centred on it
    is cut to one median range. Returns the clipped series and the rows changed (ascending).

    Wicks, not ranges: a real crash moves open/close too (the bundled file has genuine candles
    with a range 20× their neighbours' median, but no wick beyond 12×), while a bad print
    leaves a lone spike (a public Binance hourly export starts with high 16,199 / low 4,261
    at a 4,300 price). A median range of 0 (a flat stretch) flags nothing.
    """
    med = median_range(c, window)
    n = len(c)
    up = np.empty(n, dtype=bool)
    down = np.empty(n, dtype=bool)
    for i in range(0, n, _MEDIAN_BLOCK):  # in blocks: a few series-long temporaries less
        s = slice(i, i + _MEDIAN_BLOCK)
        limit = np.where(med[s] > 0, factor * med[s], np.inf)
        up[s] = (c.high[s] - np.maximum(c.open[s], c.close[s])) > limit
        down[s] = (np.minimum(c.open[s], c.close[s]) - c.low[s]) > limit
    rows = np.nonzero(up | down)[0]
    if not len(rows):
        return c, rows
    # Kept a valid candle even where open/close lie outside high/low: low ≤ high, both > 0.
    # Rows not clipped keep high and low (low ≤ high already).
    top = np.maximum(c.open[rows], c.close[rows])
    bottom = np.minimum(c.open[rows], c.close[rows])
    high = c.high.copy()
    high[rows] = np.where(up[rows], np.maximum(top + med[rows], c.low[rows]), c.high[rows])
    low = c.low.copy()
    low[rows] = np.minimum(np.where(down[rows], np.maximum(bottom - med[rows], bottom * 0.5),
                                    c.low[rows]), high[rows])
    return Candles(c.timestamp, c.open, high, low, c.close, c.volume, c.open_interest_usd,
                   c.taker_buy_volume), rows
