"""Backtest speed: the build-once walk against the walk that rebuilt the book at every
evaluation (today's walk before issue 20), same candles, same evaluations, same run.

    python bench/backtest_bench.py [--json] [--larger 42000] [--growth 40000 80000 160000]
                                   [--half-life 168] [--skip-larger-baseline]
                                   [--minute 250000 500000 1000000] [--minute-baseline 100000]
                                   [--no-minute]

- bundled: bot/data/btcusd_coinbase_1h.csv (20,111 hourly candles, volume only), the CLI's
  evaluation grid (warm-up 30 days, every 24 candles, 24 h horizon + 6 h reaction).
- larger: a generated hourly series of --larger candles (seeded random walk, volume only).
  For both: walk_s (new), previous_walk_s (tests/bot/backtest_reference.py with the previous
  estimator fast path, bench/estimator_baseline.py), speedup, same_to_rounding (the same
  clusters exactly, notionals within rtol 1e-9) and max_rel_notional_diff, backtest_s (the
  whole ``run_backtest`` with the new walk).
- growth: the new walk on generated hourly series of --growth sizes: seconds (wall and CPU of
  this process) and peak traced memory (tracemalloc, MB) per size, and the exponents b of
  time ∝ rows^b and memory ∝ rows^b fitted over them (least squares on logs; 1.0 = linear);
  cpu_vs_evaluations_exponent fits CPU time against the number of evaluations instead of rows,
  and cpu_ms_per_evaluation / price_range_buckets show what each evaluation costs and how wide
  the series' price range is (each evaluation reads a dense leverage × bucket book).
- minute: generated 1m series (volume only, seeded), the CLI's evaluation grid. Per size of
  --minute, in a fresh process: the whole ``run_backtest`` (backtest_s), peak RSS (ru_maxrss,
  MB) and the RSS before it (the candles made); exponents of time and of peak RSS over the
  RSS before, fitted over the 3 sizes; the same for CPU time (cpu_exponent), for the number of
  evaluations against rows (the 30-day warm-up has none, so they grow faster than the rows)
  and for CPU time against evaluations (cpu_vs_evaluations_exponent). Then, in the same
  process, the same backtest again under tracemalloc: traced_peak_mb, the most the code had
  allocated at once (numpy's arrays included), and its exponent (traced_memory_exponent):
  what the code asks for, apart from what the allocator keeps or returns. Baseline, same run, on
  --minute-baseline rows: the walk before the running total (books read from the live levels
  at each evaluation, every live level valued each time), walk_s of both, speedup, the largest
  relative notional difference (the running total sums in another order: rounding only) and
  whether the clusters are the same.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import estimator_baseline as previous  # noqa: E402

from bot.backtest import BacktestOptions, run_backtest  # noqa: E402
from bot.backtest.walk import (  # noqa: E402
    Estimates,
    _top_rows,
    candle_step_ms,
    evaluation_times,
    parse_duration,
    to_candles,
    walk,
)
from bot.heap import keep_freed_heap  # noqa: E402
from bot.market.replay import load_csv  # noqa: E402
from estimator import Candles, ClusterRule, ModelParams, books_at, level_model  # noqa: E402
from tests.bot.backtest_reference import walk_rebuilding  # noqa: E402
from tests.synthetic import random_walk  # noqa: E402

BUNDLED = ROOT / "bot" / "data" / "btcusd_coinbase_1h.csv"
FIELDS = ("times", "price", "eval_idx", "low", "high", "notional", "is_short", "proxy")


def hourly(n: int, seed: int = 3) -> Candles:
    """Seeded hourly random walk from 20,000 USD, volume only (like the bundled file)."""
    return random_walk(n, start=20_000.0, step_ms=3_600_000, vol=0.008, wick=0.004,
                       oi_usd=None, seed=seed)


def minute(n: int, seed: int = 5) -> Candles:
    """Seeded 1m random walk from 60,000 USD, volume only."""
    return random_walk(n, start=60_000.0, step_ms=60_000, vol=0.0008, wick=0.0005,
                       oi_usd=None, seed=seed)


def walk_live_levels(c: Candles, times: np.ndarray, opts: BacktestOptions) -> Estimates:
    """The walk before the running total: each book from the live levels (books_at)."""
    model = level_model(c, opts.params, buckets=True)
    price = np.empty(len(times))
    eval_idx: list[int] = []
    rows: list[tuple[str, float, float, float]] = []
    proxy = True
    for e, book in enumerate(books_at(model, times, c, opts.params)):
        found, price[e], proxy = _top_rows(book, opts.rule, opts.top)
        rows.extend(found)
        eval_idx.extend([e] * len(found))
    return Estimates(times=times, price=price, eval_idx=np.asarray(eval_idx, dtype=np.int64),
                     low=np.asarray([r[1] for r in rows]), high=np.asarray([r[2] for r in rows]),
                     notional=np.asarray([r[3] for r in rows]),
                     is_short=np.asarray([r[0] == "short" for r in rows], dtype=bool),
                     proxy=proxy)


def minute_baseline(n: int, opts: BacktestOptions) -> dict[str, Any]:
    c = minute(n)
    times = grid(c, opts)
    t0 = time.perf_counter()
    new = walk(c, times, opts.params, opts.rule, opts.top)
    walk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    old = walk_live_levels(c, times, opts)
    old_s = time.perf_counter() - t0
    exact = ("times", "price", "eval_idx", "low", "high", "is_short", "proxy")
    same_clusters = all(np.array_equal(getattr(new, f), getattr(old, f)) for f in exact)
    rel = (float(np.max(np.abs(new.notional - old.notional) / old.notional))
           if same_clusters and len(old) else None)
    return {"candles": n, "evaluations": len(times), "walk_s": round(walk_s, 2),
            "live_levels_walk_s": round(old_s, 2), "speedup": round(old_s / walk_s, 1),
            "same_clusters": same_clusters, "max_rel_notional_diff": rel}


def minute_child(n: int, opts: BacktestOptions) -> dict[str, Any]:
    """One 1m backtest in this (fresh) process: seconds and peak RSS."""
    c = minute(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = run_backtest(c, opts)
    secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evaluations = len(grid(c, opts))
    tracemalloc.start()
    run_backtest(c, opts)
    traced_peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return {"rows": n, "evaluations": evaluations, "backtest_s": round(secs, 2),
            "cpu_s": round(cpu, 2), "walk_s": report["walk_s"],
            "cpu_ms_per_evaluation": round(cpu / evaluations * 1000, 3),
            "price_range_buckets": range_buckets(c, opts.params),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "traced_peak_mb": round(traced_peak, 1)}


def range_buckets(c: Candles, params: ModelParams) -> int:
    """Price buckets between the series' lowest low and highest high: how wide a book can get
    (its dense leverage × bucket arrays, read at every evaluation, grow with it)."""
    return int(params.grid.index(float(c.high.max())) - params.grid.index(float(c.low.min()))) + 1


def minute_growth(sizes: list[int], opts: BacktestOptions, half_life: float) -> dict[str, Any]:
    runs = []
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-minute", str(n),
               "--half-life", str(half_life)]
        runs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                              text=True).stdout))
    secs = [r["backtest_s"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    evals = [r["evaluations"] for r in runs]
    grown = [r["peak_rss_mb"] - r["rss_before_mb"] for r in runs]
    return {"runs": runs, "time_exponent": exponent(sizes, secs),
            "cpu_exponent": exponent(sizes, cpu),
            "evaluations_exponent": exponent(sizes, evals),
            "cpu_vs_evaluations_exponent": exponent(evals, cpu),
            "memory_exponent": exponent(sizes, grown),
            "traced_memory_exponent": exponent(sizes, [r["traced_peak_mb"] for r in runs]),
            "largest_s": secs[-1], "largest_peak_rss_mb": runs[-1]["peak_rss_mb"]}


def grid(c: Candles, opts: BacktestOptions) -> np.ndarray:
    """The evaluation times run_backtest uses for ``opts``."""
    step = candle_step_ms(c)
    after = to_candles(parse_duration(opts.horizon), step) + to_candles(
        parse_duration(opts.reaction), step)
    return evaluation_times(len(c), to_candles(parse_duration(opts.warmup), step), opts.every,
                            after)


def same(a: Estimates, b: Estimates) -> bool:
    """The same evaluations and clusters (bounds, sides) exactly; notionals to rounding (the
    running total sums in another order) — see ``max_rel_notional_diff``."""
    return (all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS if f != "notional")
            and bool(np.allclose(a.notional, b.notional, rtol=1e-9, atol=0)))


def rel_diff(a: Estimates, b: Estimates) -> float | None:
    if len(a) != len(b) or not len(b):
        return None
    return float(np.max(np.abs(a.notional - b.notional) / np.abs(b.notional)))


def compare(c: Candles, opts: BacktestOptions, baseline: bool) -> dict[str, Any]:
    times = grid(c, opts)
    t0 = time.perf_counter()
    new = walk(c, times, opts.params, opts.rule, opts.top)
    walk_s = time.perf_counter() - t0
    out: dict[str, Any] = {"candles": len(c), "evaluations": len(times),
                           "walk_s": round(walk_s, 3)}
    if baseline:
        t0 = time.perf_counter()
        old = walk_rebuilding(c, times, opts.params, opts.rule, opts.top,
                              build=previous.build_book, clusters=previous.find_clusters)
        prev_s = time.perf_counter() - t0
        out |= {"previous_walk_s": round(prev_s, 2), "speedup": round(prev_s / walk_s, 1),
                "same_to_rounding": same(new, old), "max_rel_notional_diff": rel_diff(new, old)}
    t0 = time.perf_counter()
    run_backtest(c, opts)
    out["backtest_s"] = round(time.perf_counter() - t0, 3)
    return out


def exponent(sizes: list[int], values: list[float]) -> float:
    slope = np.polyfit(np.log(sizes), np.log(values), 1)[0]
    return round(float(slope), 2)


def growth(sizes: list[int], opts: BacktestOptions) -> dict[str, Any]:
    secs, cpus, mbs, evals, ranges = [], [], [], [], []
    for n in sizes:
        c = hourly(n)
        times = grid(c, opts)
        t0, cpu0 = time.perf_counter(), time.process_time()
        walk(c, times, opts.params, opts.rule, opts.top)
        secs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - cpu0)
        evals.append(len(times))
        ranges.append(range_buckets(c, opts.params))
        tracemalloc.start()
        walk(c, times, opts.params, opts.rule, opts.top)
        mbs.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
    return {"rows": sizes, "evaluations": evals, "walk_s": [round(s, 2) for s in secs],
            "walk_cpu_s": [round(s, 2) for s in cpus],
            "cpu_ms_per_evaluation": [round(s / e * 1000, 3)
                                      for s, e in zip(cpus, evals, strict=True)],
            "price_range_buckets": ranges,
            "peak_mb": [round(m, 1) for m in mbs],
            "time_exponent": exponent(sizes, secs), "cpu_exponent": exponent(sizes, cpus),
            "cpu_vs_evaluations_exponent": exponent(evals, cpus),
            "memory_exponent": exponent(sizes, mbs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--larger", type=int, default=42_000, help="rows of the generated file")
    ap.add_argument("--growth", type=int, nargs=3, default=[40_000, 80_000, 160_000])
    ap.add_argument("--half-life", type=float, default=168.0,
                    help="model half-life in hours (the CLI default)")
    ap.add_argument("--skip-larger-baseline", action="store_true",
                    help="do not time the previous walk on the larger file (minutes)")
    ap.add_argument("--minute", type=int, nargs=3, default=[250_000, 500_000, 1_000_000],
                    help="rows of the generated 1m series (each backtest in a fresh process)")
    ap.add_argument("--minute-baseline", type=int, default=100_000,
                    help="1m rows for the walk before the running total (same run)")
    ap.add_argument("--no-minute", action="store_true", help="skip the 1m cases")
    ap.add_argument("--only-minute", action="store_true", help="only the 1m cases")
    ap.add_argument("--child-minute", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    keep_freed_heap()  # as liqbot runs (bot/heap.py); children too
    opts = BacktestOptions(params=ModelParams(half_life_hours=args.half_life),
                           rule=ClusterRule())
    if args.child_minute:
        print(json.dumps(minute_child(args.child_minute, opts)))
        return
    result: dict[str, Any] = {"half_life_hours": args.half_life}
    if not args.no_minute:
        result["minute_baseline"] = minute_baseline(args.minute_baseline, opts)
        result["minute"] = minute_growth(args.minute, opts, args.half_life)
    if args.only_minute:
        print(json.dumps(result) if args.json else result)
        return
    result |= {
        "bundled": compare(load_csv(BUNDLED), opts, baseline=True),
        "larger": compare(hourly(args.larger), opts, baseline=not args.skip_larger_baseline),
        "growth": growth(args.growth, opts),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>16}: {v}")


if __name__ == "__main__":
    main()
