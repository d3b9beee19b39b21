"""Which symbols the scheduler recomputes, and when in the interval each one runs.

Tracked = the configured symbols, then every symbol a chat subscribes to, up to ``[limits]
tracked_symbols``. A symbol whose last subscriber left stays tracked for a grace period (a
re-subscribe does not refetch it), then is dropped. Recomputes are spread evenly over the
interval (phases), so 200 symbols never all fetch at :00.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

GRACE_S = 900.0  # a symbol nobody subscribes to any more is dropped after this


@dataclass(frozen=True)
class TrackPlan:
    """The new tracked tuple, what was added and dropped, and who waits out the grace."""

    tracked: tuple[str, ...]
    added: tuple[str, ...]
    dropped: tuple[str, ...]
    leaving: dict[str, float]  # symbol → since when (s) it has had no subscriber


def plan_tracked(current: Sequence[str], configured: Sequence[str], subscribed: Iterable[str],
                 cap: int, leaving: Mapping[str, float], now_s: float,
                 grace_s: float = GRACE_S) -> TrackPlan:
    """Configured symbols always; subscribed ones (those already tracked first, then new ones
    sorted) while there is room under ``cap``; unsubscribed ones after ``grace_s``."""
    wanted = list(dict.fromkeys(configured))
    subs = set(subscribed) - set(wanted)
    ordered = [s for s in current if s in subs] + sorted(subs - set(current))
    wanted += ordered[: max(0, cap - len(wanted))]
    still: dict[str, float] = {}
    kept = []
    for s in current:
        if s in wanted:
            continue
        since = leaving.get(s, now_s)
        if now_s - since < grace_s:
            still[s] = since
            kept.append(s)
    room = max(0, cap - len(kept))
    wanted = wanted[:room] if len(wanted) > room else wanted
    tracked = tuple(s for s in current if s in wanted or s in still) + tuple(
        s for s in wanted if s not in current)
    return TrackPlan(tracked, tuple(s for s in tracked if s not in current),
                     tuple(s for s in current if s not in tracked), still)


def even_phases(n: int, interval_s: float) -> list[float]:
    """Offsets (s) of ``n`` recomputes spread evenly over the interval: i × interval / n."""
    return [interval_s * i / n for i in range(n)] if n else []


def free_phase(phases: Sequence[float], interval_s: float) -> float:
    """The middle of the largest gap between ``phases`` (offsets in [0, interval)), where one
    more recompute disturbs the spread least."""
    if not phases:
        return 0.0
    ps = sorted(p % interval_s for p in phases)
    gaps = [((ps[(i + 1) % len(ps)] - p) % interval_s or interval_s, p)
            for i, p in enumerate(ps)]
    gap, start = max(gaps)
    return (start + gap / 2) % interval_s
