"""Alerts: the pure threshold engine, typed events and their neutral wording."""

from bot.alerts.engine import (
    DEFAULT_CONFIG,
    EngineConfig,
    Subscription,
    SymbolState,
    SymbolWatch,
    Tick,
    UserLevel,
    clusters_from_dicts,
    evaluate,
    near_distance_pct,
)
from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.messages import render

__all__ = [
    "DEFAULT_CONFIG",
    "AlertEvent",
    "EngineConfig",
    "EventKind",
    "Subscription",
    "SymbolState",
    "SymbolWatch",
    "Tick",
    "UserLevel",
    "clusters_from_dicts",
    "evaluate",
    "near_distance_pct",
    "render",
]
