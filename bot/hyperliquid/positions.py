"""Real open positions from Hyperliquid's ``clearinghouseState`` and what is built from them
without I/O: the confirmed book (each wallet's latest state), confirmed clusters on the
estimator's price grid, exact per-side totals and coverage against open interest.

*Confirmed* means exchange-computed: each position's ``liquidationPx`` is Hyperliquid's own.
It is a sample (the wallets we have discovered and scanned) on one venue, never mixed into the
estimate. A position with a null ``liquidationPx`` (e.g. cross margin backed by enough equity
that no price liquidates it) counts for coverage but has no level.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.market.errors import MalformedResponse
from estimator.grid import PriceGrid


@dataclass(frozen=True)
class Position:
    """One open perpetual position: ``size`` signed coins (> 0 long), USD values, ``liq_px``
    None when Hyperliquid publishes none."""

    user: str
    coin: str
    size: float
    entry_px: float
    value_usd: float  # abs(positionValue)
    liq_px: float | None
    margin: str  # "cross" | "isolated"
    leverage: float

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"


def _num(raw: Any, where: str, *, positive: bool = False) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise MalformedResponse(f"{where}: not a number: {raw!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise MalformedResponse(f"{where}: bad value {raw!r}")
    return value


def parse_state(user: str, state: Any) -> list[Position]:
    """The open positions of one ``clearinghouseState`` response; raises
    :class:`MalformedResponse` naming the field when any part of it is unusable (a partial
    state is not a state: the wallet keeps its previous one)."""
    if not isinstance(state, Mapping):
        raise MalformedResponse(f"clearinghouseState {user}: not an object")
    entries = state.get("assetPositions")
    if not isinstance(entries, list):
        raise MalformedResponse(f"clearinghouseState {user}: assetPositions missing")
    out: list[Position] = []
    for i, entry in enumerate(entries):
        where = f"clearinghouseState {user}: assetPositions[{i}]"
        pos = entry.get("position") if isinstance(entry, Mapping) else None
        if not isinstance(pos, Mapping):
            raise MalformedResponse(f"{where}: no position")
        coin = pos.get("coin")
        if not isinstance(coin, str) or not coin:
            raise MalformedResponse(f"{where}.coin: {coin!r}")
        size = _num(pos.get("szi"), f"{where}.szi")
        if size == 0:
            continue  # nothing open
        lev = pos.get("leverage")
        if not isinstance(lev, Mapping) or lev.get("type") not in ("cross", "isolated"):
            raise MalformedResponse(f"{where}.leverage: {lev!r}")
        liq_raw = pos.get("liquidationPx")
        out.append(Position(
            user=user, coin=coin, size=size,
            entry_px=_num(pos.get("entryPx"), f"{where}.entryPx", positive=True),
            value_usd=abs(_num(pos.get("positionValue"), f"{where}.positionValue")),
            liq_px=None if liq_raw is None else _num(liq_raw, f"{where}.liquidationPx",
                                                     positive=True),
            margin=str(lev["type"]),
            leverage=_num(lev.get("value"), f"{where}.leverage.value", positive=True)))
    return out


def book_positions(states: Mapping[str, Any], coin: str | None = None) -> list[Position]:
    """Every open position in ``{user: state}`` (each wallet's latest), of ``coin`` if given."""
    out: list[Position] = []
    for user in sorted(states):
        out.extend(p for p in parse_state(user, states[user]) if coin is None or p.coin == coin)
    return out


@dataclass(frozen=True)
class ConfirmedCluster:
    """Adjacent grid buckets holding real liquidation prices of one side."""

    side: str
    low: float
    high: float
    notional_usd: float
    wallets: int
    positions: int
    distance_pct: float

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "low": self.low, "high": self.high,
                "notional_usd": self.notional_usd, "wallets": self.wallets,
                "distance_pct": self.distance_pct}


def confirmed_clusters(positions: Iterable[Position], price: float,
                       grid: PriceGrid) -> list[ConfirmedCluster]:
    """Runs of adjacent non-empty buckets of ``grid`` per side, largest notional first."""
    by_side: dict[str, dict[int, list[Position]]] = {"long": defaultdict(list),
                                                      "short": defaultdict(list)}
    for p in positions:
        if p.liq_px is not None:
            by_side[p.side][int(grid.index(p.liq_px))].append(p)
    out: list[ConfirmedCluster] = []
    for side, buckets in by_side.items():
        run: list[int] = []
        for k in sorted(buckets):
            if run and k != run[-1] + 1:
                out.append(_cluster(side, run, buckets, price, grid))
                run = []
            run.append(k)
        if run:
            out.append(_cluster(side, run, buckets, price, grid))
    return sorted(out, key=lambda c: (-c.notional_usd, c.side, c.low))


