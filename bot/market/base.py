"""The market-data seam: what every source (live ccxt, CSV replay) returns and offers.

The service codes against :class:`MarketSource`; tests and offline runs swap in the replay source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from estimator import Candles, TierTable

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Length of a ccxt timeframe string (``"5m"``, ``"1h"``, ``"1d"``) in ms."""
    unit = timeframe[-1:]
    try:
        amount = int(timeframe[:-1])
    except ValueError:
        amount = 0
    if unit not in _UNIT_MS or amount <= 0:
        raise ValueError(f"timeframe: expected e.g. '5m', '1h', '1d', got {timeframe!r}")
    return amount * _UNIT_MS[unit]


def is_stale(newest_open_ms: int, now_ms: int, tf_ms: int) -> bool:
    """True when the newest candle opened more than 2 timeframes before ``now_ms``.

    A healthy feed's newest (possibly still forming) candle opened < 1 timeframe ago; we allow
    one missed candle before calling the data stale.
    """
    return now_ms - newest_open_ms > 2 * tf_ms


@dataclass(frozen=True)
class MarketSnapshot:
    """Candles for one symbol plus what is known about their quality.

    - ``candles``: ascending, the estimator's input (OI in USD, taker-buy volume in base units).
    - ``now_ms``: the source's clock when fetched (wall clock live, virtual clock in replay).
    - ``stale``: newest candle older than 2 timeframes — never alert on stale data.
    - ``oi_sources``: exchanges whose OI was summed into ``candles.open_interest_usd``.
    - ``oi_notes``: per-exchange coverage notes (e.g. ``{"bybit": "missing: timeout"}``).
    - ``taker_source``: where the long/short split comes from ("binance klines" or
      "candle colour").
    - ``tiers``: leverage tiers for the symbol (None = use the default table);
      ``tiers_source`` says where they came from.
    - ``warnings``: short user-presentable caveats (proxy, fallbacks, partial coverage).
    """

    symbol: str
    timeframe: str
    candles: Candles
    now_ms: int
    stale: bool
    oi_sources: tuple[str, ...] = ()
    oi_notes: dict[str, str] = field(default_factory=dict)
    taker_source: str = "candle colour"
    tiers: TierTable | None = None
    tiers_source: str = "default table"
    warnings: tuple[str, ...] = ()

    @property
    def proxy(self) -> bool:
        """True when there is no OI series and the estimator will use the volume proxy."""
        return self.candles.open_interest_usd is None

    @property
    def last_close(self) -> float:
        """Close of the newest candle (USD)."""
        return float(self.candles.close[-1])


@dataclass(frozen=True)
class PriceTick:
    """The latest price and the range traded since the previous tick (USD, time in ms).

    The threshold engine needs ``high``/``low`` to see a cluster that was crossed and reverted
    between two ticks.
    """

    symbol: str
    price: float
    high: float
    low: float
    timestamp: int


@runtime_checkable
class MarketSource(Protocol):
    """A source of candles and prices; live (ccxt) and replay implement it."""

    async def normalise(self, user_text: str) -> str:
        """Unified symbol (``BTC/USDT:USDT``) for user input; raises BadSymbolError."""
        ...

    async def fetch(self, symbol: str) -> MarketSnapshot:
        """Candles (with OI/taker data where known) for a unified symbol."""
        ...

    async def last_price(self, symbol: str, since_ms: int | None = None) -> PriceTick:
        """Latest price and the traded range since ``since_ms`` (the engine's previous tick,
        which survives a restart), else since the previous call."""
        ...

    async def close(self) -> None:
        """Release network sessions / files."""
        ...
