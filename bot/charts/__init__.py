"""liqbot charts: liquidation heatmap and liquidation map as PNG bytes, plus a render cache.

matplotlib's object API on the Agg canvas (no pyplot state), so charts render from worker
threads; nothing touches the disk. Every chart says it is an estimate.
"""

from bot.charts.cache import ChartCache, ChartKey
from bot.charts.heatmap import heatmap_figure, render_heatmap
from bot.charts.liqmap import map_figure, render_map
from bot.fmt import money

__all__ = [
    "ChartCache",
    "ChartKey",
    "heatmap_figure",
    "map_figure",
    "money",
    "render_heatmap",
    "render_map",
]
