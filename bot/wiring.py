"""Builds the parts a config asks for: market source, store, notifiers, command core."""

from __future__ import annotations

from pathlib import Path

from bot.adapters import ChatAdapter
from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import Config
from bot.console import ConsoleAdapter
from bot.market.base import MarketSource
from bot.market.replay import BUNDLED_CSV, ReplaySource, load_csv
from bot.service import Service
from bot.store import Store


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
    from bot.market.ccxt_source import CcxtSource

    cache = MarketCache(str(Path(cfg.bot.store).with_suffix(".market.db")))
    return CcxtSource(src.exchanges, timeframe=src.timeframe, lookback_days=src.lookback_days,
                      cache=cache)


def open_store(cfg: Config) -> Store:
    """The store file the config names, with the config's per-chat caps."""
    return Store(cfg.bot.store, max_subscriptions=cfg.limits.subscriptions_per_chat,
                 max_levels=cfg.limits.levels_per_chat)


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
                 adapters: list[ChatAdapter] | None = None) -> tuple[Service, CommandCore]:
    """The service and the command core sharing its board, store and source."""
    st = store if store is not None else open_store(cfg)
    chosen = make_adapters(cfg) if adapters is None else adapters
    service = Service(cfg, make_source(cfg), st, {a.platform: a.notifier for a in chosen})
    service.adapters = chosen
    core = CommandCore(cfg, service.board, service.source, st, ChartCache())
    return service, core
