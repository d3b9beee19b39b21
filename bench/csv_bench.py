"""CSV loading speed and memory: ``load_csv`` against the loader before issue 20's CSV work
(bench/csv_baseline.py), same files, same run; and ``liqbot levels`` on the big file.

    python bench/csv_bench.py [--json] [--rows 3500000] [--small-rows 350000] [--repeat 3]
                              [--big-repeat 2] [--baseline-big] [--no-levels]
                              [--dir /tmp/liqbot-csv-bench]

Files: generated 1m candles with open interest and taker-buy volume (seeded random walk,
8 columns, prices with 2 decimals), written once to --dir. Every load runs in a fresh
subprocess: seconds (wall; cpu_seconds: this process's CPU time, steadier on a busy
machine), peak RSS (ru_maxrss), the RSS before the load, and the bytes of the
final arrays; ``peak_over_arrays`` = (peak RSS - RSS before) / final arrays.
- small (--small-rows): the new loader and the baseline, alternately --repeat times, best of
  each; ``speedup`` = baseline s / new s.
- big (--rows, ≈ 260 MB at 3.5M rows): the new loader, best of --big-repeat (the baseline,
  once, with --baseline-big; it needs several GB); ``levels``: ``liqbot levels BTC --data
  FILE --json`` in a subprocess, seconds and peak RSS.
Both loaders' candles are compared bit for bit on the small file (``identical``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FIELDS = ("timestamp", "open", "high", "low", "close", "volume", "open_interest_usd",
          "taker_buy_volume")


def generate(path: Path, rows: int, seed: int = 20) -> None:
    """Seeded 1m candles from 2023-01-01, 8 columns, written in blocks (temp file, renamed)."""
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".part")
    price = 30_000.0
    oi = 5e9
    t0 = 1_672_531_200_000
    block = 250_000
    with tmp.open("w") as f:
        f.write(",".join(FIELDS) + "\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            close = price * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
            opn = np.concatenate(([price], close[:-1]))
            wick = np.abs(rng.normal(0, 0.0004, (2, n)))
            high = np.maximum(opn, close) * (1 + wick[0])
            low = np.minimum(opn, close) * (1 - wick[1])
            vol = rng.gamma(2.0, 20.0, n)
            ois = oi * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
            taker = vol * rng.uniform(0.3, 0.7, n)
            ts = t0 + (start + np.arange(n)) * 60_000
            f.writelines(
                f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.4f},{i:.0f},{tb:.4f}\n"
                for t, o, h, lo, c, v, i, tb in zip(ts.tolist(), opn.tolist(), high.tolist(),
                                                    low.tolist(), close.tolist(), vol.tolist(),
                                                    ois.tolist(), taker.tolist(), strict=True))
            price, oi = float(close[-1]), float(ois[-1])
    tmp.rename(path)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(which: str, path: str, save: str | None) -> None:
    """One load in this fresh process; prints its figures as JSON."""
    if which == "new":
        from bot.market.replay import load_csv
    else:
        from csv_baseline import load_csv  # type: ignore[import-not-found]
    before = rss_mb()
    t = time.perf_counter()
    cpu = time.process_time()
    c = load_csv(path)
    seconds = time.perf_counter() - t
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    arrays = sum(getattr(c, f).nbytes for f in FIELDS if getattr(c, f) is not None) / 2**20
    if save:
        np.savez(save, **{f: getattr(c, f) for f in FIELDS if getattr(c, f) is not None})
    print(json.dumps({"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "rows": len(c),
                      "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                      "arrays_mb": round(arrays, 1),
                      "peak_over_arrays": round((peak - before) / arrays, 2)}))


def run_child(which: str, path: Path, save: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", which, str(path)]
    if save:
        cmd += ["--save", str(save)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's seconds."""
    out = dict(min(runs, key=lambda r: r["seconds"]))
    out["all_seconds"] = [r["seconds"] for r in runs]
    return out


