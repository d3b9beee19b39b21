"""Cluster annotation text and a tiny label de-overlapper shared by both charts."""

from __future__ import annotations

from collections.abc import Sequence

from bot.fmt import money, price_text
from estimator import Cluster, top
from estimator.clusters import merge_touching


def cluster_label(c: Cluster, sep: str = " ") -> str:
    """ "$1.0B shorts 94,000–94,400 (+2.1%)": size, side, price range (USD), distance from price.
    ``sep`` goes between the side and the range ("\n" for a two-line label)."""
    return (f"{money(c.notional_usd)} {c.side}s{sep}{price_text(c.low)}–{price_text(c.high)} "
            f"({c.distance_pct:+.1f}%)")


def visible_zones(clusters: Sequence[Cluster], lo: float, hi: float, n: int) -> list[Cluster]:
    """The ``n`` largest zones per side (touching clusters merged) that reach into the visible
    price range [lo, hi] (USD): what a chart labels. Zones entirely off the chart are left out,
    however large, so that the labels name the bands the reader sees."""
    zones = merge_touching(clusters)
    return top([z for z in zones if anchor(z, lo, hi) is not None], n)


def anchor(c: Cluster, lo: float, hi: float) -> float | None:
    """Where to point at ``c`` within a visible price range [lo, hi] (USD): its centre, clamped
    into the part of [low, high] that is visible; None when the cluster is entirely outside."""
    a, b = max(c.low, lo), min(c.high, hi)
    if a > b:
        return None
    return min(max(c.price, a), b)


def spread(positions: Sequence[float], gap: float, lo: float, hi: float) -> list[float]:
    """Move 1-D label positions apart so neighbours are ≥ ``gap`` apart, staying in [lo, hi].

    Returns positions in input order; units are any linear unit (e.g. axes fraction). Positions
    outside [lo, hi] are clamped but keep their order (the farthest ends up outermost).
    Greedy: sort, push up from the bottom, then pull back down from the top if it overflowed.
    """
    if not positions:
        return []
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    ys = [min(max(positions[i], lo), hi) for i in order]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + gap)
    if ys[-1] > hi:
        ys[-1] = hi
        for k in range(len(ys) - 2, -1, -1):
            ys[k] = min(ys[k], ys[k + 1] - gap)
    out = [0.0] * len(ys)
    for k, i in enumerate(order):
        out[i] = ys[k]
    return out
