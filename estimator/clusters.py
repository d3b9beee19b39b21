"""Clusters: dense price ranges of estimated liquidations, with ids stable across recomputes.

Threshold rule (per side): a bucket is *hot* when its notional is ≥ ``hot_multiple`` × the
mean bucket within ±``context_pct`` % of the last price (empty buckets count) and ≥
``min_share`` of the side's total. Hot buckets form runs; runs whose gap is within
``merge_pct`` % of price are merged into one cluster, as
long as the cluster stays within ``max_width_pct`` % of price (so a dense book does not chain
into one 20 %-wide "cluster"). A cluster's notional is the sum of its hot buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from estimator.book import Book
from estimator.candles import FloatArray
from estimator.grid import PriceGrid


@dataclass(frozen=True)
class Cluster:
    """A liquidation cluster. Prices in USD, ``distance_pct`` = (price − last) / last × 100."""

    id: str
    side: str  # "long" (liquidates longs, usually below price) or "short"
    low: float
    high: float
    price: float  # notional-weighted centre
    notional_usd: float
    distance_pct: float

    def overlap(self, other: Cluster) -> float:
        """Width (USD) of the price overlap with ``other`` (0 when disjoint)."""
        return max(0.0, min(self.high, other.high) - max(self.low, other.low))

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "side": self.side, "low": self.low, "high": self.high,
            "price": self.price, "notional_usd": self.notional_usd,
            "distance_pct": self.distance_pct,
        }


@dataclass(frozen=True)
class ClusterRule:
    hot_multiple: float = 3.0
    min_share: float = 0.0025
    context_pct: float = 10.0

    def __post_init__(self) -> None:
        if not self.hot_multiple >= 0:
            raise ValueError(f"cluster rule: hot_multiple must be ≥ 0, got {self.hot_multiple!r}")
        if not 0 <= self.min_share < 1:
            raise ValueError(f"cluster rule: min_share must be in [0, 1), got {self.min_share!r}")
        if not 0 <= self.merge_pct <= 50:
            raise ValueError(f"cluster rule: merge_pct must be in [0, 50], got {self.merge_pct!r}")
        if not 0 < self.keep_ratio <= 1:
            raise ValueError(f"cluster rule: keep_ratio must be in (0, 1], got {self.keep_ratio!r}")
        if not self.max_width_pct > 0:
            raise ValueError(
                f"cluster rule: max_width_pct must be > 0, got {self.max_width_pct!r}")
        if not 0 < self.context_pct < 100:
            raise ValueError(
                f"cluster rule: context_pct must be in (0, 100), got {self.context_pct!r}")
    merge_pct: float = 0.5
    max_width_pct: float = 1.5
    keep_ratio: float = 0.5


def find_clusters(book: Book, rule: ClusterRule | None = None,
                  previous: Sequence[Cluster] = ()) -> list[Cluster]:
    """Clusters of both sides of ``book``, ids provisional (see :func:`assign_ids`).

    Hysteresis: inside the ranges of ``previous`` clusters (same side) a bucket stays hot down
    to ``keep_ratio`` × the threshold, so a cluster hovering at the threshold does not flicker
    in and out between recomputes.
    """
    r = rule if rule is not None else ClusterRule()
    found: list[Cluster] = []
    for side, values in (("long", book.long_usd), ("short", book.short_usd)):
        known = [(c.low, c.high) for c in previous if c.side == side]
        found.extend(_side_clusters(side, values, book.k0, book.grid, book.last_price,
                                    book.timestamp, r, known))
    return found


def top_clusters(book: Book, n: int, rule: ClusterRule | None = None) -> list[Cluster]:
    """``top(find_clusters(book, rule), n)``, faster: only the ``n`` largest clusters of each
    side are built."""
    r = rule if rule is not None else ClusterRule()
    found: list[Cluster] = []
    for side, values in (("long", book.long_usd), ("short", book.short_usd)):
        found.extend(_side_clusters(side, values, book.k0, book.grid, book.last_price,
                                    book.timestamp, r, limit=n))
    return found


def _side_clusters(side: str, values: FloatArray, k0: int, grid: PriceGrid, last_price: float,
                   asof: int, rule: ClusterRule, known: Sequence[tuple[float, float]] = (),
                   limit: int | None = None) -> list[Cluster]:
    """Clusters of one side in price order, or (``limit``) the ``limit`` largest by notional,
    largest first (ties in price order), as :func:`top` orders them."""
    total = float(values.sum())
    if total <= 0:
        return []
    lo, hi = grid.index([last_price * (1 - rule.context_pct / 100),
                         last_price * (1 + rule.context_pct / 100)]) - k0
    near = values[max(int(lo), 0): max(int(hi) + 1, 0)]
    typical = float(np.mean(near)) if len(near) else 0.0
    threshold = max(rule.hot_multiple * typical, rule.min_share * total)
    hot_mask = values >= threshold
    if known:
        centres = grid.centre(np.arange(k0, k0 + len(values)))
        inside = np.zeros(len(values), dtype=bool)
        for low, high in known:
            inside |= (centres >= low) & (centres < high)
        hot_mask |= inside & (values >= rule.keep_ratio * threshold) & (values > 0)
    hot = np.nonzero(hot_mask)[0]
    if len(hot) == 0:
        return []
    # Runs of hot buckets, merged when the gap between them is within merge_pct of price.
    lows = grid.edge(hot + k0)
    highs = grid.edge(hot + k0 + 1)
    centres = grid.centre(hot + k0)
    hot_values = values[hot]
    starts = _split_points(lows, highs, last_price, rule)
    runs = list(zip(starts, [*starts[1:], len(hot)], strict=True))
    totals = [hot_values[s:e].sum() for s, e in runs]
    picked: Iterable[int] = range(len(runs))
    if limit is not None:
        picked = sorted(picked, key=lambda i: -float(totals[i]))[:limit]
    out = []
    for i in picked:
        s, e = runs[i]
        w = hot_values[s:e]
        total_w = totals[i]
        centre = float((centres[s:e] * w).sum() / total_w)
        low, high = float(lows[s]), float(highs[e - 1])
        out.append(Cluster(
            id=f"{side[0].upper()}{int(hot[s + int(w.argmax())]) + k0}@{asof}",
            side=side, low=low, high=high, price=centre, notional_usd=float(total_w),
            distance_pct=(centre - last_price) / last_price * 100.0,
        ))
    return out


def _split_points(lows: FloatArray, highs: FloatArray, last_price: float,
                  rule: ClusterRule) -> list[int]:
    """Indexes (into the hot buckets) where a new cluster starts: a gap wider than
    ``merge_pct`` of price, or a cluster that would grow wider than ``max_width_pct``."""
    gap = last_price * rule.merge_pct / 100.0
    width = last_price * rule.max_width_pct / 100.0
    lo, hi = lows.tolist(), highs.tolist()  # Python floats: the same IEEE arithmetic, faster
    starts = [0]
    first = lo[0]
    for i in range(1, len(lo)):
        if lo[i] - hi[i - 1] > gap or hi[i] - first > width:
            starts.append(i)
            first = lo[i]
    return starts


def assign_ids(previous: Iterable[Cluster], current: Sequence[Cluster]) -> list[Cluster]:
    """Give each current cluster the id of the previous same-side cluster it overlaps most.

    One previous id goes to at most one current cluster (the largest overlap wins; ties go to
    the bigger notional). Unmatched clusters keep their fresh id ("L<bucket>@<ms>"), which
    names where and when they first appeared.
    """
    prev = list(previous)
    pairs = []
    for i, cur in enumerate(current):
        for j, old in enumerate(prev):
            if old.side == cur.side:
                ov = cur.overlap(old)
                if ov > 0:
                    pairs.append((ov, cur.notional_usd, i, j))
    pairs.sort(key=lambda x: (-x[0], -x[1], x[2], x[3]))
    taken_cur: dict[int, str] = {}
    taken_prev: set[int] = set()
    for _ov, _n, i, j in pairs:
        if i not in taken_cur and j not in taken_prev:
            taken_cur[i] = prev[j].id
            taken_prev.add(j)
    return [replace(c, id=taken_cur[i]) if i in taken_cur else c for i, c in enumerate(current)]


def merge_touching(clusters: Iterable[Cluster]) -> list[Cluster]:
    """Zones for display: same-side clusters whose price ranges touch or overlap merged into one.

    :func:`find_clusters` cuts a dense run of hot buckets every ``max_width_pct`` % so that
    alerts stay local; a reader sees one band, so labels and /levels show one zone. A zone keeps
    the largest member's id, spans low..high of its members, sums their notional (USD) and is
    centred on their notional-weighted price. Sorted by side (longs first), then by price.
    """
    out: list[Cluster] = []
    for side in ("long", "short"):
        group: list[Cluster] = []
        for c in sorted((c for c in clusters if c.side == side), key=lambda c: (c.low, c.high)):
            if group and c.low > max(g.high for g in group) * (1 + 1e-9):
                out.append(_zone(group))
                group = []
            group.append(c)
        if group:
            out.append(_zone(group))
    return out


def _zone(group: Sequence[Cluster]) -> Cluster:
    if len(group) == 1:
        return group[0]
    big = max(group, key=lambda c: c.notional_usd)
    last = big.price / (1 + big.distance_pct / 100.0)  # the price the distances are from
    total = sum(c.notional_usd for c in group)
    centre = (sum(c.price * c.notional_usd for c in group) / total if total > 0
              else (min(c.low for c in group) + max(c.high for c in group)) / 2)
    return Cluster(id=big.id, side=big.side, low=min(c.low for c in group),
                   high=max(c.high for c in group), price=centre, notional_usd=total,
                   distance_pct=(centre - last) / last * 100.0)


def top(clusters: Iterable[Cluster], n: int, side: str | None = None) -> list[Cluster]:
    """The ``n`` largest clusters by notional of one side, or of each side when ``side`` is None
    (longs first)."""
    items = list(clusters)
    out: list[Cluster] = []
    for s in ("long", "short") if side is None else (side,):
        out.extend(sorted((c for c in items if c.side == s), key=lambda c: -c.notional_usd)[:n])
    return out
