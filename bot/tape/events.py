"""Liquidation events and what is done with them without I/O: parsing ccxt's liquidation
structures, de-duplication and per-minute USD totals (alerts: :mod:`bot.tape.alerts`).

Sides are the side of the *liquidated position*: a SELL forced order closes a long
(``long``), a BUY forced order closes a short (``short``). Times in unix ms UTC, amounts in USD.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["long", "short"]
MINUTE_MS = 60_000

BINANCE_NOTE = ("Binance's liquidation stream sends at most one liquidation per second per "
                "symbol (the latest), so the tape undercounts real liquidations.")
"""Shown wherever tape figures from Binance are (``/status``, README)."""


@dataclass(frozen=True)
class Liquidation:
    """One forced order: ``amount`` in base units, ``price`` and ``notional_usd`` in USD."""

    exchange: str
    timestamp: int
    symbol: str
    side: Side
    price: float
    amount: float
    notional_usd: float

    @property
    def key(self) -> tuple[str, int, str, float, float]:
        """What identifies an event across a reconnect (the stream carries no id)."""
        return (self.exchange, self.timestamp, self.side, self.price, self.amount)


def parse_liquidation(exchange: str, raw: Mapping[str, Any],
                      market: Mapping[str, Any] | None = None) -> Liquidation | None:
    """A ccxt liquidation structure → :class:`Liquidation`; None when it is unusable.

    Linear contracts: notional = contracts × contractSize (1 when unknown) × price; inverse
    contracts are USD-denominated: notional = contracts × contractSize.
    """
    order_side = str(raw.get("side") or "").lower()
    side: Side | None = {"sell": "long", "buy": "short"}.get(order_side)  # type: ignore[assignment]
    try:
        ts = int(raw["timestamp"])
        price = float(raw["price"])
        contracts = float(raw["contracts"])
    except (KeyError, TypeError, ValueError):
        return None
    size = raw.get("contractSize") or (market or {}).get("contractSize") or 1.0
    try:
        size = float(size)
    except (TypeError, ValueError):
        return None
    if side is None or not (price > 0 and contracts > 0 and size > 0):
        return None
    if market is not None and market.get("inverse"):
        notional, amount = contracts * size, contracts * size / price
    else:
        amount = contracts * size
        notional = amount * price
    if not math.isfinite(notional):
        return None
    return Liquidation(exchange, ts, str(raw.get("symbol") or ""), side, price, amount, notional)


class Deduper:
    """Remembers the last ``capacity`` event keys; :meth:`fresh` is True once per key."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, int, str, float, float], None] = OrderedDict()

    def fresh(self, event: Liquidation) -> bool:
        if event.key in self._seen:
            return False
        self._seen[event.key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True


class MinuteTotals:
    """USD liquidated per (symbol, minute, side), keeping the last ``keep_minutes`` minutes."""

    def __init__(self, keep_minutes: int = 1440) -> None:
        self.keep_minutes = keep_minutes
        self._usd: dict[tuple[str, int], dict[str, float]] = defaultdict(
            lambda: {"long": 0.0, "short": 0.0})
        self._newest = 0

    def add(self, event: Liquidation) -> None:
        minute = event.timestamp // MINUTE_MS * MINUTE_MS
        self._usd[(event.symbol, minute)][event.side] += event.notional_usd
        if minute > self._newest:
            self._newest = minute
            cutoff = minute - self.keep_minutes * MINUTE_MS
            for k in [k for k in self._usd if k[1] <= cutoff]:
                del self._usd[k]

    def minutes(self, symbol: str) -> dict[int, dict[str, float]]:
        """Minute open (ms) → {"long": USD, "short": USD}, oldest first."""
        return {m: dict(v) for (s, m), v in sorted(self._usd.items()) if s == symbol}

    def total(self, symbol: str, since_ms: int = 0) -> dict[str, float]:
        """USD per side summed over the minutes opening at or after ``since_ms``."""
        out = {"long": 0.0, "short": 0.0}
        for (s, m), v in self._usd.items():
            if s == symbol and m >= since_ms:
                out["long"] += v["long"]
                out["short"] += v["short"]
        return out
