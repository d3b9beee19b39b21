"""Liquidation heatmap: time × price, colour = estimated liquidation notional (USD) per bucket.

x is UTC time over the window, y is price (USD), cropped around the traded range; the price
path (close line over a high–low band) is drawn on top, the current price is marked on the
right price axis and the largest zones (touching clusters merged) inside the visible range are
labelled in a right margin with leader lines. With the liquidation tape on, real liquidations
are dots (area ∝ USD, coloured by side) and zones they fell in lately are labelled "LIVE".
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any, cast

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Colormap, LogNorm, to_rgba
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, PcolorImage
from matplotlib.ticker import AutoLocator, FixedLocator, FuncFormatter, LogLocator, NullLocator
from matplotlib.transforms import IdentityTransform
from numpy.typing import ArrayLike

from bot import fmt
from bot.charts import style
from bot.charts.kept import kept_legend, kept_text
from bot.charts.labels import anchor, cluster_label, spread, visible_zones
from bot.charts.skeleton import Skeleton, skeleton
from bot.charts.ticks import OncePerTicks, OncePerView
from bot.tape.events import Liquidation
from estimator import Candles, Cluster, Heatmap
from estimator.candles import FloatArray

# Main axes, then (after the right price axis) a margin for zone labels, then the colour bar.
_LAYOUT = {"main": (0.07, 0.11, 0.62, 0.76), "cbar": (0.912, 0.11, 0.013, 0.76)}
_LABEL_X = 0.743  # left edge of the zone labels (figure fraction), right of the price ticks
_LABEL_GAP = 0.075  # vertical room of one two-line label (axes fraction)
_MAX_DECADES = 3.0  # colour range kept below the brightest bucket, in powers of ten
_MS_PER_DAY = 86_400_000.0


def price_range(low: float, high: float) -> tuple[float, float]:
    """Visible price range (USD) around a window's traded [low, high].

    Pad by half the traded range, at least 3 % and at most 15 % of the mid price, so a quiet
    12 h window still shows nearby clusters and a 30 d window stays readable.
    """
    mid = (low + high) / 2.0
    pad = min(max(0.5 * (high - low), 0.03 * mid), 0.15 * mid)
    return max(low - pad, 0.0), high + pad


def heatmap_figure(candles: Candles, heatmap: Heatmap, clusters: Sequence[Cluster], *,
                   symbol: str, exchange: str, timeframe: str, window_label: str,
                   size: tuple[int, int] = (1600, 1000), top_n: int = 3,
                   tape: Sequence[Liquidation] = (), live: Collection[str] = (),
                   spot: bool = False,
                   confirmed: Sequence[tuple[str, float, float, float]] = (),
                   reuse: bool = False) -> Figure:
    """Build the heatmap Figure (not yet rendered) — tests inspect its artists.

    ``candles`` is the full series the heatmap was built from (the window is sliced by
    ``heatmap.candle_index``); ``clusters`` are the current ones: touching ones are merged into
    zones and the ``top_n`` largest zones per side *inside the visible price range* are
    labelled; ``size`` is in pixels. ``tape``: real liquidations to draw; ``live``: ids of
    zones real liquidations are eating. ``spot``: the candles are spot (see
    :func:`style.chart_title`). ``confirmed``: real positions' liquidation levels on
    Hyperliquid as (side, low, high, USD), marked at the right edge. ``reuse``: draw on this
    thread's kept figure of this size (:mod:`bot.charts.skeleton`), valid until the next
    heatmap of that size in this thread.
    """
    i0, i1 = int(heatmap.candle_index[0]), int(heatmap.candle_index[-1])
    if i1 >= len(candles) or int(candles.timestamp[i1]) != int(heatmap.timestamp[-1]):
        raise ValueError("heatmap: candles are not the series the heatmap was built from")
    win = candles.slice(i0, i1 + 1)
    step_ms = _candle_ms(candles)
    with skeleton("heatmap", size, lambda: _skeleton(size), reuse) as sk:
        _fill(sk, candles, heatmap, clusters, win, step_ms, i0, symbol=symbol,
              exchange=exchange, timeframe=timeframe, window_label=window_label, top_n=top_n,
              tape=tape, live=live, spot=spot, confirmed=confirmed)
    return sk.fig


def _skeleton(size: tuple[int, int]) -> Skeleton:
    """The parts every heatmap of ``size`` shares: main axes and the colour bar."""
    fig = style.new_figure(size)
    ax = fig.add_axes(_LAYOUT["main"])
    style.style_axes(ax)
    ax.grid(False)
    cax = fig.add_axes(_LAYOUT["cbar"])
    placeholder = ScalarMappable(norm=ShownLogNorm(1.0, 10.0, clip=True), cmap=_cmap())
    cb = fig.colorbar(placeholder, cax=cax)
    # Each heatmap's mesh shares this norm; the bar follows the mesh (update_normal), not
    # the placeholder, and keeps its log scale, locators and formatters.
    placeholder.callbacks.disconnect(placeholder.colorbar_cid)  # type: ignore[attr-defined]
    cb.outline.set_edgecolor(style.GRID)
    # Drawn for nothing: the bar's x axis has no ticks or label, its white panel lies under
    # the opaque colour solids.
    cax.xaxis.set_visible(False)
    cax.patch.set_visible(False)
    cax.tick_params(colors=style.TEXT, labelsize=style.FONT_PT["tick"])
    return Skeleton(fig, {"ax": ax, "colorbar": cb},
                    owned=lambda: [cb.solids] if cb.solids is not None else [])


def _fill(sk: Skeleton, candles: Candles, heatmap: Heatmap, clusters: Sequence[Cluster],
          win: Candles, step_ms: int, i0: int, *, symbol: str, exchange: str, timeframe: str,
          window_label: str, top_n: int, tape: Sequence[Liquidation], live: Collection[str],
          spot: bool, confirmed: Sequence[tuple[str, float, float, float]]) -> None:
    fig, ax = sk.fig, sk.parts["ax"]
    last = float(win.close[-1])
    ylo, yhi = price_range(float(win.low.min()), float(win.high.max()))
    mesh = _draw_matrix(ax, heatmap, step_ms, ylo, yhi, sk.parts["colorbar"].norm)
    _draw_price(ax, win, step_ms)
    ax.set_ylim(ylo, yhi)
    x_end = _days(win.timestamp[-1] + step_ms)
    ax.set_xlim(float(_days(int(win.timestamp[0]))), float(x_end))
    # The panel is drawn only when the mesh leaves some of it visible: an opaque mesh (empty
    # buckets take the panel's colour) over the whole view hides it.
    ax.patch.set_visible(not _covers(mesh, ax))
    _draw_tape(ax, tape, float(_days(int(win.timestamp[0]))), float(x_end))
    _draw_confirmed(ax, confirmed, float(x_end), ylo, yhi)
    _draw_current(ax, last)
    zones = visible_zones(clusters, ylo, yhi, top_n)
    _draw_clusters(fig, ax, zones, ylo, yhi, _live_zones(zones, clusters, live))
    _axes_labels(sk, ax)
    if i0 * step_ms < int(win.timestamp[-1]) + step_ms - int(win.timestamp[0]):
        _note_short_history(ax, int(candles.timestamp[0]))
    _colour_bar(sk.parts["colorbar"], mesh, f"Est. liquidations per "
                f"{heatmap.grid.describe()[:-1]} {style.unit_text(heatmap.proxy)}")
    start = fmt.utc_text(int(win.timestamp[0]))
    end = fmt.utc_text(int(win.timestamp[-1]) + step_ms)
    kept_text(sk, fig, "title", _LAYOUT["main"][0], 0.955,
              style.chart_title("liquidation heatmap", symbol, exchange, timeframe,
                                window_label, spot), color=style.TEXT,
              fontsize=style.FONT_PT["title"], fontweight="bold", ha="left", va="center",
              gid="title")
    fig.text(_LAYOUT["main"][0], 0.913, f"{start} → {end} UTC · price {fmt.price_text(last)}",
             color=style.MUTED, fontsize=style.FONT_PT["label"], ha="left", va="center")
    style.add_footer(sk, heatmap.proxy)


def render_heatmap(candles: Candles, heatmap: Heatmap, clusters: Sequence[Cluster], *,
                   symbol: str, exchange: str, timeframe: str, window_label: str,
                   size: tuple[int, int] = (1600, 1000), top_n: int = 3,
                   tape: Sequence[Liquidation] = (), live: Collection[str] = (),
                   spot: bool = False,
                   confirmed: Sequence[tuple[str, float, float, float]] = ()) -> bytes:
    """The heatmap as PNG bytes (in memory), ``size`` pixels; see :func:`heatmap_figure`."""
    return style.to_png(heatmap_figure(
        candles, heatmap, clusters, symbol=symbol, exchange=exchange, timeframe=timeframe,
        window_label=window_label, size=size, top_n=top_n, tape=tape, live=live, spot=spot,
        confirmed=confirmed, reuse=True))


def _candle_ms(c: Candles) -> int:
    """Candle length (ms): the median spacing, 1 h for a single candle."""
    return int(np.median(np.diff(c.timestamp))) if len(c) > 1 else 3_600_000


def _days(ms: ArrayLike) -> FloatArray:
    """Unix ms (scalar or array) → matplotlib date numbers (days since 1970, UTC)."""
    return np.asarray(np.asarray(ms, dtype=np.float64) / _MS_PER_DAY, dtype=np.float64)


def _draw_matrix(ax: Axes, hm: Heatmap, step_ms: int, ylo: float, yhi: float,
                 norm: LogNorm) -> ScalarMappable | None:
    """Colour mesh of total notional, cropped to [ylo, yhi]; None when nothing is visible.
    ``norm`` is the colour bar's: its range is set here, so the bar keeps its log scale."""
    k_lo = max(int(hm.grid.index(ylo)) - hm.k0, 0)
    k_hi = min(int(hm.grid.index(yhi)) - hm.k0 + 1, hm.long.shape[1])
    if k_hi <= k_lo:
        return None
    z = hm.long[:, k_lo:k_hi] + hm.short[:, k_lo:k_hi]  # hm.total of the visible rows only
    vmax = float(z.max())
    if vmax <= 0:
        return None
    # Column c is the book at the close of its candle; it fills the time since the previous one.
    close = hm.timestamp.astype(np.float64) + step_ms
    first = close[0] - (close[1] - close[0] if len(close) > 1 else step_ms)
    x_edges = _days(np.concatenate([[first], close]))
    y_edges = hm.grid.edge(np.arange(hm.k0 + k_lo, hm.k0 + k_hi + 1))
    cmap = _cmap()
    # Log colour from the median bucket up: the typical level stays dark, clusters glow.
    vmin = max(float(np.median(z[z > 0])), vmax / 10**_MAX_DECADES)
    with norm.callbacks.blocked():  # the colour bar is updated from the mesh, once
        norm.vmin, norm.vmax = min(vmin, vmax / 3.0), vmax
    # Empty buckets as NaN (the colormap's "bad" colour, like a mask, without masked arrays).
    shown = np.where(z.T > 0.0, z.T, np.nan)
    mesh = ax.pcolorfast(x_edges, y_edges, shown, cmap=cmap, norm=norm)
    if type(mesh) is PcolorImage:  # price buckets are not evenly spaced: a PcolorImage
        mesh.__class__ = _RowsThenColumns
    return mesh


