"""Walk-forward backtest of the estimate: do its clusters get touched more than a level at the
same distance on a random side (the b1 baseline)? Pure computation; the CLI reads the files."""

from bot.backtest.liquidations import Liquidations, load_liquidations
from bot.backtest.run import BacktestOptions, format_text, run_backtest, with_model

__all__ = [
    "BacktestOptions",
    "Liquidations",
    "format_text",
    "load_liquidations",
    "run_backtest",
    "with_model",
]
