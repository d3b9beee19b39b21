"""An Agg canvas whose renderer (and its text caches) outlives one figure, one per thread.

matplotlib ties its text-metrics cache to a renderer, and each new Figure gets a new canvas
and renderer, so every chart used to measure and lay out all its text from scratch. Here each
thread keeps one :class:`TextCachingRenderer` per (width, height, dpi) and every canvas of that
size drawn in that thread draws on it. It also remembers, by string and font, how a text is laid
out, and, by glyph and sub-pixel position, each rasterised glyph. Pixels are unchanged: a glyph
is drawn from the bitmap FreeType made for the same glyph, size, angle and 1/64-pixel offset,
moved by whole pixels.

One renderer per thread: a figure's pixels (``buffer_rgba``) are valid until the next figure
of the same size is drawn in the same thread — :func:`bot.charts.style.to_png` encodes right
after drawing.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager, get_font
from matplotlib.ft2font import RenderMode
from matplotlib.text import Text
from matplotlib.transforms import Bbox

_MAX_ITEMS = 20_000  # per cache and thread: a chart draws ~600 glyphs and ~150 strings
_MAX_PIXELS = 1_000  # texts whose pixels are kept, per thread (~100 drawn per chart, ~7 KB each)
_local = threading.local()


class TextCachingRenderer(RendererAgg):
    """RendererAgg that caches text layouts and glyph bitmaps (same pixels, less FreeType)."""

    def __init__(self, width: float, height: float, dpi: float) -> None:
        super().__init__(width, height, dpi)
        self._layouts: dict[tuple[Any, ...], list[tuple[Any, float, float, int]]] = {}
        self._glyphs: dict[tuple[Any, ...], tuple[np.ndarray, int, int]] = {}
        self._heights: dict[tuple[Any, ...], tuple[float, float, float] | None] = {}
        self._text_boxes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._pixels: dict[tuple[Any, ...], tuple[Any, np.ndarray, np.ndarray]] = {}

    def _get_font_height_metrics(self, prop: Any) -> tuple[float | None, ...]:
        """A font's ascent, descent and line gap in pixels, as ``Text._get_layout`` reads
        them from its sfnt tables (the hook matplotlib offers backends), once per font."""
        key = (prop, self.dpi)
        if key not in self._heights:
            if len(self._heights) >= _MAX_ITEMS:
                self._heights.clear()
            self._heights[(prop.copy(), self.dpi)] = _font_heights(prop, self.dpi)
        found = self._heights[key]
        return (None, None, None) if found is None else found

    def get_text_width_height_descent(self, s: str, prop: Any,
                                      ismath: bool | str) -> tuple[float, float, float]:
        """RendererAgg's text metrics (matplotlib shapes the string with ``set_text``), and,
        when that placed one glyph of the font itself per character (nothing ligated, no
        fallback font), the string's layout for :meth:`draw_text` from the same shaping:
        ``FT2Font._layout`` would place the same glyphs at the same positions (a new string
        used to be shaped twice, ~15 µs a character each time)."""
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)  # type: ignore[no-any-return]
        font = self._prepare_font(prop)
        flags = get_hinting_flag()
        xys = font.set_text(s, 0.0, flags=flags)
        w, h = font.get_width_height()  # width and height of unrotated string
        d = font.get_descent()
        key = (s, prop, self.dpi, flags, None, None)  # draw_text's key for default features
        if len(xys) == len(s) and key not in self._layouts:
            glyphs = [font.get_char_index(ord(c)) for c in s]
            if all(glyphs):
                if len(self._layouts) >= _MAX_ITEMS:
                    self._layouts.clear()
                self._layouts[(s, prop.copy(), *key[2:])] = [
                    (font, float(x) / 64, float(y) / 64, g)
                    for (x, y), g in zip(xys, glyphs, strict=True)]
        return w / 64.0, h / 64.0, d / 64.0

    def draw_text(self, gc: Any, x: float, y: float, s: str, prop: Any, angle: float,
                  ismath: bool | str = False, mtext: Any = None) -> None:
        if ismath:
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            return
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        flags = get_hinting_flag()
        key = (s, prop, self.dpi, flags,
               tuple(features) if features is not None else None,
               language if language is None or isinstance(language, str) else tuple(language))
        items = self._layouts.get(key)
        if items is None:
            font = self._prepare_font(prop)
            items = [(item.ft_object, item.x, item.y, item.glyph_index)
                     for item in font._layout(s, flags=flags, features=features,
                                              language=language)]
            if len(self._layouts) >= _MAX_ITEMS:
                self._layouts.clear()
            # A copy: a Text may change its own FontProperties later (set_fontsize).
            self._layouts[(s, prop.copy(), *key[2:])] = items
        self._draw_glyphs(gc, x, y, angle, prop.get_size_in_points(), items, flags)

    def _draw_glyphs(self, gc: Any, x: float, y: float, angle: float, size: float,
                     items: list[tuple[Any, float, float, int]], flags: Any) -> None:
        """``RendererAgg._draw_text_glyphs_and_boxes`` for laid-out text (no boxes, no slant),
        each glyph rendered once per 1/64-pixel offset and then shifted by whole pixels.

        A text drawn again at the same place, in the same colour and clip, onto the same
        pixels as last time is pasted: the pixels its glyphs covered before and after it drew
        are kept (tick labels and axis titles that did not move, the first line of a zone
        label that did not change)."""
        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        antialiased = bool(gc.get_antialiased())
        matrix = None
        glyphs = []
        for font, dx, dy, glyph_index in items:  # dy is upwards
            px = round(0x40 * (x + dx * cos - dy * sin))
            py = round(0x40 * (self.height - y + dx * sin + dy * cos))  # FreeType's y is up
            ix, fx = divmod(px, 0x40)
            iy, fy = divmod(py, 0x40)
            key = (font, size, self.dpi, glyph_index, angle, fx, fy, flags, antialiased)
            hit = self._glyphs.get(key)
            if hit is None:
                if matrix is None:
                    matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
                font.set_size(size, self.dpi)
                font._set_transform(matrix, [fx, fy])
                bitmap = font._render_glyph(
                    glyph_index, flags, RenderMode.NORMAL if antialiased else RenderMode.MONO)
                buffer = np.array(bitmap.buffer, copy=True)
                if not antialiased:
                    buffer *= 0xff
                hit = (buffer, bitmap.left, bitmap.top)
                if len(self._glyphs) >= _MAX_ITEMS:
                    self._glyphs.clear()
                self._glyphs[key] = hit
            buffer, left, top = hit
            # draw_text_image's y is downwards & the bitmap bottom side.
            glyphs.append((key, buffer, left + ix, int(self.height) - (top + iy) + buffer.shape[0]))
        clip_path, _ = gc.get_clip_path()
        if clip_path is not None or not glyphs:  # pixels kept only for plain clip boxes
            for _key, buffer, gx, gy in glyphs:
                self._renderer.draw_text_image(buffer, gx, gy, 0, gc)
            return
        rect = gc.get_clip_rectangle()
        pkey = (tuple((k, gx, gy) for k, _b, gx, gy in glyphs), tuple(gc.get_rgb()),
                gc.get_alpha(), None if rect is None else tuple(rect.bounds))
        buf = np.asarray(self.buffer_rgba())
        kept = self._pixels.get(pkey)
        if kept is not None and np.array_equal(buf[kept[0]], kept[1]):
            buf[kept[0]] = kept[2]
            return
        h, w = buf.shape[:2]
        x0 = max(min(gx for _k, _b, gx, _y in glyphs), 0)
        x1 = min(max(gx + b.shape[1] for _k, b, gx, _y in glyphs), w)
        y0 = max(min(gy - b.shape[0] for _k, b, _x, gy in glyphs), 0)
        y1 = min(max(gy for _k, _b, _x, gy in glyphs), h)
        region = (slice(y0, max(y1, y0)), slice(x0, max(x1, x0)))
        before = buf[region].copy()
        for _key, buffer, gx, gy in glyphs:
            self._renderer.draw_text_image(buffer, gx, gy, 0, gc)
        if len(self._pixels) >= _MAX_PIXELS:
            self._pixels.clear()
        self._pixels[pkey] = (region, before, buf[region].copy())


_plain_get_layout = Text._get_layout  # type: ignore[attr-defined]


def _get_layout(text: Text, renderer: Any) -> tuple[Any, ...]:
    """``Text._get_layout`` remembered by this thread's renderer: a text's box and line
    offsets relative to its anchor depend only on the string, font, alignment and rotation
    (matplotlib lays out each tick label two or three times per draw). Other renderers, and
    wrapped or TeX text, take matplotlib's own path."""
    boxes = getattr(renderer, "_text_boxes", None)
    if boxes is None or text.get_wrap() or text.get_usetex():
        return _plain_get_layout(text, renderer)  # type: ignore[no-any-return]
    t: Any = text
    key = (text.get_text(), t._fontproperties, text.get_rotation(), text.get_rotation_mode(),
           t._horizontalalignment, t._verticalalignment, t._get_multialignment(),
           t._linespacing, text.get_parse_math(), t.get_figure(root=True).dpi)
    hit = boxes.get(key)
    if hit is None:
        bbox, info, corner = _plain_get_layout(text, renderer)
        if len(boxes) >= _MAX_ITEMS:
            boxes.clear()
        hit = (bbox.get_points().copy(), tuple(info), corner)
        # A copy of the font: a Text may change its own FontProperties later.
        boxes[(key[0], t._fontproperties.copy(), *key[2:])] = hit
    points, info, corner = hit
    return Bbox(points.copy()), list(info), corner


