"""The web view's JSON (``/api/v1/...``), built from an :class:`~bot.estimates.Estimate`.

No aiohttp here: ``liqbot levels --json`` builds its rows with :func:`levels_rows` too, so the
API and the CLI cannot drift apart. Version 1: fields are only ever added, never renamed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.charts.heatmap import price_range
from bot.estimates import Estimate
from bot.tape.events import Liquidation
from estimator import Cluster, top
from estimator.clusters import merge_touching

if TYPE_CHECKING:
    from bot.hyperliquid.confirmed import ConfirmedView

API_VERSION = 1
DISCLAIMER = "estimate from a model, not exchange data"
LEVEL_KEYS = ("side", "low", "high", "price", "notional_usd", "distance_pct")
CONFIRMED_LABEL = "confirmed: real positions (Hyperliquid)"


def levels_rows(clusters: Sequence[Cluster], n: int) -> list[dict[str, Any]]:
    """The ``n`` largest zones per side (touching clusters merged, as /levels shows them):
    the rows of ``liqbot levels --json`` and of ``/api/v1/levels``."""
    zones = top(merge_touching(clusters), n)
    return [{k: c.as_dict()[k] for k in LEVEL_KEYS} | {"id": c.id} for c in zones]


def _head(est: Estimate) -> dict[str, Any]:
    return {"version": API_VERSION, "symbol": est.symbol, "price": est.price,
            "as_of_ms": int(est.book.timestamp), "proxy": bool(est.proxy),
            "disclaimer": DISCLAIMER}


def _confirmed(view: ConfirmedView | None, **fields: Any) -> dict[str, Any] | None:
    """The ``confirmed`` field: the confirmed layer (real Hyperliquid positions, issue 17)
    apart from the estimate's numbers, or None when this bot has no ``[positions]``.
    ``totals``: exact sums over every position with a liquidation price (as ``liqbot levels
    --positions --json`` prints them)."""
    if view is None:
        return None
    from bot.hyperliquid.confirmed import CAVEAT
    return {"label": CONFIRMED_LABEL, "caveat": CAVEAT, "coin": view.coin,
            "as_of_ms": int(view.t_ms), "totals": view.totals} | fields


def levels_json(est: Estimate, n: int = 5, confirmed: ConfirmedView | None = None
                ) -> dict[str, Any]:
    """``levels``: the estimate's zones; ``confirmed.levels``: the confirmed clusters (the
    ``n`` largest per side, the fields of ``levels --positions --json``'s ``confirmed``)."""
    return _head(est) | {"levels": levels_rows(est.clusters, n), "confirmed": _confirmed(
        confirmed, levels=[] if confirmed is None else [c.as_dict() for c in confirmed.top(n)])}


def heatmap_json(est: Estimate, window: str, tape: Sequence[Liquidation] = (),
                 confirmed: ConfirmedView | None = None) -> dict[str, Any]:
    """The window's heatmap cropped to the PNG's visible price range: ``time_ms`` (columns),
    ``prices`` (bucket mid prices, ascending), ``values``: row-major ``[time][price]`` whole USD
    (long + short), ``shape`` = [len(time_ms), len(prices)]. ``close`` per column, ``tape``:
    real liquidations in the window as [time_ms, price, notional_usd, side].
    ``confirmed.levels``: every confirmed cluster at the newest column (marked at the right
    edge), never in ``values``."""
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
        "confirmed": _confirmed(confirmed, levels=[] if confirmed is None else
                                [c.as_dict() for c in confirmed.clusters]),
    }


def map_json(est: Estimate, confirmed: ConfirmedView | None = None) -> dict[str, Any]:
    """The book at the newest candle: ``prices`` (bucket mids, ascending) and, per leverage
    of the ladder, the ``long`` and ``short`` notional (whole USD) in each bucket.
    ``confirmed``: real positions' notional (USD) per bucket of the same ``prices`` by
    liquidation price, ``long`` and ``short`` apart; ``outside_usd``: those whose liquidation
    price is off the map's range (still in ``totals``)."""
    book = est.book
    return _head(est) | {
        "bucket": book.grid.describe(),
        "prices": [round(float(p), 8) for p in book.prices],
        "leverage": [float(x) for x in book.leverages],
        "long": np.rint(book.long_by_lev).astype(np.int64).tolist(),
        "short": np.rint(book.short_by_lev).astype(np.int64).tolist(),
        "confirmed": None if confirmed is None else _confirmed(
            confirmed, **_per_bucket(confirmed, book.grid, book.k0, len(book.prices))),
    }


def _per_bucket(view: ConfirmedView, grid: Any, k0: int, n: int) -> dict[str, Any]:
    sums: dict[tuple[str, int], list[float]] = defaultdict(list)
    outside: list[float] = []
    for p in view.positions:
        if p.liq_px is None:
            continue
        j = int(grid.index(p.liq_px)) - k0
        (sums[(p.side, j)] if 0 <= j < n else outside).append(p.value_usd)
    return {side: [math.fsum(sums.get((side, j), ())) for j in range(n)]
            for side in ("long", "short")} | {"outside_usd": math.fsum(outside)}
