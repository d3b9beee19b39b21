"""to_png writes the canvas' pixels exactly (Pillow's encoder, RGB), read back by Pillow and by
matplotlib's reader."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.charts import heatmap_figure
from bot.charts.style import to_png
from estimator import ClusterRule, build_book, build_heatmap, find_clusters
from tests.bot.chart_helpers import decode, walk


def test_png_holds_exactly_the_rendered_pixels():
    c = walk(with_oi=True)
    fig = heatmap_figure(c, build_heatmap(c, columns=120, start=len(c) - 168),
                         find_clusters(build_book(c), ClusterRule(min_share=0.002)),
                         symbol="BTC/USDT", exchange="Binance", timeframe="1h",
                         window_label="7d", size=(1333, 811 + 200))
    png = to_png(fig)
    drawn = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (1333, 1011))
        assert np.array_equal(np.asarray(im), drawn)
    assert np.array_equal(np.rint(decode(png) * 255).astype(np.uint8), drawn)
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 100  # a real chart, not a blank
