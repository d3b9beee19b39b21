"""The liquidation map: stacked leverage bars, cumulative curves, labels, footer, no disk I/O."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from bot.charts import map_figure, render_map
from bot.charts.labels import cluster_label, visible_zones
from bot.charts.liqmap import _visible
from bot.charts.style import FOOTER, PROXY_NOTE
from bot.market.replay import load_csv
from estimator import Book, ClusterRule, build_book, find_clusters
from tests.bot.chart_helpers import by_gid, decode, png_size, texts, walk

RULE = ClusterRule(min_share=0.002)
LABELS = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "5m"}


@pytest.fixture(scope="module")
def proxy_book():
    book = build_book(walk(with_oi=False))
    return book, find_clusters(book, RULE)


@pytest.fixture(scope="module")
def proxy_png(proxy_book):
    book, clusters = proxy_book
    return render_map(book, clusters, **LABELS)


def test_png_decodes_has_size_and_is_not_blank(proxy_png):
    assert png_size(proxy_png) == (1600, 1000)
    pixels = decode(proxy_png)
    assert pixels.shape[:2] == (1000, 1600)
    assert float(pixels[:, :, :3].std(axis=(0, 1)).max()) > 0.05


def test_requested_size_is_exact(proxy_book):
    book, clusters = proxy_book
    assert png_size(render_map(book, clusters, size=(1200, 800), **LABELS)) == (1200, 800)


def test_one_stacked_band_per_leverage_with_a_legend(proxy_book):
    book, clusters = proxy_book
    fig = map_figure(book, clusters, **LABELS)
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert [b.get_label() for b in bands] == ["5x", "10x", "25x", "50x", "100x"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:5] == ["5x", "10x", "25x", "50x", "100x"]
    assert "cumulative longs" in legend and "cumulative shorts" in legend


def test_bars_conserve_the_visible_notional(proxy_book):
    book, _ = proxy_book
    last = book.last_price
    edges, longs, shorts = _visible(book, last * 0.85, last * 1.15)
    assert len(edges) == longs.shape[1] + 1 <= 161
    inside = (book.prices >= edges[0]) & (book.prices < edges[-1])
    assert longs.sum() == pytest.approx(book.long_usd[inside].sum(), rel=1e-9)
    assert shorts.sum() == pytest.approx(book.short_usd[inside].sum(), rel=1e-9)
    mid = (edges[:-1] + edges[1:]) / 2
    assert not longs.sum(axis=0)[mid > last].any()  # longs only below price
    assert not shorts.sum(axis=0)[mid < last].any()  # shorts only above


def test_cumulative_curves_grow_away_from_price(proxy_book):
    book, clusters = proxy_book
    fig = map_figure(book, clusters, **LABELS)
    lines = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    lx, ly = lines["cumulative longs"].get_data()
    sx, sy = lines["cumulative shorts"].get_data()
    assert np.all(np.diff(ly) <= 1e-6) and ly[-1] == 0 and lx[-1] == book.last_price
    assert np.all(np.diff(sy) >= -1e-6) and sy[0] == 0 and sx[0] == book.last_price


def test_top_clusters_are_annotated_and_price_is_marked(proxy_book):
    book, clusters = proxy_book
    assert clusters
    fig = map_figure(book, clusters, top_n=3, **LABELS)
    labels = by_gid(fig, "cluster")
    lo, hi = fig.axes[0].get_xlim()
    expected = visible_zones(clusters, lo, hi, 3)  # largest zones on the chart, per side
    assert len(labels) == len(expected) > 0
    for cl in expected:
        assert any(cluster_label(cl) in t for t in labels)
    (price,) = by_gid(fig, "current-price")
    assert price.endswith(f"{book.last_price:,.0f}")


def test_footer_names_the_proxy_only_when_used(proxy_book):
    book, clusters = proxy_book
    (footer,) = by_gid(map_figure(book, clusters, **LABELS), "footer")
    assert PROXY_NOTE in footer
    oi_book = build_book(walk(with_oi=True))
    assert not oi_book.proxy
    (footer2,) = by_gid(map_figure(oi_book, [], **LABELS), "footer")
    assert footer2 == FOOTER


def test_empty_book_renders_with_a_note():
    book = build_book(walk(n=40, with_oi=False))
    empty = Book(book.grid, book.k0, book.leverages, np.zeros_like(book.long_by_lev),
                 np.zeros_like(book.short_by_lev), book.last_price, book.timestamp, True)
    fig = map_figure(empty, [], **LABELS)
    assert any("No estimated liquidations" in t.get_text() for t in texts(fig))
    assert png_size(render_map(empty, [], **LABELS)) == (1600, 1000)


def test_nothing_is_written_to_disk(proxy_book, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    book, clusters = proxy_book
    assert png_size(render_map(book, clusters, **LABELS)) == (1600, 1000)
    assert list(tmp_path.iterdir()) == []


def test_bundled_data_map_has_labels(tmp_path, monkeypatch):
    from pathlib import Path

    import bot

    candles = load_csv(Path(bot.__file__).parent / "data" / "btcusd_coinbase_1h.csv")
    monkeypatch.chdir(tmp_path)
    book = build_book(candles)
    clusters = find_clusters(book, RULE)
    fig = map_figure(book, clusters, symbol="BTC/USD", exchange="Coinbase", timeframe="1h")
    lo, hi = fig.axes[0].get_xlim()
    assert len(by_gid(fig, "cluster")) == len(visible_zones(clusters, lo, hi, 3)) >= 4
    assert list(tmp_path.iterdir()) == []
