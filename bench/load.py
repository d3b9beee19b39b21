"""Load bench (issue 11, item 6): 10k subscribed chats and 100k price levels on 20 symbols
through one replayed day at full speed, on the real Store (a temp file, synchronous=FULL as in
production), the real Service (recompute → engine → outbox) and the real Dispatcher.

Market: the bundled hourly BTC candles, one copy per symbol — each taken from a different
stretch of history, re-stamped onto the same timeline and scaled to its own price (volume
scaled back, so proxy notionals stay comparable). One day = 24 hourly candles; every symbol is
recomputed and ticked once per candle, like ``liqbot run`` in replay with
``recompute_seconds = price_seconds``.

Delivery: the real dispatcher sends the day's outbox to a recording notifier, first for
``--rate-seconds`` on the dispatch schedule through a notifier keeping Telegram's global limit
(30 msg/s, token bucket), then at full speed for ``--drain-seconds`` (the dispatcher's own
capacity: claim, send, mark sent, each committed). Duplicates at the notifier are counted.

Baseline, measured first in the same process: the same day on the same 20 symbols with no chat
subscribed (recompute + engine + store, nothing to alert). Figures: peak RSS
(``getrusage``; target ≤ 300 MB), tick latency per symbol (median / p95, ms), recompute time,
alerts produced, delivery throughput, and the ratios loaded / baseline.

    python bench/load.py [--json] [--chats 10000] [--levels 100000] [--symbols 20] [--hours 24]

Memory over a replayed week (``--week``): fewer chats and levels, 168 hourly ticks, every
alert delivered through the real ``ConsoleNotifier`` (to /dev/null) each hour, and users
replacing ``--churn`` levels every hour (deleted, new ones added: level ids keep growing, as
in production). RSS and the engine state's size are printed at the start (after the first
day, which holds the warm-up allocations), the middle and the end of the week, with the ratios
end / start: flat memory means both stay near 1.

    python bench/load.py --week [--json] [--chats 2000] [--levels 20000] [--symbols 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bot.alerts import SymbolWatch  # noqa: E402
from bot.charts import ChartCache  # noqa: E402
from bot.commands.core import CommandCore  # noqa: E402
from bot.commands.reply import Caller  # noqa: E402
from bot.config import Config, parse_config  # noqa: E402
from bot.console import ConsoleNotifier  # noqa: E402
from bot.dispatcher import Alert  # noqa: E402
from bot.errors import BadSymbolError  # noqa: E402
from bot.heap import keep_freed_heap  # noqa: E402
from bot.market.base import MarketSnapshot, PriceTick  # noqa: E402
from bot.market.replay import BUNDLED_CSV, ReplaySource, load_csv  # noqa: E402
from bot.market.symbols import normalise  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Chat, Store  # noqa: E402
from estimator import Candles  # noqa: E402

TARGET_RSS_MB = 300.0
TELEGRAM_GLOBAL_PER_S = 30.0
BASES = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT", "TRX", "LTC",
         "BCH", "NEAR", "ATOM", "APT", "ARB", "OP", "SUI", "FIL", "INJ", "TIA", "SEI", "WLD")
CONFIG = """
[bot]
symbols = [{symbols}]
[source]
# "live" only to pass the config checks (a replay source plays one file, one symbol): the
# bench hands the service its own lock-step replay of every symbol (MultiReplay).
kind = "live"
lookback_days = 30
[schedule]
recompute_seconds = 15
price_seconds = 15
[alerts]
min_usd = 300_000
cooldown_minutes = 60
"""


def rss_mb() -> float:
    """Current resident set size (MB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; ru_maxrss is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MultiReplay:
    """One ReplaySource per symbol advanced in lock step (the service's MarketSource)."""

    def __init__(self, sources: dict[str, ReplaySource]) -> None:
        self.sources = sources

    def advance(self) -> bool:
        return all([s.advance() for s in self.sources.values()])

    def _get(self, symbol: str) -> ReplaySource:
        try:
            return self.sources[symbol]
        except KeyError:
            raise BadSymbolError(f"{symbol} is not in this bench") from None

    async def normalise(self, user_text: str) -> str:
        symbol = normalise(user_text)
        self._get(symbol)
        return symbol

    async def fetch(self, symbol: str) -> MarketSnapshot:
        return await self._get(symbol).fetch(symbol)

    async def last_price(self, symbol: str, since_ms: int | None = None) -> PriceTick:
        return await self._get(symbol).last_price(symbol, since_ms)

    async def close(self) -> None:
        """Nothing to release."""


def symbol_candles(base: Candles, i: int, rows: int) -> tuple[Candles, float]:
    """Symbol ``i``: ``rows`` candles of the bundled file starting ``i`` × 600 rows earlier,
    on the timeline of the last ``rows``; prices × a per-symbol factor, volume ÷ it."""
    n = len(base.timestamp)
    end = n - i * 600
    s = slice(end - rows, end)
    factor = 10 ** ((i * 0.37) % 4 - 2)  # 0.01 … 100
    ts = base.timestamp[n - rows:]
    oi = None if base.open_interest_usd is None else base.open_interest_usd[s]
    return Candles(ts, base.open[s] * factor, base.high[s] * factor, base.low[s] * factor,
                   base.close[s] * factor, base.volume[s] / factor, oi, None), factor


def make_source(symbols: list[str], hours: int, lookback_days: float) -> MultiReplay:
    base = load_csv(BUNDLED_CSV)
    window = int(lookback_days * 24)
    rows = window + hours
    sources = {}
    for i, sym in enumerate(symbols):
        candles, _ = symbol_candles(base, i, rows)
        sources[sym] = ReplaySource(candles, symbol=sym, warmup=window, window=window)
    return MultiReplay(sources)


class RecordingNotifier:
    """The platform: counts deliveries; optionally keeps a global rate (token bucket)."""

    def __init__(self, per_s: float | None = None) -> None:
        self.per_s = per_s
        self.sent = 0
        self.keys: set[str] = set()
        self.duplicates = 0
        self._tokens = 1.0
        self._last = time.monotonic()

    async def send(self, chat: Chat, alert: Alert) -> None:
        if self.per_s is not None:
            now = time.monotonic()
            self._tokens = min(1.0, self._tokens + (now - self._last) * self.per_s)
            self._last = now
            if self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self.per_s)
                self._tokens, self._last = 1.0, time.monotonic()
            self._tokens -= 1.0
        if alert.dedupe_key in self.keys:
            self.duplicates += 1
        self.keys.add(alert.dedupe_key)
        self.sent += 1


