"""The /accuracy request on a year of hourly evaluations (8,760, 10 clusters each, with
liquidation capture): the stored-aggregates read (what /accuracy and `liqbot accuracy` do)
against re-scoring every evaluation from the stored clusters and price path (what a request
would cost without incremental scoring), in the same run, on the same store file. The baseline
re-scores the first 1,000 evaluations and is scaled to the 8,760 (its cost is linear in the
evaluations); the request is the best of 5 (the median is printed too).

Usage: python bench/accuracy_bench.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.audit import evaluations, scoreboard  # noqa: E402
from bot.config import AccuracySection  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.tape.events import Liquidation  # noqa: E402
from tests.synthetic import random_walk  # noqa: E402

SYMBOL = "BTC/USDT:USDT"
HOUR = 3_600_000
N_EVAL = 8_760


def build(path: Path) -> tuple[Store, evaluations.Settings]:
    """A store holding a year of hourly evaluations, scored incrementally as the bot does."""
    c = random_walk(N_EVAL + 40, start=60_000.0, step_ms=HOUR, vol=0.006, wick=0.003,
                    oi_usd=None, seed=11)
    store = Store(path, synchronous="NORMAL")
    acc = AccuracySection(every_minutes=60.0)
    s = evaluations.Settings.of(acc, HOUR)
    rng = np.random.default_rng(2)
    store.add_path(SYMBOL, zip(c.timestamp.tolist(), c.high.tolist(), c.low.tolist(),
                               c.close.tolist(), strict=True))
    liqs = []
    with store.db.atomic():
        for i in range(N_EVAL):
            p = float(c.close[i])
            rows = []
            for side, sign in (("long", -1), ("short", 1)):
                for k in range(5):
                    d = sign * (0.004 + 0.006 * k + 0.002 * rng.random())
                    rows.append((side == "short", p * (1 + d), p * (1 + d + 0.003), 1e7 / (k + 1)))
            store.add_evaluation(SYMBOL, int(c.timestamp[i]), int(c.timestamp[i]) + HOUR, HOUR,
                                 p, True, bool(i % 2), rows)
            for _ in range(3):
                t = int(c.timestamp[i]) + HOUR + int(rng.integers(0, HOUR))
                price = float(rng.uniform(c.low[i], c.high[i]))
                liqs.append(Liquidation("bench", t, SYMBOL, "long", price, 1.0, price))
    store.add_liquidations(liqs)
    now = int(c.timestamp[-1]) + HOUR
    evaluations.score_due(store, SYMBOL, s, now, tape_on=True)
    return store, s


SAMPLE = 1_000


def rescore(store: Store, s: evaluations.Settings) -> int:
    """The baseline: score the first SAMPLE stored evaluations again from clusters and path."""
    n = 0
    for row in store.db.query("SELECT * FROM evaluations WHERE symbol = ? ORDER BY t_ms"
                              " LIMIT ?", (SYMBOL, SAMPLE)):
        t = int(row["t_ms"])
        path = store.path(SYMBOL, t, limit=s.horizon + s.reaction + 1)
        liq = store.liquidations(SYMBOL, int(row["close_ms"]),
                                 int(row["close_ms"]) + int(row["valid_ms"]))
        evaluations.score_one(row, path, s, liq)
        n += 1
    return n


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store, s = build(Path(d) / "bench.db")
        acc = AccuracySection(every_minutes=60.0)
        recorded, scored = store.evaluation_count(SYMBOL)
        reads = timed(lambda: scoreboard.for_config(store, acc, SYMBOL, "all"), 5)
        read_s, median_s = min(reads), float(np.median(reads))
        rescore_s = timed(lambda: rescore(store, s), 1)[0] * recorded / SAMPLE
        board = scoreboard.for_config(store, acc, SYMBOL, "all")[True]
        store.close()
    out = {"evaluations": recorded, "scored": scored, "request_ms": round(read_s * 1000, 1),
           "request_median_ms": round(median_s * 1000, 1),
           "rescore_all_ms": round(rescore_s * 1000, 1), "rescore_sample": SAMPLE,
           "ratio": round(rescore_s / read_s, 1), "target_ms": 100,
           "met": read_s * 1000 <= 100, "lift": round(board["lift"], 3)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"/accuracy on {scored:,} scored hourly evaluations (a year): request "
              f"{out['request_ms']} ms best of 5, median {out['request_median_ms']} ms (target "
              f"≤ 100 ms: {'met' if out['met'] else 'NOT met'}) vs re-scoring every evaluation "
              f"{out['rescore_all_ms']:.0f} ms ({SAMPLE:,} timed, scaled): {out['ratio']}×")


if __name__ == "__main__":
    main()
