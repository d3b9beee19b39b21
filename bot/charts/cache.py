"""A small thread-safe LRU of rendered PNGs, so repeated chart requests are cheap.

Keyed by (symbol, kind, window, estimate version): a new recompute bumps the version, so stale
images are never served, they just age out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple


class ChartKey(NamedTuple):
    """What identifies a rendered chart. ``kind`` is "heatmap" or "map"; ``window`` a label
    such as "24h" ("" for the map); ``version`` changes whenever the estimate is recomputed
    (e.g. the last candle's timestamp in ms, or a recompute counter)."""

    symbol: str
    kind: str
    window: str
    version: int | str


class ChartCache:
    """LRU of PNG bytes with hit/miss counters; safe to share between worker threads.

    Concurrent misses on the same key render once: the other callers wait for that result.
    """

    def __init__(self, maxsize: int = 32) -> None:
        if maxsize < 1:
            raise ValueError(f"chart cache: maxsize must be ≥ 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[ChartKey, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[ChartKey, threading.Lock] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: ChartKey) -> bytes | None:
        """The cached PNG for ``key`` (counts a hit) or None (counts a miss)."""
        with self._lock:
            png = self._items.get(key)
            if png is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return png

    def put(self, key: ChartKey, png: bytes) -> None:
        """Store ``png`` under ``key``, evicting the least recently used beyond ``maxsize``."""
        with self._lock:
            self._items[key] = png
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def get_or_render(self, key: ChartKey, render: Callable[[], bytes]) -> bytes:
        """The cached PNG for ``key``, else ``render()``'s result, stored. One render per key
        even when several threads miss at once; exceptions propagate and nothing is stored."""
        png = self.get(key)
        if png is not None:
            return png
        with self._lock:
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                png = self._items.get(key)
                if png is not None:  # another thread rendered it while we waited
                    self._items.move_to_end(key)
                    return png
            try:
                png = render()
                self.put(key, png)
            finally:
                with self._lock:
                    self._pending.pop(key, None)
        return png

    def clear(self) -> None:
        """Drop every image (counters are kept)."""
        with self._lock:
            self._items.clear()

    def stats(self) -> dict[str, int]:
        """{"size", "maxsize", "hits", "misses"} — for /status and the bench."""
        with self._lock:
            return {"size": len(self._items), "maxsize": self.maxsize, "hits": self.hits,
                    "misses": self.misses}