def _cluster(side: str, run: Sequence[int], buckets: Mapping[int, list[Position]], price: float,
             grid: PriceGrid) -> ConfirmedCluster:
    members = [p for k in run for p in buckets[k]]
    low, high = float(grid.edge(run[0])), float(grid.edge(run[-1] + 1))
    notional = math.fsum(p.value_usd for p in members)
    centre = math.fsum(p.value_usd * float(p.liq_px or 0.0) for p in members) / notional \
        if notional > 0 else (low + high) / 2
    return ConfirmedCluster(side, low, high, notional, len({p.user for p in members}),
                            len(members), (centre - price) / price * 100.0)


def confirmed_totals(positions: Iterable[Position]) -> dict[str, Any]:
    """Exact sums over every position with a non-null ``liquidationPx``: ``long_usd``,
    ``short_usd`` (abs positionValue), ``positions``, ``wallets``."""
    with_liq = [p for p in positions if p.liq_px is not None]
    return {"long_usd": math.fsum(p.value_usd for p in with_liq if p.size > 0),
            "short_usd": math.fsum(p.value_usd for p in with_liq if p.size < 0),
            "positions": len(with_liq), "wallets": len({p.user for p in with_liq})}


@dataclass(frozen=True)
class Coverage:
    """Sampled notional of ``coin`` against its open interest (USD = OI coins × mark)."""

    coin: str
    sampled_usd: float
    oi_usd: float
    wallets: int
    oldest_scan_ms: int | None

    @property
    def share(self) -> float:
        return self.sampled_usd / self.oi_usd if self.oi_usd > 0 else 0.0

    def text(self, now_ms: int) -> str:
        from bot.fmt import money
        age = "" if self.oldest_scan_ms is None else \
            f", oldest scan {max(0, now_ms - self.oldest_scan_ms) // 60_000} min"
        return (f"{money(self.sampled_usd)} of {money(self.oi_usd)} OI on {self.coin}, "
                f"{self.share * 100:.0f} %, {self.wallets:,} wallets{age}")


def coverage(coin: str, positions: Iterable[Position], ctx: Mapping[str, float],
             scanned_ms: Mapping[str, int] | None = None) -> Coverage:
    """``ctx`` = {"mark": USD, "oi": coins} from :func:`asset_contexts`. Open interest on
    Hyperliquid counts one side, so the sample is the long notional plus the short notional
    halved: both sides of every contract are positions somebody holds."""
    mine = [p for p in positions if p.coin == coin]
    sampled = math.fsum(p.value_usd for p in mine) / 2.0
    users = {p.user for p in mine}
    scans = [scanned_ms[u] for u in users if scanned_ms and u in scanned_ms]
    return Coverage(coin, sampled, float(ctx["oi"]) * float(ctx["mark"]), len(users),
                    min(scans) if scans else None)


def asset_contexts(body: Any) -> dict[str, dict[str, float]]:
    """``{coin: {"mark": USD, "oi": coins}}`` from a ``metaAndAssetCtxs`` response."""
    if not (isinstance(body, list) and len(body) == 2 and isinstance(body[0], Mapping)
            and isinstance(body[0].get("universe"), list) and isinstance(body[1], list)
            and len(body[0]["universe"]) == len(body[1])):
        raise MalformedResponse("metaAndAssetCtxs: not [meta, assetCtxs] of equal length")
    out: dict[str, dict[str, float]] = {}
    for i, (meta, ctx) in enumerate(zip(body[0]["universe"], body[1], strict=True)):
        if not (isinstance(meta, Mapping) and isinstance(ctx, Mapping)):
            raise MalformedResponse(f"metaAndAssetCtxs: entry {i} is not an object")
        name = meta.get("name")
        if not isinstance(name, str):
            raise MalformedResponse(f"metaAndAssetCtxs: universe[{i}].name {name!r}")
        out[name] = {"mark": _num(ctx.get("markPx"), f"metaAndAssetCtxs {name}.markPx",
                                  positive=True),
                     "oi": _num(ctx.get("openInterest"), f"metaAndAssetCtxs {name}.openInterest")}
    return out


def leverage_sample(positions: Iterable[Position]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(leverage, notional USD, is_long) arrays of the positions, for calibration."""
    ps = list(positions)
    return (np.array([p.leverage for p in ps], dtype=np.float64),
            np.array([p.value_usd for p in ps], dtype=np.float64),
            np.array([p.size > 0 for p in ps], dtype=bool))
