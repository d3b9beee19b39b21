"""Builds the parts a config asks for: market source, store, tape, notifiers, command core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot import store as store_module
from bot.adapters import ChatAdapter
from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import Config
from bot.console import ConsoleAdapter
from bot.db.dsn import is_dsn
from bot.hyperliquid.desk import make_desk
from bot.leases import SymbolLeases, worker_name
from bot.market.base import MarketSource
from bot.market.replay import BUNDLED_CSV, ReplaySource, load_csv
from bot.service import Service
from bot.store import Store
from bot.tape.feed import LiveFeed, ReplayFeed, TapeDesk, TapeFeed


def make_source(cfg: Config) -> MarketSource:
    """Replay (CSV on a virtual clock) or live (ccxt) source for ``cfg``."""
    src = cfg.source
    if src.kind == "replay":
        replay = ReplaySource(load_csv(src.path or BUNDLED_CSV), symbol=cfg.bot.symbols[0],
                              candles_per_tick=src.candles_per_tick, warmup=src.warmup_candles)
        # Estimate from the newest lookback_days of candles, like the live source.
        replay.window = max(int(src.lookback_days * 86_400_000 / replay.step_ms), 2)
        return replay
    from bot.market.cache import MarketCache  # ccxt is only imported for live use
    from bot.market.ccxt_source import CcxtSource, binance_factory

    # The candle cache is a local file beside a SQLite store; with a PostgreSQL store (several
    # processes, maybe machines) each process keeps its candles in memory.
    cache = (MarketCache() if store_is_postgres(cfg)
             else MarketCache(str(Path(cfg.bot.store).with_suffix(".market.db"))))
    # [source] rest_url: binanceusdm behind another base URL (a relay; the tests' fake).
    factory = binance_factory(src.rest_url) if src.rest_url else None
    return CcxtSource(src.exchanges, timeframe=src.timeframe, lookback_days=src.lookback_days,
                      cache=cache, exchange_factory=factory)


def store_is_postgres(cfg: Config) -> bool:
    """The config names a PostgreSQL store (shared by several processes), not a SQLite file."""
    return cfg.bot.store_dsn is not None or is_dsn(cfg.bot.store)


def store_dsn(cfg: Config) -> str:
    """The PostgreSQL DSN of a config for which :func:`store_is_postgres` holds."""
    return cfg.bot.store_dsn.reveal() if cfg.bot.store_dsn is not None else cfg.bot.store


def open_store(cfg: Config) -> Store:
    """The store the config names (:func:`bot.store.open_store`), with the config's per-chat
    caps: a SQLite file owned by this process (a second ``liqbot run`` on it is refused), or
    the PostgreSQL server of the config's DSN (shared)."""
    dsn = cfg.bot.store_dsn.reveal() if cfg.bot.store_dsn is not None else None
    return store_module.open_store(cfg.bot.store, dsn,
                                   max_subscriptions=cfg.limits.subscriptions_per_chat,
                                   max_levels=cfg.limits.levels_per_chat, exclusive=True)


def make_tape(cfg: Config, store: Store, clock: Callable[[], int]) -> TapeDesk | None:
    """The liquidation tape the config enables: a recorded CSV in replay, websockets live."""
    t = cfg.tape
    if not t.enabled:
        return None
    feed: TapeFeed
    if cfg.source.kind == "replay":
        feed = ReplayFeed(t.path, cfg.bot.symbols[0])
    else:
        from bot.tape.source import (  # ccxt.pro: live only
            TapeSource,
            WsFactory,
            binance_ws_factory,
            bybit_ws_factory,
        )

        factory: WsFactory | None = None
        if t.ws_url or t.rest_url:  # the config allows them for binanceusdm or bybit alone
            factory = (bybit_ws_factory(t.ws_url, t.rest_url) if t.exchanges == ("bybit",)
                       else binance_ws_factory(t.ws_url, t.rest_url))
        feed = LiveFeed(TapeSource(cfg.bot.symbols, t.exchanges, factory))
    return TapeDesk(feed, store, cfg.bot.symbols, window_ms=int(t.window_seconds * 1000),
                    keep_ms=int(t.keep_hours * 3_600_000), clock=clock)


def make_adapters(cfg: Config) -> list[ChatAdapter]:
    """The chat adapters the config enables (console first)."""
    adapters: list[ChatAdapter] = []
    if cfg.console.enabled:
        adapters.append(ConsoleAdapter(cfg.console))
    if cfg.telegram.enabled:
        from bot.telegram_adapter import TelegramAdapter  # PTB is imported only when used

        adapters.append(TelegramAdapter(cfg.telegram))
    if cfg.discord.enabled:
        from bot.discord_adapter import DiscordAdapter  # discord.py is imported only when used

        adapters.append(DiscordAdapter(cfg.discord))
    return adapters


def make_service(cfg: Config, store: Store | None = None,
                 adapters: list[ChatAdapter] | None = None,
                 role: str = "all") -> tuple[Service, CommandCore]:
    """The service and the command core sharing its board, store and source; a market
    worker (``role``) with its symbol leases (:mod:`bot.leases`)."""
    st = store if store is not None else open_store(cfg)
    chosen = make_adapters(cfg) if adapters is None else adapters
    leases = (SymbolLeases(st, worker_name(cfg.cluster.worker),
                           int(cfg.cluster.lease_seconds * 1000)) if role == "market" else None)
    service = Service(cfg, make_source(cfg), st, {a.platform: a.notifier for a in chosen},
                      role=role, leases=leases)
    service.tape = make_tape(cfg, st, service.dispatcher.clock)
    service.positions = make_desk(cfg.positions, st, list(cfg.bot.symbols))
    service.adapters = chosen
    core = CommandCore(cfg, service.board, service.source, st, ChartCache(), tape=service.tape,
                       positions=service.positions, ondemand=service.ondemand,
                       on_request_only=role == "chat")
    return service, core
