"""The estimator's fast path as it was before issue 20 (commit 3a8e33f), kept verbatim as the
baseline that bench/estimator_bench.py and bench/backtest_bench.py time in the same run: death
search, created levels, level model, build_book and find_clusters. Not used by the bot.
"""
# ruff: noqa
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from estimator.book import Book
from estimator.candles import Candles, FloatArray, IntArray
from estimator.clusters import Cluster, ClusterRule
from estimator.grid import PriceGrid
from estimator.params import ModelParams
from estimator.positions import LONG, SHORT, long_share, new_notional, survival_factors
from estimator.tiers import liquidation_price

@dataclass(frozen=True)
class CreatedLevels:
    """Rows of positions created by the model (parallel arrays).

    ``born``: candle index; ``side``: 0 long / 1 short; ``lev``: ladder index; ``level``:
    liquidation price (USD); ``notional``: USD at creation.
    """

    born: IntArray
    side: NDArray[np.int8]
    lev: IntArray
    level: FloatArray
    notional: FloatArray


def first_low_at_or_below(low: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose low ≤ ``level`` (len(low) if none)."""
    return _first_crossing(low, born, level, below=True)


def first_high_at_or_above(high: FloatArray, born: IntArray, level: FloatArray) -> IntArray:
    """Index of the first candle after ``born`` whose high ≥ ``level`` (len(high) if none)."""
    return _first_crossing(high, born, level, below=False)


def _first_crossing(series: FloatArray, born: IntArray, level: FloatArray, below: bool) -> IntArray:
    n = len(series)
    if len(born) == 0:
        return np.zeros(0, dtype=np.int64)
    # Work on a sign-flipped copy so one code path ("window max < level" never crosses) serves
    # both sides: a long crosses when low ≤ p, i.e. −low ≥ −p.
    x = -series if below else series
    target = -level if below else level
    # table[k][i] = max(x[i : i + 2^k]) clipped at the end; index n is a sentinel (+inf) that
    # always "crosses", so a jump never runs past the end of the series.
    tables = [np.append(x, np.inf)]
    step = 1
    while step * 2 <= n:
        prev = tables[-1]
        nxt = prev.copy()
        nxt[: n + 1 - step] = np.maximum(prev[: n + 1 - step], prev[step:])
        tables.append(nxt)
        step *= 2
    # pos = last index known to be crossing-free after born (starts at born itself).
    pos = born.astype(np.int64).copy()
    for k in range(len(tables) - 1, -1, -1):
        span = 1 << k
        window_max = tables[k][np.minimum(pos + 1, n)]
        safe = window_max < target
        pos = np.where(safe, np.minimum(pos + span, n - 1), pos)
    return pos + 1

def created_levels(c: Candles, params: ModelParams) -> tuple[CreatedLevels, bool]:
    """All (candle, side, leverage) rows with positive new notional, and the proxy flag."""
    notional, proxy = new_notional(c, params)
    share = long_share(c, params)
    tp = c.typical_price
    weights = np.asarray(params.weights, dtype=np.float64)
    n_lev = len(params.leverages)
    parts = []
    for side, side_share, name in ((LONG, share, "long"), (SHORT, 1.0 - share, "short")):
        # One ratio per leverage: every level is a small position, so LP/EP is constant.
        ratios = liquidation_price(
            np.ones(n_lev), np.asarray(params.leverages, dtype=np.float64), name,
            tiers=params.tiers,
        )
        amount = (notional * side_share)[:, None] * weights[None, :]
        born, lev = np.nonzero(amount > 0)
        parts.append(
            (born, np.full(len(born), side, dtype=np.int8), lev, tp[born] * ratios[lev],
             amount[born, lev])
        )
    born = np.concatenate([p[0] for p in parts]).astype(np.int64)
    rows = CreatedLevels(
        born=born,
        side=np.concatenate([p[1] for p in parts]),
        lev=np.concatenate([p[2] for p in parts]).astype(np.int64),
        level=np.concatenate([p[3] for p in parts]),
        notional=np.concatenate([p[4] for p in parts]),
    )
    return rows, proxy


@dataclass(frozen=True)
class LevelModel:
    """Created levels with death index (len(candles) = still alive) and the cumulative survival
    needed to value them."""

    rows: CreatedLevels
    death: IntArray
    bucket: IntArray
    log_f: FloatArray  # cumulative Σ log f over non-zero factors
    zeros: IntArray  # cumulative count of zero factors (OI wiped out)
    proxy: bool

    def value_at(self, sel: NDArray[np.bool_] | IntArray, t: IntArray | int) -> FloatArray:
        """Value (USD) at the close of candle ``t`` of the selected rows (alive or not)."""
        born = self.rows.born[sel]
        tt = np.broadcast_to(np.asarray(t, dtype=np.int64), born.shape)
        factor = np.exp(self.log_f[tt] - self.log_f[born])
        factor = np.where(self.zeros[tt] > self.zeros[born], 0.0, factor)
        return np.asarray(self.rows.notional[sel] * factor, dtype=np.float64)


def level_model(c: Candles, params: ModelParams) -> LevelModel:
    """Created levels of ``c`` under ``params``, each with its death index and price bucket."""
    rows, proxy = created_levels(c, params)
    is_long = rows.side == LONG
    death = np.empty(len(rows.born), dtype=np.int64)
    death[is_long] = first_low_at_or_below(c.low, rows.born[is_long], rows.level[is_long])
    death[~is_long] = first_high_at_or_above(c.high, rows.born[~is_long], rows.level[~is_long])
    f = survival_factors(c, params)
    zero = f <= 0.0
    log_f = np.cumsum(np.log(np.where(zero, 1.0, f)))
    zeros = np.cumsum(zero.astype(np.int64))
    bucket = params.grid.index(rows.level)
    return LevelModel(rows, death, bucket, log_f, zeros, proxy)

def _bucket_range(model: LevelModel, alive: NDArray[np.bool_], fallback_price: float,
                  grid: PriceGrid) -> tuple[int, int]:
    if bool(np.any(alive)):
        b = model.bucket[alive]
        return int(b.min()), int(b.max()) + 1
    k = int(grid.index(fallback_price))
    return k, k + 1


def build_book(c: Candles, params: ModelParams | None = None) -> Book:
    """The estimated book at the close of the last candle."""
    p = params if params is not None else ModelParams()
    model = level_model(c, p)
    last = len(c) - 1
    alive = model.death > last
    k0, k1 = _bucket_range(model, alive, float(c.close[-1]), p.grid)
    width = k1 - k0
    value = model.value_at(alive, last)
    n_lev = len(p.leverages)
    sides = []
    for side in (0, 1):
        m = model.rows.side[alive] == side
        flat = model.rows.lev[alive][m] * width + (model.bucket[alive][m] - k0)
        counts = np.bincount(flat, weights=value[m], minlength=n_lev * width)
        sides.append(np.asarray(counts, dtype=np.float64).reshape(n_lev, width))
    return Book(p.grid, k0, tuple(p.leverages), sides[0], sides[1], float(c.close[-1]),
                int(c.timestamp[-1]), model.proxy)


def find_clusters(book: Book, rule: ClusterRule | None = None,
                  previous: Sequence[Cluster] = ()) -> list[Cluster]:
    """Clusters of both sides of ``book``, ids provisional (see :func:`assign_ids`).

    Hysteresis: inside the ranges of ``previous`` clusters (same side) a bucket stays hot down
    to ``keep_ratio`` × the threshold, so a cluster hovering at the threshold does not flicker
    in and out between recomputes.
    """
    r = rule if rule is not None else ClusterRule()
    found: list[Cluster] = []
    for side, values in (("long", book.long_usd), ("short", book.short_usd)):
        known = [(c.low, c.high) for c in previous if c.side == side]
        found.extend(_side_clusters(side, values, book.k0, book.grid, book.last_price,
                                    book.timestamp, r, known))
    return found


def _side_clusters(side: str, values: FloatArray, k0: int, grid: PriceGrid, last_price: float,
                   asof: int, rule: ClusterRule,
                   known: Sequence[tuple[float, float]] = ()) -> list[Cluster]:
    total = float(values.sum())
    if total <= 0:
        return []
    lo, hi = grid.index([last_price * (1 - rule.context_pct / 100),
                         last_price * (1 + rule.context_pct / 100)]) - k0
    near = values[max(int(lo), 0): max(int(hi) + 1, 0)]
    typical = float(np.mean(near)) if len(near) else 0.0
    threshold = max(rule.hot_multiple * typical, rule.min_share * total)
    hot_mask = values >= threshold
    if known:
        centres = grid.centre(np.arange(k0, k0 + len(values)))
        inside = np.zeros(len(values), dtype=bool)
        for low, high in known:
            inside |= (centres >= low) & (centres < high)
        hot_mask |= inside & (values >= rule.keep_ratio * threshold) & (values > 0)
    hot = np.nonzero(hot_mask)[0]
    if len(hot) == 0:
        return []
    # Runs of hot buckets, merged when the gap between them is within merge_pct of price.
    lows = grid.edge(hot + k0)
    highs = grid.edge(hot + k0 + 1)
    starts = _split_points(lows, highs, last_price, rule)
    ends = np.concatenate([starts[1:], [len(hot)]])
    out = []
    for s, e in zip(starts, ends, strict=True):
        idx = hot[s:e]
        w = values[idx]
        centre = float(np.sum(grid.centre(idx + k0) * w) / np.sum(w))
        low, high = float(lows[s]), float(highs[e - 1])
        out.append(Cluster(
            id=f"{side[0].upper()}{int(idx[np.argmax(w)]) + k0}@{asof}",
            side=side, low=low, high=high, price=centre, notional_usd=float(w.sum()),
            distance_pct=(centre - last_price) / last_price * 100.0,
        ))
    return out


def _split_points(lows: FloatArray, highs: FloatArray, last_price: float,
                  rule: ClusterRule) -> NDArray[np.int64]:
    """Indexes (into the hot buckets) where a new cluster starts: a gap wider than
    ``merge_pct`` of price, or a cluster that would grow wider than ``max_width_pct``."""
    gap = last_price * rule.merge_pct / 100.0
    width = last_price * rule.max_width_pct / 100.0
    starts = [0]
    for i in range(1, len(lows)):
        if lows[i] - highs[i - 1] > gap or highs[i] - lows[starts[-1]] > width:
            starts.append(i)
    return np.asarray(starts, dtype=np.int64)