def populate(store: Store, symbols: list[str], chats: int, levels: int, prices: dict[str, float],
             rng: random.Random, batch: int | None = None) -> tuple[int, int]:
    """``chats`` console chats, each subscribed to 1–5 symbols; ``levels`` levels spread over
    the chats, within ±4 % of each symbol's starting price. Through the Store's own methods
    (caps and validation included), in one transaction; with ``batch``, in transactions of
    ``batch`` chats and of 10 × ``batch`` levels instead (the same calls and random draws, so
    the same rows): in one transaction of 140k changes PostgreSQL slows down quadratically
    (every change bumps the one ``meta.watch_version`` row, and each update walks that row's
    versions made earlier in the transaction; 4,000 levels: 3.9 s in one transaction vs 2.3 s
    in transactions of 100; the 140k-change populate ran > 20 min before it was stopped)."""
    whole = store.db.atomic() if batch is None else nullcontext()
    part = nullcontext if batch is None else store.db.atomic
    chat_step = batch or max(chats, 1)
    level_step = 10 * batch if batch else max(levels, 1)
    subs = 0
    ids: list[int] = []
    with whole:
        for start in range(0, chats, chat_step):
            with part():
                for c in range(start, min(chats, start + chat_step)):
                    chat = store.upsert_chat("console", f"chat{c}", now=0)
                    ids.append(chat.id)
                    for sym in rng.sample(symbols, rng.randint(1, min(5, len(symbols)))):
                        store.subscribe(chat.id, sym,
                                        min_usd=rng.choice([3e5, 5e5, 1e6, 2e6, 5e6]),
                                        approach_pct=rng.choice([0.25, 0.5, 0.5, 1.0, 2.0]),
                                        now=0)
                        subs += 1
        for start in range(0, levels, level_step):
            with part():
                for k in range(start, min(levels, start + level_step)):
                    sym = symbols[k % len(symbols)]
                    store.add_level(ids[k % len(ids)], sym,
                                    prices[sym] * (1 + rng.uniform(-4, 4) / 100),
                                    rng.choice(("up", "down", "any")), now=0)
    return subs, levels


@dataclass
class DayResult:
    tick_ms: list[float] = field(default_factory=list)
    tick_events: list[int] = field(default_factory=list)
    recompute_ms: list[float] = field(default_factory=list)
    alerts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0


