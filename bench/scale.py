"""Scale bench (issue 21): PostgreSQL store, several processes. Starts its own throwaway
PostgreSQL server (tests/pg_server.py: initdb + pg_ctl in a temp dir, loopback only).

    python bench/scale.py [--json] [--parts store,dispatch,market] [--quick]

Parts, each with its baseline measured in the same run:

- ``dispatch``: outbox throughput of 1 vs 4 dispatcher processes on one PostgreSQL database.
  Each process runs the real :class:`bot.dispatcher.Dispatcher` (claims through the store) with
  a notifier POSTing every alert to a loopback platform fake that has no rate limit and answers
  after ``--platform-ms`` (default 20 ms, a platform API round trip). ``--rows`` level alerts
  over ``--rows / 4`` chats are queued first; the time is from "go" to an empty queue.
  Ratio: 4-process throughput / 1-process throughput (goal ≥ 3). Duplicates are counted at
  the platform fake (keys received more than once).
- ``market``: ``--chats`` chats, ``--subs`` subscriptions on ``--market-symbols`` symbols
  (+ one level per chat) in PostgreSQL, 2 ``liqbot run --role market`` processes against a
  loopback Binance fake (wall clock) for ``--market-seconds``: engine tick p95 per process
  (``liqbot_engine_tick_seconds``: the price fetch from the fake + engine + commit, from each
  process's /metrics, the ticks after the first third of the run, linear inside the bucket
  like PromQL's histogram_quantile) and RSS per process. Baseline: the same two processes
  with one chat per symbol (one subscription, one level each).
- ``store``: bench/load.py's day (10k chats, 100k levels, 20 symbols, 24 replayed hours at
  full speed, then the outbox drained at full speed) in one process, on SQLite (the
  baseline) and on PostgreSQL: day wall time, tick median / p95, populate time (the same
  rows as load.py, in transactions of 100 chats / 1,000 levels: ``load.populate``'s batch),
  delivery per second; ratios PostgreSQL / SQLite (> 1: PostgreSQL slower).

``--quick`` shrinks every part (a smoke run of the script itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import load  # noqa: E402  (bench/load.py: the day, its source, population, notifier)
import psycopg  # noqa: E402
from aiohttp import ClientSession, ClientTimeout, web  # noqa: E402

from bot.alerts import SymbolState  # noqa: E402
from bot.alerts.events import AlertEvent, EventKind  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.dispatcher import Alert, Dispatcher  # noqa: E402
from bot.errors import TransientDeliveryError  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Chat, Store  # noqa: E402
from tests.bot.fake_binance import FakeBinance, price_at  # noqa: E402
from tests.pg_server import PgServer, free_port  # noqa: E402

PLATFORM = "bench"
SEED_SYMBOL = "SEED/USDT:USDT"


# --- dispatch ------------------------------------------------------------------------------
class Platform:
    """Loopback platform fake: POST /send {key, chat} → 200 {"id"} after ``latency_s``; no
    rate limit. Counts every key received."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.keys: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.latency_s)
        self.keys[body["key"]] += 1
        return web.json_response({"id": str(sum(self.keys.values()))})

    async def __aenter__(self) -> Platform:
        app = web.Application()
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/send"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class HttpNotifier:
    """The dispatcher's notifier in a bench worker: one POST per alert."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: ClientSession | None = None

    async def send(self, chat: Chat, alert: Alert) -> str | None:
        if self.session is None:
            self.session = ClientSession(timeout=ClientTimeout(total=10))
        try:
            async with self.session.post(self.url, json={"key": alert.dedupe_key,
                                                         "chat": chat.chat_id}) as r:
                if r.status != 200:
                    raise TransientDeliveryError(f"platform answered {r.status}")
                return str((await r.json())["id"])
        except (TimeoutError, OSError) as exc:
            raise TransientDeliveryError(str(exc)) from exc


def queue_rows(dsn: str, rows: int) -> None:
    """``rows`` level alerts over rows / 4 chats, through the store (commit_tick)."""
    store = Store(dsn=dsn)
    try:
        chats = max(1, rows // 4)
        with store.db.atomic():
            ids = [store.upsert_chat(PLATFORM, f"c{i}", now=0).id for i in range(chats)]
        events = [AlertEvent(chat=ids[k % chats], kind=EventKind.LEVEL_CROSS,
                             symbol=SEED_SYMBOL, ref=f"level:{k}", epoch=k, price=100.0,
                             ts_ms=1_764_000_000_000 + k, level_price=100.0, direction="up",
                             note=f"n{k}") for k in range(rows)]
        store.commit_tick(SEED_SYMBOL, SymbolState(last_ms=1_764_000_000_000,
                                                   last_price=100.0), None, events)
    finally:
        store.close()


async def dispatch_worker(dsn: str, url: str) -> None:
    """A bench dispatcher process: waits for "go" on stdin, drains the outbox, exits."""
    store = Store(dsn=dsn)
    notifier = HttpNotifier(url)
    disp = Dispatcher(store, {PLATFORM: notifier}, shared=True)  # as --role dispatch
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    idle_since: float | None = None
    while True:
        stats = await disp.run_once()
        if stats.sent:
            idle_since = None
            continue
        counts = store.outbox_counts()
        if counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0:
            break
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since > 30:
            print(f"stuck: {counts}", file=sys.stderr, flush=True)
            break
        await asyncio.sleep(0.01)
    if notifier.session is not None:
        await notifier.session.close()
    store.close()


def undelivered(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN "
                           "('pending', 'sending')").fetchone()
    return int(row[0]) if row else 0


async def dispatch_run(server: PgServer, processes: int, rows: int,
                       latency_s: float) -> dict[str, Any]:
    dsn = server.create_database(f"dispatch{processes}")
    queue_rows(dsn, rows)
    async with Platform(latency_s) as platform:
        procs = [subprocess.Popen(
            [sys.executable, __file__, "--dispatch-worker", dsn, platform.url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT) for _ in range(processes)]
        try:
            for p in procs:
                assert p.stdout is not None
                line = await asyncio.to_thread(p.stdout.readline)
                if line.strip() != "ready":
                    raise RuntimeError(f"dispatch worker: {line!r} "
                                       f"{(p.stderr.read() if p.stderr else '')[-2000:]}")
            t = time.perf_counter()
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            while await asyncio.to_thread(undelivered, dsn):
                if all(p.poll() is not None for p in procs):
                    break
                await asyncio.sleep(0.02)
            took = time.perf_counter() - t
            for p in procs:
                await asyncio.to_thread(p.wait, 60)
            errors = [(p.stderr.read() if p.stderr else "")[-500:] for p in procs
                      if p.returncode]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        left = undelivered(dsn)
    delivered = len(platform.keys)
    return {"processes": processes, "rows": rows, "seconds": round(took, 2),
            "delivered": delivered, "left": left,
            "per_s": round(delivered / took, 1) if took else None,
            "duplicates_at_platform": sum(n - 1 for n in platform.keys.values()),
            "worker_errors": errors}


async def part_dispatch(server: PgServer, rows: int, latency_ms: float) -> dict[str, Any]:
    one = await dispatch_run(server, 1, rows, latency_ms / 1000)
    four = await dispatch_run(server, 4, rows, latency_ms / 1000)
    ratio = (four["per_s"] / one["per_s"]) if one["per_s"] and four["per_s"] else None
    return {"platform_latency_ms": latency_ms, "baseline_1_process": one, "processes_4": four,
            "ratio_4_over_1": round(ratio, 2) if ratio else None, "goal_ratio": 3.0,
            "goal_met": bool(ratio and ratio >= 3.0)}


# --- store: SQLite vs PostgreSQL on load.py's day ---------------------------------------------
async def store_day(store: Store, chats: int, levels: int, symbols_n: int, hours: int,
                    drain_s: float, seed: int) -> dict[str, Any]:
    symbols = [f"{b}/USDT:USDT" for b in load.BASES[:symbols_n]]
    cfg = parse_config(load.CONFIG.format(symbols=", ".join(f'"{s}"' for s in symbols)))
    source = load.make_source(symbols, hours, cfg.source.lookback_days)
    prices = {s: float(src.candles.close[src.position - 1]) for s, src in source.sources.items()}
    notifier = load.RecordingNotifier()
    service = Service(cfg, source, store, {"console": notifier})
    t = time.perf_counter()
    subs, _ = load.populate(store, symbols, chats, levels, prices, random.Random(seed),
                               batch=100)
    populate_s = time.perf_counter() - t
    day = await load.play_day(service, source, symbols, hours)
    t = time.perf_counter()
    while (await service.dispatcher.run_once()).sent and time.perf_counter() - t < drain_s:
        pass
    took = time.perf_counter() - t
    out = load.summary(day)
    out.update(subscriptions=subs, populate_s=round(populate_s, 2),
               delivered=notifier.sent, delivery_s=round(took, 2),
               delivery_per_s=round(notifier.sent / took, 1) if took else None,
               left_pending=store.pending_count(), duplicates=notifier.duplicates)
    return out


async def part_store(server: PgServer, chats: int, levels: int, symbols: int, hours: int,
                     drain_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liqbot-scale-") as tmp:
        sqlite = Store(Path(tmp) / "day.db")
        try:
            base = await store_day(sqlite, chats, levels, symbols, hours, drain_s, 11)
        finally:
            sqlite.close()
    pg = Store(dsn=server.create_database("storeday"))
    try:
        pgr = await store_day(pg, chats, levels, symbols, hours, drain_s, 11)
    finally:
        pg.close()

    def ratio(key: str) -> float | None:
        a, b = base.get(key), pgr.get(key)
        return round(b / a, 2) if isinstance(a, int | float) and isinstance(b, int | float) \
            and a else None

    return {"sqlite_baseline": base, "postgresql": pgr, "ratios_postgresql_over_sqlite": {
        k: ratio(k) for k in ("day_wall_s", "tick_ms_median", "tick_ms_p95", "populate_s")} | {
        "delivery_per_s": (round(pgr["delivery_per_s"] / base["delivery_per_s"], 2)
                           if pgr.get("delivery_per_s") and base.get("delivery_per_s")
                           else None)}}


# --- market: 2 market workers on 100k chats -----------------------------------------------
MARKET_CONFIG = """
[bot]
store = "{dsn}"
symbols = [{symbols}]
[source]
kind = "live"
exchanges = ["binanceusdm"]
rest_url = "{binance}"
lookback_days = 1
[schedule]
recompute_seconds = 600
price_seconds = 2
[limits]
tracked_symbols = {n}
[console]
enabled = false
[metrics]
port = {port}
[cluster]
lease_seconds = 10
worker = "{name}"
"""


def populate_market(dsn: str, symbols: list[str], chats: int, subs: int,
                    prices: dict[str, float], seed: int) -> float:
    """``chats`` Telegram chats, ``subs`` subscriptions (each chat subs/chats symbols), one
    level per chat; bulk SQL in one transaction (the Store's methods take hours for 300k
    rows over a network connection). Returns seconds."""
    rng = random.Random(seed)
    per = max(1, subs // max(chats, 1))
    t = time.perf_counter()
    store = Store(dsn=dsn)  # the schema
    store.close()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY chats (platform, chat_id, active, created_ms) FROM STDIN") as cp:
            for c in range(chats):
                cp.write_row(("telegram", str(900_000 + c), 1, 0))
        ids = [r[0] for r in cur.execute("SELECT id FROM chats ORDER BY id").fetchall()]
        with cur.copy("COPY subscriptions (chat, symbol, min_usd, approach_pct, created_ms) "
                      "FROM STDIN") as cp:
            for k, cid in enumerate(ids):
                rotated = symbols[k % len(symbols):] + symbols[:k % len(symbols)]
                for sym in rotated[:per]:
                    cp.write_row((cid, sym, rng.choice([3e5, 1e6, 5e6, 2e7]),
                                  rng.choice([0.25, 0.5, 1.0, 2.0]), 0))
        with cur.copy("COPY levels (chat, symbol, price, direction, note, created_ms) "
                      "FROM STDIN") as cp:
            for cid in ids:
                sym = rng.choice(symbols)
                cp.write_row((cid, sym, prices[sym] * (1 + rng.uniform(-3, 3) / 100),
                              rng.choice(("up", "down", "any")), "", 0))
        cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'watch_version'")
    return time.perf_counter() - t


def histogram_buckets(text: str, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a Prometheus histogram in /metrics text."""
    out = []
    for m in re.finditer(rf'^{name}_bucket\{{[^}}]*le="([^"]+)"[^}}]*\}} ([0-9.e+-]+)$', text,
                         re.M):
        out.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)),
                    float(m.group(2))))
    return sorted(out)


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """PromQL's histogram_quantile: linear inside the bucket holding the rank."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-12))
        prev_le, prev_n = le, n
    return None


def vm(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def part_market(server: PgServer, n_symbols: int, chats: int, subs: int,
                      seconds: float) -> dict[str, Any]:
    base = await market_workers(server, n_symbols, n_symbols, n_symbols, seconds, "small")
    loaded = await market_workers(server, n_symbols, chats, subs, seconds, "loaded")
    out: dict[str, Any] = {"baseline_one_chat_per_symbol": base, "loaded": loaded}
    try:
        out["ratio_tick_p95_loaded_over_baseline"] = round(
            max(p["tick_p95_ms"] for p in loaded["processes"])
            / max(p["tick_p95_ms"] for p in base["processes"]), 2)
    except (TypeError, ValueError, ZeroDivisionError, KeyError):
        out["ratio_tick_p95_loaded_over_baseline"] = None
    return out


class WallBinance(FakeBinance):
    """FakeBinance on the wall clock (``liqbot run`` ticks on it) with ``names`` listed."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.add_perpetuals(names)

    async def __aenter__(self) -> WallBinance:
        await super().__aenter__()
        return self

    @property
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    @now_ms.setter
    def now_ms(self, _value: int) -> None:  # FakeBinance.__init__ sets it: the wall wins
        pass


