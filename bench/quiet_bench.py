"""Quiet subscriptions (issue 19): messages a chat receives over the demo replay, with
``/quiet`` off (one message per event, as before) and on (new / grown clusters in one digest
per ``digest_hours``), and proof that no approach, break or level crossing is lost or delayed.

The demo's replay (the bundled hourly candles, the last ``--days`` days, recompute every 4
candles, the demo's thresholds and cooldown) through the real Service, Store and Dispatcher;
with ``--levels N`` the chat also has N price levels 1 % apart around the first price, so
level crossings are part of the comparison. A recording notifier stands in for the chat
platform: it keeps every delivered alert with the replayed time it arrived at. Both runs
replay the same candles.

Printed: the messages the same events made before issue 19 (one per event); alerts delivered
by kind in each run; *messages* (new messages, the ones that buzz a phone; edits of a
lifecycle message are counted apart); the ratios quiet / before and quiet / quiet off; and
whether every approach / inside / break / level alert of the non-quiet run arrived in the
quiet run at the same replayed time (immediate kinds identical → "lost 0, delayed 0").

    python bench/quiet_bench.py [--days 60] [--levels 0] [--hours 4,12,24] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.alerts.digest import DEFAULT_DIGEST_HOURS
from bot.alerts.events import EventKind
from bot.config import ConsoleSection
from bot.demo import DemoOptions, demo_config
from bot.dispatcher import Alert
from bot.market.replay import ReplaySource
from bot.service import Service
from bot.store import Chat, Store
from bot.wiring import make_source

IMMEDIATE = (EventKind.APPROACH, EventKind.INSIDE, EventKind.BREAK, EventKind.LEVEL_CROSS)


@dataclass
class Delivered:
    """What the chat received: (kind, ref, epoch, replayed ms at arrival, edit?) per alert."""

    alerts: list[tuple[str, str, int, int, bool]] = field(default_factory=list)

    def messages(self) -> int:
        return sum(1 for a in self.alerts if not a[4])

    def edits(self) -> int:
        return sum(1 for a in self.alerts if a[4])

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(a[0] for a in self.alerts).items()))

    def immediate(self) -> list[tuple[str, str, int, int]]:
        return [a[:4] for a in self.alerts if a[0] in IMMEDIATE]


class RecordingNotifier:
    """A chat platform that keeps what it received and when (replayed time)."""

    def __init__(self, clock: ReplaySource, log: Delivered) -> None:
        self.clock, self.log, self.ids = clock, log, 0

    async def send(self, chat: Chat, alert: Alert) -> str:
        self.ids += 1
        ev = alert.event
        self.log.alerts.append((ev.kind.value, ev.ref, ev.epoch, self.clock.now_ms, False))
        return str(self.ids)

    async def edit(self, chat: Chat, alert: Alert) -> None:
        ev = alert.event
        self.log.alerts.append((ev.kind.value, ev.ref, ev.epoch, self.clock.now_ms, True))


async def replay(days: float, quiet: bool, levels: int = 0,
                 digest_hours: float = DEFAULT_DIGEST_HOURS) -> Delivered:
    """The demo replay for one console chat subscribed like the demo (quiet or not), with
    ``levels`` price levels 1 % apart around the first replayed price."""
    opts = DemoOptions(days=days)
    log = Delivered()
    with tempfile.TemporaryDirectory(prefix="liqbot-quiet-") as tmp:
        cfg = demo_config(opts, str(Path(tmp) / "bench.db"))
        cfg = replace(cfg, console=ConsoleSection(enabled=False),
                      alerts=replace(cfg.alerts, digest_hours=digest_hours))
        store = Store(cfg.bot.store)
        source = make_source(cfg)
        assert isinstance(source, ReplaySource)
        notifier = RecordingNotifier(source, log)
        service = Service(cfg, source, store, {"console": notifier},
                          clock_ms=lambda: source.now_ms)
        symbol = cfg.bot.symbols[0]
        chat = store.upsert_chat("console", "bench")
        store.subscribe(chat.id, symbol, min_usd=opts.min_usd, approach_pct=opts.approach_pct)
        store.set_quiet(chat.id, symbol, quiet)
        await service.recompute(symbol)
        first = (await source.last_price(symbol)).price
        for i in range(levels):
            step = (i - levels // 2 + (0.5 if levels % 2 == 0 else 0)) * 0.01
            store.add_level(chat.id, symbol, round(first * (1 + step)), "any")
        done = 0
        while source.advance():
            done += 1
            if done % opts.recompute_every == 0:
                await service.recompute(symbol)
            await service.price_tick(symbol)
            await service.dispatch()
        await service.dispatch()
        await source.close()
        store.close()
    return log


def compare(before: Delivered, after: Delivered) -> dict[str, int]:
    """Immediate alerts of the non-quiet run missing from the quiet run (lost), or present
    but at a later replayed time (delayed), and the reverse (extra)."""
    b = {a[:3]: a[3] for a in before.immediate()}
    q = {a[:3]: a[3] for a in after.immediate()}
    return {"lost": sum(1 for k in b if k not in q),
            "delayed": sum(1 for k, t in b.items() if k in q and q[k] > t),
            "extra": sum(1 for k in q if k not in b)}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    before = await replay(args.days, quiet=False, levels=args.levels)
    # Before issue 19: one message per event (no lifecycle edits, no "inside" step).
    old = sum(1 for a in before.alerts if a[0] != EventKind.INSIDE.value)
    runs = []
    for hours in args.hours:
        after = await replay(args.days, quiet=True, levels=args.levels, digest_hours=hours)
        runs.append({"digest_hours": hours, "messages": after.messages(),
                     "edits": after.edits(), "by_kind": after.by_kind(),
                     "ratio_vs_one_per_event": after.messages() / max(1, old),
                     "ratio_vs_quiet_off": after.messages() / max(1, before.messages()),
                     **compare(before, after)})
    return {"days": args.days, "levels": args.levels, "one_message_per_event": old,
            "quiet_off": {"messages": before.messages(), "edits": before.edits(),
                          "by_kind": before.by_kind()},
            "quiet_on": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=60.0)
    ap.add_argument("--levels", type=int, default=0)
    ap.add_argument("--hours", type=lambda v: [float(x) for x in v.split(",")],
                    default=[DEFAULT_DIGEST_HOURS], help="digest_hours values, e.g. 4,12,24")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(r))
        return 0
    off = r["quiet_off"]
    runs = r["quiet_on"]
    assert isinstance(off, dict) and isinstance(runs, list)
    print(f"demo replay, {r['days']:g} days, one chat with the demo's subscription"
          f"{f' and {args.levels} levels' if args.levels else ''}")
    print(f"before (one message per event):  {r['one_message_per_event']} messages")
    print(f"quiet off (lifecycle edits):     {off['messages']} messages + {off['edits']} "
          f"edits · {off['by_kind']}")
    for q in runs:
        print(f"quiet on, digest {q['digest_hours']:g} h: {q['messages']} messages + "
              f"{q['edits']} edits · {q['by_kind']}")
        print(f"  messages / before = {q['messages']} / {r['one_message_per_event']} = "
              f"{q['ratio_vs_one_per_event']:.2f}; / quiet off = {q['ratio_vs_quiet_off']:.2f}"
              f"; approach / inside / break / level alerts: lost {q['lost']}, delayed "
              f"{q['delayed']}, extra {q['extra']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
