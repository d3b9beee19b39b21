"""``/metrics`` and ``/healthz`` of one ``liqbot run`` process on ``[metrics] listen``:``port``.

``/metrics``: Prometheus text format of :data:`bot.metrics.REGISTRY`.
``/healthz``: 200 and a small JSON when the store answers, the scheduler runs and every job
finished lately (within 3 × its interval + ``late_s``, counted from when this endpoint first
saw the scheduler); a ``chat`` worker schedules nothing, so there only the store counts. 503
and the same JSON naming the problems otherwise: a store that does not answer, a scheduler
starting, paused (stopping) or stopped, a job stuck.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from aiohttp import web
from apscheduler.schedulers.base import STATE_RUNNING
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from bot.config import Config
from bot.errors import ConfigError
from bot.service import Service
from bot.store import Store

log = logging.getLogger(__name__)

LATE_S = 30.0  # a job's grace beyond 3 intervals (APScheduler's misfire grace in bot.service)


class OpsServer:
    """The metrics and health endpoint of one process's store and service."""

    def __init__(self, store: Store, service: Service, late_s: float = LATE_S) -> None:
        self.store = store
        self.service = service
        self.late_s = late_s
        self._seen: tuple[int, float] | None = None  # (id of the scheduler, first seen at)
        self.app = web.Application()
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None
        metrics.bind(store.outbox_depth, lambda: service.board.symbols)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body)."""
        problems: list[str] = []
        body: dict[str, Any] = {}
        try:
            body["outbox_pending"] = self.store.pending_count()
        except Exception as exc:  # the type only: a driver's message may name the server
            metrics.error("store")
            problems.append(f"store does not answer ({type(exc).__name__})")
        body["role"] = self.service.role
        if self.service.role == "chat":  # its adapters answer commands; nothing is scheduled
            body["scheduler"] = "none (chat role)"
        else:
            problems += self._scheduler(body)
        body["status"] = "unhealthy" if problems else "ok"
        if problems:
            body["problems"] = problems
        return not problems, body

    def _scheduler(self, body: dict[str, Any]) -> list[str]:
        """The scheduler's problems: not running, or jobs that have not finished lately."""
        sch = self.service.scheduler
        if sch is None or sch.state != STATE_RUNNING:
            body["scheduler"] = state = "not running" if sch is None else "paused or stopped"
            return [f"scheduler {state}"]
        body["scheduler"] = "running"
        now = time.monotonic()
        if self._seen is None or self._seen[0] != id(sch):
            self._seen = (id(sch), now)
        jobs = sch.get_jobs()
        body["jobs"] = len(jobs)
        problems = []
        for job in jobs:
            interval = getattr(job.trigger, "interval", None)
            if interval is None:
                continue
            since = max(metrics.last_done(job.id), self._seen[1])
            if now - since > 3 * interval.total_seconds() + self.late_s:
                problems.append(f"job {job.id} has not finished for {now - since:.0f} s")
        return problems

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, body = self.health()
        return web.Response(status=200 if ok else 503, text=json.dumps(body),
                            content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self, host: str, port: int) -> list[str]:
        """Listen on ``host``:``port``; returns the URLs listened on."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        urls = [f"http://{a[0]}:{a[1]}" for a in self._runner.addresses]
        log.info("metrics and health on %s (/metrics, /healthz)", ", ".join(urls))
        return urls

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_ops(cfg: Config, store: Store, service: Service) -> OpsServer | None:
    """The endpoint ``[metrics]`` asks for, listening; None when ``port = 0`` (off)."""
    m = cfg.metrics
    if m.port == 0:
        return None
    ops = OpsServer(store, service)
    try:
        await ops.start(m.listen, m.port)
    except OSError as exc:  # the port is taken, the address not ours
        await ops.stop()
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats it
        raise ConfigError(f"{cfg.path}: [metrics] cannot listen on {m.listen}:{m.port}: "
                          f"{why}") from exc
    return ops
