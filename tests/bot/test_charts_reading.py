"""Issue 19, charts as a trader reads them: zones labelled where the eye is, in a margin with
leader lines, an honest title and scale, colours told apart with colour-blind eyes too."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm

from bot.charts import heatmap_figure, map_figure
from bot.charts.labels import visible_zones
from bot.charts.liqmap import leverage_colours
from bot.charts.style import chart_title
from bot.cli import main
from bot.config import Config, model_params
from bot.estimates import window_heatmap
from bot.fmt import money
from bot.market.replay import BUNDLED_CSV, load_csv, replay_is_spot, replay_label
from estimator import Book, build_book, build_heatmap, find_clusters
from tests.bot.chart_helpers import CVD, by_gid, delta_e, texts, walk

LABELS = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}
RANGE = re.compile(r"([\d,.]+)–([\d,.]+)")


@pytest.fixture(scope="module")
def bundled():
    """The bundled Coinbase candles, book and clusters as `liqbot chart` builds them."""
    candles = load_csv(BUNDLED_CSV)
    params = model_params(Config())
    return candles, params, find_clusters(build_book(candles, params))


def _ranges(labels: list[str]) -> list[tuple[float, float]]:
    out = []
    for text in labels:
        m = RANGE.search(text)
        assert m, text
        out.append((float(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))))
    return out


@pytest.mark.parametrize("window", ["12h", "24h"])
def test_short_windows_label_the_largest_zones_on_the_chart(bundled, window):
    candles, params, clusters = bundled
    fig = heatmap_figure(candles, window_heatmap(candles, params, window), clusters,
                         window_label=window, **LABELS)
    ylo, yhi = fig.axes[0].get_ylim()
    labels = by_gid(fig, "cluster")
    assert labels, "the bands next to price must be labelled"
    for low, high in _ranges(labels):  # every labelled zone is (partly) on the chart
        assert high >= ylo and low <= yhi, (low, high, ylo, yhi)
    assert not any(t.startswith(("↑", "↓")) for t in labels)
    assert len(labels) == len(visible_zones(clusters, ylo, yhi, 3))


def test_touching_clusters_are_one_label_on_both_charts(bundled):
    candles, params, clusters = bundled
    book = build_book(candles, params)
    heat = heatmap_figure(candles, window_heatmap(candles, params, "30d"), clusters,
                          window_label="30d", **LABELS)
    liq = map_figure(book, clusters, **LABELS)
    for fig in (heat, liq):
        labels = by_gid(fig, "cluster")
        assert any("$6.0M shorts" in t and "8,826–9,168" in t for t in labels), labels
        spans = sorted(_ranges(labels))
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans


def test_labels_sit_in_a_right_margin_with_leader_lines_and_prices_on_both_sides(bundled):
    candles, params, clusters = bundled
    fig = heatmap_figure(candles, window_heatmap(candles, params, "30d"), clusters,
                         window_label="30d", **LABELS)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax, cax = fig.axes[0], fig.axes[1]
    right_ticks = [t.label2 for t in ax.yaxis.get_major_ticks()
                   if t.label2.get_visible() and t.label2.get_text()]
    assert len(right_ticks) >= 3  # price axis on the right too
    ticks_end = max(t.get_window_extent(renderer).x1 for t in right_ticks)
    notes = [t for t in texts(fig) if t.get_gid() == "cluster"]
    assert notes
    boxes = [n.get_bbox_patch().get_window_extent(renderer) for n in notes]
    for note, box in zip(notes, boxes, strict=True):
        assert box.x0 > ax.bbox.x1 and box.x0 >= ticks_end  # off the data and the prices
        assert box.x1 < cax.bbox.x0 and box.y0 >= ax.bbox.y0 - 1 and box.y1 <= ax.bbox.y1 + 1
        assert note.arrow_patch is not None  # the leader line to the zone
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)


def test_title_has_one_timeframe_and_spot_data_is_not_a_perpetual(bundled):
    candles, params, clusters = bundled
    assert replay_is_spot(None) and not replay_is_spot("BTCUSDT_1h.csv")
    hm = window_heatmap(candles, params, "24h")
    fig = heatmap_figure(candles, hm, clusters, symbol="BTC/USDT:USDT",
                         exchange=replay_label(None), timeframe="1h", window_label="24h",
                         spot=True)
    (title,) = by_gid(fig, "title")
    assert title == "BTC spot liquidation heatmap · replay: Coinbase BTC-USD · 1h · 24h"
    (map_title,) = by_gid(map_figure(build_book(candles, params), clusters,
                                     symbol="BTC/USDT:USDT", exchange=replay_label(None),
                                     timeframe="1h", spot=True), "title")
    assert map_title == "BTC spot liquidation map · replay: Coinbase BTC-USD · 1h"
    # A source label that already names the timeframe does not get it twice.
    assert chart_title("liquidation map", "ETH/USDT:USDT", "replay: Coinbase ETH-USD 1h",
                       "1h") == "ETH/USDT:USDT liquidation map · replay: Coinbase ETH-USD 1h"


def _mesh(fig):
    (mesh,) = [a for a in fig.axes[0].get_children()
               if isinstance(a, ScalarMappable) and isinstance(a.norm, LogNorm)]
    return mesh


def test_colour_bar_shows_its_top_value_and_names_proxy_units(bundled):
    candles, params, clusters = bundled
    hm = window_heatmap(candles, params, "7d")
    fig = heatmap_figure(candles, hm, clusters, window_label="7d", **LABELS)
    fig.canvas.draw()
    cax = fig.axes[1]
    vmax = _mesh(fig).norm.vmax
    assert cax.get_yticks()[-1] == pytest.approx(vmax)
    shown = [t.get_text() for t in cax.get_yticklabels()]
    assert shown[-1] == money(vmax) and len(set(shown)) == len(shown)
    assert hm.proxy and "proxy units, not USD" in cax.get_ylabel()
    oi = walk(with_oi=True)
    fig2 = heatmap_figure(oi, build_heatmap(oi, columns=60, start=len(oi) - 168),
                          find_clusters(build_book(oi)), window_label="7d", **LABELS)
    assert fig2.axes[1].get_ylabel().endswith("(USD)")


def test_lowest_non_zero_colour_differs_from_the_empty_background(bundled):
    candles, params, clusters = bundled
    fig = heatmap_figure(candles, window_heatmap(candles, params, "24h"), clusters,
                         window_label="24h", **LABELS)
    mesh = _mesh(fig)
    z = mesh.get_array()
    assert np.ma.getmaskarray(z).any()  # empty buckets on this chart: drawn in the "bad" colour
    lowest = mesh.get_cmap()(mesh.norm(float(z.min())))  # = every below-scale bucket
    empty = mesh.get_cmap().get_bad()
    panel = fig.axes[0].get_facecolor()
    for vision in CVD:
        assert delta_e(lowest, empty, vision) >= 10, vision
        assert delta_e(lowest, panel, vision) >= 10, vision


def test_heatmap_says_when_its_window_starts_before_enough_history():
    c = walk(n=800, with_oi=True)
    short = heatmap_figure(c, build_heatmap(c, columns=100, start=len(c) - 720), [],
                           window_label="30d", **LABELS)  # 80 h of data before 720 h shown
    (note,) = by_gid(short, "history-note")
    assert "No candles before" in note and "under-filled" in note
    short.canvas.draw()  # six-digit prices: every text (labels, colour-bar title) fits
    renderer = short.canvas.get_renderer()
    for t in texts(short):
        box = t.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= 1600 and box.y0 >= 0 and box.y1 <= 1000, t.get_text()
    long = heatmap_figure(c, build_heatmap(c, columns=100, start=len(c) - 168), [],
                          window_label="7d", **LABELS)
    assert by_gid(long, "history-note") == []


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_leverage_bands_differ_for_colour_blind_eyes(n):
    colours = leverage_colours(n)
    for vision in CVD:
        for a, b in itertools.combinations(colours, 2):
            assert delta_e(a, b, vision) >= 10, (vision, a, b)
        for c in colours:
            assert delta_e(c, "#131722", vision) >= 20  # every band stands off the panel


def test_map_bars_use_those_colours_and_name_proxy_units(bundled):
    candles, params, clusters = bundled
    book = build_book(candles, params)
    fig = map_figure(book, clusters, **LABELS)
    ax, ax2 = fig.axes[0], fig.axes[1]
    assert book.proxy and "proxy units, not USD" in ax.get_ylabel()
    assert "proxy units, not USD" in ax2.get_ylabel()
    legend = {h.get_label(): tuple(h.get_facecolor()[0]) for h in ax.collections
              if h.get_label().endswith("x")}
    want = dict(zip([f"{v:g}x" for v in book.leverages], leverage_colours(len(book.leverages)),
                    strict=True))
    assert legend == {k: pytest.approx(v) for k, v in want.items()}


def test_empty_map_has_no_made_up_scale():
    book = build_book(walk(n=40, with_oi=False))
    empty = Book(book.grid, book.k0, book.leverages, np.zeros_like(book.long_by_lev),
                 np.zeros_like(book.short_by_lev), book.last_price, book.timestamp, True)
    fig = map_figure(empty, [], **LABELS)
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        assert [t.get_text() for t in ax.get_yticklabels() if t.get_text()] == []


def test_window_with_a_map_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "map.png"
    assert main(["chart", "BTC", "--kind", "map", "--window", "3d", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--window" in err and "heatmap" in err
    assert not out.exists()


def test_a_zone_is_live_when_any_of_its_clusters_is(bundled):
    candles, params, clusters = bundled
    members = [c for c in clusters if c.side == "short" and 8_800 < c.price < 9_200]
    smallest = min(members, key=lambda c: c.notional_usd)
    assert len(members) == 3
    fig = heatmap_figure(candles, window_heatmap(candles, params, "30d"), clusters,
                         window_label="30d", live={smallest.id}, **LABELS)
    (live,) = [t for t in by_gid(fig, "cluster") if "· LIVE" in t]
    assert "$6.0M shorts · LIVE\n8,826–9,168" in live
