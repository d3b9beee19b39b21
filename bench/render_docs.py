"""Render docs/heatmap.png and docs/map.png from the bundled Coinbase BTC-USD hourly candles.

Stand-in for `liqbot chart BTC --kind heatmap|map --out FILE` until the CLI exists.

    python bench/render_docs.py                 # both charts into docs/
    python bench/render_docs.py --kind map --window 7d --out /tmp/map.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.charts import render_heatmap, render_map
from bot.market.replay import load_csv
from estimator import Candles, ClusterRule, build_book, build_heatmap, find_clusters

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bot" / "data" / "btcusd_coinbase_1h.csv"
WINDOW_CANDLES = {"12h": 12, "24h": 24, "3d": 72, "7d": 168, "30d": 720}  # hourly candles
# The default rule finds no cluster on this proxy book (min_share 1 % of a side spread over
# ~2,800 buckets); a lower share gives the demo something to label.
DEMO_RULE = ClusterRule(min_share=0.002)
LABELS = {"symbol": "BTC/USD", "exchange": "Coinbase (replay)", "timeframe": "1h"}


def demo_candles() -> Candles:
    """The bundled candles (hourly, 2017-07 → 2019-10, no OI → volume proxy)."""
    return load_csv(DATA)


def heatmap_png(candles: Candles, window: str, size: tuple[int, int] = (1600, 1000)) -> bytes:
    """The heatmap PNG over ``window`` ending at the last bundled candle."""
    book = build_book(candles)
    clusters = find_clusters(book, DEMO_RULE)
    start = max(len(candles) - WINDOW_CANDLES[window], 0)
    hm = build_heatmap(candles, columns=240, start=start)
    return render_heatmap(candles, hm, clusters, window_label=window, size=size, **LABELS)


def map_png(candles: Candles, size: tuple[int, int] = (1600, 1000)) -> bytes:
    """The liquidation-map PNG at the last bundled candle."""
    book = build_book(candles)
    return render_map(book, find_clusters(book, DEMO_RULE), size=size, **LABELS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("heatmap", "map", "both"), default="both")
    ap.add_argument("--window", choices=tuple(WINDOW_CANDLES), default="30d")
    ap.add_argument("--out", type=Path, help="output file (only with --kind heatmap|map)")
    args = ap.parse_args(argv)
    if args.out is not None and args.kind == "both":
        ap.error("--out needs --kind heatmap or --kind map")
    candles = demo_candles()
    jobs = {"heatmap": lambda: heatmap_png(candles, args.window), "map": lambda: map_png(candles)}
    kinds = ("heatmap", "map") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        out = args.out or ROOT / "docs" / f"{kind}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(jobs[kind]())
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
