"""The latest estimate per symbol: computed off the event loop, read by commands and alerts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.fmt import utc_text
from bot.market.base import MarketSnapshot
from estimator import (
    Book,
    Candles,
    Cluster,
    ClusterRule,
    Heatmap,
    ModelParams,
    assign_ids,
    build_book,
    build_heatmap,
    find_clusters,
)

#: Chart windows users may ask for, in hours.
WINDOWS_H: dict[str, float] = {"12h": 12, "24h": 24, "3d": 72, "7d": 168, "30d": 720}


@dataclass(frozen=True)
class Estimate:
    """One recompute of one symbol: the book at the newest candle and its clusters.

    ``version`` increases with every recompute of the symbol (the chart cache keys on it).
    """

    symbol: str
    snapshot: MarketSnapshot
    params: ModelParams
    book: Book
    clusters: tuple[Cluster, ...]
    computed_ms: int
    version: int
    compute_s: float
    memory: dict[str, tuple[Cluster, int]] = field(default_factory=dict)
    """Clusters seen recently (id → (cluster, last seen ms)), current ones included: a cluster
    that dips out for a while gets its old id back instead of being announced as new."""

    @property
    def proxy(self) -> bool:
        return self.book.proxy

    @property
    def oi_mix(self) -> str:
        """Which exchanges' open interest fed this estimate ("a+b"; "" = the volume proxy).
        Cluster sizes are only comparable between estimates with the same mix."""
        return "+".join(self.snapshot.oi_sources)

    @property
    def price(self) -> float:
        return self.book.last_price

    def heatmap(self, window: str, columns: int = 240) -> Heatmap:
        """The heatmap over the last ``window`` (a key of WINDOWS_H) of the snapshot."""
        return window_heatmap(self.snapshot.candles, self.params, window, columns)


def window_heatmap(candles: Candles, params: ModelParams, window: str,
                   columns: int = 240) -> Heatmap:
    """Heatmap sampled over the newest ``window`` (e.g. "24h") of ``candles``; positions
    opened before the window still count."""
    if window not in WINDOWS_H:
        raise ValueError(f"window must be one of {', '.join(WINDOWS_H)}, got {window!r}")
    span = max(int(candles.timestamp[-1] - candles.timestamp[0]), 1)
    step = span / max(len(candles) - 1, 1)
    n = max(int(WINDOWS_H[window] * 3_600_000 / step), 2)
    return build_heatmap(candles, params, columns=columns, start=max(len(candles) - n, 0))


MEMORY_MS = 48 * 3_600_000  # how long a vanished cluster's id can be reclaimed (data time)


def compute_estimate(snapshot: MarketSnapshot, params: ModelParams,
                     previous: Estimate | Sequence[Cluster] | None = None, version: int = 1,
                     rule: ClusterRule | None = None) -> Estimate:
    """Book and clusters for ``snapshot``; cluster ids carried over from ``previous`` (the last
    estimate, or clusters restored from the store after a restart).

    CPU-bound: the service runs it in a worker thread.
    """
    started = time.perf_counter()
    p = params if snapshot.tiers is None else _with_tiers(params, snapshot)
    book = build_book(snapshot.candles, p)
    if isinstance(previous, Estimate):
        live, memory = list(previous.clusters), dict(previous.memory)
    else:
        live = list(previous or ())
        memory = {c.id: (c, snapshot.now_ms) for c in live}
    now = snapshot.now_ms
    candidates = live + [c for cid, (c, seen) in memory.items()
                         if now - seen <= MEMORY_MS and cid not in {x.id for x in live}]
    clusters = tuple(assign_ids(candidates, find_clusters(book, rule, previous=live)))
    memory = {cid: v for cid, v in memory.items() if now - v[1] <= MEMORY_MS}
    memory.update({c.id: (c, now) for c in clusters})
    return Estimate(snapshot.symbol, snapshot, p, book, clusters, now, version,
                    time.perf_counter() - started, memory)


def _mix_text(mix: str) -> str:
    return mix or "none (volume proxy)"


def _with_tiers(params: ModelParams, snapshot: MarketSnapshot) -> ModelParams:
    assert snapshot.tiers is not None
    return replace(params, tiers=snapshot.tiers)


@dataclass
class SymbolStatus:
    """What /status reports per symbol."""

    last_recompute_ms: int | None = None
    last_error: str | None = None
    stale: bool = False
    source_note: str = ""
    oi_change: str = ""  # the last change of the OI composition, said in /status


@dataclass
class EstimateBoard:
    """Latest estimate and health per symbol, shared by the scheduler jobs and the commands."""

    symbols: tuple[str, ...]
    _latest: dict[str, Estimate] = field(default_factory=dict)
    _status: dict[str, SymbolStatus] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, symbol: str) -> Estimate | None:
        with self._lock:
            return self._latest.get(symbol)

    def put(self, estimate: Estimate) -> None:
        with self._lock:
            before = self._latest.get(estimate.symbol)
            self._latest[estimate.symbol] = estimate
            st = self._status.setdefault(estimate.symbol, SymbolStatus())
            st.last_recompute_ms = estimate.computed_ms
            st.last_error = None
            st.stale = estimate.snapshot.stale
            if before is not None and before.oi_mix != estimate.oi_mix:
                st.oi_change = (
                    f"open interest sources changed at {utc_text(estimate.computed_ms)} UTC "
                    f"from {_mix_text(before.oi_mix)} to {_mix_text(estimate.oi_mix)}: cluster "
                    "sizes re-based, no growth alerts across the change")
            notes = [*estimate.snapshot.warnings, *([st.oi_change] if st.oi_change else [])]
            st.source_note = "; ".join(notes)

    def fail(self, symbol: str, error: str) -> None:
        with self._lock:
            self._status.setdefault(symbol, SymbolStatus()).last_error = error

    def status(self, symbol: str) -> SymbolStatus:
        with self._lock:
            st = self._status.get(symbol, SymbolStatus())
            return replace(st)

    def next_version(self, symbol: str) -> int:
        est = self.get(symbol)
        return 1 if est is None else est.version + 1