async def scrape(procs: list[tuple[subprocess.Popen[bytes], int, Path]]) -> list[str | None]:
    """Each process's /metrics text (None when it does not answer)."""
    out: list[str | None] = []
    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        for _, port, _ in procs:
            try:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    out.append(await r.text())
            except (OSError, TimeoutError):
                out.append(None)
    return out


async def market_workers(server: PgServer, n_symbols: int, chats: int, subs: int,
                         seconds: float, label: str) -> dict[str, Any]:
    names = [f"S{i:03d}USDT" for i in range(n_symbols)]
    symbols = [f"{n[:-4]}/USDT:USDT" for n in names]
    dsn = server.create_database(f"market_{label}")
    async with WallBinance(names) as fake:
        now = int(time.time() * 1000)
        prices = {s: price_at(now, fake.scale[n]) for s, n in zip(symbols, names, strict=True)}
        store = Store(dsn=dsn)
        store.close()
        populate_s = populate_market(dsn, symbols, chats, subs, prices, 11) if chats else 0.0
        with tempfile.TemporaryDirectory(prefix="liqbot-scale-market-") as tmp:
            procs = []
            for k in range(2):
                port = free_port()
                cfg = Path(tmp) / f"market{k}.toml"
                cfg.write_text(MARKET_CONFIG.format(
                    dsn=dsn, symbols=", ".join(f'"{s}"' for s in symbols), binance=fake.url,
                    n=n_symbols, port=port, name=f"market-{k}"))
                log = open(Path(tmp) / f"market{k}.log", "wb")  # noqa: SIM115
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "run", "--role", "market", "--config",
                     str(cfg)], cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL), port, Path(tmp) / f"market{k}.log"))
            try:
                # Ticks after the warm-up only: the histograms' difference between a scrape
                # at a third of the run and one at its end.
                deadline = time.monotonic() + 180
                while None in await scrape(procs) and time.monotonic() < deadline:
                    if any(proc.poll() is not None for proc, _, _ in procs):
                        break
                    await asyncio.sleep(1)  # start-up: imports, store, first estimates
                await asyncio.sleep(seconds / 3)
                first = await scrape(procs)
                await asyncio.sleep(seconds * 2 / 3)
                last = await scrape(procs)
                results: list[dict[str, Any]] = []
                for (proc, _, log_path), a, b in zip(procs, first, last, strict=True):
                    if proc.poll() is not None or a is None or b is None:
                        results.append({"error": f"exited {proc.returncode}: " +
                                        log_path.read_text(errors="replace")[-800:]})
                        continue
                    ba = dict(histogram_buckets(a, "liqbot_engine_tick_seconds"))
                    diff = [(le, n - ba.get(le, 0.0))
                            for le, n in histogram_buckets(b, "liqbot_engine_tick_seconds")]
                    p95 = histogram_quantile(diff, 0.95)
                    p50 = histogram_quantile(diff, 0.5)
                    held = re.search(r"^liqbot_leases_held(?:\{[^}]*\})? ([0-9.e+-]+)$", b,
                                     re.M)
                    results.append({
                        "ticks": int(diff[-1][1]) if diff else 0,
                        "tick_p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
                        "tick_p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
                        "leases_held": int(float(held.group(1))) if held else None,
                        "rss_mb": round(vm(proc.pid, "VmRSS") or 0, 1),
                        "rss_peak_mb": round(vm(proc.pid, "VmHWM") or 0, 1)})
            finally:
                for proc, _, _ in procs:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                for proc, _, _ in procs:
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    with psycopg.connect(dsn, autocommit=True) as conn:
        queued = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        version = conn.execute("SELECT value FROM meta WHERE key = 'watch_version'").fetchone()
    return {"chats": chats, "subscriptions": subs, "levels": chats, "symbols": n_symbols,
            "populate_s": round(populate_s, 1), "seconds": seconds, "processes": results,
            "outbox_rows_queued": int(queued[0]) if queued else None,
            "watch_version_at_end": int(version[0]) if version else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--parts", default="dispatch,market,store")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--platform-ms", type=float, default=20.0)
    ap.add_argument("--chats", type=int, default=100_000)
    ap.add_argument("--subs", type=int, default=300_000)
    ap.add_argument("--market-symbols", type=int, default=50)
    ap.add_argument("--market-seconds", type=float, default=90.0)
    ap.add_argument("--dispatch-worker", nargs=2, metavar=("DSN", "URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dispatch_worker:
        asyncio.run(dispatch_worker(*args.dispatch_worker))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    q = args.quick
    server = PgServer.start()
    out: dict[str, Any] = {"bench": "scale", "cpus": os.cpu_count(),
                           "load_average_start": round(os.getloadavg()[0], 1)}
    t0 = time.perf_counter()
    try:
        if "dispatch" in parts:
            out["dispatch"] = asyncio.run(part_dispatch(server, 800 if q else args.rows,
                                                        args.platform_ms))
        if "market" in parts:
            out["market"] = asyncio.run(part_market(
                server, 6 if q else args.market_symbols, 2000 if q else args.chats,
                6000 if q else args.subs, 20 if q else args.market_seconds))
        if "store" in parts:
            out["store"] = asyncio.run(part_store(server, 500 if q else 10_000,
                                                  5000 if q else 100_000, 4 if q else 20,
                                                  6 if q else 24, 60.0))
    finally:
        server.stop()
    out["total_s"] = round(time.perf_counter() - t0, 1)
    out["load_average_end"] = round(os.getloadavg()[0], 1)  # the machine is shared
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {json.dumps(v) if isinstance(v, dict) else v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
