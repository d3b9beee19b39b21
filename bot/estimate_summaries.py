"""Each tracked symbol's latest estimate summary, for processes that do not compute it.

With several processes on one PostgreSQL store, a symbol's estimate lives in the memory of the
market worker leasing it; a chat-role process holds none and a market worker only its own.
Every recompute writes the summary /top and /status need — the clusters, the price and the
latest open interest, with the (wall-clock) time it was written — to the symbol's
``cluster_state`` row (:meth:`bot.store.Store.save_clusters`, one statement). Readers take the
estimate from memory when they hold it, else this stored summary, labelled with its age; one
older than 2× the recompute interval is stale: reported as such, not ranked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from estimator import Cluster

if TYPE_CHECKING:
    from bot.estimates import Estimate, EstimateBoard
    from bot.store import Store

STALE_INTERVALS = 2  # a stored summary older than this many recompute intervals is stale


@dataclass(frozen=True)
class EstimateSummary:
    """What /top ranks and /status reports of one symbol's estimate. ``written_ms`` is None for
    an estimate this process holds in memory, else the wall-clock time a market worker stored
    it."""

    symbol: str
    price: float
    oi_usd: float | None  # latest open interest (USD); None: the volume proxy, no OI
    clusters: tuple[Cluster, ...]
    computed_ms: int
    written_ms: int | None = None

    def age_ms(self, now: int) -> int:
        return 0 if self.written_ms is None else max(now - self.written_ms, 0)


def latest_oi(est: Estimate) -> float | None:
    """The estimate's newest open interest in USD; None when it has none (> 0, finite)."""
    oi = est.snapshot.candles.open_interest_usd
    if oi is None or not len(oi):
        return None
    value = float(oi[-1])
    return value if math.isfinite(value) and value > 0 else None


def summary_of(est: Estimate) -> EstimateSummary:
    return EstimateSummary(est.symbol, est.price, latest_oi(est), tuple(est.clusters),
                           est.computed_ms)


def stale_after_ms(recompute_s: float) -> int:
    """A stored summary older than this is stale: 2× the recompute interval."""
    return int(STALE_INTERVALS * recompute_s * 1000)


def age_text(ms: int) -> str:
    s = ms // 1000
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


@dataclass(frozen=True)
class TrackedSummaries:
    """The summaries to rank (fresh) and the tracked symbols whose stored one is stale, as
    read at ``now`` (wall clock, ms)."""

    fresh: tuple[EstimateSummary, ...]
    stale: tuple[EstimateSummary, ...]
    max_age_ms: int
    now: int

    def stale_line(self) -> str | None:
        if not self.stale:
            return None
        return (f"Stale, not ranked (no estimate stored for over "
                f"{age_text(self.max_age_ms)}, 2× the recompute interval): " + ", ".join(
                    f"{s.symbol} {age_text(s.age_ms(self.now))} old" for s in self.stale))


def tracked_summaries(store: Store | None, board: EstimateBoard, symbols: Sequence[str],
                      recompute_s: float, now: int, shared: bool) -> TrackedSummaries:
    """Each of ``symbols``: the estimate ``board`` tracks, else the stored summary (stale when
    older than 2× ``recompute_s``). ``shared`` (processes beside other market workers): the
    symbols other workers track — a fresh stored summary — are added."""
    max_age = stale_after_ms(recompute_s)
    wanted = list(dict.fromkeys(symbols))
    held = {s: est for s in wanted if s in board.symbols and (est := board.get(s)) is not None}
    # (one process doing everything holds them all: the store is not read)
    stored = ({s.symbol: s for s in store.load_summaries()}
              if store is not None and (shared or len(held) < len(wanted)) else {})
    fresh: list[EstimateSummary] = []
    stale: list[EstimateSummary] = []
    if shared:
        wanted += sorted(s for s, v in stored.items()
                         if s not in wanted and v.age_ms(now) <= max_age)
    for symbol in wanted:
        # (a market worker's board keeps the last estimate of a symbol it gave away: not it)
        if (est := held.get(symbol)) is not None:
            fresh.append(summary_of(est))
        elif (summary := stored.get(symbol)) is not None:
            (fresh if summary.age_ms(now) <= max_age else stale).append(summary)
    return TrackedSummaries(tuple(fresh), tuple(stale), max_age, now)


def from_row(symbol: str, clusters: Iterable[Cluster], price: float, oi_usd: float | None,
             computed_ms: int, written_ms: int) -> EstimateSummary:
    return EstimateSummary(symbol, float(price), None if oi_usd is None else float(oi_usd),
                           tuple(clusters), int(computed_ms), int(written_ms))
