"""The confirmed book at one time, as the product shows it: ``levels --positions`` JSON and the
"Confirmed on Hyperliquid" lines under the estimate. Never mixed into the estimate: its own
clusters (same price grid), its own totals, its own wording ("confirmed", never "estimate").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.fmt import money, price_text
from bot.hyperliquid.positions import (
    ConfirmedCluster,
    Position,
    book_positions,
    confirmed_clusters,
    confirmed_totals,
)
from bot.hyperliquid.snapshots import SnapshotReplay
from estimator.grid import PriceGrid

CAVEAT = "a sample of wallets on one venue (Hyperliquid), not the whole market"
QUOTES = ("USDT", "USDC", "USD", "PERP")


def share_text(share: float) -> str:
    """A coverage share as % (two significant digits under 1 %: 0.15 %, never "0 %")."""
    pct = share * 100
    return f"{pct:.0f} %" if pct >= 1 or pct == 0 else f"{pct:.2g} %"


def coin_of(symbol: str) -> str:
    """Hyperliquid's coin name for a symbol label: ``BTC``, ``BTC/USDT:USDT``, ``BTCUSDT`` →
    ``BTC``."""
    base = symbol.split(":")[0].split("/")[0].upper()
    for quote in QUOTES:
        if base.endswith(quote) and len(base) > len(quote):
            return base[: -len(quote)]
    return base


@dataclass(frozen=True)
class ConfirmedView:
    coin: str
    t_ms: int
    price: float
    clusters: list[ConfirmedCluster]
    totals: dict[str, Any]
    positions: list[Position]
    oi_usd: float | None = None  # the coin's OI at t (USD), when known
    oi_label: str = "open interest in the candle file"  # whose OI (the live desk: Hyperliquid's)

    @property
    def wallets(self) -> int:
        return len({p.user for p in self.positions})

    @property
    def sampled_usd(self) -> float:
        """Long plus short notional halved: comparable with one-sided open interest."""
        return math.fsum(p.value_usd for p in self.positions) / 2.0

    @property
    def coverage(self) -> float | None:
        return self.sampled_usd / self.oi_usd if self.oi_usd else None

    def liquidation_prices(self) -> tuple[np.ndarray, np.ndarray]:
        """(liquidation price, USD) of every position that has one, for the map."""
        with_liq = [p for p in self.positions if p.liq_px is not None]
        return (np.array([p.liq_px for p in with_liq], dtype=np.float64),
                np.array([p.value_usd for p in with_liq], dtype=np.float64))

    def between(self, price: float, target: float) -> float:
        """Real notional a move from ``price`` to ``target`` would liquidate (USD): the
        positions on the side it liquidates (longs below price, shorts above) whose
        liquidation price lies between the two, both ends included. The /ifbreak
        confirmed part, never added to the estimate."""
        from estimator.cascade import side_for
        side = side_for(price, target)
        lo, hi = min(price, target), max(price, target)
        return math.fsum(p.value_usd for p in self.positions if p.liq_px is not None
                         and p.side == side and lo <= p.liq_px <= hi)

    def top(self, n: int) -> list[ConfirmedCluster]:
        """The ``n`` largest clusters per side (longs first), largest first."""
        return [c for side in ("long", "short")
                for c in [c for c in self.clusters if c.side == side][:n]]


def view_at(states: Mapping[str, Any], coin: str, t_ms: int, price: float, grid: PriceGrid,
            oi_usd: float | None = None) -> ConfirmedView:
    positions = book_positions(states, coin)
    return ConfirmedView(coin, t_ms, price, confirmed_clusters(positions, price, grid),
                         confirmed_totals(positions), positions, oi_usd)


def replay_view(replay: SnapshotReplay, coin: str, t_ms: int, price: float, grid: PriceGrid,
                oi_usd: float | None = None) -> ConfirmedView:
    """Each wallet's latest snapshot at or before ``t_ms``."""
    return view_at(replay.states_at(t_ms), coin, t_ms, price, grid, oi_usd)


def levels_object(clusters: list[dict[str, Any]], view: ConfirmedView, n: int) -> dict[str, Any]:
    """``levels --positions --json``: the estimated rows unchanged, then the confirmed ones."""
    return {"clusters": clusters, "confirmed": [c.as_dict() for c in view.top(n)],
            "confirmed_totals": view.totals}


def confirmed_lines(view: ConfirmedView, n: int) -> list[str]:
    """The "Confirmed on Hyperliquid" section (plain text)."""
    t = view.totals
    cov = "" if view.coverage is None else \
        f" = {share_text(view.coverage)} of {money(view.oi_usd or 0)} {view.oi_label}"
    head = [f"Confirmed on Hyperliquid (real positions, the exchange's liquidation prices; "
            f"{CAVEAT}):",
            f"  {t['positions']} positions in {t['wallets']} wallets have a liquidation price "
            f"(longs {money(t['long_usd'])}, shorts {money(t['short_usd'])}); sampled "
            f"{view.wallets} wallets holding {view.coin}, {money(view.sampled_usd)}{cov}"]
    rows = [f"  {c.side:<5}  {price_text(c.low)}–{price_text(c.high)}  "
            f"{money(c.notional_usd):>7}  {c.distance_pct:+.1f} %  {c.wallets} wallets"
            for c in view.top(n)]
    return [*head, *(rows or ["  no positions with a liquidation price in the sample"])]