async def play_day(service: Service, source: MultiReplay, symbols: list[str],
                   hours: int) -> DayResult:
    """The day at full speed: each hour advance every symbol, recompute it, tick it."""
    out = DayResult()
    t_day = time.perf_counter()
    for sym in symbols:
        t = time.perf_counter()
        await service.recompute(sym)
        out.recompute_ms.append((time.perf_counter() - t) * 1000)
    for _ in range(hours):
        if not source.advance():
            break
        for sym in symbols:
            t = time.perf_counter()
            await service.recompute(sym)
            out.recompute_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            res = await service.price_tick(sym)
            out.tick_ms.append((time.perf_counter() - t) * 1000)
            out.tick_events.append(len(res.events))
            out.alerts += res.queued
            for e in res.events:
                out.by_kind[e.kind.value] = out.by_kind.get(e.kind.value, 0) + 1
    out.wall_s = time.perf_counter() - t_day
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summary(day: DayResult) -> dict[str, Any]:
    return {
        "symbol_ticks": len(day.tick_ms),
        "tick_ms_median": round(statistics.median(day.tick_ms), 2),
        "tick_ms_p95": round(pct(day.tick_ms, 95), 2),
        "tick_ms_max": round(max(day.tick_ms), 2),
        "worst_tick_events": day.tick_events[int(np.argmax(day.tick_ms))],
        "ticks_with_over_1000_events": sum(n > 1000 for n in day.tick_events),
        "tick_ms_median_without_events": round(statistics.median(
            [ms for ms, n in zip(day.tick_ms, day.tick_events, strict=True) if n == 0]
            or [float("nan")]), 2),
        "recompute_ms_median": round(statistics.median(day.recompute_ms), 2),
        "recompute_ms_p95": round(pct(day.recompute_ms, 95), 2),
        "alerts_queued": day.alerts,
        "events_by_kind": dict(sorted(day.by_kind.items())),
        "day_wall_s": round(day.wall_s, 2),
    }


async def run_phase(cfg: Config, symbols: list[str], hours: int, chats: int, levels: int,
                    seed: int, workdir: Path, rate_s: float = 0.0,
                    drain_s: float = 0.0) -> dict[str, Any]:
    source = make_source(symbols, hours, cfg.source.lookback_days)
    prices = {s: float(src.candles.close[src.position - 1]) for s, src in source.sources.items()}
    store = Store(workdir / f"load-{chats}.db")
    notifier = RecordingNotifier()
    service = Service(cfg, source, store, {"console": notifier})
    core = CommandCore(cfg, service.board, source, store, ChartCache())
    result: dict[str, Any] = {}
    t = time.perf_counter()
    subs, lv = populate(store, symbols, chats, levels, prices, random.Random(seed))
    result["setup"] = {"chats": chats, "subscriptions": subs, "levels": lv,
                       "populate_s": round(time.perf_counter() - t, 2)}
    day = await play_day(service, source, symbols, hours)
    result["day"] = summary(day)
    # What the first tick after any /subscribe, /level … pays: the service rebuilds every
    # symbol's watch from the store (the day's first tick paid it too).
    t = time.perf_counter()
    SymbolWatch.build_all(store.active_subscriptions(), store.active_levels())
    result["watch_rebuild_ms"] = round((time.perf_counter() - t) * 1000, 1)
    # One chart, as a user asking for one would cause (matplotlib's memory counts too).
    reply = await core.handle(f"/heatmap {symbols[0].split('/')[0]} 24h",
                              Caller("console", "chat0", "u0", is_admin=True))
    result["chart_png_bytes"] = len(reply.png) if reply is not None and reply.png else 0

    # Delivery, first through a notifier keeping Telegram's global limit (the real dispatcher,
    # every dispatch_seconds), then the rest at full speed (the dispatcher's own capacity:
    # claim, send, mark sent, each committed with synchronous=FULL).
    result["delivery_rate_limited"] = await deliver_rate_limited(service, notifier, rate_s)
    before = notifier.sent
    t = time.perf_counter()
    while (await service.dispatcher.run_once()).sent and time.perf_counter() - t < drain_s:
        pass
    took_s = time.perf_counter() - t
    n = notifier.sent - before
    result["delivery_full_speed"] = {
        "delivered": n, "seconds": round(took_s, 2), "left_pending": store.pending_count(),
        "per_s": round(n / took_s, 1) if n else None,
        "at_30_per_s_the_day_takes_h": round(day.alerts / TELEGRAM_GLOBAL_PER_S / 3600, 2),
    }
    result["duplicates_at_platform"] = notifier.duplicates
    result["outbox"] = store.outbox_counts()
    result["rss_mb_now"] = round(rss_mb(), 1)
    result["rss_mb_peak"] = round(peak_rss_mb(), 1)
    result["store_mb"] = round(sum(p.stat().st_size for p in workdir.glob(f"load-{chats}.db*"))
                               / 2**20, 1)
    store.close()
    return result


