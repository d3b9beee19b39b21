"""Liquidation map: x = price (USD), stacked bars of estimated liquidation notional per bucket
and leverage band, longs below the current price and shorts above, cumulative curves on a
second axis — the chart from the seed post.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, FuncFormatter, NullLocator

from bot import fmt
from bot.charts import style
from bot.charts.kept import kept_legend, kept_text
from bot.charts.labels import anchor, cluster_label, visible_zones
from bot.charts.skeleton import Skeleton, skeleton
from bot.charts.ticks import OncePerTicks, OncePerView
from estimator import Book, Cascade, Cluster

_LAYOUT = (0.075, 0.1, 0.85, 0.72)  # main axes: left, bottom, width, height (figure fraction)
_MAX_BARS = 160  # buckets are merged so bars stay ≥ ~7 px wide
_ROW = 0.07  # height of one cluster-label row (axes fraction)
Confirmed = tuple[np.ndarray, np.ndarray]
"""Real liquidation prices (USD) and each position's USD (the confirmed layer)."""


def leverage_colours(n: int) -> list[tuple[float, float, float, float]]:
    """One colour per leverage band, low → high leverage, cool to warm: the Okabe–Ito colours
    (``style.LEVERAGE``), distinct with every common colour-vision deficiency. Up to 5 bands
    spread over the first five; 6–7 add vermillion and green; more fall back to cividis."""
    if n <= len(style.LEVERAGE):
        five = len(style.LEVERAGE) - 2
        picks = (range(n) if n > five
                 else [round(i * (five - 1) / max(n - 1, 1)) for i in range(n)])
        return [mpl.colors.to_rgba(style.LEVERAGE[i]) for i in picks]
    cmap = mpl.colormaps["cividis"]
    return [cmap(0.2 + 0.8 * i / (n - 1)) for i in range(n)]


def map_figure(book: Book, clusters: Sequence[Cluster], *, symbol: str, exchange: str,
               timeframe: str, size: tuple[int, int] = (1600, 1000), top_n: int = 3,
               span_pct: float = 15.0, path: Cascade | None = None,
               spot: bool = False, confirmed: Confirmed | None = None,
               reuse: bool = False) -> Figure:
    """Build the liquidation-map Figure (not yet rendered) — tests inspect its artists.

    Shows prices within ±``span_pct`` % of ``book.last_price``; the ``top_n`` largest zones
    (touching clusters merged) per side inside that range are labelled. ``size`` in px.
    ``spot``: the candles are spot (see :func:`style.chart_title`).
    ``path`` (the /ifbreak variant): the range from price to its target is shaded and the
    cumulative curve is read off at the target; the span widens to show the target.
    ``confirmed``: real positions' liquidation prices and USD (Hyperliquid), drawn as hatched
    outlines on the same bars, never stacked into the estimate. ``reuse``: draw on this
    thread's kept figure of this size (:mod:`bot.charts.skeleton`), valid until the next map of
    that size in this thread.
    """
    with skeleton("map", size, lambda: _skeleton(size), reuse) as sk:
        _fill(sk, book, clusters, symbol=symbol, exchange=exchange, timeframe=timeframe,
              size=size, top_n=top_n, span_pct=span_pct, path=path, spot=spot,
              confirmed=confirmed)
    return sk.fig


def _skeleton(size: tuple[int, int]) -> Skeleton:
    """The parts every map of ``size`` shares: the bar axes and the cumulative twin axes."""
    fig = style.new_figure(size)
    ax = fig.add_axes(_LAYOUT)
    style.style_axes(ax)
    ax2 = ax.twinx()
    ax2.set_autoscalex_on(False)  # x is the bars' price range, set on every chart
    ax2.tick_params(colors=style.TEXT, labelsize=style.FONT_PT["tick"])
    for spine in ax2.spines.values():
        spine.set_color(style.GRID)
    return Skeleton(fig, {"ax": ax, "ax2": ax2})


