"""Walk-forward estimates: the top clusters the model would have shown at each evaluation time.

No look-ahead: the estimate at evaluation candle ``t`` is the book of candles ≤ ``t`` only (all
of them, or the last ``lookback`` candles), then ``find_clusters`` with no memory of earlier
evaluations (each one stands alone) and ``top`` N per side by notional.

Built once, read many times: :func:`walk` builds the level model of the whole series once
(every created level with its death index and survival) and reads the book at each ``t`` from
the levels born by ``t`` and still alive at ``t`` — a level's death index is ≤ ``t`` exactly when
candles ≤ ``t`` consumed it, so nothing after ``t`` leaks in. Without ``lookback`` each book is
bit-identical to ``build_book`` on candles ≤ ``t`` (:func:`estimate_at`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from estimator import (
    Book,
    Candles,
    ClusterRule,
    ModelParams,
    build_book,
    level_model,
    top_clusters,
)
from estimator.running import running_books

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> int:
    """'30m', '24h', '7d' → milliseconds. A bare number is refused (candles or hours?)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"duration {text!r}: expected a positive number and a unit m/h/d, "
                         "e.g. 24h")
    return int(round(float(m.group(1)) * _UNIT_MS[m.group(2)]))


def candle_step_ms(c: Candles) -> int:
    """The usual candle spacing (median, ms); gaps do not change it."""
    return int(np.median(np.diff(c.timestamp))) if len(c) > 1 else 60_000


def to_candles(ms: int, step_ms: int) -> int:
    """A duration in whole candles (at least 1)."""
    return max(1, int(round(ms / step_ms)))


def evaluation_times(n: int, warmup: int, every: int, after: int) -> NDArray[np.int64]:
    """Candle indexes t = warmup−1, warmup−1+every, … that leave ``after`` candles to score."""
    if every < 1:
        raise ValueError(f"every must be ≥ 1 candle, got {every!r}")
    first, last = max(warmup, 1) - 1, n - 1 - after
    if last < first:
        raise ValueError(f"series too short: {n} candles, need warm-up {warmup} + {after} to "
                         "score at least one evaluation")
    return np.arange(first, last + 1, every, dtype=np.int64)


@dataclass(frozen=True)
class Estimates:
    """Top clusters at every evaluation time, flattened (one row per cluster).

    ``times[e]`` is the candle index of evaluation ``e`` and ``price[e]`` its close (USD).
    Per cluster: ``eval_idx`` (→ evaluation), ``low``/``high`` (USD), ``notional`` (USD or proxy
    units), ``is_short`` (the model's side). ``proxy``: the volume proxy was used (no OI).
    """

    times: NDArray[np.int64]
    price: NDArray[np.float64]
    eval_idx: NDArray[np.int64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    notional: NDArray[np.float64]
    is_short: NDArray[np.bool_]
    proxy: bool

    def __len__(self) -> int:
        return len(self.eval_idx)


def estimate_at(c: Candles, t: int, params: ModelParams, rule: ClusterRule, top_n: int,
                lookback: int | None = None) -> tuple[list[tuple[str, float, float, float]],
                                                     float, bool]:
    """(side, low, high, notional) of the top ``top_n`` clusters per side from candles ≤ ``t``,
    the close at ``t``, and the proxy flag (one book built from scratch)."""
    start = 0 if lookback is None else max(0, t + 1 - lookback)
    return _top_rows(build_book(c.slice(start, t + 1), params), rule, top_n)


def _top_rows(book: Book, rule: ClusterRule,
              top_n: int) -> tuple[list[tuple[str, float, float, float]], float, bool]:
    rows = [(k.side, k.low, k.high, k.notional_usd) for k in top_clusters(book, top_n, rule)]
    return rows, book.last_price, book.proxy


def walk(c: Candles, times: NDArray[np.int64], params: ModelParams, rule: ClusterRule,
         top_n: int, lookback: int | None = None,
         progress: Callable[[int, int], None] | None = None) -> Estimates:
    """The estimates at every time in ``times`` (see :func:`estimate_at`), from one level model.

    Each book equals ``build_book`` on the candles of its window (``books_at``), bit for bit;
    ``times`` must ascend.
    ``progress(done, total)`` is called after each evaluation.
    """
    model = level_model(c, params)
    times = np.asarray(times, dtype=np.int64)
    starts = None if lookback is None else np.maximum(times + 1 - lookback, 0)
    price = np.empty(len(times))
    eval_idx: list[int] = []
    rows: list[tuple[str, float, float, float]] = []
    proxy = True
    for e, book in enumerate(running_books(model, times, c, params, starts)):
        found, price[e], proxy = _top_rows(book, rule, top_n)
        rows.extend(found)
        eval_idx.extend([e] * len(found))
        if progress is not None:
            progress(e + 1, len(times))
    return Estimates(
        times=np.asarray(times, dtype=np.int64), price=price,
        eval_idx=np.asarray(eval_idx, dtype=np.int64),
        low=np.asarray([r[1] for r in rows], dtype=np.float64),
        high=np.asarray([r[2] for r in rows], dtype=np.float64),
        notional=np.asarray([r[3] for r in rows], dtype=np.float64),
        is_short=np.asarray([r[0] == "short" for r in rows], dtype=bool),
        proxy=proxy,
    )

