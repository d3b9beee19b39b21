"""Tick locators and formatters that compute each answer once per draw.

matplotlib asks an axis for its ticks and labels several times per draw (the ticks to draw, then
again for the tick-label boxes that place the axis label), and date locators and formatters are
slow. These wrappers answer a repeated question from the last answer: the same view interval
gives the same ticks, the same tick values the same labels. Pixels are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import Formatter, Locator


class OncePerView(Locator):
    """``inner``'s ticks, recomputed only when the axis' view interval changes."""

    def __init__(self, inner: Locator) -> None:
        self.inner = inner
        self._key: tuple[float, ...] | None = None
        self._ticks: Any = None

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def __call__(self) -> Any:
        key = tuple(float(v) for v in self.axis.get_view_interval())  # type: ignore[union-attr]
        if key != self._key:
            self._ticks = self.inner()
            self._key = key
        return np.array(self._ticks, copy=True)

    def tick_values(self, vmin: float, vmax: float) -> Any:
        return self.inner.tick_values(vmin, vmax)

    def view_limits(self, vmin: float, vmax: float) -> tuple[float, float]:
        return self.inner.view_limits(vmin, vmax)

    def nonsingular(self, v0: float, v1: float) -> tuple[float, float]:
        return self.inner.nonsingular(v0, v1)


class OncePerTicks(Formatter):
    """``inner``'s labels, recomputed only when the tick values change."""

    def __init__(self, inner: Formatter) -> None:
        self.inner = inner
        self._key: tuple[float, ...] | None = None
        self._labels: list[str] = []

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def format_ticks(self, values: list[float]) -> list[str]:
        key = tuple(float(v) for v in values)
        if key != self._key:
            self._labels = list(self.inner.format_ticks(values))
            self._key = key
        return list(self._labels)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.inner(x, pos)

    def set_locs(self, locs: list[float]) -> None:
        self.inner.set_locs(locs)

    def get_offset(self) -> str:
        return self.inner.get_offset()

    def format_data(self, value: float) -> str:
        return self.inner.format_data(value)

    def format_data_short(self, value: float) -> str:
        return self.inner.format_data_short(value)
