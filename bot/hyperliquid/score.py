"""``liqbot score-positions``: the estimator against the confirmed book.

At each snapshot time ``s`` (deduplicated to the last candle closed by ``s``, after a warm-up)
the estimator runs on Hyperliquid's own candles and OI up to that candle (one level model,
``books_at``, as the backtest walks) and is compared with the book of each wallet's latest
snapshot at or before ``s`` (positions with a liquidation price):

- **within ±0.5 % / ±1 %**: the share of confirmed notional whose liquidation price lies in one
  of the estimate's top-k clusters per side widened by that many % of price, against the
  backtest's b1 baseline (each cluster at the same distance on a random side, seeded draws of
  :func:`bot.backtest.score.random_sides`, averaged);
- **W1**: the Wasserstein-1 distance (in % of price) between the estimate's whole book and the
  confirmed notional, as distributions over distance from price, against a distance-only
  baseline (the estimate's book with each bucket split evenly between +d and −d);
- **sides**: the long share of the estimate's notional and of the confirmed notional.

Notional-weighted over evaluations. Times in ms, prices USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.backtest.score import random_sides
from bot.hyperliquid.positions import book_positions
from bot.hyperliquid.snapshots import SnapshotReplay
from estimator import Candles, ClusterRule, ModelParams, books_at, level_model, top_clusters

BANDS_PCT = (0.5, 1.0)
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class PositionsScore:
    evaluations: int
    top: int
    within: dict[str, dict[str, float]]
    w1_pct: dict[str, float]
    sides: dict[str, float]
    confirmed_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "top": self.top, "within": self.within,
                "w1_pct": self.w1_pct, "sides": self.sides,
                "confirmed_usd": self.confirmed_usd}


def eval_candles(c: Candles, snapshot_times: list[int], warmup: int) -> list[tuple[int, int]]:
    """(candle index, snapshot time) pairs: for each snapshot time the last candle closed by
    then (one pair per candle: its latest snapshot time), from candle ``warmup`` on."""
    step = int(np.median(np.diff(c.timestamp))) if len(c.timestamp) > 1 else 0
    closes = c.timestamp + step
    out: dict[int, int] = {}
    for s in snapshot_times:
        i = int(np.searchsorted(closes, s, side="right")) - 1
        if i >= warmup:
            out[i] = max(out.get(i, s), s)
    return sorted(out.items())


def w1(x_a: Floats, w_a: Floats, x_b: Floats, w_b: Floats) -> float:
    """Wasserstein-1 between two weighted samples on the line (weights normalised)."""
    xs = np.concatenate([x_a, x_b])
    order = np.argsort(xs, kind="stable")
    xs = xs[order]
    da = np.concatenate([w_a / w_a.sum(), np.zeros(len(x_b))])[order]
    db = np.concatenate([np.zeros(len(x_a)), w_b / w_b.sum()])[order]
    cdf_gap = np.abs(np.cumsum(da) - np.cumsum(db))[:-1]
    return float(np.sum(cdf_gap * np.diff(xs)))


def score_positions(c: Candles, replay: SnapshotReplay, coin: str, params: ModelParams,
                    top: int = 5, warmup: int = 24, draws: int = 200, seed: int = 0,
                    rule: ClusterRule | None = None) -> PositionsScore:
    pairs = eval_candles(c, replay.times, warmup)
    if not pairs:
        raise ValueError("no snapshot time after the warm-up and within the candles")
    model = level_model(c, params, buckets=True)
    hit = {b: {"model": 0.0, "b1": 0.0} for b in BANDS_PCT}
    w1_sum = {"model": 0.0, "distance_only": 0.0}
    total = est_long = est_all = conf_long = 0.0
    flips = random_sides(top * 2, draws, seed)
    used = 0
    for (_, s), book in zip(pairs, books_at(model, [i for i, _ in pairs], c, params),
                            strict=True):
        ps = [p for p in book_positions(replay.states_at(s), coin) if p.liq_px is not None]
        if not ps:
            continue
        used += 1
        price = book.last_price
        d = np.array([(p.liq_px or 0.0) / price - 1.0 for p in ps]) * 100.0
        w = np.array([p.value_usd for p in ps])
        total += float(w.sum())
        conf_long += math.fsum(p.value_usd for p in ps if p.size > 0)
        clusters = top_clusters(book, top, rule)
        lo = np.array([k.low / price - 1.0 for k in clusters]) * 100.0
        hi = np.array([k.high / price - 1.0 for k in clusters]) * 100.0
        above = lo >= 0  # the model's placement; b1 flips each at the same distance
        for band in BANDS_PCT:
            hit[band]["model"] += _covered(d, w, lo, hi, band)
            got = 0.0
            for row in flips:
                up = row[:len(clusters)]
                m_lo = np.where(up == above, lo, -hi)
                m_hi = np.where(up == above, hi, -lo)
                got += _covered(d, w, m_lo, m_hi, band)
            hit[band]["b1"] += got / draws
        mass = book.long_usd + book.short_usd
        if mass.sum() > 0:
            x = (book.prices / price - 1.0) * 100.0
            w1_sum["model"] += w1(x, mass, d, w) * float(w.sum())
            w1_sum["distance_only"] += w1(np.concatenate([x, -x]),
                                          np.concatenate([mass, mass]), d, w) * float(w.sum())
        est_long += float(book.long_usd.sum())
        est_all += float(mass.sum())
    if not used:
        raise ValueError("no confirmed position with a liquidation price at any evaluation")
    return PositionsScore(
        evaluations=used, top=top,
        within={f"{b:g}pct": {k: v / total for k, v in hit[b].items()} for b in BANDS_PCT},
        w1_pct={k: v / total for k, v in w1_sum.items()},
        sides={"estimate_long_share": est_long / est_all if est_all else math.nan,
               "confirmed_long_share": conf_long / total},
        confirmed_usd=total)


def _covered(d: Floats, w: Floats, lo: Floats, hi: Floats, band: float) -> float:
    """Notional of the positions at distance ``d`` (%) inside any [lo − band, hi + band]."""
    if len(lo) == 0:
        return 0.0
    inside = (d[:, None] >= lo[None, :] - band) & (d[:, None] <= hi[None, :] + band)
    return float(w[inside.any(axis=1)].sum())


def format_text(s: PositionsScore) -> str:
    lines = [f"estimate vs confirmed Hyperliquid positions · {s.evaluations} evaluations, "
             f"top {s.top} per side, ${s.confirmed_usd:,.0f} confirmed notional (summed)"]
    for band, v in s.within.items():
        lines.append(f"  within ±{band.removesuffix('pct')} %: model {v['model'] * 100:.1f} % "
                     f"of confirmed notional · b1 random side {v['b1'] * 100:.1f} %")
    lines.append(f"  W1 distance: model {s.w1_pct['model']:.2f} % of price · distance-only "
                 f"{s.w1_pct['distance_only']:.2f} %")
    lines.append(f"  long share: estimate {s.sides['estimate_long_share']:.3f} · confirmed "
                 f"{s.sides['confirmed_long_share']:.3f}")
    lines.append("  caveat: a sample of wallets on one venue (Hyperliquid).")
    return "\n".join(lines)
