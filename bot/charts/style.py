"""Shared look of liqbot charts: dark theme, sizes, fonts, human money and price formats."""

from __future__ import annotations

import io
from typing import Any

from matplotlib.axes import Axes
from matplotlib.axis import GRIDLINE_INTERPOLATION_STEPS
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from bot.charts.canvas import SharedRendererCanvas
from bot.charts.kept import kept_text
from bot.charts.skeleton import Skeleton

DPI = 100  # pixels per inch: a (1600, 1000) px chart is a 16 × 10 in figure
MIN_SIZE = (1200, 800)  # px, smallest size that stays readable on a phone

BG = "#0e1117"  # figure background
PANEL = "#131722"  # axes background
GRID = "#2a2e39"
TEXT = "#d1d4dc"
MUTED = "#8a8f98"
PRICE = "#ffffff"  # price path and current-price line
LONG = "#26a69a"  # longs get liquidated below price (green, as on exchange screens)
SHORT = "#ef5350"  # shorts above price (red)
ACCENT = "#ffd54f"  # cluster labels
HEATMAP_CMAP = "viridis"  # perceptually uniform, readable on dark backgrounds
# Leverage bands, low → high: Okabe–Ito blue, sky blue, reddish purple, orange, yellow, then
# vermillion and bluish green (kept last: they resemble the short/long colours).
LEVERAGE = ("#0072B2", "#56B4E9", "#CC79A7", "#E69F00", "#F0E442", "#D55E00", "#009E73")

FONT_PT = {"title": 17, "label": 13, "tick": 12, "note": 12, "footer": 11}  # all ≥ 10 pt

FOOTER = "Estimate, not exchange data"
PROXY_NOTE = "volume proxy (no open interest)"


def chart_title(what: str, symbol: str, source: str, timeframe: str, window: str = "",
                spot: bool = False) -> str:
    """ "BTC/USDT:USDT liquidation heatmap · binance · 1h · 24h". ``spot``: the candles are spot,
    so the perpetual symbol is not shown ("BTC spot …"); the timeframe is left out when the
    source label already names it."""
    name = f"{symbol.split('/')[0]} spot" if spot else symbol
    parts = [f"{name} {what}", source]
    if timeframe not in source.split():
        parts.append(timeframe)
    return " · ".join([*parts, window] if window else parts)


def unit_text(proxy: bool) -> str:
    """The unit of a notional scale: USD, or proxy units when sizes come from the volume
    proxy (the "$" on the ticks is then not dollars of open interest)."""
    return "(proxy units, not USD)" if proxy else "(USD)"


def footer_text(proxy: bool) -> str:
    """The footer every chart carries; names the volume proxy when OI was unavailable."""
    return f"{FOOTER} · {PROXY_NOTE}" if proxy else FOOTER


def new_figure(size: tuple[int, int]) -> Figure:
    """A dark figure of exactly ``size`` pixels (width, height), attached to an Agg canvas.

    No pyplot: the figure lives only in this object, so worker threads can render in parallel.
    The canvas draws on this thread's renderer of that size, which keeps its text caches
    between charts (see :mod:`bot.charts.canvas`).
    """
    w, h = size
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        raise ValueError(f"chart size {w}×{h} px is below the readable minimum "
                         f"{MIN_SIZE[0]}×{MIN_SIZE[1]}")
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, facecolor=BG)
    SharedRendererCanvas(fig)
    return fig


def style_axes(ax: Axes) -> None:
    """Dark panel, muted grid and spines, readable tick labels."""
    ax.set_facecolor(PANEL)
    ax.tick_params(colors=TEXT, labelsize=FONT_PT["tick"])
    for spine in ax.spines.values():
        spine.set_color(GRID)
    ax.grid(True, color=GRID, linewidth=0.8, alpha=0.8)
    ax.set_axisbelow(True)


# Lines and spans for charts that set every axis limit themselves: the artists Axes.plot,
# axhline, axvline and axvspan add, drawn in the same order, without their data-limit update
# and autoscale request (~0.3-0.6 ms each; autoscaling is off once the limits are set).

def add_line(ax: Axes, x: Any, y: Any, **kwargs: Any) -> Line2D:
    """``ax.plot(x, y, **kwargs)`` for one line with its colour given."""
    line = Line2D(x, y, **kwargs)
    ax.add_artist(line)
    return line


def add_hline(ax: Axes, y: float, **kwargs: Any) -> Line2D:
    """``ax.axhline(y, **kwargs)``: across the axes at price ``y``."""
    line = add_line(ax, [0, 1], [y, y], transform=ax.get_yaxis_transform(which="grid"),
                    **kwargs)
    line.get_path()._interpolation_steps = GRIDLINE_INTERPOLATION_STEPS  # type: ignore[attr-defined]
    return line


def add_vline(ax: Axes, x: float, **kwargs: Any) -> Line2D:
    """``ax.axvline(x, **kwargs)``: from bottom to top at ``x``."""
    line = add_line(ax, [x, x], [0, 1], transform=ax.get_xaxis_transform(which="grid"),
                    **kwargs)
    line.get_path()._interpolation_steps = GRIDLINE_INTERPOLATION_STEPS  # type: ignore[attr-defined]
    return line


def add_vspan(ax: Axes, x0: float, x1: float, **kwargs: Any) -> Rectangle:
    """``ax.axvspan(x0, x1, **kwargs)``: a band from bottom to top between ``x0`` and ``x1``."""
    patch = Rectangle((x0, 0), x1 - x0, 1, **kwargs)
    patch.set_transform(ax.get_xaxis_transform(which="grid"))
    ax.add_artist(patch)
    patch.get_path()._interpolation_steps = GRIDLINE_INTERPOLATION_STEPS  # type: ignore[attr-defined]
    return patch


def add_footer(sk: Skeleton, proxy: bool) -> None:
    """Footer at the bottom left: the estimate disclaimer (+ proxy note), kept by ``sk``'s
    figure from chart to chart (:func:`bot.charts.kept.kept_text`)."""
    kept_text(sk, sk.fig, "footer", 0.01, 0.012, footer_text(proxy), color=MUTED,
              fontsize=FONT_PT["footer"], ha="left", va="bottom", gid="footer")
    kept_text(sk, sk.fig, "brand", 0.99, 0.012, "liqbot", color=MUTED,
              fontsize=FONT_PT["footer"], ha="right", va="bottom")


def to_png(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes in memory (nothing touches the disk).

    Opaque RGB and a light zlib level: about a third faster than ``savefig``'s RGBA level 6,
    and the file stays ~200 KB at 1600 × 1000 px.
    """
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    w, h = canvas.get_width_height(physical=True)
    # Pillow drops the alpha byte while reading Agg's RGBA buffer (no numpy copy of the pixels).
    image = Image.frombytes("RGB", (w, h), canvas.buffer_rgba(), "raw", "RGBX")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=2)
    return buf.getvalue()
