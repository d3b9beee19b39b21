"""The live liquidation tape (ccxt.pro websockets): events, totals, summaries, recording."""

from bot.tape.events import (
    BINANCE_NOTE,
    Deduper,
    Liquidation,
    MinuteTotals,
    describe,
    parse_liquidation,
    summarise,
)
from bot.tape.source import Backoff, FeedStatus, TapeSource, binance_ws_factory

__all__ = [
    "BINANCE_NOTE",
    "Backoff",
    "Deduper",
    "FeedStatus",
    "Liquidation",
    "MinuteTotals",
    "TapeSource",
    "binance_ws_factory",
    "describe",
    "parse_liquidation",
    "summarise",
]
