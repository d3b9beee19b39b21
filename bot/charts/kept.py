"""Artists kept with their figure: built again only when what they show changes, and drawn
by pasting their last pixels when they would draw onto the same pixels again.

A chart's legend names the same things on every render (the leverage bands and the curves of
the map, the price band and line of the heatmap), and its title and footer rarely change, yet
matplotlib built them anew and laid them out and drew them on every draw (the map's one-row
legend of 9 entries: ~7 ms). Here a kept figure (:mod:`bot.charts.skeleton`) keeps such an
artist while what it shows is equal (a legend's labels and the styles it copies from its
handles; a text's string, place and style), and a kept artist remembers the pixels of its
region before and after it drew: when the region holds the same pixels before the next draw
(nothing under it changed), its pixels are those it drew last time, byte for byte. An artist
over data (the heatmap's legend, over the colour mesh) simply draws again.

Only legend handles whose copied style is known here are kept (plain lines, filled polygons);
any other legend (tape dots, confirmed marks) is built and drawn as matplotlib does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bot.charts.skeleton import Skeleton

_MARGIN = 4  # px around the artist's box: anti-aliased edges, handle line widths


class PixelKept:
    """Mixin for an artist that does not change while kept: its draw pastes the pixels it drew
    last time when its region holds the same pixels as then (see module doc)."""

    keep_pixels = True
    _snap: tuple[Any, tuple[slice, slice], np.ndarray, np.ndarray] | None = None

    def _pixel_box(self, renderer: Any) -> Bbox:
        raise NotImplementedError

    def draw(self, renderer: Any) -> None:
        me: Any = self
        if not me.get_visible() or not self.keep_pixels:
            super().draw(renderer)  # type: ignore[misc]
            return
        buf = np.asarray(renderer.buffer_rgba())
        snap = self._snap
        if snap is not None and not me.stale and snap[0] is renderer:
            _r, region, before, after = snap
            if np.array_equal(buf[region], before):
                buf[region] = after
                return
        self._snap = None
        box = self._pixel_box(renderer)
        h, w = buf.shape[:2]
        x0, x1 = max(int(box.x0) - _MARGIN, 0), min(int(np.ceil(box.x1)) + _MARGIN, w)
        y0 = max(h - int(np.ceil(box.y1)) - _MARGIN, 0)  # buffer rows run downwards
        y1 = min(h - int(box.y0) + _MARGIN, h)
        region = (slice(y0, y1), slice(x0, x1))
        before = buf[region].copy()
        super().draw(renderer)  # type: ignore[misc]
        if not me.stale:  # drawn without a change to itself: the pixels can be kept
            self._snap = (renderer, region, before, buf[region].copy())


class KeptText(PixelKept, Text):
    """A figure text that pastes its last pixels when its region is unchanged."""

    signature: tuple[Any, ...] | None = None

    def _pixel_box(self, renderer: Any) -> Bbox:
        return self.get_window_extent(renderer)


def kept_text(sk: Skeleton, fig: Figure, name: str, x: float, y: float, s: str,
              **kwargs: Any) -> Text:
    """``fig.text(x, y, s, **kwargs)``, or the same text ``sk`` kept from the last fill under
    ``name`` (moved to the end of the figure's texts, where ``fig.text`` puts a new one)."""
    sig = (x, y, s, repr(sorted(kwargs.items())))
    old = sk.kept.pop(f"text:{name}", None)
    if isinstance(old, KeptText) and old in fig.texts:
        if old.signature == sig:
            fig.texts.remove(old)
            fig.texts.append(old)
            sk.kept[f"text:{name}"] = old
            return old
        old.remove()
    text = KeptText(x=x, y=y, text=s, **{"transform": fig.transSubfigure, **kwargs})
    # What Figure.text does with a new text.
    text.set_figure(fig)
    text.stale_callback = _stale_figure
    fig.texts.append(text)
    text._remove_method = fig.texts.remove  # type: ignore[attr-defined]
    fig.stale = True
    text.signature = sig
    sk.kept[f"text:{name}"] = text
    return text


def _stale_figure(artist: Artist, val: bool) -> None:
    fig = artist.get_figure(root=False)
    if fig is not None:
        fig.stale = val


class KeptLegend(PixelKept, Legend):
    """A Legend that pastes its last pixels when its region is unchanged (see module doc)."""

    signature: tuple[Any, ...] | None = None

    def _pixel_box(self, renderer: Any) -> Bbox:
        return self._legend_box.get_window_extent(renderer)  # type: ignore[attr-defined,no-any-return]


def kept_legend(sk: Skeleton, owner: Axes | Figure, handles: Sequence[Artist], *,
                keep_pixels: bool = True, **kwargs: Any) -> Legend:
    """``owner``'s legend of ``handles`` (labels from the handles), the one ``sk`` kept from
    the last fill when it shows the same entries, else a new one (kept for the next fill).
    ``keep_pixels``: paste the last pixels when the region is unchanged (false for a legend
    over data, whose region changes with every chart)."""
    old = sk.kept.pop("legend", None)
    sig = _signature(handles, kwargs)
    if isinstance(old, KeptLegend) and _attached(old, owner):
        if sig is not None and old.signature == sig and old.keep_pixels == keep_pixels:
            sk.kept["legend"] = old
            return old
        old.remove()
    labels = [str(h.get_label()) for h in handles]
    if isinstance(owner, Figure):
        kwargs.setdefault("bbox_transform", owner.transSubfigure)
        leg = KeptLegend(owner, handles, labels, **kwargs)
        owner.legends.append(leg)
        leg._remove_method = owner.legends.remove  # type: ignore[attr-defined]
    else:
        leg = KeptLegend(owner, handles, labels, **kwargs)
        owner.legend_ = leg
        leg._remove_method = owner._remove_legend  # type: ignore[attr-defined]
    leg.keep_pixels = keep_pixels
    if sig is not None:
        leg.signature = sig
        sk.kept["legend"] = leg
    return leg


def _attached(leg: Legend, owner: Axes | Figure) -> bool:
    return leg in owner.legends if isinstance(owner, Figure) else owner.legend_ is leg


def _signature(handles: Sequence[Artist], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """What the legend shows: its options and, per handle, the label and the style the legend
    handler copies; None when a handle is of a type not described here."""
    if kwargs.get("loc", "best") == "best":
        return None  # placed by the data under it
    entries = []
    for h in handles:
        if type(h) is Line2D:
            entries.append(("line", h.get_label(), *_line_style(h)))
        elif isinstance(h, PolyCollection) and type(h).draw is PolyCollection.draw:
            entries.append(("poly", h.get_label(), *_poly_style(h)))
        else:
            return None
    return (repr(sorted(kwargs.items())), tuple(entries))


def _line_style(h: Line2D) -> tuple[Any, ...]:
    """What ``Line2D.update_from`` copies into the legend's line (HandlerLine2D)."""
    return (h.get_linestyle(), h.get_linewidth(), repr(h.get_color()), repr(h.get_gapcolor()),
            h.get_markersize(), repr(h.get_markerfacecolor()),
            repr(h.get_markerfacecoloralt()), repr(h.get_markeredgecolor()),
            h.get_markeredgewidth(), repr(h._unscaled_dash_pattern),  # type: ignore[attr-defined]
            h.get_dash_capstyle(), h.get_dash_joinstyle(), h.get_solid_capstyle(),
            h.get_solid_joinstyle(), repr(h.get_marker()), h.get_fillstyle(),
            h.get_drawstyle(), h.get_visible(), h.get_alpha(), h.get_antialiased(),
            repr(h.get_sketch_params()), repr(h.get_path_effects()))


def _poly_style(h: PolyCollection) -> tuple[Any, ...]:
    """What HandlerPolyCollection copies into the legend's patch (first colours and styles)."""
    def first(values: Any) -> str:
        return repr(np.asarray(values)[0].tolist()) if len(values) else "none"
    return (first(h.get_facecolor()), first(h.get_edgecolor()), first(h.get_hatchcolor()),
            repr(h._original_facecolor), repr(h._original_edgecolor),  # type: ignore[attr-defined]
            h.get_fill(), h.get_hatch(), first(h.get_linewidth()),
            repr(h.get_linestyle()[:1]), len(h.get_transforms()), h.get_alpha(),
            h.get_visible(), repr(h.get_sketch_params()), repr(h.get_path_effects()))
