"""``liqbot run``: the long-running bot in one asyncio loop until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.config import Config
from bot.console import read_commands
from bot.store import Store
from bot.wiring import make_service

log = logging.getLogger(__name__)


async def run(cfg: Config) -> int:
    """Start the service and the adapters; stop cleanly on a signal; exit code 0."""
    store = Store(cfg.bot.store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service, core = make_service(cfg, store)
    tasks: list[asyncio.Task[None]] = []
    try:
        await service.start()
        log.info("liqbot running: %s from %s; Ctrl-C stops", ", ".join(cfg.bot.symbols),
                 cfg.source.kind)
        if cfg.console.enabled and cfg.console.interactive and sys.stdin.isatty():
            tasks.append(asyncio.create_task(read_commands(core, cfg.console.charts_dir, stop)))
        await stop.wait()
        log.info("stopping: finishing running jobs")
    finally:
        for t in tasks:
            t.cancel()
        await service.stop()
        await service.source.close()
        ok = store.integrity_ok()
        store.close()
        log.info("stopped (store integrity %s)", "ok" if ok else "FAILED")
    return 0
