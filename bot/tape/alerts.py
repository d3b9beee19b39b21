"""Alerts from real liquidations, without I/O: ``/subscribe_liqs`` windows and the tape seen
inside a cluster.

Events are grouped per symbol into windows aligned to ``window_ms`` (default one minute). For
each subscription, a closed window gives at most ONE alert: all its events when they sum to at
least the subscription's ``sum_usd`` (a cascade), else the events of at least ``min_usd`` each
(a single big liquidation, or a summary when several came in). So a flood of 500 events is one
message, and the alert's reference (``<symbol>@<window start>``) makes a window alert once per
chat, whatever restarts or reconnects happen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.alerts.events import AlertEvent, EventKind
from bot.tape.events import Liquidation
from estimator import Cluster

WINDOW_MS = 60_000
SUM_FACTOR = 10.0
"""Default cascade threshold: ``sum_usd`` = 10 × ``min_usd`` within one window."""


@dataclass(frozen=True)
class LiqSubscription:
    """A chat's liquidation alerts for one symbol (USD thresholds)."""

    chat: int
    symbol: str
    min_usd: float
    sum_usd: float


def window_alerts(events: Iterable[Liquidation], subs: Sequence[LiqSubscription],
                  window_ms: int = WINDOW_MS) -> list[AlertEvent]:
    """Alerts for the windows ``events`` fall in (the caller passes closed windows only)."""
    windows: dict[tuple[str, int], list[Liquidation]] = defaultdict(list)
    for e in events:
        windows[(e.symbol, e.timestamp // window_ms * window_ms)].append(e)
    by_symbol: dict[str, list[LiqSubscription]] = defaultdict(list)
    for s in subs:
        by_symbol[s.symbol].append(s)
    out: list[AlertEvent] = []
    for (symbol, start), evs in sorted(windows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        evs.sort(key=lambda e: (e.timestamp, e.exchange))
        total = sum(e.notional_usd for e in evs)
        for sub in by_symbol.get(symbol, ()):
            chosen = evs if total >= sub.sum_usd else [e for e in evs
                                                       if e.notional_usd >= sub.min_usd]
            if chosen:
                out.append(window_event(sub.chat, symbol, start, chosen))
    return out


def window_event(chat: int, symbol: str, start_ms: int,
                 events: Sequence[Liquidation]) -> AlertEvent:
    """One alert carrying ``events`` (non-empty, oldest first) of the window at ``start_ms``."""
    largest = max(events, key=lambda e: e.notional_usd)
    usd = {"long": 0.0, "short": 0.0}
    for e in events:
        usd[e.side] += e.notional_usd
    return AlertEvent(
        EventKind.LIQUIDATIONS, chat, symbol, f"{symbol}@{start_ms}", 0,
        price=events[-1].price, ts_ms=events[-1].timestamp, side=largest.side,
        low=min(e.price for e in events), high=max(e.price for e in events),
        notional_usd=largest.notional_usd, level_price=largest.price,
        note="+".join(sorted({e.exchange for e in events})), tape_count=len(events),
        long_usd=usd["long"], short_usd=usd["short"])


def seen_in(events: Iterable[Liquidation], side: str, low: float, high: float,
            slack_pct: float = 0.1) -> tuple[float, int]:
    """USD and count of ``side`` liquidations priced within [low, high] (± ``slack_pct`` %):
    the real liquidations that ate a cluster."""
    lo, hi = low * (1 - slack_pct / 100), high * (1 + slack_pct / 100)
    hits = [e.notional_usd for e in events if e.side == side and lo <= e.price <= hi]
    return sum(hits), len(hits)


def live_clusters(events: Iterable[Liquidation], clusters: Iterable[Cluster],
                  since_ms: int) -> dict[str, tuple[float, int]]:
    """Cluster id → (USD, count) of the real liquidations of its side that fell in it at or
    after ``since_ms``: the clusters the tape says are being eaten ("live")."""
    recent = [e for e in events if e.timestamp >= since_ms]
    marks = {c.id: seen_in(recent, c.side, c.low, c.high) for c in clusters}
    return {cid: mark for cid, mark in marks.items() if mark[1]}
