"""Market data: live (ccxt) and replay sources behind one small interface."""

from bot.market.base import MarketSnapshot, MarketSource, PriceTick, timeframe_ms
from bot.market.replay import BUNDLED_CSV, ReplaySource, find_gaps, load_csv
from bot.market.symbols import normalise, resolve

__all__ = [
    "BUNDLED_CSV",
    "MarketSnapshot",
    "MarketSource",
    "PriceTick",
    "ReplaySource",
    "find_gaps",
    "load_csv",
    "normalise",
    "resolve",
    "timeframe_ms",
]
