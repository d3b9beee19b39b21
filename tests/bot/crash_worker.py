"""Crash-test worker: a real liqbot-shaped process (engine → store → outbox → dispatcher) over a
replayed price path, delivering to a recording "platform" file. The crash test SIGKILLs it at
random points and restarts it; run it to completion once for the reference.

    python -m tests.bot.crash_worker --db DB --out DIR [--die-after-sends N]

Writes (all appends, one ``os.write`` per line, so a kill never leaves half a line):
``DIR/received.jsonl`` — every send the platform accepted, one line each, written before it
looks at the key (so repeats are counted from what arrived, not from our bookkeeping);
``DIR/delivered.jsonl`` — what a user sees: the first send of each dedupe key (the recording
notifier is idempotent by key, like Discord's ``enforce_nonce``); ``DIR/attempts.jsonl`` —
first-attempt transient failures it injected. Prints ``ready`` once the store is open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import zlib
from pathlib import Path

import numpy as np

from bot.alerts import SymbolWatch, Tick, evaluate
from bot.dispatcher import Alert, Dispatcher
from bot.errors import PermanentDeliveryError, TransientDeliveryError
from bot.store import Chat, Store
from estimator import Cluster

PLATFORM = "rec"
SYMBOLS = {"BTC/USDT:USDT": 93_000.0, "ETH/USDT:USDT": 3_100.0}
TICKS = 150
DT_MS = 5 * 60_000
T0 = 1_764_072_000_000
RECOMPUTE_EVERY = 10
BLOCKED = "blocked"


def price_path(seed: int) -> dict[str, list[Tick]]:
    """Seeded random walk per symbol: 0.35 % moves, candle high/low around them."""
    rng = np.random.default_rng(seed)
    out = {}
    for sym, p0 in SYMBOLS.items():
        p, ticks = p0, []
        for i in range(TICKS):
            new = p * (1 + rng.normal(0, 0.35) / 100)
            hi = max(p, new) * (1 + abs(rng.normal(0, 0.08)) / 100)
            lo = min(p, new) * (1 - abs(rng.normal(0, 0.08)) / 100)
            ticks.append(Tick(price=new, high=hi, low=lo, ts_ms=T0 + (i + 1) * DT_MS))
            p = new
        out[sym] = ticks
    return out


def clusters_at(sym: str, i: int) -> list[Cluster]:
    """Deterministic clusters of recompute ``i // RECOMPUTE_EVERY``, ids stable."""
    p0, r = SYMBOLS[sym], i // RECOMPUTE_EVERY
    scale = 1.0 if sym.startswith("BTC") else 0.1
    out = []
    for k in range(1, 6):
        for side, sign in (("short", 1), ("long", -1)):
            centre = p0 * (1 + sign * 0.7 * k / 100)
            usd = scale * 200e6 * k * (1 + 0.1 * r) * (1.6 if (k == 2 and r >= 5) else 1.0)
            out.append(Cluster(id=f"{side[0].upper()}{k}", side=side, low=centre * 0.999,
                               high=centre * 1.001, price=centre, notional_usd=usd,
                               distance_pct=0.0))
    if r >= 7:
        centre = p0 * 1.05
        out.append(Cluster(id="SNEW", side="short", low=centre * 0.999, high=centre * 1.001,
                           price=centre, notional_usd=scale * 900e6, distance_pct=0.0))
    return out


