"""``liqbot demo``: the embedded default — bundled real candles through the whole pipeline.

Replay (virtual clock) → recompute (estimator) → threshold engine → outbox (a throwaway
SQLite file) → dispatcher → console. No tokens, no network. The same Service methods the
scheduler runs in ``liqbot run`` are called here in a tight loop so the demo is fast and
repeatable.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO, cast

from tqdm.contrib.logging import logging_redirect_tqdm

from bot.commands.market_cmds import levels_text
from bot.config import AlertsSection, Config, SourceSection
from bot.console import CALLER, CHAT_ID, PLATFORM, ConsoleAdapter
from bot.errors import UsageError
from bot.fmt import money
from bot.outpath import check_out_dir
from bot.progress import LinesAbove, Progress
from bot.wiring import make_service, open_store

BUNDLED_CANDLES = 20_111  # rows of the bundled hourly file
MAX_DAYS = 800.0  # replayed at most; the rest (38 days) is the first estimate's history


@dataclass(frozen=True)
class DemoOptions:
    days: float = 60.0  # replayed at the end of the bundled file
    lookback_days: float = 60.0  # candles each estimate sees
    recompute_every: int = 4  # candles between recomputes
    min_usd: float = 2_000_000.0  # the bundled spot volumes make small (proxy) clusters
    approach_pct: float = 0.5
    out_dir: str = "liqbot-demo"
    quiet: bool = False  # no progress bar (there is one only on a terminal anyway)


def demo_config(opts: DemoOptions, store_path: str) -> Config:
    """Config for the demo: replay of the bundled file, console only, demo thresholds."""
    base = Config()
    return replace(
        base,
        bot=replace(base.bot, store=store_path),
        source=SourceSection(kind="replay", path="", candles_per_tick=1,
                             warmup_candles=BUNDLED_CANDLES - int(opts.days * 24),
                             lookback_days=opts.lookback_days),
        alerts=AlertsSection(approach_pct=opts.approach_pct, min_usd=opts.min_usd,
                             cooldown_minutes=360.0),
        path="<demo>",
    )


async def run_demo(opts: DemoOptions, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:
    """Replay, print alerts as they fire, write the two charts, print a summary."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not 1 / 24 <= opts.days <= MAX_DAYS:  # also False for NaN
        raise UsageError(f"--days {opts.days!r}: must be from 1/24 to {MAX_DAYS:g}")
    out_dir = check_out_dir(opts.out_dir, "--out")  # before the replay, not after it
    started = time.perf_counter()
    bar = Progress("replay", unit="candle", quiet=opts.quiet, file=err)
    with tempfile.TemporaryDirectory(prefix="liqbot-demo-") as tmp, bar, ExitStack() as stack:
        cfg = demo_config(opts, str(Path(tmp) / "demo.db"))
        store = open_store(cfg)
        # Alerts print above the bar, each on its own line.
        alerts_out = cast(TextIO, LinesAbove(out, bar)) if bar.shown else out
        service, core = make_service(cfg, store, [ConsoleAdapter(cfg.console, alerts_out)])
        replay = service.replay
        assert replay is not None
        symbol = cfg.bot.symbols[0]
        chat = store.upsert_chat(PLATFORM, CHAT_ID)
        store.subscribe(chat.id, symbol, min_usd=opts.min_usd, approach_pct=opts.approach_pct)
        print(f"liqbot demo · replaying {opts.days:g} days of real Coinbase BTC-USD hourly "
              f"candles as {symbol} · clusters ≥ {money(opts.min_usd)}, approach "
              f"{opts.approach_pct:g} % · estimates from a model (volume proxy: the file has "
              "no open interest), not exchange data", file=out, flush=True)
        await service.recompute(symbol)
        total = len(replay.candles) - replay.position
        done = sent = 0
        if bar.shown:  # log lines (warnings) also go above the bar
            stack.enter_context(logging_redirect_tqdm())
        while replay.advance():
            done += 1
            if done % opts.recompute_every == 0:
                await service.recompute(symbol)
            await service.price_tick(symbol)
            sent += await service.dispatch()
            bar.note(f"{sent} alerts")
            bar.update_to(done, total)
        bar.close()
        await service.recompute(symbol)
        sent += await service.dispatch()

        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for text, name in (("/heatmap 7d", "heatmap.png"), ("/map", "map.png")):
            reply = await core.handle(text, CALLER)
            assert reply is not None
            if reply.png is None:
                print(f"chart {text} failed: {reply.text}", file=out)
                continue
            (out_dir / name).write_bytes(reply.png)
            written.append(str(out_dir / name))
        est = service.board.get(symbol)
        assert est is not None
        print("\n" + levels_text(est), file=out)
        counts = store.outbox_counts()
        print(f"\nSummary: {done} candles replayed in {time.perf_counter() - started:.1f} s · "
              f"{sent} alerts delivered ({counts.get('pending', 0)} pending, "
              f"{counts.get('failed', 0)} failed) · charts: {', '.join(written)}", file=out)
        store.close()
    return 0


def main(opts: DemoOptions | None = None) -> int:
    return asyncio.run(run_demo(opts or DemoOptions()))
