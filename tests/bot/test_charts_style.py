"""Chart formatting helpers and the package's public API."""

from __future__ import annotations

import pytest

import bot.charts
from bot.charts import money
from bot.charts.labels import cluster_label, spread
from bot.charts.style import FONT_PT, footer_text
from bot.fmt import price_text, utc_text
from estimator import Cluster


@pytest.mark.parametrize(("usd", "text"), [
    (1.04e9, "$1.0B"), (6.41e8, "$641M"), (999.6e6, "$1.0B"), (999.4e6, "$999M"),
    (48.3e6, "$48.3M"), (12_300, "$12.3K"), (950, "$950"), (0, "$0"), (2.5e12, "$2.5T"),
    (-3.2e6, "-$3.2M"), (float("nan"), "n/a"),
])
def test_money(usd, text):
    assert money(usd) == text


def test_price_and_time_text():
    assert price_text(94_000) == "94,000"
    assert price_text(2.5) == "2.50"
    assert utc_text(1_571_302_800_000) == "2019-10-17 09:00"


def test_footer_text():
    assert footer_text(False) == "Estimate, not exchange data"
    assert footer_text(True) == "Estimate, not exchange data · volume proxy (no open interest)"


def test_fonts_are_readable_on_a_phone():
    assert min(FONT_PT.values()) >= 10


def test_cluster_label_reads_like_the_seed_post():
    c = Cluster("S1", "short", 94_000, 94_400, 94_200, 1.0e9, 3.5)
    assert cluster_label(c) == "$1.0B shorts 94,000–94,400 (+3.5%)"


def test_spread_keeps_order_and_gap():
    out = spread([0.5, 0.51, 0.52, 2.0, -1.0], gap=0.1, lo=0.0, hi=1.0)
    assert all(0.0 <= y <= 1.0 for y in out)
    ordered = sorted(range(5), key=lambda i: [0.5, 0.51, 0.52, 2.0, -1.0][i])
    ys = [out[i] for i in ordered]
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(ys, ys[1:], strict=False))


def test_public_api_is_explicit():
    assert sorted(bot.charts.__all__) == sorted(
        n for n in vars(bot.charts) if not n.startswith("_")
        and n not in {"cache", "canvas", "heatmap", "liqmap", "skeleton", "style", "labels",
                      "ticks", "kept"})
    for name in bot.charts.__all__:
        assert hasattr(bot.charts, name)


def test_lines_and_spans_draw_like_matplotlibs_own() -> None:
    """style.add_line/add_hline/add_vline/add_vspan draw what Axes.plot, axhline, axvline and
    axvspan draw once the limits are set, and the labelled ones reach the legend."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from bot.charts import style

    def draw(ours: bool) -> tuple[np.ndarray, list[str]]:
        fig = Figure(figsize=(6, 4), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
        x = np.linspace(0.0, 10.0, 50)
        if ours:
            style.add_line(ax, x, np.sin(x), color="w", linewidth=1.6, label="close")
        else:
            ax.plot(x, np.sin(x), color="w", linewidth=1.6, label="close")
        ax.set_xlim(0.0, 10.0)
        ax.set_ylim(-1.5, 1.5)
        trans = ax.get_yaxis_transform()
        if ours:
            style.add_line(ax, [0.99, 0.99], [-0.5, 0.5], transform=trans, color="r",
                           linewidth=7, solid_capstyle="butt", clip_on=False, zorder=5)
            style.add_hline(ax, 0.3, color="w", linewidth=1.0, linestyle=(0, (4, 3)), alpha=0.9)
            style.add_vline(ax, 4.2, color="y", linewidth=1.4, zorder=5)
            style.add_vspan(ax, 2.0, 3.5, color="g", alpha=0.18, linewidth=0, zorder=0.5)
        else:
            ax.plot([0.99, 0.99], [-0.5, 0.5], transform=trans, color="r", linewidth=7,
                    solid_capstyle="butt", clip_on=False, zorder=5)
            ax.axhline(0.3, color="w", linewidth=1.0, linestyle=(0, (4, 3)), alpha=0.9)
            ax.axvline(4.2, color="y", linewidth=1.4, zorder=5)
            ax.axvspan(2.0, 3.5, color="g", alpha=0.18, linewidth=0, zorder=0.5)
        labels = ax.get_legend_handles_labels()[1]
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy(), labels

    (ours, our_labels), (theirs, their_labels) = draw(True), draw(False)
    assert our_labels == their_labels == ["close"]
    assert np.array_equal(ours, theirs)
