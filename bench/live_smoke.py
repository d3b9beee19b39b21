"""Live smoke test of the market data path: real exchanges through ccxt (needs internet).

    python bench/live_smoke.py [--symbol BTC] [--exchanges binanceusdm,bybit,okx]
                               [--timeframe 5m] [--days 2] [--cache smoke.db] [--json]
    python bench/live_smoke.py --fake     # offline: the same path against tests/bot/fake_binance

Normalises the symbol, fetches candles + OI (+ taker-buy volume), prints coverage notes, the
staleness flag, the last price/range, timings, and the estimator's biggest clusters. Run it
twice with --cache to see a restart fetch only what is new. Not part of CI (no network there).
Exit code 1 with a one-line reason on a market-data error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.errors import MarketDataError  # noqa: E402
from bot.market.cache import MarketCache  # noqa: E402
from bot.market.ccxt_source import CcxtSource, binance_factory  # noqa: E402
from estimator import build_book, find_clusters, top  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        kwargs: dict[str, Any] = {}
        if args.fake:
            from tests.bot.fake_binance import FakeBinance

            fake = await stack.enter_async_context(FakeBinance())
            kwargs = {"exchange_factory": binance_factory(fake.url, 2_000),
                      "clock": lambda: fake.now_ms}
        cache = MarketCache(args.cache) if args.cache else None
        src = CcxtSource(args.exchanges.split(","), args.timeframe, args.days, cache, **kwargs)
        stack.push_async_callback(src.close)
        t0 = time.perf_counter()
        symbol = await src.normalise(args.symbol)
        t1 = time.perf_counter()
        snap = await src.fetch(symbol)
        t2 = time.perf_counter()
        tick = await src.last_price(symbol)
        t3 = time.perf_counter()
        book = build_book(snap.candles, None)
        t4 = time.perf_counter()
        c = snap.candles
        return {
            "symbol": symbol, "candles": len(c), "first_ms": int(c.timestamp[0]),
            "last_ms": int(c.timestamp[-1]), "stale": snap.stale, "proxy": snap.proxy,
            "oi_sources": list(snap.oi_sources), "oi_notes": snap.oi_notes,
            "taker_source": snap.taker_source, "tiers_source": snap.tiers_source,
            "warnings": list(snap.warnings),
            "last_price": tick.price, "tick_high": tick.high, "tick_low": tick.low,
            "load_markets_s": round(t1 - t0, 3), "fetch_s": round(t2 - t1, 3),
            "last_price_s": round(t3 - t2, 3), "build_book_s": round(t4 - t3, 3),
            "cache_rows": cache.counts() if cache else None,
            "top_clusters": [
                {"side": k.side, "price": round(k.price, 1), "usd": round(k.notional_usd),
                 "distance_pct": round(k.distance_pct, 2)}
                for k in top(find_clusters(book), 3)],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbol", default="BTC")
    ap.add_argument("--exchanges", default="binanceusdm")
    ap.add_argument("--timeframe", default="5m")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--cache", default=None, help="SQLite file for the candle/OI cache")
    ap.add_argument("--fake", action="store_true", help="use the loopback fake (offline)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        out = asyncio.run(run(args))
    except MarketDataError as exc:
        print(f"market data error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for key, value in out.items():
            print(f"{key:>15}: {value}")


if __name__ == "__main__":
    main()
