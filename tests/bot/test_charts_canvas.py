"""Charts draw on one renderer per thread and size, which keeps matplotlib's text caches
between charts, and renders reuse a kept figure per thread, kind and size; the pixels are
exactly those of a fresh matplotlib canvas and a new figure."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from bot.charts import heatmap_figure, map_figure
from bot.charts.canvas import SharedRendererCanvas
from bot.charts.style import new_figure, to_png
from bot.tape.events import Liquidation
from estimator import ClusterRule, build_book, build_heatmap, find_clusters
from estimator.cascade import cascade_path
from tests.bot.chart_helpers import walk


def _charts() -> list[Figure]:
    c = walk(with_oi=True)
    book = build_book(c)
    clusters = find_clusters(book, ClusterRule(min_share=0.002))
    labels = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}
    return [heatmap_figure(c, build_heatmap(c, columns=120, start=len(c) - 168), clusters,
                           window_label="7d", size=(1333, 1011), **labels),
            map_figure(book, clusters, size=(1333, 1011), **labels)]


def _plain_pixels(fig: Figure) -> np.ndarray:
    """The figure drawn by matplotlib's own Agg canvas and renderer (no caches kept)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_charts_of_one_size_share_the_thread_renderer() -> None:
    a, b = new_figure((1300, 900)), new_figure((1300, 900))
    assert a.canvas.get_renderer() is b.canvas.get_renderer()
    assert new_figure((1200, 900)).canvas.get_renderer() is not a.canvas.get_renderer()
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(new_figure((1300, 900)).canvas
                                                      .get_renderer()))
    t.start()
    t.join()
    assert other[0] is not a.canvas.get_renderer()  # renderers are never shared by threads


def test_cached_text_draws_the_same_pixels_as_a_fresh_canvas() -> None:
    for _ in range(2):  # the second round draws every text from the caches
        for fig in _charts():
            to_png(fig)
            shared = np.asarray(fig.canvas.buffer_rgba()).copy()
            assert np.array_equal(shared, _plain_pixels(fig))


def _variants() -> list[tuple[str, Callable[[bool], Figure]]]:
    """Charts that differ in every part a kept figure must forget: tape, live zones, confirmed
    marks, spot, no clusters, proxy units, an /ifbreak path, an empty map, another size."""
    out: list[tuple[str, Callable[[bool], Figure]]] = []
    labels = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}
    for oi in (True, False):
        c = walk(with_oi=oi)
        book = build_book(c)
        cl = find_clusters(book, ClusterRule(min_share=0.002))
        hm = build_heatmap(c, columns=120, start=len(c) - 168)
        t0, p = int(c.timestamp[-100]), float(c.close[-100])
        tape = [Liquidation("binance", t0 + i * 3_600_000, "BTC/USDT",
                            "long" if i % 2 else "short", p * (1 + (i - 5) * 0.004), 0.1,
                            1000.0 * (i + 1)) for i in range(10)]
        conf = [("long", p * 0.95, p * 0.96, 5e5), ("short", p * 1.04, p * 1.05, 2e5)]
        last = book.last_price
        out += [
            (f"heatmap oi={oi}", lambda r, c=c, hm=hm, cl=cl: heatmap_figure(
                c, hm, cl, window_label="7d", reuse=r, **labels)),
            (f"heatmap tape oi={oi}", lambda r, c=c, hm=hm, cl=cl, tape=tape: heatmap_figure(
                c, hm, cl, window_label="7d", tape=tape, live={z.id for z in cl[:2]},
                reuse=r, **labels)),
            (f"heatmap confirmed spot oi={oi}", lambda r, c=c, cl=cl, conf=conf: heatmap_figure(
                c, build_heatmap(c, columns=200, start=len(c) - 400), cl, window_label="17d",
                confirmed=conf, spot=True, reuse=r, **labels)),
            (f"heatmap no clusters oi={oi}", lambda r, c=c, hm=hm: heatmap_figure(
                c, hm, [], window_label="7d", reuse=r, **labels)),
            (f"map oi={oi}", lambda r, book=book, cl=cl: map_figure(
                book, cl, reuse=r, **labels)),
            (f"map path oi={oi}", lambda r, book=book, cl=cl, last=last: map_figure(
                book, cl, path=cascade_path(book, cl, round(last * 0.93)), reuse=r, **labels)),
            (f"map confirmed oi={oi}", lambda r, book=book, cl=cl, last=last: map_figure(
                book, cl, confirmed=(np.array([last * 0.97, last * 1.02]), np.array([3e5, 1e5])),
                top_n=5, reuse=r, **labels)),
            (f"map empty oi={oi}", lambda r, book=book: map_figure(
                book, [], span_pct=0.01, reuse=r, **labels)),
            (f"map small oi={oi}", lambda r, book=book, cl=cl: map_figure(
                book, cl, size=(1200, 800), reuse=r, **labels)),
        ]
    return out


def test_a_kept_figure_draws_each_chart_like_a_new_one() -> None:
    variants = _variants()
    fresh = {name: to_png(build(False)) for name, build in variants}
    for name, build in [*variants, *variants[::-1]]:  # each kind after every other
        assert to_png(build(True)) == fresh[name], name