class _RowsThenColumns(PcolorImage):
    """PcolorImage (matplotlib 3.11) whose resampling to screen pixels picks the matrix rows
    of the pixel rows, then the columns of the pixel columns (two takes), instead of indexing
    with a table of one index per pixel (np.add.outer): the same pixels, ~1 ms less."""

    def make_image(self, renderer: Any, magnification: float = 1.0,
                   unsampled: bool = False) -> Any:
        me: Any = self
        if me._A is None or unsampled:
            return super().make_image(renderer, magnification, unsampled)
        if me._imcache is None:
            rgba = self.to_rgba(me._A, bytes=True)
            me._imcache = np.pad(rgba, [(1, 1), (1, 1), (0, 0)], "constant")
        padded = me._imcache
        bg = (np.array(to_rgba(self.axes.patch.get_facecolor(), 0)) * 255).astype(np.uint8)
        if (padded[0, 0] != bg).all():
            padded[[0, -1], :] = padded[:, [0, -1]] = bg
        extents = np.asarray(self.axes.bbox.extents)
        left, bottom, right, top = (extents * magnification + 0.5).astype(int)
        width, height = right - left, top - bottom
        vl = self.axes.viewLim
        x_edges = np.linspace(vl.x0, vl.x1, width + 1)
        y_edges = np.linspace(vl.y0, vl.y1, height + 1)
        x_int = me._Ax.searchsorted((x_edges[:-1] + x_edges[1:]) / 2)
        y_int = me._Ay.searchsorted((y_edges[:-1] + y_edges[1:]) / 2)
        pixels = padded.view(np.uint32)[..., 0].take(y_int, axis=0).take(x_int, axis=1)
        im = pixels.view(np.uint8).reshape((height, width, 4))
        return im, left / magnification, bottom / magnification, IdentityTransform()


