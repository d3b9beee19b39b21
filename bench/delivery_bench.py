"""Delivery fan-out: N alerts through the real Dispatcher and the real Telegram adapter, against
the loopback Bot API fake, at the adapter's configured rate limit (ChatRateLimiter, 30 msg/s).

    python bench/delivery_bench.py [--json] [--alerts 300] [--no-fair] [--chats 1000]

One outbox row per private chat (an ``approach`` alert each), then one ``Dispatcher.run_once``
pass with a batch big enough for all of them. Timed:
- ``limited_s``: the started TelegramAdapter's notifier (PTB 22 + ChatRateLimiter 30 msg/s
  overall, 20/min per group; private chats here, so only the overall limit applies);
- baseline ``unlimited_s``: the same notifier class on a PTB Application with no rate limiter —
  the cost of the Dispatcher, store, PTB and the loopback HTTP round trips alone;
- ``floor_s`` = N / 30: the pace the limit allows. The overall bucket holds 3 messages (a
  tenth of a second), so there is no initial burst: ``peak_msgs_in_any_1s`` stays ≤ 33.
``ratio_vs_floor`` = limited_s / floor_s (≈ 1 means the limiter, not our code, sets the pace).
Every message must arrive exactly once (checked). Loopback only (127.0.0.1).

Fairness (issues 16 and 24), ``--fair`` (default on; ``--no-fair`` skips, ≈ 5 min):

- ``telegram_throttled_group``: one group's ``--group-alerts`` rows queued first, the Bot API
  fake answering its first 6 sends 429 (retry_after 5 s), then one alert for each of
  ``--chats`` private chats; the real adapter notifier and dispatcher on a 1 s schedule. Each
  healthy message's *delay over the floor* = its arrival − pass start − (its rank + 1) / 30 s,
  i.e. how late it is against the 30 msg/s schedule. Printed as p50/p95 for three runs in the
  same process: ``no_fault`` (the same queue, no 429: the baseline), ``fair`` (429s, this
  code) and ``global_pause`` (429s through PTB's AIORateLimiter, which pauses every chat for a
  429, with one send at a time — how delivery worked before). Goal: fair p95 ≤ 1 s; the
  ``*_p95_over_no_fault_s`` differences show what the 429s cost against the no-fault run.
- ``discord_failing_channel``: 20 healthy channels and one failing with 500 for
  ``--fail-seconds`` (45); an alert for the failing channel and one for a healthy channel every
  0.5 s for fail-seconds + 10 s, dispatcher on a 1 s schedule. Healthy delay = arrival − row
  creation; p50/p95 for ``normal`` (no failure: the baseline), ``fair`` and ``sequential``
  (one send at a time, no per-send bound: discord.py retries a 5xx for ~25 s inside the send).
  Goal: fair p95 ≤ normal p95 + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB 22: RetryAfter as timedelta, no warning

import warnings  # noqa: E402

from telegram.ext import AIORateLimiter, ApplicationBuilder  # noqa: E402

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from discord.http import Route  # noqa: E402

from bot.alerts import SymbolState  # noqa: E402
from bot.alerts.events import AlertEvent, EventKind  # noqa: E402
from bot.charts import ChartCache  # noqa: E402
from bot.commands.core import CommandCore  # noqa: E402
from bot.config import ConsoleSection, DiscordSection, Secret, TelegramSection  # noqa: E402
from bot.demo import DemoOptions, demo_config  # noqa: E402
from bot.discord_adapter import DiscordAdapter, alert_nonce  # noqa: E402
from bot.dispatcher import Dispatcher, Notifier  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Store, now_ms  # noqa: E402
from bot.telegram_adapter import TelegramAdapter, TelegramNotifier  # noqa: E402
from bot.wiring import make_source  # noqa: E402
from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN  # noqa: E402
from tests.bot.fake_discord import FakeDiscord  # noqa: E402
from tests.bot.fake_telegram import FakeTelegram  # noqa: E402

SYMBOL = "BTC/USDT:USDT"
RATE = 30.0  # msg/s: the adapter's AIORateLimiter overall_max_rate


def fill_outbox(store: Store, n: int, first_chat: int) -> None:
    """One pending approach alert for each of ``n`` new private chats."""
    events = []
    for i in range(n):
        chat = store.upsert_chat("telegram", first_chat + i)
        events.append(AlertEvent(
            kind=EventKind.APPROACH, chat=chat.id, symbol=SYMBOL, ref=f"S{i}@1", epoch=0,
            price=94_000.0, ts_ms=1_764_072_000_000, side="short", low=94_800.0,
            high=95_300.0, notional_usd=1.2e9, distance_pct=0.85))
    store.commit_tick(SYMBOL, SymbolState(), None, events)


async def fan_out(notifier: Notifier, store: Store, n: int) -> tuple[float, int]:
    dispatcher = Dispatcher(store, {"telegram": notifier}, batch=n)
    t0 = time.perf_counter()
    stats = await dispatcher.run_once()
    return time.perf_counter() - t0, stats.sent


async def measure(n: int) -> dict[str, object]:
    async with FakeTelegram(max_poll_s=0.2) as fake:
        # Baseline: the real notifier class on a PTB Application without a rate limiter.
        bare = ApplicationBuilder().token(fake.token).base_url(fake.base_url).job_queue(None) \
            .build()
        await bare.initialize()
        plain = TelegramNotifier(bare)
        plain.started = True
        store = Store(memory=True)
        fill_outbox(store, n, 10_000)
        unlimited_s, sent_plain = await fan_out(plain, store, n)
        await bare.shutdown()
        store.close()

        # The adapter as the bot runs it: started (polling), AIORateLimiter 30 msg/s.
        base = demo_config(DemoOptions(days=10), ":memory:")
        cfg = replace(base, console=ConsoleSection(enabled=False),
                      telegram=TelegramSection(enabled=True, base_url=fake.base_url,
                                               token=Secret(fake.token)))
        store = Store(memory=True)
        source = make_source(cfg)
        adapter = TelegramAdapter(cfg.telegram, poll_timeout_s=1)
        service = Service(cfg, source, store, {adapter.platform: adapter.notifier})
        await adapter.start(CommandCore(cfg, service.board, source, store, ChartCache()))
        fill_outbox(store, n, 20_000)
        first = len(fake.sent)
        try:
            limited_s, sent_limited = await fan_out(adapter.notifier, store, n)
        finally:
            await adapter.stop()
            store.close()
        got = Counter(m["chat_id"] for m in fake.sent[first:])
        exactly_once = (sent_limited == n and len(got) == n and set(got.values()) == {1})
        times = [m["t"] for m in fake.sent[first:]]
        peak_1s = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    floor_s = n / RATE
    return {
        "alerts": n,
        "rate_limit_msg_s": RATE,
        "limited_s": round(limited_s, 3),
        "limited_msg_s": round(n / limited_s, 1),
        "peak_msgs_in_any_1s": peak_1s,
        "floor_s": round(floor_s, 3),
        "ratio_vs_floor": round(limited_s / floor_s, 3),
        "unlimited_s": round(unlimited_s, 3),
        "unlimited_msg_s": round(n / unlimited_s, 1),
        "ratio_vs_unlimited": round(limited_s / unlimited_s, 1),
        "delivered_exactly_once": exactly_once and sent_plain == n,
    }


def alert(chat: int, ref: str) -> AlertEvent:
    return AlertEvent(kind=EventKind.APPROACH, chat=chat, symbol=SYMBOL, ref=ref, epoch=0,
                      price=94_000.0, ts_ms=1_764_072_000_000, side="short", low=94_800.0,
                      high=95_300.0, notional_usd=1.2e9, distance_pct=0.85)


def percentiles(values: list[float]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {"p50_s": float("nan"), "p95_s": float("nan"), "max_s": float("nan")}

    def at(q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)

    return {"p50_s": at(0.5), "p95_s": at(0.95), "max_s": round(xs[-1], 3)}


async def on_schedule(dispatcher: Dispatcher, done: Callable[[], bool], interval: float = 1.0,
                      limit_s: float = 600.0) -> None:
    """run_once every ``interval`` like the service's dispatch job (max_instances=1: a pass
    that overruns skips the fires it missed) until ``done()``."""
    loop = asyncio.get_running_loop()
    start = nxt = loop.time()
    while not done() and loop.time() - start < limit_s:
        await dispatcher.run_once()
        nxt += interval
        while nxt < loop.time():
            nxt += interval
        await asyncio.sleep(nxt - loop.time())


async def telegram_run(fake: FakeTelegram, policy: str, chats: int, group_alerts: int,
                       base: int) -> dict[str, object]:
    """One throttled-group run (see the module docstring); ``base`` keeps chat ids apart."""
    group_id = -100_000_000 - base
    if policy == "global_pause":  # PTB's own limiter: a 429 pauses every chat
        app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).job_queue(None) \
            .rate_limiter(AIORateLimiter(max_retries=2)).build()
        concurrency = 1
    else:
        adapter = TelegramAdapter(TelegramSection(enabled=True, base_url=fake.base_url,
                                                  token=Secret(fake.token)))
        app, concurrency = adapter.app, 16
    await app.initialize()
    notifier = TelegramNotifier(app)
    notifier.started = True
    store = Store(memory=True)
    group = store.upsert_chat("telegram", group_id, is_group=True)
    events = [alert(group.id, f"G{i}") for i in range(group_alerts)]
    healthy = [store.upsert_chat("telegram", base + i).id for i in range(chats)]
    events += [alert(c, "H") for c in healthy]
    store.commit_tick(SYMBOL, SymbolState(), None, events)
    if policy != "no_fault":
        fake.inject("sendMessage", *["429"] * 6, chat_id=group_id)
    first = len(fake.sent)
    dispatcher = Dispatcher(store, {"telegram": notifier}, concurrency=concurrency)
    rank = {base + i: i for i in range(chats)}

    def healthy_done() -> bool:
        return sum(1 for m in fake.sent[first:] if m["chat_id"] in rank) >= chats

    t0 = time.monotonic()
    try:
        await on_schedule(dispatcher, healthy_done)
    finally:
        await app.shutdown()
        store.close()
    got = [m for m in fake.sent[first:] if m["chat_id"] in rank]
    over = [m["t"] - t0 - (rank[m["chat_id"]] + 1) / RATE for m in got]
    once = Counter(m["chat_id"] for m in got)
    return {"healthy_delivered": len(got), "healthy_exactly_once": set(once.values()) == {1},
            "group_delivered": len(fake.sent_to(group_id)),
            "last_healthy_s": round(max(m["t"] for m in got) - t0, 2),
            **{f"over_floor_{k}": v for k, v in percentiles(over).items()}}


async def telegram_fairness(chats: int, group_alerts: int) -> dict[str, object]:
    async with FakeTelegram(retry_after=5, max_poll_s=0.2) as fake:
        runs = {policy: await telegram_run(fake, policy, chats, group_alerts, 100_000 * (i + 1))
                for i, policy in enumerate(("no_fault", "fair", "global_pause"))}
    base = runs["no_fault"]["over_floor_p95_s"]
    return {"chats": chats, "group_alerts": group_alerts, "group_429s": 6,
            "retry_after_s": 5, "floor_s": round(chats / RATE, 2), **runs,
            "fair_p95_over_no_fault_s": round(runs["fair"]["over_floor_p95_s"] - base, 3),
            "global_pause_p95_over_no_fault_s":
                round(runs["global_pause"]["over_floor_p95_s"] - base, 3)}


async def discord_run(fake: FakeDiscord, policy: str, fail_s: float,
                      base: int) -> dict[str, object]:
    cfg = demo_config(DemoOptions(days=10), ":memory:")
    section = DiscordSection(enabled=True, token=Secret(DISCORD_TOKEN))
    store = Store(memory=True)
    source = make_source(cfg)
    adapter = DiscordAdapter(section, gateway=False, alert_charts=False)
    service = Service(cfg, source, store, {})
    await adapter.start(CommandCore(cfg, service.board, source, store, ChartCache()))
    failing = base
    healthy = [store.upsert_chat("discord", base + 1 + i, is_group=True).id for i in range(20)]
    bad = store.upsert_chat("discord", failing, is_group=True).id
    if policy != "normal":
        fake.failing[failing] = 500
    if policy == "sequential":
        dispatcher = Dispatcher(store, {"discord": adapter.notifier}, concurrency=1,
                                send_timeout_s=None)
    else:
        dispatcher = Dispatcher(store, {"discord": adapter.notifier})
    created: dict[str, float] = {}
    run_s = fail_s + 10.0
    stop = asyncio.Event()

    async def produce() -> None:
        t0 = time.time()
        i = 0
        while time.time() - t0 < run_s:
            if time.time() - t0 >= fail_s:
                fake.failing.pop(failing, None)
            h = healthy[i % len(healthy)]
            now = now_ms()
            evs = [alert(h, f"H{i}"), alert(bad, f"F{i}")]
            store.commit_tick(SYMBOL, SymbolState(), None, evs, now=now)
            created[alert_nonce(evs[0].dedupe_key)] = now / 1000
            i += 1
            await asyncio.sleep(0.5)
        fake.failing.pop(failing, None)
        stop.set()

    first = len(fake.posted)
    producer = asyncio.create_task(produce())
    try:
        await on_schedule(dispatcher, lambda: stop.is_set() and all(
            n in arrived(fake, first) for n in created), limit_s=run_s + 120)
    finally:
        await producer
        await adapter.stop()
        store.close()
    got = arrived(fake, first)
    delays = [got[n] - c for n, c in created.items() if n in got]
    return {"healthy_alerts": len(created), "healthy_delivered": len(delays),
            **{f"delay_{k}": v for k, v in percentiles(delays).items()}}


def arrived(fake: FakeDiscord, first: int) -> dict[str, float]:
    """nonce → first arrival time of the channel posts since ``first``."""
    out: dict[str, float] = {}
    for p in fake.posted[first:]:
        nonce = p.payload.get("nonce")
        if p.path.endswith("/messages") and nonce and nonce not in out:
            out[nonce] = p.t
    return out


async def discord_fairness(fail_s: float) -> dict[str, object]:
    async with FakeDiscord() as fake:
        old = Route.BASE
        Route.BASE = fake.base
        try:
            runs = {policy: await discord_run(fake, policy, fail_s, 900_000 + 1_000 * i)
                    for i, policy in enumerate(("normal", "fair", "sequential"))}
        finally:
            Route.BASE = old
    normal_p95 = runs["normal"]["delay_p95_s"]
    return {"fail_seconds": fail_s, "healthy_channels": 20, **runs,
            "fair_p95_over_normal_s": round(runs["fair"]["delay_p95_s"] - normal_p95, 3),
            "sequential_p95_over_normal_s":
                round(runs["sequential"]["delay_p95_s"] - normal_p95, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--alerts", type=int, default=300)
    ap.add_argument("--fair", action=argparse.BooleanOptionalAction, default=True,
                    help="run the two fairness cases too (≈ 5 min)")
    ap.add_argument("--chats", type=int, default=1000, help="healthy Telegram chats")
    ap.add_argument("--group-alerts", type=int, default=30)
    ap.add_argument("--fail-seconds", type=float, default=45.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    result: dict[str, object] = {"fan_out": asyncio.run(measure(args.alerts))}
    if args.fair:
        result["telegram_throttled_group"] = asyncio.run(
            telegram_fairness(args.chats, args.group_alerts))
        result["discord_failing_channel"] = asyncio.run(discord_fairness(args.fail_seconds))
    if args.json:
        print(json.dumps(result))
    else:
        for case, figures in result.items():
            print(case)
            for k, v in figures.items():  # type: ignore[attr-defined]
                print(f"{k:>32}: {v}")


if __name__ == "__main__":
    main()