def test_kept_figures_are_per_thread_and_per_size() -> None:
    c = walk(with_oi=True)
    book = build_book(c)
    labels = {"symbol": "BTC/USDT", "exchange": "Binance", "timeframe": "1h"}
    a = map_figure(book, [], reuse=True, **labels)
    assert map_figure(book, [], reuse=True, **labels) is a
    assert map_figure(book, [], reuse=False, **labels) is not a
    assert map_figure(book, [], size=(1200, 800), reuse=True, **labels) is not a
    other: list[Figure] = []
    t = threading.Thread(target=lambda: other.append(map_figure(book, [], reuse=True, **labels)))
    t.start()
    t.join()
    assert other[0] is not a


def test_renders_from_threads_at_once_match_serial_renders() -> None:
    variants = _variants()
    want = {name: to_png(build(False)) for name, build in variants}
    got: dict[str, list[bytes]] = {name: [] for name, _ in variants}
    barrier = threading.Barrier(3)

    def work(order: list[tuple[str, Callable[[bool], Figure]]]) -> None:
        barrier.wait()
        for name, build in order:
            got[name].append(to_png(build(True)))

    threads = [threading.Thread(target=work, args=(variants[k:] + variants[:k],))
               for k in (0, 3, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(pngs == [want[name]] * 3 for name, pngs in got.items())


def test_text_boxes_kept_by_the_renderer_match_matplotlibs() -> None:
    """The thread renderer remembers each text's layout by string, font, alignment and
    rotation; a text changed in any of them is laid out again, as matplotlib would."""
    fig = new_figure((1300, 900))
    renderer = fig.canvas.get_renderer()
    plain = FigureCanvasAgg(Figure(figsize=(13, 9), dpi=100)).get_renderer()
    t = fig.text(0.5, 0.5, "94,000\n$1.2M longs", fontsize=12, ha="center", va="top")
    changes: list[Callable[[], object]] = [
        lambda: None, lambda: t.set_fontsize(15), lambda: t.set_rotation(90),
        lambda: t.set_ha("right"), lambda: t.set_va("baseline"), lambda: t.set_text("94,400"),
        lambda: t.set_linespacing(2.0), lambda: t.set_fontweight("bold"),
        lambda: t.set_rotation_mode("anchor"), lambda: t.set_multialignment("left")]
    for change in changes:
        change()
        for _ in range(2):  # laid out, then from the renderer's boxes
            got = t.get_window_extent(renderer)
            t._renderer = plain  # matplotlib's own layout of the same text
            want = Text.get_window_extent(t, plain)
            assert np.allclose(got.get_points(), want.get_points()), change
    assert len(renderer._text_boxes) >= len(changes)


def test_a_text_is_pasted_only_onto_the_same_pixels() -> None:
    """A text drawn again at the same place and in the same colour is pasted from its last
    draw when the pixels under it are unchanged, and drawn again when they changed: either
    way the pixels are those of a fresh matplotlib canvas."""
    from matplotlib.patches import Rectangle

    fig = new_figure((1300, 900))
    fig.text(0.5, 0.5, "94,400 · $1.2M", fontsize=14, color="#d1d4dc", ha="center")
    under = Rectangle((0.45, 0.45), 0.1, 0.1, transform=fig.transFigure, color="#131722",
                      zorder=0)
    fig.add_artist(under)
    renderer = fig.canvas.get_renderer()
    for colour in ("#131722", "#131722", "#ffd54f", "#ffd54f", "#131722"):
        under.set_color(colour)
        SharedRendererCanvas(fig)  # _plain_pixels gave the figure matplotlib's own canvas
        to_png(fig)
        shared = np.asarray(fig.canvas.buffer_rgba()).copy()
        assert np.array_equal(shared, _plain_pixels(fig)), colour
    assert renderer._pixels  # the text's pixels are kept


def test_a_new_string_is_shaped_once_for_its_metrics_and_its_glyphs() -> None:
    """Measuring a string also lays it out for drawing, exactly as FT2Font._layout would,
    unless shaping ligated glyphs; the metrics are RendererAgg's."""
    from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
    from matplotlib.font_manager import FontProperties

    renderer = new_figure((1300, 900)).canvas.get_renderer()
    plain = RendererAgg(1300, 900, 100)
    flags = get_hinting_flag()
    for prop in (FontProperties(size=12), FontProperties(size=17, weight="bold")):
        for s in ("$1.4M longs", "7,600–7,700 (-2.1%)", "2019-10-17 02:00 → 2019-11-16",
                  "AVAWAY", "fi ffl"):
            assert (renderer.get_text_width_height_descent(s, prop, False)
                    == plain.get_text_width_height_descent(s, prop, False))
            kept = renderer._layouts.get((s, prop, renderer.dpi, flags, None, None))
            font = plain._prepare_font(prop)
            want = [(i.ft_object, i.x, i.y, i.glyph_index) for i in font._layout(s, flags)]
            if len(want) == len(s):
                assert kept is not None
                assert [(f.fname, x, y, g) for f, x, y, g in kept] == [
                    (f.fname, x, y, g) for f, x, y, g in want]
            else:  # ligatures: draw_text lays the string out itself
                assert kept is None