_LEVELS = """import json, resource, sys
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "peak_rss_mb":
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def levels(path: Path) -> dict[str, Any]:
    """``liqbot levels BTC --data PATH --json`` in a fresh process (bot.cli.main, as the
    ``liqbot`` script runs it): wall seconds, its peak RSS, the zones printed."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LEVELS, "levels", "BTC", "--data", str(path),
                           "--json"], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    tail = json.loads(proc.stderr.strip().splitlines()[-1])
    return {"seconds": round(seconds, 2), "exit": tail["exit"],
            "peak_rss_mb": round(tail["peak_rss_mb"], 1),
            "zones": len(json.loads(proc.stdout)) if tail["exit"] == 0 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rows", type=int, default=3_500_000)
    ap.add_argument("--small-rows", type=int, default=350_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-repeat", type=int, default=2)
    ap.add_argument("--baseline-big", action="store_true")
    ap.add_argument("--no-levels", action="store_true")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/liqbot-csv-bench"))
    ap.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from bot.heap import keep_freed_heap
    keep_freed_heap()  # as liqbot runs (bot/heap.py); children too
    if args.child:
        child(args.child[0], args.child[1], args.save)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, rows in (("small", args.small_rows), ("big", args.rows)):
        files[name] = args.dir / f"btc_1m_{rows}.csv"
        if not files[name].exists():
            generate(files[name], rows)
    out: dict[str, Any] = {}
    a, b = args.dir / "new.npz", args.dir / "old.npz"
    runs: dict[str, list[dict[str, Any]]] = {"new": [], "old": []}
    for i in range(args.repeat):  # alternately: the machine's load moves both alike
        runs["new"].append(run_child("new", files["small"], a if i == 0 else None))
        runs["old"].append(run_child("old", files["small"], b if i == 0 else None))
    new, old = (best(runs[k]) for k in ("new", "old"))
    with np.load(a) as x, np.load(b) as y:
        same = all(np.array_equal(x[f], y[f]) and x[f].dtype == y[f].dtype for f in FIELDS)
    out["small"] = {"file_mb": round(files["small"].stat().st_size / 2**20, 1), "new": new,
                    "baseline": old, "speedup": round(old["seconds"] / new["seconds"], 1),
                    "cpu_speedup": round(old["cpu_seconds"] / new["cpu_seconds"], 1),
                    "identical": same}
    big: dict[str, Any] = {"file_mb": round(files["big"].stat().st_size / 2**20, 1),
                           "new": best([run_child("new", files["big"])
                                        for _ in range(args.big_repeat)])}
    if args.baseline_big:
        big["baseline"] = run_child("old", files["big"])
        big["speedup"] = round(big["baseline"]["seconds"] / big["new"]["seconds"], 1)
        big["cpu_speedup"] = round(big["baseline"]["cpu_seconds"] / big["new"]["cpu_seconds"],
                                   1)
    if not args.no_levels:
        big["levels"] = levels(files["big"])
    out["big"] = big
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for name, r in out.items():
        print(f"{name} ({r['file_mb']} MB, {r['new']['rows']:,} rows): new {r['new']['seconds']} s "
              f"(cpu {r['new']['cpu_seconds']} s),"
              f" peak RSS {r['new']['peak_rss_mb']} MB ({r['new']['peak_over_arrays']}x the "
              f"{r['new']['arrays_mb']} MB arrays over the RSS before)")
        if "baseline" in r:
            old = r["baseline"]
            same = f", identical: {r['identical']}" if "identical" in r else ""
            print(f"  baseline {old['seconds']} s (cpu {old['cpu_seconds']} s), peak RSS "
                  f"{old['peak_rss_mb']} MB ({old['peak_over_arrays']}x): {r['speedup']}x "
                  f"faster (cpu {r['cpu_speedup']}x){same}")
        if "levels" in r:
            lv = r["levels"]
            print(f"  liqbot levels: {lv['seconds']} s, peak RSS {lv['peak_rss_mb']} MB, "
                  f"exit {lv['exit']}")


if __name__ == "__main__":
    main()