def _fill(sk: Skeleton, book: Book, clusters: Sequence[Cluster], *, symbol: str, exchange: str,
          timeframe: str, size: tuple[int, int], top_n: int, span_pct: float,
          path: Cascade | None, spot: bool, confirmed: Confirmed | None) -> None:
    fig, ax, ax2 = sk.fig, sk.parts["ax"], sk.parts["ax2"]
    last = book.last_price
    if path is not None:
        span_pct = max(span_pct, abs(path.distance_pct) * 1.15)
    lo, hi = last * (1 - span_pct / 100), last * (1 + span_pct / 100)
    edges, long_by_lev, short_by_lev = _visible(book, lo, hi)
    per_lev = long_by_lev + short_by_lev  # sides never share a bucket: longs < price < shorts

    colours = leverage_colours(len(book.leverages))
    bottom = np.zeros(per_lev.shape[1])
    for lev, row, colour in zip(book.leverages, per_lev, colours, strict=True):
        ax.add_collection(_bars(edges, bottom, bottom + row, colour, f"{lev:g}x"),
                          autolim=False)
        bottom = bottom + row
    peak = float(bottom.max()) if bottom.size else 0.0
    if confirmed is not None:
        peak = max(peak, _draw_confirmed(ax, edges, *confirmed))
    ax.set_xlim(lo, hi)
    _draw_cumulative(ax2, edges, long_by_lev.sum(axis=0), short_by_lev.sum(axis=0), last)
    rows = _draw_clusters(ax, ax2, visible_zones(clusters, lo, hi, top_n), lo, hi,
                          size[0] * _LAYOUT[2])
    ax.set_ylim(0, (peak if peak > 0 else 1.0) * (1.08 + _ROW * 1.25 * rows))
    _draw_current(ax, last)
    if path is not None:
        _draw_path(ax, ax2, path)
    if peak <= 0:
        ax.text(0.5, 0.5, "No estimated liquidations in this range", transform=ax.transAxes,
                ha="center", va="center", color=style.MUTED, fontsize=style.FONT_PT["label"])
    _axes_labels(ax, ax2, edges, book.proxy, empty=peak <= 0)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    leg = kept_legend(sk, fig, handles, loc="center left", bbox_to_anchor=(_LAYOUT[0], 0.872),
                      ncol=len(handles), fontsize=style.FONT_PT["note"], frameon=False,
                      labelcolor=style.TEXT, handlelength=1.4, columnspacing=1.2)
    leg.set_gid("legend")
    long_total = float(long_by_lev.sum())
    short_total = float(short_by_lev.sum())
    kept_text(sk, fig, "title", _LAYOUT[0], 0.955,
              style.chart_title("liquidation map", symbol, exchange, timeframe, spot=spot),
              color=style.TEXT, fontsize=style.FONT_PT["title"], fontweight="bold",
              ha="left", va="center", gid="title")
    fig.text(_LAYOUT[0], 0.913,
             f"{fmt.utc_text(book.timestamp)} UTC · price {fmt.price_text(last)} · "
             f"within ±{span_pct:g} %: longs {fmt.money(long_total)} below, "
             f"shorts {fmt.money(short_total)} above",
             color=style.MUTED, fontsize=style.FONT_PT["label"], ha="left", va="center",
             parse_math=False)
    style.add_footer(sk, book.proxy)


def render_map(book: Book, clusters: Sequence[Cluster], *, symbol: str, exchange: str,
               timeframe: str, size: tuple[int, int] = (1600, 1000), top_n: int = 3,
               span_pct: float = 15.0, path: Cascade | None = None,
               spot: bool = False, confirmed: Confirmed | None = None) -> bytes:
    """The liquidation map as PNG bytes (in memory), ``size`` pixels; see :func:`map_figure`."""
    return style.to_png(map_figure(book, clusters, symbol=symbol, exchange=exchange,
                                   timeframe=timeframe, size=size, top_n=top_n,
                                   span_pct=span_pct, path=path, spot=spot,
                                   confirmed=confirmed, reuse=True))


def _draw_confirmed(ax: Axes, edges: np.ndarray, prices: np.ndarray, usd: np.ndarray) -> float:
    """Real positions' USD per bar as hatched outlines (one artist); the tallest bar (USD)."""
    inside = (prices >= edges[0]) & (prices < edges[-1])
    per_bar, _ = np.histogram(prices[inside], bins=edges, weights=usd[inside])
    bars = _bars(edges, np.zeros_like(per_bar), per_bar, "none",
                 "confirmed: real positions (Hyperliquid)")
    bars.set_edgecolor(style.TEXT)
    bars.set_hatch("///")
    bars.set_linewidth(1.2)
    bars.set_zorder(3)
    bars.set_gid("confirmed")
    ax.add_collection(bars, autolim=False)
    return float(per_bar.max(initial=0.0))


