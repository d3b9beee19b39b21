"""Estimator speed: the fast path against its previous version and the per-candle reference.

    python bench/estimator_bench.py [--json] [--candles 43200 432000] [--repeat 5]
                                    [--reference-max 43200]

Data: a seeded synthetic 1m random walk with open interest and taker-buy volume (30 days =
43,200 candles). For each size it prints:
- fast_s: best of --repeat ``build_book`` runs; previous_fast_s: the same for the fast path as
  it was before issue 20 (bench/estimator_baseline.py), timed alternately in the same run;
  speedup_vs_previous = previous_fast_s / fast_s; death_search_s: its share of fast_s.
- peak_mb / previous_peak_mb: peak traced allocation of one build (tracemalloc, MB).
- same_book_as_previous: the two books are bit-identical.
- reference_s / speedup / max_rel_diff_vs_reference: one run of the per-candle reference loop
  (tests/reference_model.py), only for sizes ≤ --reference-max (it takes minutes beyond).
- heatmap_300_columns_s: the heatmap over the whole series, 300 columns (best of --repeat);
  full_model_book_s: the book read from the model of every created level with its death
  (book_at(level_model(...)), what build_book was before it kept only the survivors, and the
  part of the work a heatmap cannot skip: it shows levels that have died), timed alternately;
  heatmap_vs_full_model_book and heatmap_vs_book (against fast_s) are the ratios;
  heatmap_vs_full_model_book_cpu_median: the ratio of the median CPU times of the same calls
  (steadier than the best wall times when other processes share the cores);
  heatmap_minor_faults / full_model_book_minor_faults: page faults of one call each (fresh
  pages the allocator asked the kernel for: part of the time on this VM).
- heap: the process keeps freed memory as ``liqbot`` does (bot/heap.py: arrays up to 32 MiB
  from glibc's heap, 32 MiB of freed memory kept at its top), or with --default-heap glibc's
  defaults, to show what that is worth.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import estimator_baseline as previous  # noqa: E402

from bot.heap import MMAP_THRESHOLD_BYTES, TOP_PAD_BYTES, keep_freed_heap  # noqa: E402
from estimator import (  # noqa: E402
    Book,
    Candles,
    ModelParams,
    book_at,
    build_book,
    build_heatmap,
    level_model,
)
from estimator.deaths import first_high_at_or_above, first_low_at_or_below  # noqa: E402
from estimator.positions import created_levels  # noqa: E402
from tests.reference_model import dense, reference_books  # noqa: E402
from tests.synthetic import random_walk  # noqa: E402


def synthetic(n: int, seed: int = 7) -> Candles:
    """Seeded 1m random walk around 60,000 USD with OI (~8 B USD) and taker-buy volume."""
    return random_walk(n, start=60_000.0, step_ms=60_000, vol=0.0008, wick=0.0004,
                       oi_usd=8e9, oi_vol=0.0006, taker=True, volume_scale=40.0, seed=seed)


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def minor_faults(fn: Callable[[], Any]) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def death_search_s(c: Candles, params: ModelParams) -> float:
    rows, _ = created_levels(c, params)
    longs, shorts = slice(0, rows.n_long), slice(rows.n_long, None)
    t0 = time.perf_counter()
    first_low_at_or_below(c.low, rows.born[longs], rows.level[longs])
    first_high_at_or_above(c.high, rows.born[shorts], rows.level[shorts])
    return time.perf_counter() - t0


def same(a: Book, b: Book) -> bool:
    return (a.k0 == b.k0 and np.array_equal(a.long_by_lev, b.long_by_lev)
            and np.array_equal(a.short_by_lev, b.short_by_lev))


def measure(n: int, repeat: int, reference_max: int) -> dict[str, object]:
    candles = synthetic(n)
    params = ModelParams(half_life_hours=72.0)
    fast, prev, deaths = [], [], []
    for _ in range(repeat):  # alternate, so both see the same machine load
        t0 = time.perf_counter()
        book = build_book(candles, params)
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        old = previous.build_book(candles, params)
        prev.append(time.perf_counter() - t0)
        deaths.append(death_search_s(candles, params))
    result: dict[str, object] = {
        "candles": n,
        "fast_s": round(min(fast), 4),
        "previous_fast_s": round(min(prev), 4),
        "speedup_vs_previous": round(min(prev) / min(fast), 2),
        "death_search_s": round(min(deaths), 4),
        "peak_mb": round(peak_mb(lambda: build_book(candles, params)), 1),
        "previous_peak_mb": round(peak_mb(lambda: previous.build_book(candles, params)), 1),
        "same_book_as_previous": same(book, old),
    }
    heat, full, heat_cpu, full_cpu = [], [], [], []
    for _ in range(repeat):  # alternately, as above
        t0, c0 = time.perf_counter(), time.process_time()
        build_heatmap(candles, params, columns=300, start=0)
        heat.append(time.perf_counter() - t0)
        heat_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        book_at(level_model(candles, params), n - 1, candles, params)
        full.append(time.perf_counter() - t0)
        full_cpu.append(time.process_time() - c0)
    result["heatmap_300_columns_s"] = round(min(heat), 4)
    result["full_model_book_s"] = round(min(full), 4)
    result["heatmap_vs_full_model_book"] = round(min(heat) / min(full), 2)
    result["heatmap_vs_full_model_book_cpu_median"] = round(
        float(np.median(heat_cpu)) / float(np.median(full_cpu)), 2)
    result["heatmap_vs_book"] = round(min(heat) / min(fast), 2)
    result["heatmap_minor_faults"] = minor_faults(
        lambda: build_heatmap(candles, params, columns=300, start=0))
    result["full_model_book_minor_faults"] = minor_faults(
        lambda: book_at(level_model(candles, params), n - 1, candles, params))
    if n <= reference_max:
        t0 = time.perf_counter()
        ref = reference_books(candles, params)[n - 1]
        reference_s = time.perf_counter() - t0
        n_lev, width = book.long_by_lev.shape
        result["reference_s"] = round(reference_s, 3)
        result["speedup"] = round(reference_s / min(fast), 1)
        result["max_rel_diff_vs_reference"] = max(
            float(np.abs(fast_side - dense(ref_side, n_lev, book.k0, width)).max()
                  / max(float(fast_side.max()), 1e-300))
            for fast_side, ref_side in ((book.long_by_lev, ref[0]), (book.short_by_lev, ref[1]))
        )
    result["live_levels_usd"] = round(float(book.long_usd.sum() + book.short_usd.sum()))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--candles", type=int, nargs="+", default=[43_200, 432_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference-max", type=int, default=43_200,
                    help="run the per-candle reference only up to this many candles")
    ap.add_argument("--default-heap", action="store_true",
                    help="glibc's default heap, not the top pad liqbot sets (bot/heap.py)")
    args = ap.parse_args()
    padded = not args.default_heap and keep_freed_heap()
    heap = (f"mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, top pad {TOP_PAD_BYTES >> 20} MiB"
            " (as liqbot)" if padded else "glibc default")
    runs = [measure(n, args.repeat, args.reference_max) for n in args.candles]
    if args.json:
        print(json.dumps({"heap": heap, "runs": runs}))
    else:
        for r in runs:
            for k, v in r.items():
                print(f"{k:>28}: {v}")
            print()
        print(f"{'heap':>28}: {heap}")


if __name__ == "__main__":
    main()
