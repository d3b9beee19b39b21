"""Step 1 of the model: which positions open at each candle, at what liquidation level.

A flat table of "created levels": one row per (candle, side, leverage) with a positive notional.
Also the per-candle survival factor (OI shrink × age decay) applied to everything older.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from estimator.candles import Candles, FloatArray, IntArray
from estimator.params import ModelParams
from estimator.tiers import liquidation_price

LONG, SHORT = 0, 1
_MS_PER_HOUR = 3_600_000.0


@dataclass(frozen=True)
class CreatedLevels:
    """Rows of positions created by the model (parallel arrays).

    ``born``: candle index; ``side``: 0 long / 1 short; ``lev``: ladder index; ``level``:
    liquidation price (USD); ``notional``: USD at creation. The first ``n_long`` rows are the
    longs, the rest the shorts.
    """

    born: IntArray
    side: NDArray[np.int8]
    lev: IntArray
    level: FloatArray
    notional: FloatArray
    n_long: int


def new_notional(c: Candles, params: ModelParams) -> tuple[FloatArray, bool]:
    """New notional per candle (USD) and whether it is the volume proxy.

    With OI: max(ΔOI, 0), 0 for the first candle (its OI predates the series). Without OI:
    ``proxy_fraction`` × volume × typical price.
    """
    if c.open_interest_usd is not None:
        created = np.zeros(len(c))
        created[1:] = np.maximum(np.diff(c.open_interest_usd), 0.0)
        return created, False
    return params.proxy_fraction * c.volume * c.typical_price, True


def long_share(c: Candles, params: ModelParams) -> FloatArray:
    """Long share of each candle's new notional (0..1).

    Taker-buy share s of volume when known: ≥ 55 % → ``dominant_share``, ≤ 45 % → its complement,
    linear in between. Otherwise (or for a zero-volume candle) candle colour: green → dominant,
    red → complement, doji → 0.5.
    """
    dom = params.dominant_share
    colour = np.where(c.close > c.open, dom, np.where(c.close < c.open, 1.0 - dom, 0.5))
    if c.taker_buy_volume is None:
        return np.asarray(colour, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(c.volume > 0, c.taker_buy_volume / np.where(c.volume > 0, c.volume, 1), np.nan)
    s = np.clip(s, 0.0, 1.0)
    by_share = (1.0 - dom) + (np.clip(s, 0.45, 0.55) - 0.45) / 0.10 * (2.0 * dom - 1.0)
    return np.asarray(np.where(np.isnan(s), colour, by_share), dtype=np.float64)


def survival_factors(c: Candles, params: ModelParams) -> FloatArray:
    """Factor f[t] that scales every position older than candle t at candle t (f[0] = 1).

    OI shrink OI[t]/OI[t−1] when OI falls (closures, pro rata), times the age decay
    2^(−Δt / half-life) over the real time between candles (gaps included).
    """
    f = np.ones(len(c))
    oi = c.open_interest_usd
    if oi is not None and len(c) > 1:
        prev, cur = oi[:-1], oi[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = np.where(cur < prev, cur / np.where(prev > 0, prev, 1.0), 1.0)
        f[1:] = shrink
    if params.half_life_hours is not None and len(c) > 1:
        dt_h = np.diff(c.timestamp).astype(np.float64) / _MS_PER_HOUR
        f[1:] *= np.exp2(-dt_h / params.half_life_hours)
    return f


def created_levels(c: Candles, params: ModelParams,
                   survive: tuple[FloatArray, FloatArray] | None = None,
                   ) -> tuple[CreatedLevels, bool]:
    """All (candle, side, leverage) rows with positive new notional, and the proxy flag.

    Rows are ordered by side (longs first), then candle, then ladder index. ``survive`` (the
    lowest low and the highest high after each candle) keeps only the rows price never
    reaches after their birth: a long level below that low, a short one above that high.
    """
    notional, proxy = new_notional(c, params)
    share = long_share(c, params)
    tp = c.typical_price
    weights = np.asarray(params.weights, dtype=np.float64)
    n_lev = len(params.leverages)
    parts = []
    for side_share, name in ((share, "long"), (1.0 - share, "short")):
        # One ratio per leverage: every level is a small position, so LP/EP is constant.
        ratios = liquidation_price(
            np.ones(n_lev), np.asarray(params.leverages, dtype=np.float64), name,
            tiers=params.tiers,
        )
        side_notional = notional * side_share
        amount = np.empty((len(c), n_lev))  # filled a column at a time: long inner loops
        for j in range(n_lev):
            np.multiply(side_notional, weights[j], out=amount[:, j])
        keep = amount > 0
        if survive is not None:
            level = np.multiply.outer(tp, ratios)  # the products ``level`` holds below
            if name == "long":
                keep &= level < survive[0][:, None]
            else:
                keep &= level > survive[1][:, None]
            del level
        flat = np.flatnonzero(keep)  # candle-major: index = born × n_lev + lev
        parts.append((flat, amount.ravel()[flat], ratios))
        del amount, keep
    total = sum(len(flat) for flat, _, _ in parts)
    born = np.empty(total, dtype=np.int64)
    lev = np.empty(total, dtype=np.int64)
    side = np.empty(total, dtype=np.int8)
    level = np.empty(total)
    amount_out = np.empty(total)
    at = 0
    for s_id, (flat, amt, ratios) in zip((LONG, SHORT), parts, strict=True):
        part = slice(at, at + len(flat))
        np.floor_divide(flat, n_lev, out=born[part])
        np.subtract(flat, born[part] * n_lev, out=lev[part])
        side[part] = s_id
        np.multiply(tp[born[part]], ratios[lev[part]], out=level[part])
        amount_out[part] = amt
        at += len(flat)
    rows = CreatedLevels(born=born, side=side, lev=lev, level=level, notional=amount_out,
                         n_long=len(parts[0][0]))
    return rows, proxy
