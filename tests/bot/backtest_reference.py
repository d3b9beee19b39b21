"""The walk-forward loop as it was before the build-once walk: one book built from scratch at
every evaluation. The reference tests/bot/test_backtest_walk.py holds bot.backtest.walk to, and
the baseline bench/backtest_bench.py times (there with the previous estimator fast path)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from bot.backtest.walk import Estimates
from estimator import (
    Book,
    Candles,
    Cluster,
    ClusterRule,
    ModelParams,
    build_book,
    find_clusters,
    top,
)


def walk_rebuilding(c: Candles, times: NDArray[np.int64], params: ModelParams,
                    rule: ClusterRule, top_n: int, lookback: int | None = None,
                    build: Callable[[Candles, ModelParams], Book] = build_book,
                    clusters: Callable[[Book, ClusterRule], list[Cluster]] = find_clusters,
                    ) -> Estimates:
    price = np.empty(len(times))
    eval_idx: list[int] = []
    rows: list[tuple[str, float, float, float]] = []
    proxy = True
    for e, t in enumerate(times):
        start = 0 if lookback is None else max(0, int(t) + 1 - lookback)
        book = build(c.slice(start, int(t) + 1), params)
        found = [(k.side, k.low, k.high, k.notional_usd)
                 for k in top(clusters(book, rule), top_n)]
        price[e], proxy = book.last_price, book.proxy
        rows.extend(found)
        eval_idx.extend([e] * len(found))
    return Estimates(
        times=np.asarray(times, dtype=np.int64), price=price,
        eval_idx=np.asarray(eval_idx, dtype=np.int64),
        low=np.asarray([r[1] for r in rows], dtype=np.float64),
        high=np.asarray([r[2] for r in rows], dtype=np.float64),
        notional=np.asarray([r[3] for r in rows], dtype=np.float64),
        is_short=np.asarray([r[0] == "short" for r in rows], dtype=bool),
        proxy=proxy,
    )
