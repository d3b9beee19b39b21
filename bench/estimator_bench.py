"""Estimator speed: the vectorised book vs the per-candle reference loop, same data, same run.

    python bench/estimator_bench.py [--json] [--candles 43200] [--repeat 5]

Data: a seeded synthetic 1m random walk with open interest and taker-buy volume (30 days =
43,200 candles by default). Prints fast_s (best of --repeat), reference_s (one run of the
reference loop in tests/reference_model.py), their ratio, and the heatmap time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimator import Candles, ModelParams, build_book, build_heatmap  # noqa: E402
from tests.reference_model import dense, reference_books  # noqa: E402
from tests.synthetic import random_walk  # noqa: E402


def synthetic(n: int, seed: int = 7) -> Candles:
    """Seeded 1m random walk around 60,000 USD with OI (~8 B USD) and taker-buy volume."""
    return random_walk(n, start=60_000.0, step_ms=60_000, vol=0.0008, wick=0.0004,
                       oi_usd=8e9, oi_vol=0.0006, taker=True, volume_scale=40.0, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--candles", type=int, default=43_200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    candles = synthetic(args.candles)
    params = ModelParams(half_life_hours=72.0)
    fast = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        book = build_book(candles, params)
        fast.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    build_heatmap(candles, params, columns=300, start=0)
    heatmap_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = reference_books(candles, params)[len(candles) - 1]
    reference_s = time.perf_counter() - t0
    n_lev, width = book.long_by_lev.shape
    max_rel = max(
        float(np.abs(fast_side - dense(ref_side, n_lev, book.k0, width)).max()
              / max(float(fast_side.max()), 1e-300))
        for fast_side, ref_side in ((book.long_by_lev, ref[0]), (book.short_by_lev, ref[1]))
    )
    result = {
        "candles": len(candles),
        "fast_s": round(min(fast), 4),
        "reference_s": round(reference_s, 3),
        "speedup": round(reference_s / min(fast), 1),
        "heatmap_300_columns_s": round(heatmap_s, 4),
        "max_rel_diff_vs_reference": max_rel,
        "live_levels_usd": round(float(book.long_usd.sum() + book.short_usd.sum())),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
