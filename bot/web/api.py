"""The web view's JSON (``/api/v1/...``), built from an :class:`~bot.estimates.Estimate`.

No aiohttp here: ``liqbot levels --json`` builds its rows with :func:`levels_rows` too, so the
API and the CLI cannot drift apart. Version 1: fields are only ever added, never renamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.charts.heatmap import price_range
from bot.estimates import Estimate
from bot.tape.events import Liquidation
from estimator import Cluster, top
from estimator.clusters import merge_touching

API_VERSION = 1
DISCLAIMER = "estimate from a model, not exchange data"
LEVEL_KEYS = ("side", "low", "high", "price", "notional_usd", "distance_pct")


def levels_rows(clusters: Sequence[Cluster], n: int) -> list[dict[str, Any]]:
    """The ``n`` largest zones per side (touching clusters merged, as /levels shows them):
    the rows of ``liqbot levels --json`` and of ``/api/v1/levels``."""
    zones = top(merge_touching(clusters), n)
    return [{k: c.as_dict()[k] for k in LEVEL_KEYS} | {"id": c.id} for c in zones]


def _head(est: Estimate) -> dict[str, Any]:
    return {"version": API_VERSION, "symbol": est.symbol, "price": est.price,
            "as_of_ms": int(est.book.timestamp), "proxy": bool(est.proxy),
            "disclaimer": DISCLAIMER}


def levels_json(est: Estimate, n: int = 5) -> dict[str, Any]:
    return _head(est) | {"levels": levels_rows(est.clusters, n)}


def heatmap_json(est: Estimate, window: str, tape: Sequence[Liquidation] = ()) -> dict[str, Any]:
    """The window's heatmap cropped to the PNG's visible price range: ``time_ms`` (columns),
    ``prices`` (bucket mid prices, ascending), ``values``: row-major ``[time][price]`` whole USD
    (long + short), ``shape`` = [len(time_ms), len(prices)]. ``close`` per column, ``tape``:
    real liquidations in the window as [time_ms, price, notional_usd, side]."""
    hm = est.heatmap(window)
    candles = est.snapshot.candles
    i0, i1 = int(hm.candle_index[0]), int(hm.candle_index[-1])
    lo, hi = price_range(float(candles.low[i0:i1 + 1].min()), float(candles.high[i0:i1 + 1].max()))
    prices = hm.prices
    rows = np.flatnonzero((prices >= lo) & (prices <= hi))
    j0, j1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, len(prices))
    values = np.rint(hm.total[:, j0:j1]).astype(np.int64)
    t0 = int(hm.timestamp[0])
    return _head(est) | {
        "window": window,
        "bucket": hm.grid.describe(),
        "time_ms": [int(t) for t in hm.timestamp],
        "close": [float(candles.close[i]) for i in hm.candle_index],
        "prices": [round(float(p), 8) for p in prices[j0:j1]],
        "shape": [int(values.shape[0]), int(values.shape[1])],
        "values": values.ravel().tolist(),
        "zones": levels_rows(est.clusters, 3),
        "tape": [[int(e.timestamp), float(e.price), float(e.notional_usd), e.side]
                 for e in tape if e.timestamp >= t0],
    }


def map_json(est: Estimate) -> dict[str, Any]:
    """The book at the newest candle: ``prices`` (bucket mids, ascending) and, per leverage
    of the ladder, the ``long`` and ``short`` notional (whole USD) in each bucket."""
    book = est.book
    return _head(est) | {
        "bucket": book.grid.describe(),
        "prices": [round(float(p), 8) for p in book.prices],
        "leverage": [float(x) for x in book.leverages],
        "long": np.rint(book.long_by_lev).astype(np.int64).tolist(),
        "short": np.rint(book.short_by_lev).astype(np.int64).tolist(),
    }
