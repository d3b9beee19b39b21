"""Tick wrappers: matplotlib asks for an axis' ticks and labels several times per draw; the
wrapped locator and formatter answer each new question once, with the same ticks and labels."""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
from matplotlib.ticker import AutoLocator, FuncFormatter

from bot.charts.style import new_figure, to_png
from bot.charts.ticks import OncePerTicks, OncePerView


class CountingLocator(AutoLocator):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().__call__()


class CountingFormatter(mdates.ConciseDateFormatter):
    calls = 0

    def format_ticks(self, values):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().format_ticks(values)


def _figure(wrap: bool) -> tuple[object, CountingLocator, CountingFormatter]:
    fig = new_figure((1200, 800))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.plot([19000.0, 19030.0], [90_000.0, 110_000.0])
    ax.set_ylabel("Price")
    ax.set_xlabel("Time")
    loc, dates = CountingLocator(), mdates.AutoDateLocator(tz=mdates.UTC)
    fmt = CountingFormatter(dates, tz=mdates.UTC)
    price = FuncFormatter(lambda v, _p: f"{v:,.0f}")
    ax.yaxis.set_major_locator(OncePerView(loc) if wrap else loc)
    ax.yaxis.set_major_formatter(OncePerTicks(price) if wrap else price)
    ax.xaxis.set_major_locator(dates)
    ax.xaxis.set_major_formatter(OncePerTicks(fmt) if wrap else fmt)
    return fig, loc, fmt


def test_each_view_is_located_and_labelled_once_per_draw() -> None:
    fig, loc, fmt = _figure(wrap=True)
    plain, plain_loc, plain_fmt = _figure(wrap=False)
    assert to_png(fig) == to_png(plain)  # type: ignore[arg-type]
    assert plain_loc.calls > 1 and plain_fmt.calls > 1  # what the wrappers save
    assert (loc.calls, fmt.calls) == (1, 1)
    ax = fig.axes[0]  # type: ignore[attr-defined]
    assert ax.xaxis.get_major_formatter().get_offset() == plain.axes[0].xaxis \
        .get_major_formatter().get_offset()  # type: ignore[attr-defined]
    ax.set_ylim(95_000, 96_000)  # a new view: new ticks
    to_png(fig)  # type: ignore[arg-type]
    assert loc.calls == 2
    assert np.all((ax.get_yticks() >= 95_000) & (ax.get_yticks() <= 96_000))