class ShownLogNorm(LogNorm):
    """The heatmap's LogNorm, whose limits ``_draw_matrix`` sets before anything is coloured.

    matplotlib calls ``autoscale_None`` on every use (the mesh, the colour bar), which builds a
    masked copy of the whole matrix only to leave limits that are already set as they are; and
    it normalises an array with masked-array arithmetic. Here a scaled norm skips the first and
    normalises a float64 array with the same float operations on plain arrays (clip, log10,
    shift, scale; NaN and masked buckets come out masked), so the colours are the same.
    """

    def autoscale_None(self, A: ArrayLike) -> None:
        if not self.scaled():
            super().autoscale_None(A)

    def __call__(self, value: Any, clip: bool | None = None) -> Any:
        if (not isinstance(value, np.ndarray) or value.dtype != np.float64
                or not self.scaled() or not (self.clip if clip is None else clip)
                or not 0.0 < float(cast(float, self.vmin)) < float(cast(float, self.vmax))):
            return super().__call__(value, clip)
        t = np.clip(np.ma.getdata(value), self.vmin, self.vmax)  # a new array: value is kept
        with np.errstate(invalid="ignore"):
            t = np.log10(t)  # LogNorm's scale: base 10, limits > 0 (so nothing clipped to 0)
        t_vmin, t_vmax = np.log10(np.array([self.vmin, self.vmax], dtype=np.float64))
        t -= t_vmin
        t /= t_vmax - t_vmin
        out = np.ma.masked_invalid(t, copy=False)
        mask = np.ma.getmask(value)
        if mask is not np.ma.nomask:
            out[mask] = np.ma.masked
        return out


