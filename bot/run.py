"""``liqbot run``: the long-running bot in one asyncio loop until SIGINT/SIGTERM.

``--role`` (:data:`bot.service.ROLES`) picks what this process does on a shared PostgreSQL
store: ``all`` (the default) everything, alone; ``market`` the market jobs for the symbols it
leases; ``dispatch`` sends outbox alerts (the adapters connect for sending only); ``chat``
answers commands (the adapters receive updates; no alert is sent from here)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable

from bot.config import Config
from bot.errors import ConfigError, UsageError
from bot.leases import worker_name
from bot.ops_http import start_ops
from bot.platform_start import AdapterStarter
from bot.role_lock import RoleLock
from bot.service import ROLES
from bot.wiring import make_service, open_store, store_dsn, store_is_postgres

log = logging.getLogger(__name__)

# The whole stop, whatever the platforms are doing (issue 24; Docker's default stop timeout is
# 10 s): the service's own budget (bot.service.STOP_BUDGET_S) and then the adapters with the rest.
STOP_S = 4.5
CANCEL_GRACE_S = 0.1  # for what is cut off to unwind


def check_role(cfg: Config, role: str) -> None:
    """Roles other than ``all`` share a PostgreSQL store; refused (before anything is opened)
    on a SQLite one."""
    if role not in ROLES:
        raise UsageError(f"--role {role!r}: must be one of {', '.join(ROLES)}")
    if role != "all" and not store_is_postgres(cfg):
        raise UsageError(f"--role {role} needs a PostgreSQL store shared by the workers "
                         f"({cfg.path}: [bot] store = \"postgresql://…\" or store_dsn_env); "
                         "a SQLite store serves one process: use --role all")


def remember_stop_signals() -> list[int]:
    """Until :func:`run` takes SIGINT/SIGTERM over, note them instead of letting them raise
    KeyboardInterrupt at some point of the start-up (or asyncio cancel the task half-way
    through it, a cancellation start-up code can lose: the bot then ran on, deaf to the
    Ctrl-C). Pass the list to :func:`run`: a noted signal stops the bot, cleanly, as soon
    as it is up."""
    noted: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: noted.append(signum))
    return noted


async def run(cfg: Config, role: str = "all", noted: list[int] | None = None) -> int:
    """Start the service and the adapters of ``role``; stop cleanly on a signal (or on one
    already ``noted`` by :func:`remember_stop_signals`); exit 0."""
    check_role(cfg, role)
    # PostgreSQL: one `all` process or role workers on a database, not both (bot.role_lock).
    lock = RoleLock(store_dsn(cfg), role, worker_name(cfg.cluster.worker)) \
        if store_is_postgres(cfg) else None
    try:
        store = open_store(cfg)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if noted:  # a signal came while starting: stop once up (every part started is stopped)
        stop.set()
    # A market worker talks to no chat platform; the others build the configured adapters.
    service, core = make_service(cfg, store, [] if role == "market" else None, role=role)
    # A platform unreachable at start is retried in the background (bot.platform_start).
    starter = AdapterStarter(stop)
    view = ops = None
    try:
        ops = await start_ops(cfg, store, service)  # /metrics + /healthz ([metrics] port)
        await service.start()
        for adapter in service.adapters:
            await starter.start(adapter, lambda a: a.start_notifier(core) if role == "dispatch"
                                else a.start(core))  # dispatch: sends alerts, no commands
        # The web view, in this loop, on the service's estimates (market: the symbols it holds).
        if cfg.web.enabled and role in ("all", "market"):
            from bot.web.server import WebView, bot_token

            view = WebView(core, bot_token(cfg))
            try:
                await view.start(cfg.web.listen, cfg.web.port)
            except OSError as exc:  # the port is taken, the address not ours
                raise ConfigError(f"{cfg.path}: [web] cannot listen on {cfg.web.listen}:"
                                  f"{cfg.web.port}: {exc.strerror or exc}") from exc
        log.info("liqbot running (role %s): %s from %s via %s; Ctrl-C stops", role,
                 ", ".join(cfg.bot.symbols), cfg.source.kind,
                 ", ".join(a.platform for a in service.adapters) or "no adapter")
        await stop.wait()
        log.info("stopping: finishing running jobs")
    finally:
        end = loop.time() + STOP_S
        await starter.cancel()
        # The service first: its jobs finish, sends in flight are cut off back to 'pending'.
        await _within(end, {**({"the web view": view.stop()} if view is not None else {}),
                            **({"the metrics endpoint": ops.stop()} if ops is not None else {})})
        await _within(end, {"the service": service.stop()})
        await _within(end, {**{f"the {a.platform} adapter": a.stop() for a in starter.attempted},
                            "the market source": service.source.close()})
        ok = store.integrity_ok()
        store.close()
        if lock is not None:
            lock.release()
        log.info("stopped (store integrity %s)", "ok" if ok else "FAILED")
    if starter.fatal is not None:  # a retried start found the token rejected: exit 2
        raise starter.fatal
    return 0


async def _within(end: float, steps: dict[str, Awaitable[None]]) -> None:
    """Run the stop ``steps`` together until ``end`` (loop time); cancel those still running
    and name them in one line. One step failing never blocks the others."""
    tasks = {asyncio.ensure_future(aw): name for name, aw in steps.items()}
    if not tasks:
        return
    loop = asyncio.get_running_loop()
    done, late = await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()))
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("stopping %s failed", tasks[task], exc_info=exc)
    if late:
        for task in late:
            task.cancel()
        await asyncio.wait(late, timeout=CANCEL_GRACE_S)
        log.warning("stop: cut off %s after %.1f s", ", ".join(tasks[t] for t in late), STOP_S)
