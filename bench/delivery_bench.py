"""Delivery fan-out: N alerts through the real Dispatcher and the real Telegram adapter, against
the loopback Bot API fake, at the adapter's configured rate limit (AIORateLimiter, 30 msg/s).

    python bench/delivery_bench.py [--json] [--alerts 300]

One outbox row per private chat (an ``approach`` alert each), then one ``Dispatcher.run_once``
pass with a batch big enough for all of them. Timed:
- ``limited_s``: the started TelegramAdapter's notifier (PTB 22 + AIORateLimiter 30 msg/s
  overall, 20/min per group; private chats here, so only the overall limit applies);
- baseline ``unlimited_s``: the same notifier class on a PTB Application with no rate limiter —
  the cost of the Dispatcher, store, PTB and the loopback HTTP round trips alone;
- ``floor_s`` = N / 30: the steady-state pace the limit allows. aiolimiter's bucket starts full
  (capacity 30), so a burst of ~30 goes out at once and a run comes in about 1 s under it;
  ``peak_msgs_in_any_1s`` shows that burst.
``ratio_vs_floor`` = limited_s / floor_s (≈ 1 means the limiter, not our code, sets the pace).
Every message must arrive exactly once (checked). Loopback only (127.0.0.1).
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
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB 22: RetryAfter as timedelta, no warning

from telegram.ext import ApplicationBuilder  # noqa: E402

from bot.alerts import SymbolState  # noqa: E402
from bot.alerts.events import AlertEvent, EventKind  # noqa: E402
from bot.charts import ChartCache  # noqa: E402
from bot.commands.core import CommandCore  # noqa: E402
from bot.config import ConsoleSection, Secret, TelegramSection  # noqa: E402
from bot.demo import DemoOptions, demo_config  # noqa: E402
from bot.dispatcher import Dispatcher, Notifier  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.telegram_adapter import TelegramAdapter, TelegramNotifier  # noqa: E402
from bot.wiring import make_source  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--alerts", type=int, default=300)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(measure(args.alerts))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
