"""Charts draw on one renderer per thread and size, which keeps matplotlib's text caches
between charts; the pixels are exactly those of a fresh matplotlib canvas."""

from __future__ import annotations

import threading

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.charts import heatmap_figure, map_figure
from bot.charts.style import new_figure, to_png
from estimator import ClusterRule, build_book, build_heatmap, find_clusters
from tests.bot.chart_helpers import walk


def _charts() -> list[Figure]:
    c = walk(with_oi=True)
    book = build_book(c)
    clusters = find_clusters(book, ClusterRule(min_share=0.002))
    labels = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}
    return [heatmap_figure(c, build_heatmap(c, columns=120, start=len(c) - 168), clusters,
                           window_label="7d", size=(1333, 1011), **labels),
            map_figure(book, clusters, size=(1333, 1011), **labels)]


def _plain_pixels(fig: Figure) -> np.ndarray:
    """The figure drawn by matplotlib's own Agg canvas and renderer (no caches kept)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_charts_of_one_size_share_the_thread_renderer() -> None:
    a, b = new_figure((1300, 900)), new_figure((1300, 900))
    assert a.canvas.get_renderer() is b.canvas.get_renderer()
    assert new_figure((1200, 900)).canvas.get_renderer() is not a.canvas.get_renderer()
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(new_figure((1300, 900)).canvas
                                                      .get_renderer()))
    t.start()
    t.join()
    assert other[0] is not a.canvas.get_renderer()  # renderers are never shared by threads


def test_cached_text_draws_the_same_pixels_as_a_fresh_canvas() -> None:
    for _ in range(2):  # the second round draws every text from the caches
        for fig in _charts():
            to_png(fig)
            shared = np.asarray(fig.canvas.buffer_rgba()).copy()
            assert np.array_equal(shared, _plain_pixels(fig))
