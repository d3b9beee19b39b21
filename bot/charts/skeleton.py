"""Chart skeletons: a figure with its axes (and their tick objects) built once per thread,
kind and size, then cleared of the last chart's artists and filled again.

Building the axes, their ~25 tick objects and the colour bar was a fifth of a cold render. A
skeleton keeps them; :meth:`Skeleton.reset` removes every artist added after the skeleton was
built (lines, collections, images, texts, legends), so each chart starts from the same state.
The chart code sets every axes property it uses on each fill (limits, locators, formatters,
labels), so a reused skeleton draws the same pixels as a fresh one (tested).

One pool per thread (renders run in worker threads; a figure is never shared between them).
A fill that raises drops its skeleton, so a half-filled figure is never reused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.artist import Artist
from matplotlib.figure import Figure

_local = threading.local()
_MAX_PER_THREAD = 8  # (kind, size) pairs kept per thread


class Skeleton:
    """A figure and named parts of it (axes, colour bar...), with the artists it started with.
    ``owned``: artists a part replaces itself (a colour bar's solids), which reset leaves."""

    def __init__(self, fig: Figure, parts: dict[str, Any],
                 owned: Callable[[], list[Artist]] = list) -> None:
        self.fig = fig
        self.parts = parts
        self._owned = owned
        # Artists a fill leaves for the next fill, which reuses or removes them (a legend
        # showing the same entries, a title: bot/charts/kept.py); reset leaves them.
        self.kept: dict[str, Artist] = {}
        # The artists themselves are kept, not just their ids: an id is only unique while its
        # object lives (a colour bar replaces its solids, and a new text could get the old id).
        self._base_artists = list(self._artists())
        self._base = {id(a) for a in self._base_artists}

    def _artists(self) -> Iterator[Artist]:
        fig = self.fig
        for group in (fig.texts, fig.legends, fig.lines, fig.patches, fig.images, fig.artists):
            yield from group
        for ax in fig.axes:
            yield from ax.get_children()

    def reset(self) -> None:
        """Remove every artist added since the skeleton was built."""
        fig = self.fig
        keep = self._base | {id(a) for a in [*self._owned(), *self.kept.values()]}
        for group in (fig.texts, fig.legends, fig.lines, fig.patches, fig.images, fig.artists):
            for a in list(group):
                if id(a) not in keep:
                    a.remove()
        for ax in fig.axes:
            if ax.legend_ is not None and id(ax.legend_) not in keep:
                ax.legend_.remove()
            for a in [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images,
                      *ax.artists, *ax.tables]:
                if id(a) not in keep:
                    a.remove()


@contextmanager
def skeleton(kind: str, size: tuple[int, int], build: Callable[[], Skeleton],
             reuse: bool) -> Iterator[Skeleton]:
    """This thread's skeleton for (``kind``, ``size``), reset, or a new one from ``build()``
    when ``reuse`` is false or none is kept yet. Dropped from the pool if the body raises."""
    if not reuse:
        yield build()
        return
    pool: dict[tuple[str, tuple[int, int]], Skeleton] = _local.__dict__.setdefault("pool", {})
    key = (kind, size)
    sk = pool.pop(key, None)
    if sk is None:
        sk = build()
    else:
        sk.reset()
    yield sk  # an exception here leaves the skeleton out of the pool
    if len(pool) >= _MAX_PER_THREAD:
        pool.clear()
    pool[key] = sk
