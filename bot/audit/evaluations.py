"""Recording and scoring the bot's own evaluations, with the backtest's definitions.

At a recompute (at most one per ``accuracy.every_minutes`` of data time), the service records
an *evaluation*: the close of the newest candle, the top ``accuracy.top`` clusters per side of
that estimate's book (:func:`estimator.top_clusters`, as ``liqbot backtest`` takes them: no
memory between evaluations), whether price rose over the last 24 h (the trend rule), and the
candles it fetched (the price path). Once ``horizon + reaction`` complete candles follow an
evaluation — and its liquidation window has closed — it is scored ONCE with
:func:`bot.backtest.score.outcomes` (touch of the model's placement and of both placements)
and :func:`bot.backtest.liquidations.capture_sums` (real liquidations within ±0.5 % / ±1 % of
its zones, and what random sides would expect), and the per-evaluation sums are stored.
A request (:mod:`bot.audit.scoreboard`) only adds stored sums up.

b1 is the exact expectation of a random side, (touch above + touch below) / 2 per cluster;
the backtest estimates the same expectation from 200 seeded draws.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.backtest.liquidations import BANDS, band_key, capture_sums
from bot.backtest.score import outcomes, rule_sides
from bot.backtest.walk import Estimates, parse_duration, to_candles
from estimator import Candles, ClusterRule, top_clusters

if TYPE_CHECKING:
    from bot.config import AccuracySection
    from bot.estimates import Estimate
    from bot.store import Store

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Settings:
    """Scoring settings in candles of ``step_ms``."""

    top: int
    horizon: int
    reaction: int
    every_ms: int
    step_ms: int
    beyond: float = 0.005

    @classmethod
    def of(cls, acc: AccuracySection, step_ms: int) -> Settings:
        return cls(acc.top, to_candles(parse_duration(acc.horizon), step_ms),
                   to_candles(parse_duration(acc.reaction), step_ms),
                   int(round(acc.every_minutes * 60_000)), step_ms)


def record_path(store: Store, symbol: str, c: Candles) -> None:
    """Store every candle newer than the stored ones (the newest stored one again: a live
    candle may have been fetched while it was still forming)."""
    known = store.last_path_ms(symbol)
    start = 0 if known is None else int(np.searchsorted(c.timestamp, known, side="left"))
    store.add_path(symbol, zip(c.timestamp[start:].tolist(), c.high[start:].tolist(),
                               c.low[start:].tolist(), c.close[start:].tolist(), strict=True))


def record(store: Store, est: Estimate, s: Settings, valid_ms: int) -> bool:
    """Record ``est`` as an evaluation (and the candles it fetched); False when it is too soon
    after the last one or already recorded."""
    c = est.snapshot.candles
    record_path(store, est.symbol, c)
    t_ms = int(c.timestamp[-1])
    last = store.last_evaluation_ms(est.symbol)
    if last is not None and t_ms - last < s.every_ms:
        return False
    # The trend rule's side at this evaluation, as the backtest takes it (rule_sides).
    here = Estimates(times=np.asarray([len(c) - 1]), price=np.asarray([est.book.last_price]),
                     eval_idx=np.zeros(1, dtype=np.int64), low=np.zeros(1), high=np.zeros(1),
                     notional=np.zeros(1), is_short=np.zeros(1, dtype=bool), proxy=est.proxy)
    moved_up = bool(rule_sides(c, here, to_candles(DAY_MS, s.step_ms))["last_24h_move"][0])
    rows = [(k.side == "short", k.low, k.high, k.notional_usd)
            for k in top_clusters(est.book, s.top, ClusterRule())]
    return store.add_evaluation(est.symbol, t_ms, t_ms + s.step_ms, valid_ms,
                                est.book.last_price, est.proxy, moved_up, rows)


def score_due(store: Store, symbol: str, s: Settings, now_ms: int,
              tape_on: bool) -> int:
    """Score every evaluation of ``symbol`` followed by ``horizon + reaction`` complete
    stored candles by ``now_ms`` (data time) — and, with the tape on, whose liquidation
    window has closed; returns how many were scored. Candles count by position, as in the
    backtest (a gap in the data is skipped, not waited for)."""
    span = s.horizon + s.reaction
    done: list[tuple[int, list[float | None]]] = []
    for row in store.unscored(symbol, now_ms - (span + 1) * s.step_ms):
        t = int(row["t_ms"])
        if tape_on and int(row["close_ms"]) + int(row["valid_ms"]) > now_ms - s.step_ms:
            continue
        path = store.path(symbol, t, limit=span + 1)
        if len(path) < span + 1 or path[0][0] != t or path[-1][0] + s.step_ms > now_ms:
            continue  # not complete yet
        liq = (store.liquidations(symbol, int(row["close_ms"]),
                                  int(row["close_ms"]) + int(row["valid_ms"]))
               if tape_on else None)
        done.append((t, score_one(row, path, s, liq)))
    if done:
        store.set_scores(symbol, done)
    return len(done)


SCORES = ("n", "touch", "above", "below", "oracle", "rule", "liq_total",
          *(f"{band_key(b)}_{k}" for b in BANDS for k in ("model_usd", "baseline_usd")))
"""What :func:`score_one` stores per evaluation, in this order (one flat JSON array): cluster
count; clusters touched as the model placed them, placed above price, placed below, on either
side (the oracle), on the trend rule's side; the tape's USD in the evaluation's window and, per
capture band, the USD within it of the model's zones and the b1 expectation (None: no tape)."""


def score_one(row: dict[str, Any], path: Sequence[tuple[int, float, float, float]],
              s: Settings, liq: Sequence[Any] | None) -> list[float | None]:
    """Per-evaluation sums for one recorded evaluation (``path[0]`` is its own candle), as
    :data:`SCORES` lists them."""
    clusters = json.loads(row["clusters"])
    price = float(row["price"])
    n = len(clusters)
    arr = np.asarray(clusters, dtype=np.float64).reshape(n, 4)
    est = Estimates(times=np.zeros(1, dtype=np.int64), price=np.asarray([price]),
                    eval_idx=np.zeros(n, dtype=np.int64), low=arr[:, 1].copy(),
                    high=arr[:, 2].copy(), notional=arr[:, 3].copy(),
                    is_short=arr[:, 0] > 0, proxy=bool(row["proxy"]))
    p = np.asarray(path, dtype=np.float64)
    candles = Candles(p[:, 0].astype(np.int64), p[:, 3], p[:, 1], p[:, 2], p[:, 3],
                      np.ones(len(p)))
    o = outcomes(candles, est, s.horizon, s.reaction, s.beyond)
    up = bool(row["moved_up"])
    out: list[float | None] = [
        n, int(o.model.touched.sum()), int(o.above.touched.sum()), int(o.below.touched.sum()),
        int((o.above.touched | o.below.touched).sum()),
        int((o.above.touched if up else o.below.touched).sum())]
    if liq is None:
        return out + [None] * (len(SCORES) - len(out))
    lp = np.asarray([e.price for e in liq], dtype=np.float64)
    ln = np.asarray([e.notional_usd for e in liq], dtype=np.float64)
    out.append(float(ln.sum()))
    for band in BANDS:
        got = capture_sums(lp, ln, est, band)
        out += [got["model_usd"], got["baseline_usd"]]
    return out
