"""Real parts for bot tests: bundled replay data, an in-memory store, the real service/core."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from bot.commands.reply import Caller
from bot.config import AlertsSection, Config, SourceSection, TapeSection
from bot.store import Store
from bot.wiring import make_service

SYMBOL = "BTC/USDT:USDT"


def replay_config(**alerts: float) -> Config:
    """Replay of the bundled candles, console off; alert thresholds sized for proxy data."""
    base = Config()
    return replace(
        base,
        source=SourceSection(kind="replay", warmup_candles=19_500, lookback_days=60.0),
        alerts=AlertsSection(**{"min_usd": 1_000_000.0, **alerts}),
        console=replace(base.console, enabled=False),
    )


def write_liqs(path: Path, rows: list[tuple[int, str, float, float]]) -> Path:
    """A liquidations CSV as `liqbot record` writes it: (timestamp ms, side, price, USD)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "side", "price", "notional_usd"])
        w.writerows(rows)
    return path


def tape_config(path: Path, **tape: object) -> Config:
    """:func:`replay_config` with the liquidation CSV at ``path`` replayed as the tape."""
    cfg = replay_config()
    return replace(cfg, tape=TapeSection(enabled=True, path=str(path), **tape))  # type: ignore[arg-type]


async def started_service(cfg: Config | None = None, adapters=None):
    """(service, core, store) with one recompute done."""
    c = cfg or replay_config()
    store = Store(memory=True)
    service, core = make_service(c, store, adapters or [])
    await service.recompute(SYMBOL)
    return service, core, store


def private(user: str = "u1", chat: str = "c1") -> Caller:
    return Caller("console", chat, user)


def group(user: str, admin: bool, chat: str = "g1") -> Caller:
    return Caller("console", chat, user, is_group=True, is_admin=admin)