def _covers(mesh: ScalarMappable | None, ax: Axes) -> bool:
    """Whether ``mesh`` (from ``_draw_matrix``: an image) spans ``ax``'s whole view."""
    if not isinstance(mesh, AxesImage):
        return False
    x0, x1, y0, y1 = mesh.get_extent()
    (v0, v1), (w0, w1) = ax.get_xlim(), ax.get_ylim()
    return bool(x0 <= v0 and x1 >= v1 and y0 <= w0 and y1 >= w1)


@functools.cache
def _cmap() -> Colormap:
    """The heatmap colormap. Empty buckets show the panel background; buckets below the scale
    take the darkest colour, which stays distinct from that background. One per process
    (never changed after it is made), so its colour table is built once."""
    base = mpl.colormaps[style.HEATMAP_CMAP]
    return base.with_extremes(bad=style.PANEL, under=base(0.0))


def _colour_bar(cb: Colorbar, mesh: ScalarMappable | None, label: str) -> None:
    """Log colour bar of ``mesh`` whose ticks end at the scale's top value (the brightest
    bucket); hidden when nothing is shown."""
    cax = cb.ax
    cax.set_visible(mesh is not None)
    if mesh is None:
        return
    cb.update_normal(mesh)
    vmin, vmax = float(cast(float, mesh.norm.vmin)), float(cast(float, mesh.norm.vmax))
    ticks = LogLocator(subs=(1.0, 2.0, 5.0)).tick_values(vmin, vmax)
    # Keep the round ticks that leave room for the top label (log distance ≥ 0.15 decades).
    kept = [float(t) for t in ticks if vmin <= t <= vmax / 1.4]
    cax.yaxis.set_major_locator(FixedLocator([*kept, vmax]))
    cax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt.money(v)))
    cax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost ~10 ms, add nothing
    cb.set_label(label, color=style.TEXT, fontsize=style.FONT_PT["label"])


