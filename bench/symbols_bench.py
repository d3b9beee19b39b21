"""200 tracked symbols within Binance's weight limit: the real Service (scheduler, recompute
spreading, tracking from subscriptions), CcxtSource with its weight budget and cache, against
three loopback Binance fakes (binanceusdm with Binance's weight limits and 418 bans, and two
more standing in for bybit and okx open interest, paged by their limits).

    python bench/symbols_bench.py [--json] [--symbols 200] [--scale 10] [--days 7] [--cycles 2]

Time is compressed ``--scale`` times (a full 300 s cycle of 200 symbols is too long to bench
here): the recompute interval (300 s), the price interval (15 s), the weight window (60 s), ccxt's
rateLimit (50 ms) and the ban length are divided by it, and the fakes' clock runs that much
faster, so the requests per window and the candles per cycle are those of real time. CPU work
(estimates, HTTP) is not compressed, so the bench is harder than real time. Figures in real
seconds are wall seconds × scale. Baselines in the same run: the recompute interval and the
weight limit (goal ≤ 70 % used, ``weight_ratio``). The goal "every symbol recomputed within the
interval" is about the steady state: ``cycle_ratio`` = the longest time between two consecutive
scheduled recomputes of a symbol (both after the start-up) / the interval, ≈ 1 = on schedule
plus fetch jitter; every symbol needs two such recomputes in the measured ``--cycles`` (≥ 2).
The start-up is reported apart: ``first_recompute_wait_real_s`` (end of the start-up → a
symbol's first scheduled recompute: its phase, < the interval) and ``cold_to_steady_max_real_s``
(a symbol's start-up recompute → its first scheduled one: the start-up's length plus the phase
minus when in the start-up it was computed; under compression the start-up's CPU is not
compressed, so this one is longer than in real time). Cold start is the bot's start-up (every
symbol fetched and estimated once): wall seconds here; in real time ccxt paces Binance at 20
weight/s, so the estimate is the larger of the wall time and the cold start's total weight / 20.
``ondemand_p95_s``: /levels for untracked symbols, asked during the steady cycles (wall
seconds: network and CPU are not compressed). RSS includes the fakes (same process).
``--days``: candles per estimate (7 days of 5m; the default config has 30, four times the CPU,
too slow for this shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import resource
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.charts import ChartCache  # noqa: E402
from bot.commands.core import CommandCore  # noqa: E402
from bot.commands.reply import Caller  # noqa: E402
from bot.config import (  # noqa: E402
    Config,
    ConsoleSection,
    LimitsSection,
    ScheduleSection,
    SourceSection,
)
from bot.console import ConsoleNotifier  # noqa: E402
from bot.market.cache import MarketCache  # noqa: E402
from bot.market.ccxt_source import CcxtSource, binance_factory  # noqa: E402
from bot.market.weight import WEIGHT_LIMITS  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.bot.fake_binance import FakeBinance  # noqa: E402

LIMIT = WEIGHT_LIMITS["binanceusdm"]
REAL_RECOMPUTE_S, REAL_PRICE_S, REAL_WINDOW_S, REAL_RATE_MS, REAL_BAN_S = 300, 15, 60, 50, 120


class TimedService(Service):
    """Records when each recompute finished (wall clock); nothing else changes."""

    done: defaultdict[str, list[float]]

    async def recompute(self, symbol: str) -> None:
        await super().recompute(symbol)
        self.done[symbol].append(time.monotonic())


def _names(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:03d}USDT" for i in range(n)]


async def run(n: int, scale: float, days: float, cycles: int, asks: int) -> dict[str, object]:
    tracked = _names(n - 1, "T")
    untracked = _names(asks, "U")
    fakes = [FakeBinance(), FakeBinance(), FakeBinance()]
    async with fakes[0] as main, fakes[1], fakes[2]:
        for f in fakes:
            f.add_perpetuals(tracked + untracked)
        main.weight_limit = LIMIT
        main.weight_window_s = REAL_WINDOW_S / scale
        main.ban_s = REAL_BAN_S / scale
        base_ms, t0 = main.now_ms, time.monotonic()

        async def tick_clock() -> None:
            while True:
                for f in fakes:
                    f.now_ms = base_ms + int((time.monotonic() - t0) * scale * 1000)
                await asyncio.sleep(0.05)

        clock_task = asyncio.create_task(tick_clock())
        make = {name: binance_factory(f.url, timeout_ms=30_000, rateLimit=REAL_RATE_MS / scale)
                for name, f in zip(("binanceusdm", "bybit", "okx"), fakes, strict=True)}
        source = CcxtSource(("binanceusdm", "bybit", "okx"), lookback_days=days,
                            cache=MarketCache(":memory:"),
                            exchange_factory=lambda name: make[name]("binanceusdm"),
                            clock=lambda: main.now_ms, weight_window_s=REAL_WINDOW_S / scale)
        cfg = replace(
            Config(), bot=replace(Config().bot, symbols=("BTC/USDT:USDT",)),
            source=SourceSection(kind="live", lookback_days=days,
                                 exchanges=("binanceusdm", "bybit", "okx")),
            schedule=ScheduleSection(recompute_seconds=REAL_RECOMPUTE_S / scale,
                                     price_seconds=REAL_PRICE_S / scale),
            limits=LimitsSection(tracked_symbols=n, on_demand_symbols=50),
            console=ConsoleSection(enabled=False))
        store = Store(memory=True)
        for name in tracked:  # one chat each (a chat holds at most 20 subscriptions)
            chat = store.upsert_chat("console", f"bench-{name}").id
            store.subscribe(chat, f"{name[:-4]}/USDT:USDT", min_usd=1e12, approach_pct=0.1)
        service = TimedService(cfg, source, store, {"console": ConsoleNotifier(io.StringIO())},
                               clock_ms=lambda: main.now_ms)
        service.done = defaultdict(list)
        core = CommandCore(cfg, service.board, source, store, ChartCache(),
                           ondemand=service.ondemand)
        started = time.monotonic()
        await service.start()
        cold_wall = time.monotonic() - started
        print(f"cold start: {cold_wall:.1f} s wall", file=sys.stderr)
        assert len(service.board.symbols) == n, service.board.symbols
        cold_peak, cold_weight = main.peak_weight, main.total_weight
        main.peak_weight = 0
        steady_from = time.monotonic()
        interval = REAL_RECOMPUTE_S / scale
        latencies, errors = [], 0
        user = Caller("console", "bench-asker", "u1")
        for name in untracked:  # spread over the steady cycles
            await asyncio.sleep(interval * cycles / max(asks, 1))
            t = time.monotonic()
            reply = await core.handle(f"/levels {name[:-4]}", user)
            latencies.append(time.monotonic() - t)
            errors += reply is None or reply.error
        print(f"on-demand asks done at {time.monotonic() - steady_from:.1f} s", file=sys.stderr)
        # A little past the last cycle: the last phase's second recompute must finish inside.
        remaining = steady_from + interval * (cycles + 0.1) - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        end = time.monotonic()
        await service.stop()
        clock_task.cancel()
        await source.close()
        # Steady state: the longest time between two consecutive scheduled recomputes of a
        # symbol (both after the start-up). The start-up apart: end of start-up → a symbol's
        # first scheduled recompute, and its start-up recompute → that first scheduled one.
        gaps, waits, cold_gaps, missed = [], [], [], 0
        for symbol in service.board.symbols:
            cold = [x for x in service.done[symbol] if x <= steady_from]
            steady = [x for x in service.done[symbol] if steady_from < x <= end]
            missed += len(steady) < 2
            gaps += [b - a for a, b in zip(steady, steady[1:], strict=False)]
            if steady:
                waits.append(steady[0] - steady_from)
                if cold:
                    cold_gaps.append(steady[0] - cold[-1])
        worst = max(gaps) if gaps else float("inf")
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0
        failing = sum(1 for s in service.board.symbols if service.board.status(s).last_error)
        store.close()
        budget = source.budgets["binanceusdm"]
        return {
            "symbols_tracked": n, "scale": scale, "candle_days": days, "timeframe": "5m",
            "oi_exchanges": 3,
            "cold_start_wall_s": round(cold_wall, 1),
            # In real time ccxt paces Binance at 20 weight/s (rateLimit 50 ms per unit).
            "cold_start_real_est_s": round(max(cold_wall, cold_weight * REAL_RATE_MS / 1000), 1),
            "cold_weight_total": cold_weight,
            "cold_peak_weight": cold_peak,
            "steady_cycle_max_real_s": round(worst * scale, 1),
            "recompute_interval_s": REAL_RECOMPUTE_S,
            "cycle_ratio": round(worst / interval, 3),
            "steady_gaps_measured": len(gaps),
            "symbols_without_two_steady_recomputes": missed,
            "first_recompute_wait_real_s": round(max(waits, default=0.0) * scale, 1),
            "cold_to_steady_max_real_s": round(max(cold_gaps, default=0.0) * scale, 1),
            "steady_peak_weight_per_min": main.peak_weight,
            "weight_limit_per_min": LIMIT,
            "weight_ratio": round(max(main.peak_weight, cold_peak) / LIMIT, 3),
            "headroom_pct": round(100 * (1 - max(main.peak_weight, cold_peak) / LIMIT), 1),
            "http_429": main.limited, "http_418": main.bans,
            "budget_waits": budget.waits,
            "failing_symbols": failing,
            "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "ondemand_asks": len(latencies), "ondemand_errors": int(errors),
            "ondemand_p95_s": round(p95, 2),
            "ondemand_max_s": round(latencies[-1], 2) if latencies else 0,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--asks", type=int, default=20)
    args = ap.parse_args()
    if args.cycles < 2:
        ap.error("--cycles must be at least 2: the steady cycle is the time between two "
                 "scheduled recomputes of a symbol")
    logging.basicConfig(level=logging.ERROR)
    out = asyncio.run(run(args.symbols, args.scale, args.days, args.cycles, args.asks))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
