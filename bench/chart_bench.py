"""Chart render speed on the bundled data: cold (cache miss) vs cached, against a bare-figure floor.

    python bench/chart_bench.py [--json] [--repeat 9] [--window 30d]

For each chart kind (heatmap, map) at 1600 × 1000 px:
- ``first_ms``: the first render in this fresh process (includes matplotlib's one-off font
  loading and building this thread's kept figure for the kind and size, see
  ``bot/charts/skeleton.py``), reported apart from the later cold renders;
- ``cold_ms``: median of ``--repeat`` renders through ``ChartCache.get_or_render`` on new keys
  (every call is a miss and renders), each of a different estimate (repeat i uses the bundled
  candles minus the last ``repeat - 1 - i`` rows: other prices, limits, tick and title texts),
  on the kept figure and this thread's renderer with its text caches, as the bot's worker
  threads render after their first chart; ``cold_cpu_ms``: the same renders' median CPU time
  of this process (less moved by other processes on a shared machine than the wall time);
- ``new_figure_cpu_ms``: median CPU time of the same estimate drawn on a newly built figure
  (``reuse=False``; what a chart of a new size or in a new worker thread pays, font loading
  excepted);
- ``cached_ms``: median of the same call on a key already cached (a hit).
``import_ms`` is the one-off import of matplotlib, numpy and liqbot in this process.
Baseline in the same run: ``bare_png_ms`` / ``bare_png_cpu_ms``, an empty dark Figure of the
same size and dpi, drawn and encoded by the same ``style.new_figure`` / ``style.to_png`` (same
canvas, same PNG path) — the floor any matplotlib chart pays. The bare figure and the charts are
rendered in turn within each repeat (interleaved, so all see the same load); ``ratio`` divides
the medians, ``ratio_cpu`` the CPU-time medians, ``ratio_paired`` is the median over repeats of
(chart ÷ the bare figure rendered next to it); ``ratio_new_figure_cpu`` divides
``new_figure_cpu_ms`` by the bare figure's CPU time. ``loadavg`` is the 1-minute load average
before and after. Estimator time (build_book/build_heatmap) is listed separately and is not
part of the render times. Targets: cold ≤ 400 ms; issue 20: cold CPU ≤ 5× the bare figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

_T0 = time.perf_counter()

from bot.charts import (  # noqa: E402
    ChartCache,
    ChartKey,
    heatmap_figure,
    map_figure,
    render_heatmap,
    render_map,
)
from bot.charts.style import new_figure, to_png  # noqa: E402
from bot.config import Config, model_params  # noqa: E402
from bot.estimates import WINDOWS_H, window_heatmap  # noqa: E402
from bot.heap import keep_freed_heap  # noqa: E402
from bot.market.replay import BUNDLED_CSV, load_csv, replay_label  # noqa: E402
from estimator import build_book, find_clusters  # noqa: E402

IMPORT_MS = (time.perf_counter() - _T0) * 1000.0  # matplotlib + numpy + liqbot, this process
SIZE = (1600, 1000)
LABELS = {"symbol": "BTC/USDT:USDT", "exchange": replay_label(None), "timeframe": "1h"}
TARGET_MS = 400.0
GOAL_RATIO = 5.0  # issue 20: cold render ≤ 5× the bare figure (CPU time, medians)


def _ms(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w) * 1000.0, (time.process_time() - c) * 1000.0


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(_ms(fn) for _ in range(repeat))


def run(repeat: int, window: str) -> dict[str, Any]:
    candles = load_csv(BUNDLED_CSV)
    params = model_params(Config())  # the bot's defaults
    t = time.perf_counter()
    book = build_book(candles, params)
    clusters = find_clusters(book)
    book_ms = (time.perf_counter() - t) * 1000.0
    t = time.perf_counter()
    hm = window_heatmap(candles, params, window)
    heatmap_est_ms = (time.perf_counter() - t) * 1000.0
    renders: dict[str, Callable[[], bytes]] = {
        "heatmap": lambda: render_heatmap(candles, hm, clusters, window_label=window, size=SIZE,
                                          **LABELS),
        "map": lambda: render_map(book, clusters, size=SIZE, **LABELS),
    }
    # One estimate per repeat, built before any timing: the candles minus the last k rows.
    estimates = []
    for k in range(repeat - 1, -1, -1):
        c = candles.slice(0, len(candles) - k)
        b = build_book(c, params)
        estimates.append((c, b, find_clusters(b), window_heatmap(c, params, window)))

    def chart(kind: str, est: tuple[Any, ...], reuse: bool) -> bytes:
        c, b, cl, h = est
        if kind == "heatmap":
            return to_png(heatmap_figure(c, h, cl, window_label=window, size=SIZE, reuse=reuse,
                                         **LABELS))
        return to_png(map_figure(b, cl, size=SIZE, reuse=reuse, **LABELS))

    cache = ChartCache(maxsize=4)
    counter = iter(range(10**9))
    load_before = os.getloadavg()[0]
    bare_render: Callable[[], bytes] = lambda: to_png(new_figure(SIZE))  # noqa: E731
    first = {kind: _ms(render) for kind, render in renders.items()}
    bare_render()  # warm, like the charts' first render
    wall: dict[str, list[float]] = {k: [] for k in [*renders, "bare"]}
    cpu: dict[str, list[float]] = {k: [] for k in [*renders, "bare"]}
    new_cpu: dict[str, list[float]] = {k: [] for k in renders}
    for est in estimates:  # interleaved: the bare figure and each chart, in turn
        for kind in renders:
            w, c = _timed(lambda k=kind, e=est: cache.get_or_render(
                ChartKey("BTC", k, window, next(counter)), lambda: chart(k, e, True)))
            wall[kind].append(w)
            cpu[kind].append(c)
            new_cpu[kind].append(_timed(lambda k=kind, e=est: chart(k, e, False))[1])
        w, c = _timed(bare_render)
        wall["bare"].append(w)
        cpu["bare"].append(c)
    kinds: dict[str, dict[str, float]] = {}
    for kind, render in renders.items():
        key = ChartKey("BTC", kind, window, -1)
        png = cache.get_or_render(key, render)
        cached = _median_ms(lambda k=key, r=render: cache.get_or_render(k, r), repeat)
        kinds[kind] = {"first_ms": round(first[kind], 1),
                       "cold_ms": round(statistics.median(wall[kind]), 1),
                       "cold_cpu_ms": round(statistics.median(cpu[kind]), 1),
                       "new_figure_cpu_ms": round(statistics.median(new_cpu[kind]), 1),
                       "cached_ms": round(cached, 4), "png_bytes": len(png)}
    bare = statistics.median(wall["bare"])
    bare_cpu = statistics.median(cpu["bare"])
    colds = {k: v["cold_ms"] for k, v in kinds.items()}
    return {
        "data": "bot/data/btcusd_coinbase_1h.csv", "candles": len(candles),
        "size_px": list(SIZE), "window": window, "repeat": repeat, **kinds,
        "baseline": {"bare_png_ms": round(bare, 1), "bare_png_cpu_ms": round(bare_cpu, 1)},
        "import_ms": round(IMPORT_MS, 1),
        "ratio": {f"{k}_cold_vs_bare": round(v / bare, 2) for k, v in colds.items()},
        "ratio_cpu": {f"{k}_cold_vs_bare": round(v["cold_cpu_ms"] / bare_cpu, 2)
                      for k, v in kinds.items()},
        "ratio_new_figure_cpu": {f"{k}_new_figure_vs_bare": round(
            v["new_figure_cpu_ms"] / bare_cpu, 2) for k, v in kinds.items()},
        "ratio_paired": {f"{k}_cold_vs_bare": round(statistics.median(
            a / b for a, b in zip(wall[k], wall["bare"], strict=True)), 2) for k in kinds},
        "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "estimator_ms": {"build_book": round(book_ms, 1),
                         "build_heatmap": round(heatmap_est_ms, 1)},
        "cache": cache.stats(),
        "target_cold_ms": TARGET_MS,
        "meets_target": all(v <= TARGET_MS for v in colds.values()),
        "goal_ratio_cpu": GOAL_RATIO,
        "meets_goal": all(v["cold_cpu_ms"] / bare_cpu <= GOAL_RATIO for v in kinds.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--window", choices=tuple(WINDOWS_H), default="30d")
    args = ap.parse_args(argv)
    keep_freed_heap()  # as liqbot runs (bot/heap.py)
    result = run(max(args.repeat, 1), args.window)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for kind in ("heatmap", "map"):
        r = result[kind]
        print(f"{kind:8s} first {r['first_ms']:7.1f} ms  cold {r['cold_ms']:7.1f} ms  "
              f"cached {r['cached_ms']:.4f} ms")
    print(f"bare figure → PNG floor {result['baseline']['bare_png_ms']:.1f} ms; "
          f"ratios {result['ratio']} (CPU {result['ratio_cpu']}, paired "
          f"{result['ratio_paired']}; new figure CPU {result['ratio_new_figure_cpu']}); "
          f"load {result['loadavg']}; target cold ≤ {TARGET_MS:.0f} ms: "
          f"{'met' if result['meets_target'] else 'NOT met'}; goal CPU ≤ {GOAL_RATIO:g}× bare: "
          f"{'met' if result['meets_goal'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