async def deliver_rate_limited(service: Service, notifier: RecordingNotifier,
                               seconds: float) -> dict[str, Any]:
    """Run the dispatcher on its schedule for ``seconds`` with the notifier keeping 30 msg/s."""
    if not seconds or not service.store.pending_count():
        return {"skipped": "nothing to deliver"}
    notifier.per_s = TELEGRAM_GLOBAL_PER_S
    before = notifier.sent
    interval = service.cfg.schedule.dispatch_seconds
    t = time.perf_counter()
    deadline = t + seconds
    while time.perf_counter() < deadline:
        await service.dispatcher.run_once()
        # Like the scheduler's interval job with max_instances=1: a fire that comes while the
        # previous pass is still sending is skipped; the next one is on the interval's grid.
        now = time.perf_counter()
        await asyncio.sleep(interval - (now - t) % interval)
    elapsed = time.perf_counter() - t
    notifier.per_s = None
    n = notifier.sent - before
    return {"limit_per_s": TELEGRAM_GLOBAL_PER_S, "seconds": round(elapsed, 2), "delivered": n,
            "per_s": round(n / elapsed, 1)}


async def run_week(cfg: Config, symbols: list[str], chats: int, levels: int, churn: int,
                   seed: int, workdir: Path) -> dict[str, Any]:
    """168 hourly ticks with hourly delivery through ConsoleNotifier and level churn; RSS,
    engine state size and the notifier's memory sampled every 24 h (start = hour 24, middle
    = hour 96, end = hour 168)."""
    hours = 168
    source = make_source(symbols, hours, cfg.source.lookback_days)
    prices = {s: float(src.candles.close[src.position - 1]) for s, src in source.sources.items()}
    # synchronous=NORMAL: this case measures memory; FULL's fsync per delivered alert only
    # makes the week slower.
    store = Store(workdir / "week.db", synchronous="NORMAL")
    with open(os.devnull, "w") as sink:
        notifier = ConsoleNotifier(sink)
        service = Service(cfg, source, store, {"console": notifier})
        rng = random.Random(seed)
        populate(store, symbols, chats, levels, prices, rng)
        chat_ids = [r[0] for r in store.db.execute("SELECT id FROM chats")]
        samples: dict[str, dict[str, float]] = {}
        alerts = delivered = 0
        t0 = time.perf_counter()
        for sym in symbols:
            await service.recompute(sym)
        for hour in range(1, hours + 1):
            if not source.advance():
                break
            for sym in symbols:
                await service.recompute(sym)
                alerts += (await service.price_tick(sym)).queued
            while (stats := await service.dispatcher.run_once()).sent:
                delivered += stats.sent
            # Users replace levels: the oldest ``churn`` go, as many new ones come near price.
            with store.db.atomic():
                old = store.db.execute("SELECT id, chat FROM levels ORDER BY id LIMIT ?",
                                       (churn,)).fetchall()
                for level_id, chat in old:
                    store.remove_level(chat, level_id)
                for k in range(len(old)):
                    sym = symbols[k % len(symbols)]
                    price = float(source.sources[sym].candles.close[
                        source.sources[sym].position - 1])
                    store.add_level(rng.choice(chat_ids), sym,
                                    price * (1 + rng.uniform(-2, 2) / 100),
                                    rng.choice(("up", "down", "any")), now=0)
            if hour % 24 == 0:
                gc.collect()
                samples[{24: "start", 96: "middle", 168: "end"}.get(hour, f"day {hour // 24}")] = {
                    "hour": hour, "rss_mb": round(rss_mb(), 1),
                    "engine_state_kb": round(sum(len(service._state(s).to_json())
                                                 for s in symbols) / 1024, 1),
                    "notifier_alerts_kept": len(notifier.sent),
                    "alerts_delivered": delivered}
        wall = time.perf_counter() - t0
    store.close()
    start, end = samples["start"], samples["end"]
    return {
        "bench": "load --week", "symbols": len(symbols), "chats": chats, "levels": levels,
        "levels_replaced_per_hour": churn, "hours": hours, "alerts_queued": alerts,
        "samples": samples,
        "ratios_end_over_start": {
            "rss": round(end["rss_mb"] / start["rss_mb"], 2),
            "engine_state": round(end["engine_state_kb"] / max(start["engine_state_kb"], 0.1),
                                  2)},
        "wall_s": round(wall, 1), "pid": os.getpid()}


