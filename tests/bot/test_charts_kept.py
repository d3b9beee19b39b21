"""A kept figure keeps its legend while the entries are the same, and a kept legend pastes its
last pixels only onto the same pixels: every PNG equals a new figure's."""

from __future__ import annotations

import numpy as np

from bot.charts import heatmap_figure, map_figure
from bot.charts.kept import KeptLegend
from bot.charts.style import BG, to_png
from estimator import ClusterRule, build_book, build_heatmap, find_clusters
from tests.bot.chart_helpers import walk

LABELS = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}


def _books():
    c = walk(with_oi=True)
    return [build_book(c.slice(0, len(c) - k)) for k in (0, 5, 9)]


def test_a_map_keeps_its_legend_and_its_pixels_while_the_entries_are_the_same() -> None:
    books = _books()
    legends, pngs = [], []
    for book in books:
        fig = map_figure(book, find_clusters(book, ClusterRule(min_share=0.002)), reuse=True,
                         **LABELS)
        pngs.append(to_png(fig))
        assert len(fig.legends) == 1
        legends.append(fig.legends[0])
    assert legends[0] is legends[1] is legends[2]
    assert isinstance(legends[0], KeptLegend) and legends[0]._snap is not None
    for book, png in zip(books, pngs, strict=True):
        new = map_figure(book, find_clusters(book, ClusterRule(min_share=0.002)), **LABELS)
        assert to_png(new) == png


def test_a_changed_legend_or_background_is_drawn_again() -> None:
    book = _books()[0]
    first = map_figure(book, [], reuse=True, **LABELS)
    to_png(first)
    leg = first.legends[0]
    # Other entries (the confirmed layer): a new legend, the old one removed.
    conf = (np.array([book.last_price * 0.97]), np.array([3e5]))
    fig = map_figure(book, [], confirmed=conf, reuse=True, **LABELS)
    assert fig.legends[0] is not leg and len(fig.legends) == 1
    assert to_png(fig) == to_png(map_figure(book, [], confirmed=conf, **LABELS))
    # Same entries, other pixels under the legend: drawn, not pasted.
    fig = map_figure(book, [], reuse=True, **LABELS)
    kept = fig.legends[0]
    to_png(fig)
    fig.patch.set_facecolor("#202020")  # this thread's kept map: set back below
    try:
        assert fig.legends[0] is kept and kept._snap is not None
        plain = map_figure(book, [], **LABELS)
        plain.patch.set_facecolor("#202020")
        assert to_png(fig) == to_png(plain)
    finally:
        fig.patch.set_facecolor(BG)


def test_a_legend_over_the_heatmap_is_kept_but_always_drawn() -> None:
    c = walk(with_oi=True)
    clusters = find_clusters(build_book(c), ClusterRule(min_share=0.002))
    legends = []
    for w in (168, 100):
        hm = build_heatmap(c, columns=120, start=len(c) - w)
        fig = heatmap_figure(c, hm, clusters, window_label="7d", reuse=True, **LABELS)
        legends.append(fig.axes[0].get_legend())
        png = to_png(fig)
        assert png == to_png(heatmap_figure(c, hm, clusters, window_label="7d", **LABELS))
    assert legends[0] is legends[1]
    assert isinstance(legends[0], KeptLegend) and not legends[0].keep_pixels


def test_titles_and_footers_are_kept_while_their_text_is_the_same() -> None:
    from bot.charts.kept import KeptText

    book = _books()[0]

    def texts(fig):
        return [t for t in fig.texts if t.get_text()]

    first = map_figure(book, [], reuse=True, **LABELS)
    to_png(first)
    kept = {t.get_gid() or t.get_text(): t for t in texts(first)}
    again = map_figure(book, [], reuse=True, **LABELS)
    assert again.texts[0] is kept["title"] and isinstance(kept["title"], KeptText)
    assert kept["title"]._snap is not None
    assert [t.get_text() for t in texts(again)] == [
        t.get_text() for t in texts(map_figure(book, [], **LABELS))]  # the same order
    other = map_figure(book, [], reuse=True, **{**LABELS, "symbol": "ETH/USDT"})
    titles = [t for t in other.texts if t.get_gid() == "title"]
    assert len(titles) == 1 and titles[0] is not kept["title"]
    assert titles[0].get_text().startswith("ETH/USDT")
    assert to_png(other) == to_png(map_figure(book, [], **{**LABELS, "symbol": "ETH/USDT"}))
