"""Calibration bench: how close `liqbot calibrate` (estimator.fit_ladder) gets to a known ladder.

Synthetic data made by the model itself (tests/synthetic.random_walk, 3,000 hourly candles with
OI; true weights (0.05, 0.1, 0.15, 0.3, 0.4), dominant_share 0.65), one liquidation event per
candle and side. For each seed, the tape is degraded like a real one: per-event size noise
(log-normal, sigma 0.25) and a fifth of the events dropped. Reported per seed and over the
seeds: the worst weight error of the fit (max |fitted - true|), the share error, and the
correlation of neighbouring leverages' predicted liquidations (why weights trade off).
Baselines in the same run: the same fit on the clean tape (should be ~0), and the error of not
fitting at all (the default ladder).

    python bench/calibrate_bench.py [--json] [--seeds N] [--candles N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimator import ModelParams, fit_ladder, predicted_liquidations  # noqa: E402
from tests.synthetic import random_walk  # noqa: E402

TRUE_WEIGHTS = (0.05, 0.1, 0.15, 0.3, 0.4)
TRUE_SHARE = 0.65
SIZE_NOISE = 0.25  # log-normal sigma of each event's size
KEEP = 0.8  # share of events the tape records


def synthetic(n: int, seed: int) -> tuple:
    """Candles and the tape the true ladder predicts: one event per (side, candle)."""
    c = random_walk(n, start=30_000.0, step_ms=3_600_000, vol=0.006, wick=0.004, oi_usd=1e9,
                    seed=seed)
    true = dataclasses.replace(ModelParams(), weights=TRUE_WEIGHTS, dominant_share=TRUE_SHARE)
    per_lev = predicted_liquidations(c, true)
    per_side = per_lev.sum(axis=1)
    side, t = np.nonzero(per_side > 0)
    return c, c.timestamp[t] + 1000, side == 1, per_side[side, t], per_lev


def neighbour_correlations(per_lev: np.ndarray) -> list[float]:
    """Correlation of leverage j's and j+1's predicted liquidations (per unit weight), over
    every (side, candle)."""
    unit = per_lev / np.asarray(TRUE_WEIGHTS)[None, :, None]
    cols = unit.transpose(1, 0, 2).reshape(unit.shape[1], -1)
    return [float(np.corrcoef(cols[j], cols[j + 1])[0, 1]) for j in range(len(cols) - 1)]


def one_seed(seed: int, n: int) -> dict[str, float]:
    c, ts, short, usd, per_lev = synthetic(n, seed)
    rng = np.random.default_rng(seed)
    keep = rng.random(len(ts)) < KEEP
    noisy = usd * rng.lognormal(0.0, SIZE_NOISE, len(ts))
    fit = fit_ladder(c, ModelParams(), ts[keep], short[keep], noisy[keep])
    clean = fit_ladder(c, ModelParams(), ts, short, usd)
    true = np.asarray(TRUE_WEIGHTS)
    corr = neighbour_correlations(per_lev)
    return {
        "seed": seed,
        "worst_weight_error": float(np.max(np.abs(np.asarray(fit.weights) - true))),
        "share_error": abs(fit.dominant_share - TRUE_SHARE),
        "clean_worst_weight_error": float(np.max(np.abs(np.asarray(clean.weights) - true))),
        "neighbour_corr_min": min(corr),
        "neighbour_corr_max": max(corr),
        "r2": fit.r2,
        "r2_default": fit.r2_default,
    }


def run(seeds: int, n: int) -> dict[str, object]:
    t = time.perf_counter()
    rows = [one_seed(s, n) for s in range(seeds)]
    errors = [r["worst_weight_error"] for r in rows]
    default_error = float(np.max(np.abs(np.asarray(ModelParams().weights)
                                        - np.asarray(TRUE_WEIGHTS))))
    median = statistics.median(errors)
    return {
        "seeds": seeds,
        "candles": n,
        "size_noise_sigma": SIZE_NOISE,
        "events_kept": KEEP,
        "worst_weight_error_median": round(median, 3),
        "worst_weight_error_max": round(max(errors), 3),
        "share_error_max": round(max(r["share_error"] for r in rows), 3),
        "clean_tape_worst_weight_error_max": float(
            f"{max(r['clean_worst_weight_error'] for r in rows):.1e}"),
        "default_ladder_worst_weight_error": round(default_error, 3),
        "fit_vs_default_error_ratio": round(median / default_error, 2),
        "neighbour_corr_range": [round(min(r["neighbour_corr_min"] for r in rows), 2),
                                 round(max(r["neighbour_corr_max"] for r in rows), 2)],
        "r2_median": round(statistics.median(r["r2"] for r in rows), 3),
        "r2_default_median": round(statistics.median(r["r2_default"] for r in rows), 3),
        "seconds": round(time.perf_counter() - t, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--candles", type=int, default=3000)
    args = ap.parse_args()
    res = run(args.seeds, args.candles)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>36}: {v}")


if __name__ == "__main__":
    main()
