"""``liqbot run``: the long-running bot in one asyncio loop until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.config import Config
from bot.errors import ConfigError
from bot.wiring import make_service, open_store

log = logging.getLogger(__name__)


async def run(cfg: Config) -> int:
    """Start the service and the adapters; stop cleanly on a signal; exit code 0."""
    store = open_store(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service, core = make_service(cfg, store)
    started = []
    view = None
    try:
        await service.start()
        for adapter in service.adapters:
            await adapter.start(core)
            started.append(adapter)
        if cfg.web.enabled:  # the web view, in this loop, on the service's estimates
            from bot.web.server import WebView, bot_token

            view = WebView(core, bot_token(cfg))
            try:
                await view.start(cfg.web.listen, cfg.web.port)
            except OSError as exc:  # the port is taken, the address not ours
                raise ConfigError(f"{cfg.path}: [web] cannot listen on {cfg.web.listen}:"
                                  f"{cfg.web.port}: {exc.strerror or exc}") from exc
        log.info("liqbot running: %s from %s via %s; Ctrl-C stops",
                 ", ".join(cfg.bot.symbols), cfg.source.kind,
                 ", ".join(a.platform for a in service.adapters) or "no adapter")
        await stop.wait()
        log.info("stopping: finishing running jobs")
    finally:
        if view is not None:
            await view.stop()
        await service.stop()
        for adapter in reversed(started):
            try:
                await adapter.stop()
            except Exception:  # one platform failing to stop must not block the others
                log.exception("stopping the %s adapter failed", adapter.platform)
        await service.source.close()
        ok = store.integrity_ok()
        store.close()
        log.info("stopped (store integrity %s)", "ok" if ok else "FAILED")
    return 0
