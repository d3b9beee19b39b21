"""The liquidation heatmap: a real PNG of the asked size, with labels, footer, and no disk I/O."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from bot.charts import heatmap_figure, render_heatmap
from bot.charts.heatmap import price_range
from bot.charts.labels import cluster_label, visible_zones
from bot.charts.style import FOOTER, PANEL, PROXY_NOTE, new_figure, to_png
from estimator import ClusterRule, build_book, build_heatmap, find_clusters
from tests.bot.chart_helpers import by_gid, decode, png_size, texts, walk

RULE = ClusterRule(min_share=0.002)
LABELS = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}


def _inputs(with_oi: bool, window: int = 168):
    c = walk(with_oi=with_oi)
    clusters = find_clusters(build_book(c), RULE)
    return c, build_heatmap(c, columns=120, start=len(c) - window), clusters


@pytest.fixture(scope="module")
def proxy_inputs():
    return _inputs(with_oi=False)


@pytest.fixture(scope="module")
def proxy_png(proxy_inputs):
    c, hm, clusters = proxy_inputs
    return render_heatmap(c, hm, clusters, window_label="7d", **LABELS)


def test_png_decodes_at_the_default_size(proxy_png):
    assert png_size(proxy_png) == (1600, 1000)
    assert decode(proxy_png).shape[:2] == (1000, 1600)


def test_requested_size_is_exact():
    c, hm, clusters = _inputs(with_oi=True, window=12)
    png = render_heatmap(c, hm, clusters, window_label="12h", size=(1280, 820), **LABELS)
    assert png_size(png) == (1280, 820)
    assert decode(png).shape[:2] == (820, 1280)


def test_not_blank(proxy_png):
    pixels = decode(proxy_png)[:, :, :3]
    blank = decode(to_png(new_figure((1600, 1000))))[:, :, :3]
    assert float(blank.std(axis=(0, 1)).max()) < 1e-6  # the floor: an empty dark figure
    assert float(pixels.std(axis=(0, 1)).max()) > 0.05  # per-channel spread of the pixels
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # a colour scale, not two tones


def test_top_clusters_are_annotated(proxy_inputs):
    c, hm, clusters = proxy_inputs
    assert clusters, "fixture should produce clusters"
    fig = heatmap_figure(c, hm, clusters, window_label="7d", top_n=2, **LABELS)
    labels = by_gid(fig, "cluster")
    ylo, yhi = fig.axes[0].get_ylim()
    expected = visible_zones(clusters, ylo, yhi, 2)  # largest zones on the chart, per side
    assert len(labels) == len(expected) > 0
    for cl in expected:
        assert any(cluster_label(cl, sep="\n") in t for t in labels), cluster_label(cl)
    assert any(t.startswith("$") and " shorts\n" in t for t in labels)
    assert any(" longs\n" in t for t in labels)


def test_title_names_symbol_exchange_timeframe_window_and_utc_range(proxy_inputs):
    c, hm, clusters = proxy_inputs
    fig = heatmap_figure(c, hm, clusters, window_label="7d", **LABELS)
    (title,) = by_gid(fig, "title")
    assert all(s in title for s in ("BTC/USDT", "Binance", "1h", "7d"))
    assert any("UTC" in t.get_text() and "→" in t.get_text() for t in texts(fig))


def test_footer_names_the_proxy_only_when_used(proxy_inputs):
    c, hm, clusters = proxy_inputs
    assert hm.proxy
    (footer,) = by_gid(heatmap_figure(c, hm, clusters, window_label="7d", **LABELS), "footer")
    assert footer.startswith(FOOTER) and PROXY_NOTE in footer
    c2, hm2, clusters2 = _inputs(with_oi=True)
    assert not hm2.proxy
    (footer2,) = by_gid(heatmap_figure(c2, hm2, clusters2, window_label="7d", **LABELS),
                        "footer")
    assert footer2 == FOOTER


def test_y_axis_is_cropped_around_traded_prices(proxy_inputs):
    c, hm, clusters = proxy_inputs
    fig = heatmap_figure(c, hm, clusters, window_label="7d", **LABELS)
    ylo, yhi = fig.axes[0].get_ylim()
    win = c.slice(int(hm.candle_index[0]), int(hm.candle_index[-1]) + 1)
    assert ylo <= win.low.min() and yhi >= win.high.max()
    assert yhi / ylo < 1.6  # not the whole book (which spans far more)
    assert float(hm.prices[-1]) / float(hm.prices[0]) > yhi / ylo


@pytest.mark.parametrize(("low", "high"), [(100.0, 101.0), (90_000.0, 94_000.0), (5.0, 20.0)])
def test_price_range_pads_between_3_and_15_percent(low, high):
    lo, hi = price_range(low, high)
    mid = (low + high) / 2
    assert lo < low and hi > high
    assert 0.03 * mid - 1e-9 <= low - lo <= 0.15 * mid + 1e-9 or lo == 0.0


def test_renders_without_clusters_and_without_notional():
    c = walk(n=50, with_oi=False)
    flat = type(c)(c.timestamp, c.open, c.high, c.low, c.close, np.zeros(len(c)))
    hm = build_heatmap(flat, columns=24, start=len(c) - 24)
    fig = heatmap_figure(flat, hm, [], window_label="24h", **LABELS)
    assert by_gid(fig, "cluster") == []
    assert png_size(render_heatmap(flat, hm, [], window_label="24h", **LABELS)) == (1600, 1000)


def test_too_small_a_size_is_refused(proxy_inputs):
    c, hm, clusters = proxy_inputs
    with pytest.raises(ValueError, match="readable minimum"):
        heatmap_figure(c, hm, clusters, window_label="7d", size=(800, 600), **LABELS)


def test_mismatched_candles_are_refused(proxy_inputs):
    c, hm, clusters = proxy_inputs
    with pytest.raises(ValueError, match="not the series"):
        heatmap_figure(c.tail(100), hm, clusters, window_label="7d", **LABELS)


def test_nothing_is_written_to_disk(proxy_inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c, hm, clusters = proxy_inputs
    png = render_heatmap(c, hm, clusters, window_label="7d", **LABELS)
    assert png_size(png) == (1600, 1000)
    assert list(tmp_path.iterdir()) == []


def test_worker_threads_render_the_same_bytes(proxy_inputs, proxy_png):
    c, hm, clusters = proxy_inputs

    def job(_i: int) -> bytes:
        return render_heatmap(c, hm, clusters, window_label="7d", **LABELS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(job, range(2)))
    assert results == [proxy_png, proxy_png]


@pytest.mark.parametrize(("window", "hours"), [("12h", 12), ("24h", 24), ("3d", 72), ("7d", 168),
                                               ("30d", 720)])
def test_every_bot_window_spans_its_time(window, hours):
    c = walk(n=800, with_oi=True)
    hm = build_heatmap(c, columns=200, start=len(c) - hours)
    fig = heatmap_figure(c, hm, [], window_label=window, **LABELS)
    x0, x1 = fig.axes[0].get_xlim()
    assert (x1 - x0) * 24 == pytest.approx(hours)
    (title,) = by_gid(fig, "title")
    assert title.endswith(window)


def test_the_heatmap_norm_colours_like_matplotlibs_lognorm():
    """ShownLogNorm's plain-array path gives LogNorm's values bit for bit (clipped at both
    ends, NaN and masked buckets masked), and leaves set limits alone (no autoscaling)."""
    from matplotlib.colors import LogNorm

    from bot.charts.heatmap import ShownLogNorm

    rng = np.random.default_rng(3)
    z = rng.lognormal(10.0, 3.0, size=(40, 30))
    z[rng.random(z.shape) < 0.3] = np.nan
    masked = np.ma.masked_invalid(z)
    masked[0, :5] = np.ma.masked
    ours, theirs = ShownLogNorm(3e3, 2e6, clip=True), LogNorm(3e3, 2e6, clip=True)
    for value in (z, masked, np.array([1.0, 3e3, 2e6, 1e9, np.nan])):
        a, b = ours(value), theirs(value)
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        assert np.array_equal(np.ma.filled(a, -1.0), np.ma.filled(b, -1.0))
    ours.autoscale_None(np.array([1.0, 1e12]))
    assert (ours.vmin, ours.vmax) == (3e3, 2e6)
    assert ours(5e4) == theirs(5e4)  # scalars take LogNorm's own path


def test_covered_and_empty_parts_are_not_drawn_and_change_no_pixel(proxy_inputs):
    """The panel under a mesh that covers the whole view, the colour bar's tickless x axis and
    its panel under the colour solids are skipped: drawing them changes no pixel."""
    c, hm, clusters = proxy_inputs
    fig = heatmap_figure(c, hm, clusters, window_label="7d", **LABELS)
    ax, cax = fig.axes[0], fig.axes[1]
    hidden = [ax.patch, cax.xaxis, cax.patch]
    assert not any(a.get_visible() for a in hidden)
    to_png(fig)
    skipped = np.asarray(fig.canvas.buffer_rgba()).copy()
    for a in hidden:
        a.set_visible(True)
    to_png(fig)
    assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), skipped)


def test_one_heatmap_colormap_per_process(proxy_inputs):
    """The colormap (and its colour table) is made once, not for every chart."""
    from bot.charts.heatmap import _cmap

    c, hm, clusters = proxy_inputs
    figs = [heatmap_figure(c, hm, clusters, window_label="7d", **LABELS) for _ in range(2)]
    meshes = [next(a for a in f.axes[0].get_images()) for f in figs]
    assert meshes[0].cmap is meshes[1].cmap is _cmap()
    assert _cmap().get_bad().tolist() == list(to_rgba(PANEL))


def test_the_mesh_resamples_like_matplotlibs_pcolorimage(proxy_inputs):
    """The heatmap's image gathers its screen pixels in two takes; they are exactly
    matplotlib's PcolorImage pixels."""
    from matplotlib.image import PcolorImage

    c, hm, clusters = proxy_inputs
    fig = heatmap_figure(c, hm, clusters, window_label="7d", **LABELS)
    (mesh,) = fig.axes[0].get_images()
    assert isinstance(mesh, PcolorImage) and type(mesh) is not PcolorImage
    renderer = fig.canvas.get_renderer()
    ours = mesh.make_image(renderer)
    mesh._imcache = None
    theirs = PcolorImage.make_image(mesh, renderer)
    assert np.array_equal(ours[0], theirs[0]) and ours[1:3] == theirs[1:3]