def _visible(book: Book, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar edges (USD) and long/short notional [n_lev × bars] (USD) covering [lo, hi].

    Buckets outside the book count as empty; adjacent buckets are summed so there are at most
    ``_MAX_BARS`` bars.
    """
    grid = book.grid
    k_lo, k_hi = int(grid.index(lo)), int(grid.index(hi)) + 1
    n = k_hi - k_lo
    group = max(1, math.ceil(n / _MAX_BARS))
    n_bars = math.ceil(n / group)
    k_hi = k_lo + n_bars * group  # the last bar may reach a little past ``hi``
    out = []
    for by_lev in (book.long_by_lev, book.short_by_lev):
        full = np.zeros((by_lev.shape[0], n_bars * group))
        a, b = max(k_lo, book.k0), min(k_hi, book.k0 + by_lev.shape[1])
        if b > a:
            full[:, a - k_lo:b - k_lo] = by_lev[:, a - book.k0:b - book.k0]
        out.append(full.reshape(by_lev.shape[0], n_bars, group).sum(axis=2))
    edges = grid.edge(k_lo + group * np.arange(n_bars + 1))
    return edges, out[0], out[1]


def _bars(edges: np.ndarray, y0: np.ndarray, y1: np.ndarray, colour: object,
          label: str) -> PolyCollection:
    """One rectangle per non-empty bar from ``y0`` to ``y1`` (USD) — a single fast artist."""
    keep = y1 > y0
    left, right = edges[:-1][keep], edges[1:][keep]
    b, t = y0[keep], y1[keep]
    quads: Any = np.stack([np.stack([left, b], 1), np.stack([left, t], 1),
                           np.stack([right, t], 1), np.stack([right, b], 1)], axis=1)
    return PolyCollection(quads, facecolors=[colour], edgecolors="none", label=label)


def _draw_cumulative(ax2: Axes, edges: np.ndarray, longs: np.ndarray, shorts: np.ndarray,
                     last: float) -> None:
    """Cumulative longs (from price down) and shorts (from price up) on the twin y axis
    ``ax2`` (USD)."""
    mid = (edges[:-1] + edges[1:]) / 2
    below, above = mid < last, mid >= last
    cum_long = np.cumsum(longs[below][::-1])[::-1]
    cum_short = np.cumsum(shorts[above])
    style.add_line(ax2, np.append(mid[below], last), np.append(cum_long, 0.0),
                   color=style.LONG, linewidth=2.2, label="cumulative longs")
    style.add_line(ax2, np.insert(mid[above], 0, last), np.insert(cum_short, 0, 0.0),
                   color=style.SHORT, linewidth=2.2, label="cumulative shorts")
    top_ = max(float(cum_long.max(initial=0.0)), float(cum_short.max(initial=0.0)))
    ax2.set_ylim(0, (top_ if top_ > 0 else 1.0) * 1.05)


def _draw_path(ax: Axes, ax2: Axes, path: Cascade) -> None:
    """The /ifbreak range shaded (hatched, over the cluster shading) and the cumulative
    curve read off at the target: a marker and its value on the cumulative axis."""
    colour = style.LONG if path.side == "long" else style.SHORT
    lo, hi = sorted((path.price, path.target))
    ax.axvspan(lo, hi, facecolor="none", edgecolor=colour, hatch="//", alpha=0.35,
               linewidth=0, gid="ifbreak-range")
    ax.axvline(path.target, color=colour, linewidth=1.4, zorder=5)
    ax2.plot([path.target], [path.cumulative_usd], marker="o", markersize=8, color=colour,
             markeredgecolor=style.TEXT, zorder=7, gid="ifbreak-point")
    if path.cumulative_usd * 1.05 > ax2.get_ylim()[1]:
        ax2.set_ylim(0, path.cumulative_usd * 1.1)
    words = "longs" if path.side == "long" else "shorts"
    ax2.annotate(f"break {fmt.price_text(path.target)} → {fmt.money(path.cumulative_usd)} of "
                 f"{words} (est.)", xy=(path.target, path.cumulative_usd),
                 xytext=(-12 if path.side == "long" else 12, 10), textcoords="offset points",
                 ha="right" if path.side == "long" else "left", va="bottom",
                 color=style.TEXT, fontsize=style.FONT_PT["note"], fontweight="bold",
                 parse_math=False, zorder=8, gid="ifbreak-label",
                 bbox={"boxstyle": "round,pad=0.3", "fc": style.BG, "ec": colour})


def _draw_current(ax: Axes, last: float) -> None:
    style.add_vline(ax, last, color=style.PRICE, linewidth=1.4, linestyle=(0, (4, 3)), zorder=5)
    ax.annotate(f"price {fmt.price_text(last)}", xy=(last, 1.0),
                xycoords=("data", "axes fraction"), xytext=(0, 4), textcoords="offset points",
                ha="center", va="bottom", color=style.BG, fontsize=style.FONT_PT["tick"],
                fontweight="bold", gid="current-price",
                bbox={"boxstyle": "round,pad=0.25", "fc": style.PRICE, "ec": "none"})
    for text, ha, colour, dx in (("← longs", "right", style.LONG, -60),
                                 ("shorts →", "left", style.SHORT, 60)):
        ax.annotate(text, xy=(last, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(dx, 4), textcoords="offset points", ha=ha, va="bottom",
                    color=colour, fontsize=style.FONT_PT["tick"], fontweight="bold")


def _draw_clusters(ax: Axes, ax_top: Axes, clusters: Sequence[Cluster], lo: float, hi: float,
                   axes_px: float) -> int:
    """Shade each visible cluster's range on ``ax`` and label it near the top on ``ax_top``
    (above the curves); returns the number of label rows used.

    Labels are placed in rows so none overlap horizontally (width estimated from text length).
    """
    char = 0.62 * style.FONT_PT["note"] * style.DPI / 72 / axes_px  # one char, axes fraction
    placed: list[list[tuple[float, float]]] = []
    for c in sorted(clusters, key=lambda c: c.price):
        colour = style.SHORT if c.side == "short" else style.LONG
        text = cluster_label(c)
        at = anchor(c, lo, hi)
        if at is not None:
            style.add_vspan(ax, max(c.low, lo), min(c.high, hi), color=colour, alpha=0.18,
                            linewidth=0, zorder=0.5)  # behind the bars: true leverage colours
        else:
            text = f"← {text}" if c.price < lo else f"{text} →"
        width = (len(text) + 2) * char
        x = ((c.price if at is None else at) - lo) / (hi - lo)
        x = min(max(x, width / 2 + 0.005), 1 - width / 2 - 0.005)
        row = next((i for i, used in enumerate(placed)
                    if all(x + width / 2 < a or x - width / 2 > b for a, b in used)), None)
        if row is None:
            placed.append([])
            row = len(placed) - 1
        placed[row].append((x - width / 2, x + width / 2))
        ax_top.text(x, 0.965 - row * _ROW, text, transform=ax_top.transAxes, ha="center",
                    va="top", parse_math=False,
                    color=style.TEXT, fontsize=style.FONT_PT["note"], fontweight="bold",
                    zorder=6, gid="cluster",
                    bbox={"boxstyle": "round,pad=0.3", "fc": style.BG, "ec": colour,
                          "alpha": 0.9})
    return len(placed)


def _axes_labels(ax: Axes, ax2: Axes, edges: np.ndarray, proxy: bool, empty: bool) -> None:
    """Axis formats and titles; an empty map has no notional scale to show (no ticks)."""
    ax.xaxis.set_major_locator(OncePerView(AutoLocator()))
    ax.xaxis.set_major_formatter(OncePerTicks(FuncFormatter(lambda v, _p: fmt.price_text(v))))
    for axis in (ax.yaxis, ax2.yaxis):
        axis.set_major_locator(NullLocator() if empty else OncePerView(AutoLocator()))
        axis.set_major_formatter(OncePerTicks(FuncFormatter(lambda v, _p: fmt.money(v))))
    width_pct = (edges[1] / edges[0] - 1) * 100 if len(edges) > 1 else 0.0
    unit = style.unit_text(proxy)
    ax.set_xlabel("Price (USD)", color=style.TEXT, fontsize=style.FONT_PT["label"])
    ax.set_ylabel(f"Est. liquidations per {width_pct:.2g} % bar {unit}",
                  color=style.TEXT, fontsize=style.FONT_PT["label"])
    ax2.set_ylabel(f"Cumulative from price {unit}", color=style.TEXT,
                   fontsize=style.FONT_PT["label"])