Text._get_layout = _get_layout  # type: ignore[attr-defined]


def _font_heights(prop: Any, dpi: float) -> tuple[float, float, float] | None:
    """``Text._get_layout``'s reading of (min ascent, min descent, line gap) in pixels from the
    OS/2 or hhea table (matplotlib 3.11); None when the font has neither."""
    font = get_font(fontManager._find_fonts_by_props(prop))
    head = font.get_sfnt_table("head")
    if head is None:
        return None
    scale = 1 / head["unitsPerEm"] * prop.get_size_in_points() * dpi / 72
    os2 = font.get_sfnt_table("OS/2")
    if os2 is not None:
        return (os2["sTypoAscender"] * scale, -os2["sTypoDescender"] * scale,
                os2["sTypoLineGap"] * scale)
    hhea = font.get_sfnt_table("hhea")
    if hhea is not None:
        return hhea["ascent"] * scale, -hhea["descent"] * scale, hhea["lineGap"] * scale
    return None


class SharedRendererCanvas(FigureCanvasAgg):
    """FigureCanvasAgg drawing on this thread's :class:`TextCachingRenderer` of its size."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = (w, h, self.figure.dpi)
        pool: dict[tuple[Any, ...], TextCachingRenderer] = _local.__dict__.setdefault(
            "renderers", {})
        renderer = pool.get(key)
        if renderer is None:
            if len(pool) >= 8:  # a few chart sizes per process; never grow without bound
                pool.clear()
            renderer = pool[key] = TextCachingRenderer(w, h, self.figure.dpi)
        self.renderer = renderer
        self._lastKey = key
        return renderer