def _note_short_history(ax: Axes, first_ms: int) -> None:
    """Say why the left part of the window is dim: the data starts less than one window before
    it, so positions opened before the data are missing from the book."""
    ax.text(0.01, 0.02, f"No candles before {fmt.utc_text(first_ms)} UTC: positions opened "
            "earlier are unknown,\nso the left part of this window is under-filled "
            "(the data is shorter than twice the window).",
            transform=ax.transAxes, ha="left", va="bottom", color=style.TEXT,
            fontsize=style.FONT_PT["note"], zorder=6, gid="history-note",
            bbox={"boxstyle": "round,pad=0.3", "fc": style.BG, "ec": style.GRID, "alpha": 0.85})


def _draw_price(ax: Axes, win: Candles, step_ms: int) -> None:
    x = _days(win.timestamp + step_ms // 2)
    ax.fill_between(x, win.low, win.high, color=style.PRICE, alpha=0.25, linewidth=0,
                    label="high–low")
    style.add_line(ax, x, win.close, color=style.PRICE, linewidth=1.6, label="close")


def _draw_current(ax: Axes, last: float) -> None:
    style.add_hline(ax, last, color=style.PRICE, linewidth=1.0, linestyle=(0, (4, 3)),
                    alpha=0.9)
    ax.annotate(fmt.price_text(last), xy=(1.0, last), xycoords=("axes fraction", "data"),
                xytext=(4, 0), textcoords="offset points", ha="left", va="center",
                color=style.BG, fontsize=style.FONT_PT["tick"], fontweight="bold",
                bbox={"boxstyle": "round,pad=0.25", "fc": style.PRICE, "ec": "none"},
                zorder=8, gid="current-price")  # over the right price ticks and leader lines


def _draw_tape(ax: Axes, tape: Sequence[Liquidation], x0: float, x1: float) -> None:
    """Real liquidations inside the window: one dot each, area ∝ USD, coloured by side."""
    shown = [e for e in tape if x0 <= float(_days(e.timestamp)) <= x1]
    if not shown:
        return
    usd = np.array([e.notional_usd for e in shown])
    area = 12.0 + 300.0 * np.sqrt(usd / usd.max())
    colours = [style.SHORT if e.side == "short" else style.LONG for e in shown]
    ax.scatter(_days([e.timestamp for e in shown]), [e.price for e in shown], s=area,
               c=colours, edgecolors=style.TEXT, linewidths=0.6, alpha=0.9, zorder=4,
               label="real liquidations (tape)", gid="tape")


def _draw_confirmed(ax: Axes, confirmed: Sequence[tuple[str, float, float, float]], x_end: float,
                    ylo: float, yhi: float) -> None:
    """Confirmed levels (real positions, Hyperliquid): a hollow ◀ at the right edge per
    level in range, at its mid price, area ∝ USD, edged by side."""
    shown = [c for c in confirmed if ylo <= (c[1] + c[2]) / 2 <= yhi]
    if not shown:
        return
    usd = np.array([c[3] for c in shown])
    ax.scatter([x_end] * len(shown), [(c[1] + c[2]) / 2 for c in shown],
               s=30.0 + 250.0 * np.sqrt(usd / usd.max()), marker="<", facecolors="none",
               edgecolors=[style.SHORT if c[0] == "short" else style.LONG for c in shown],
               linewidths=1.8, zorder=6, clip_on=False,
               label="confirmed: real positions (Hyperliquid)", gid="confirmed")


def _live_zones(zones: Sequence[Cluster], clusters: Sequence[Cluster],
                live: Collection[str]) -> set[str]:
    """Ids of the zones that are live: named in ``live`` themselves or through a member."""
    out = {z.id for z in zones if z.id in live}
    for c in clusters:
        if c.id in live:
            out.update(z.id for z in zones
                       if z.side == c.side and z.low <= c.low and c.high <= z.high)
    return out


def _draw_clusters(fig: Figure, ax: Axes, zones: Sequence[Cluster], ylo: float, yhi: float,
                   live: Collection[str] = ()) -> None:
    """Label visible zones in the right margin, each joined by a leader line to a bracket
    that marks the zone's visible price range at the right edge of the plot."""
    if not zones:
        return
    span = yhi - ylo
    at = [anchor(z, ylo, yhi) for z in zones]
    ys = spread([((ylo if a is None else a) - ylo) / span for a in at], gap=_LABEL_GAP,
                lo=0.04, hi=0.96)
    _x0, y0, _w, h = _LAYOUT["main"]
    trans = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for z, a, y in zip(zones, at, ys, strict=True):
        colour = style.SHORT if z.side == "short" else style.LONG
        style.add_line(ax, [0.992, 0.992], [max(z.low, ylo), min(z.high, yhi)],
                       transform=trans, color=colour, linewidth=7, solid_capstyle="butt",
                       clip_on=False, zorder=5)
        text = cluster_label(z, sep=" · LIVE\n" if z.id in live else "\n")
        ax.annotate(text, xy=(1.0, ylo if a is None else a), xycoords=trans,
                    xytext=(_LABEL_X, y0 + y * h), textcoords="figure fraction",
                    ha="left", va="center", color=style.TEXT, fontsize=style.FONT_PT["note"],
                    fontweight="bold", parse_math=False, annotation_clip=False,
                    bbox={"boxstyle": "round,pad=0.3", "fc": style.BG, "ec": colour},
                    # patchA None: the line runs to the text anchor under the opaque label
                    # box (drawn after it), instead of being clipped to the box's outline
                    # by a bisection (~6 ms a label, the same pixels).
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 1.2, "alpha": 0.8,
                                "shrinkA": 0, "shrinkB": 0, "patchA": None},
                    gid="cluster")


def _axes_labels(sk: Skeleton, ax: Axes) -> None:
    locator = mdates.AutoDateLocator(tz=mdates.UTC, minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(OncePerView(locator))
    ax.xaxis.set_major_formatter(OncePerTicks(mdates.ConciseDateFormatter(locator,
                                                                          tz=mdates.UTC)))
    ax.yaxis.set_major_locator(OncePerView(AutoLocator()))
    ax.yaxis.set_major_formatter(OncePerTicks(FuncFormatter(lambda v, _p: fmt.price_text(v))))
    ax.tick_params(axis="y", right=True, labelright=True)  # price on both sides
    ax.set_ylabel("Price (USD)", color=style.TEXT, fontsize=style.FONT_PT["label"])
    ax.set_xlabel("Time (UTC)", color=style.TEXT, fontsize=style.FONT_PT["label"])
    # Over the colour mesh: the pixels under it change with every chart, so none are kept.
    leg = kept_legend(sk, ax, ax.get_legend_handles_labels()[0], keep_pixels=False,
                      loc="upper left", fontsize=style.FONT_PT["note"], framealpha=0.7,
                      facecolor=style.BG, edgecolor=style.GRID, labelcolor=style.TEXT)
    leg.set_gid("legend")
