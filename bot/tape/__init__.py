"""The live liquidation tape: events and alerts (no I/O here), the ccxt.pro websocket feed
(:mod:`bot.tape.source`, imported on use: it loads ccxt), its place in the service
(:mod:`bot.tape.feed`), store tables (:mod:`bot.tape.tables`) and ``liqbot record``."""

from bot.tape.events import BINANCE_NOTE, Deduper, Liquidation, MinuteTotals, parse_liquidation

__all__ = ["BINANCE_NOTE", "Deduper", "Liquidation", "MinuteTotals", "parse_liquidation"]
