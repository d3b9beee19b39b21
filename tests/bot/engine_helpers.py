"""Small builders for engine tests (real engine, no mocks)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.alerts import (
    AlertEvent,
    EngineConfig,
    Subscription,
    SymbolState,
    SymbolWatch,
    Tick,
    UserLevel,
    evaluate,
)
from estimator import Cluster

SYM = "BTC/USDT:USDT"
T0 = 1_764_072_000_000  # 2025-11-25 12:00 UTC, ms
MIN = 60_000


def short(cid: str = "S1", low: float = 94_000, high: float = 94_400,
          usd: float = 1.0e9) -> Cluster:
    return Cluster(id=cid, side="short", low=low, high=high, price=(low + high) / 2,
                   notional_usd=usd, distance_pct=0.0)


def long(cid: str = "L1", low: float = 90_800, high: float = 91_200,
         usd: float = 641e6) -> Cluster:
    return Cluster(id=cid, side="long", low=low, high=high, price=(low + high) / 2,
                   notional_usd=usd, distance_pct=0.0)


class Run:
    """Feeds ticks through the engine, keeping state; one tick per minute by default."""

    def __init__(self, subs: Sequence[Subscription] = (), levels: Sequence[UserLevel] = (),
                 config: EngineConfig | None = None) -> None:
        self.watch = SymbolWatch(SYM, subs, levels)
        self.state = SymbolState()
        self.config = config or EngineConfig()
        self.t = T0
        self.events: list[AlertEvent] = []

    def tick(self, price: float, clusters: Sequence[Cluster] = (), high: float | None = None,
             low: float | None = None, stale: bool = False, dt: int = MIN,
             oi_mix: str | None = None) -> list[AlertEvent]:
        self.t += dt
        tick = Tick(price=price, high=price if high is None else high,
                    low=price if low is None else low, ts_ms=self.t)
        ev, self.state = evaluate(self.state, SYM, tick, clusters, self.watch, stale=stale,
                                  oi_mix=oi_mix, config=self.config)
        self.events.extend(ev)
        return ev
