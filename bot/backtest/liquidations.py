"""Real liquidations vs the zones standing just before them (optional ``--liquidations CSV``).

CSV header ``timestamp,side,price,notional_usd`` (any order, extra columns ignored): timestamp
in unix ms UTC, side ``long``/``short`` (the liquidated position; ``sell``/``buy`` liquidation
orders are accepted as long/short), price and notional in USD.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bot.backtest.walk import Estimates
from bot.errors import DataFileError

_SIDES = {"long": False, "sell": False, "short": True, "buy": True}
BANDS = (0.005, 0.01)
"""Capture bands: a liquidation within ±0.5 % / ±1 % of a zone's edges counts as captured."""


@dataclass(frozen=True)
class Liquidations:
    timestamp: NDArray[np.int64]
    is_short: NDArray[np.bool_]
    price: NDArray[np.float64]
    notional: NDArray[np.float64]


def load_liquidations(path: str | Path) -> Liquidations:
    """Read and validate a liquidation CSV; DataFileError names the file and line."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = {"timestamp", "side", "price", "notional_usd"} - set(header)
            if missing:
                raise DataFileError(f"{path.name}:1: missing column(s) "
                                    f"{', '.join(sorted(missing))}")
            ts, short, price, notional = [], [], [], []
            for lineno, raw in enumerate(reader, start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
                side = row["side"].lower()
                try:
                    t, p, n = int(float(row["timestamp"])), float(row["price"]), float(
                        row["notional_usd"])
                except ValueError as exc:
                    raise DataFileError(f"{path.name}:{lineno}: not a number: {exc}") from exc
                if side not in _SIDES or not (p > 0 and n >= 0 and np.isfinite(p + n)):
                    raise DataFileError(f"{path.name}:{lineno}: need side long/short/buy/sell, "
                                        "price > 0, notional_usd ≥ 0")
                ts.append(t)
                short.append(_SIDES[side])
                price.append(p)
                notional.append(n)
    except OSError as exc:
        raise DataFileError(f"{path.name}: cannot read: {exc}") from exc
    order = np.argsort(np.asarray(ts, dtype=np.int64), kind="stable")
    return Liquidations(np.asarray(ts, dtype=np.int64)[order], np.asarray(short)[order],
                        np.asarray(price, dtype=np.float64)[order],
                        np.asarray(notional, dtype=np.float64)[order])


def score_liquidations(liq: Liquidations, est: Estimates, close_ms: NDArray[np.int64],
                       valid_ms: int, up_draws: NDArray[np.bool_],
                       bands: tuple[float, ...] = BANDS) -> dict[str, object]:
    """Share of liquidation notional within ±band of a zone standing just before it, vs b1.

    The standing zones of a liquidation at time ``ts`` are the top clusters of the latest
    evaluation whose candle closed at or before ``ts`` (``close_ms``), if that is less than
    ``valid_ms`` old; liquidations outside that are not scored. b1: the same zones on random
    sides (``up_draws``: draws × clusters, True = above price), averaged over draws.
    """
    e = np.searchsorted(close_ms, liq.timestamp, side="right") - 1
    ok = e >= 0
    ok[ok] &= liq.timestamp[ok] < close_ms[e[ok]] + valid_ms
    e, price, notional = e[ok], liq.price[ok], liq.notional[ok]
    total = float(notional.sum())
    out: dict[str, object] = {"n_scored": int(ok.sum()), "n_total": len(liq.timestamp),
                              "notional_scored_usd": total}
    if total <= 0 or len(est) == 0:
        return out | {band_key(b): None for b in bands}
    # Clusters of each evaluation as a padded (evaluations × slots) table.
    n_eval = len(est.times)
    counts = np.bincount(est.eval_idx, minlength=n_eval)
    slots = int(counts.max())
    slot = np.arange(len(est)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[est.eval_idx]
    p = est.price[est.eval_idx]
    lo_rel, hi_rel = est.low / p - 1.0, est.high / p - 1.0
    model_up = (lo_rel + hi_rel) > 0

    def table(values: NDArray[np.float64]) -> NDArray[np.float64]:
        t = np.full((n_eval, slots), np.nan)
        t[est.eval_idx, slot] = values
        return t[e]

    def share(lo: NDArray[np.float64], hi: NDArray[np.float64], band: float) -> float:
        return float(notional[near(price, lo, hi, band).any(axis=1)].sum() / total)

    result: dict[str, object] = {}
    for band in bands:
        model = share(table(est.low), table(est.high), band)
        b1 = []
        for up in up_draws:
            flip = up != model_up
            lo = np.where(flip, -hi_rel, lo_rel)
            hi = np.where(flip, -lo_rel, hi_rel)
            b1.append(share(table(p * (1 + lo)), table(p * (1 + hi)), band))
        base = float(np.mean(b1))
        result[band_key(band)] = {
            "share": model, "baseline_share": base,
            "lift": model / base if base > 0 else None,
        }
    return out | result


def near(price: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64],
         band: float) -> NDArray[np.bool_]:
    """liquidations × zones: the liquidation's price is within ±``band`` of the zone
    (``lo``/``hi``: one row per liquidation, or one row broadcast to all)."""
    return np.asarray((price[:, None] >= lo * (1 - band)) & (price[:, None] <= hi * (1 + band)))


def capture_sums(price: NDArray[np.float64], notional: NDArray[np.float64], est: Estimates,
                 band: float) -> dict[str, float]:
    """USD of the liquidations within ±``band`` of the zones of ONE evaluation (``est``), as
    the model placed them (``model_usd``) and as a random side per zone would on average
    (``baseline_usd``, the exact expectation over the sides the b1 draws of
    :func:`score_liquidations` sample)."""
    if len(price) == 0 or len(est) == 0:
        return {"model_usd": 0.0, "baseline_usd": 0.0}
    p = est.price[est.eval_idx]
    lo_rel, hi_rel = est.low / p - 1.0, est.high / p - 1.0
    up = (lo_rel + hi_rel) > 0
    mirror_lo, mirror_hi = p * (1 - hi_rel), p * (1 - lo_rel)
    model = near(price, est.low[None, :], est.high[None, :], band).any(axis=1)
    above = near(price, np.where(up, est.low, mirror_lo)[None, :],
                 np.where(up, est.high, mirror_hi)[None, :], band)
    below = near(price, np.where(up, mirror_lo, est.low)[None, :],
                 np.where(up, mirror_hi, est.high)[None, :], band)
    miss = np.prod(1.0 - (above.astype(np.float64) + below) / 2.0, axis=1)
    return {"model_usd": float(notional[model].sum()),
            "baseline_usd": float((notional * (1.0 - miss)).sum())}


def band_key(band: float) -> str:
    """0.005 → ``within_0.5pct`` (the JSON key of a capture band)."""
    return f"within_{band * 100:g}pct"