def setup(store: Store) -> None:
    """Chats, subscriptions and levels, in one transaction (a kill leaves all or nothing)."""
    if store.find_chat(PLATFORM, "a") is not None:
        return
    btc, eth = SYMBOLS
    with store.db.atomic():
        a, b, c, d, e, x = (store.upsert_chat(PLATFORM, n, now=T0).id
                            for n in ("a", "b", "c", "d", "e", BLOCKED))
        store.subscribe(a, btc, now=T0)
        store.subscribe(a, eth, now=T0)
        store.subscribe(b, btc, min_usd=200e6, approach_pct=1.0, now=T0)
        store.set_quiet(b, btc, False)  # one message per news; the others get digests
        store.subscribe(c, eth, min_usd=10e6, approach_pct=0.3, now=T0)
        store.subscribe(d, btc, min_usd=900e6, approach_pct=2.0, now=T0)
        store.subscribe(x, btc, now=T0)
        for chat, sym, pct, direction in ((a, btc, 0.5, "any"), (a, btc, -1.5, "any"),
                                          (b, btc, 1.0, "up"), (b, btc, -1.0, "down"),
                                          (e, btc, 0.3, "any"), (e, btc, -0.3, "any"),
                                          (e, eth, 0.8, "any"), (e, eth, -2.0, "down"),
                                          (x, btc, 0.2, "any")):
            store.add_level(chat, sym, SYMBOLS[sym] * (1 + pct / 100), direction, now=T0)


class RecordingNotifier:
    """The 'platform': appends deliveries to a file, idempotent by dedupe key."""

    def __init__(self, out: Path, die_after_sends: int | None) -> None:
        self.delivered_path = out / "delivered.jsonl"
        self.received_path = out / "received.jsonl"
        self.attempts_path = out / "attempts.jsonl"
        self.seen = {json.loads(x)["key"] for x in _lines(self.delivered_path)}
        self.failed_once = {json.loads(x)["key"] for x in _lines(self.attempts_path)}
        self.die_after = die_after_sends
        self.sends = 0

    async def send(self, chat: Chat, alert: Alert) -> None:
        if chat.chat_id == BLOCKED:
            raise PermanentDeliveryError("Forbidden: bot was blocked by the user")
        key = alert.dedupe_key
        if zlib.crc32(key.encode()) % 5 == 0 and key not in self.failed_once:
            _append(self.attempts_path, {"key": key})
            self.failed_once.add(key)
            raise TransientDeliveryError("502 Bad Gateway (injected)")
        _append(self.received_path, {"key": key})
        if key not in self.seen:
            _append(self.delivered_path, {"key": key, "chat": chat.chat_id, "text": alert.text})
            self.seen.add(key)
        self.sends += 1
        if self.die_after is not None and self.sends >= self.die_after:
            # Die inside the at-least-once window: delivered, not yet marked sent.
            os.kill(os.getpid(), signal.SIGKILL)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _append(path: Path, obj: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(obj, ensure_ascii=False) + "\n").encode())
    finally:
        os.close(fd)


async def run(db: Path, out: Path, seed: int, die_after_sends: int | None) -> None:
    store = Store(db)
    setup(store)
    notifier = RecordingNotifier(out, die_after_sends)
    disp = Dispatcher(store, {PLATFORM: notifier}, backoff_base_ms=20, backoff_max_ms=100,
                      give_up_after_ms=10**9)
    print("ready", flush=True)
    disp.recover()
    await disp.run_once()
    path = price_path(seed)
    version, watches = -1, {}
    for i in range(TICKS):
        if store.watch_version() != version:
            version = store.watch_version()
            watches = {s: SymbolWatch(s, store.active_subscriptions(s), store.active_levels(s))
                       for s in SYMBOLS}
        for sym in SYMBOLS:
            recompute = i % RECOMPUTE_EVERY == 0
            clusters = clusters_at(sym, i) if recompute else store.load_clusters(sym)
            # No skipping of ticks the store already has: re-evaluating them must be harmless.
            events, state = evaluate(store.load_state(sym), sym, path[sym][i], clusters,
                                     watches[sym])
            store.commit_tick(sym, state, clusters if recompute else None, events)
        await disp.run_once()
    while store.pending_count():
        await asyncio.sleep(0.02)
        await disp.run_once()
    ok = store.integrity_ok()
    store.close()
    print("done" if ok else "integrity-failed", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="liqbot crash-test worker")
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--die-after-sends", type=int, default=None)
    args = ap.parse_args()
    asyncio.run(run(args.db, args.out, args.seed, args.die_after_sends))


if __name__ == "__main__":
    main()