def main_week(args: argparse.Namespace) -> int:
    symbols = [f"{b}/USDT:USDT" for b in BASES[:args.symbols]]
    cfg = parse_config(CONFIG.format(symbols=", ".join(f'"{s}"' for s in symbols)))
    with tempfile.TemporaryDirectory(prefix="liqbot-week-") as tmp:
        result = asyncio.run(run_week(cfg, symbols, args.chats, args.levels, args.churn,
                                      args.seed, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"load --week: {args.chats} chats, {args.levels} levels ({args.churn} replaced per "
          f"hour), {len(symbols)} symbols, 168 h in {result['wall_s']} s; "
          f"{result['alerts_queued']} alerts")
    for name, smp in result["samples"].items():
        print(f"  {name:6} (hour {smp['hour']:3}): RSS {smp['rss_mb']} MB, engine state "
              f"{smp['engine_state_kb']} KB, console notifier keeps {smp['notifier_alerts_kept']}"
              f" of {smp['alerts_delivered']} delivered alerts")
    r = result["ratios_end_over_start"]
    print(f"  end / start: RSS ×{r['rss']}, engine state ×{r['engine_state']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--chats", type=int, default=10_000)
    ap.add_argument("--levels", type=int, default=100_000)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--hours", type=int, default=24, help="replayed hours (1h candles)")
    ap.add_argument("--rate-seconds", type=float, default=10.0,
                    help="how long to deliver at Telegram's 30 msg/s (default 10)")
    ap.add_argument("--drain-seconds", type=float, default=20.0,
                    help="time box for the full-speed delivery (default 20)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--week", action="store_true",
                    help="memory over a replayed week instead (defaults: 2000 chats, 20000 "
                         "levels, 5 symbols)")
    ap.add_argument("--churn", type=int, default=1000,
                    help="--week: levels replaced every hour (default 1000)")
    args = ap.parse_args()
    keep_freed_heap()  # as liqbot runs (bot/heap.py): the RSS figures include what it keeps
    if args.week:
        given = set(sys.argv[1:])
        args.chats = args.chats if "--chats" in given else 2_000
        args.levels = args.levels if "--levels" in given else 20_000
        args.symbols = args.symbols if "--symbols" in given else 5
        return main_week(args)
    symbols = [f"{b}/USDT:USDT" for b in BASES[:args.symbols]]
    cfg = parse_config(CONFIG.format(symbols=", ".join(f'"{s}"' for s in symbols)))
    with tempfile.TemporaryDirectory(prefix="liqbot-load-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        baseline = asyncio.run(run_phase(cfg, symbols, args.hours, 0, 0, args.seed, work, 0))
        loaded = asyncio.run(run_phase(cfg, symbols, args.hours, args.chats, args.levels,
                                       args.seed, work, args.rate_seconds, args.drain_seconds))
        total_s = time.perf_counter() - t0
    b, ld = baseline["day"], loaded["day"]
    assert isinstance(b, dict) and isinstance(ld, dict)
    result = {
        "bench": "load", "symbols": len(symbols), "hours": args.hours, "pid": os.getpid(),
        "baseline": baseline, "loaded": loaded,
        "ratios": {
            "rss_peak": round(float(loaded["rss_mb_peak"]) / float(baseline["rss_mb_peak"]), 2),
            "tick_median": round(ld["tick_ms_median"] / b["tick_ms_median"], 1),
            "tick_p95": round(ld["tick_ms_p95"] / b["tick_ms_p95"], 1),
        },
        "target": {"rss_mb": TARGET_RSS_MB,
                   "rss_ok": float(loaded["rss_mb_peak"]) <= TARGET_RSS_MB},
        "total_s": round(total_s, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"load: {args.chats} chats, {args.levels} levels, {len(symbols)} symbols, "
              f"{args.hours} h at full speed in {ld['day_wall_s']} s")
        print(f"  peak RSS {loaded['rss_mb_peak']} MB (target ≤ {TARGET_RSS_MB:.0f}); "
              f"baseline {baseline['rss_mb_peak']} MB")
        print(f"  tick per symbol median {ld['tick_ms_median']} ms, p95 {ld['tick_ms_p95']} ms"
              f" (baseline {b['tick_ms_median']} / {b['tick_ms_p95']} ms)")
        print(f"  recompute median {ld['recompute_ms_median']} ms; alerts {ld['alerts_queued']} "
              f"{ld['events_by_kind']}")
        print(f"  delivery: {loaded['delivery_rate_limited']} rate-limited; "
              f"{loaded['delivery_full_speed']} full speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
