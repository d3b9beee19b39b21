"""Open interest: align per-exchange histories to candle closes (USD) and sum them.

Pure numpy; the inputs are ccxt open-interest structures reduced to arrays. Exchanges report
OI differently: Binance ``openInterestValue`` in USD; Bybit linear ``openInterestAmount`` in coins
(converted here with the candle close); OKX both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from estimator.candles import FloatArray, IntArray


@dataclass(frozen=True)
class OiHistory:
    """One exchange's OI snapshots: time (ms), amount (coins, NaN unknown), value (USD, NaN)."""

    timestamp: IntArray
    amount: FloatArray
    value: FloatArray

    @classmethod
    def from_ccxt(cls, records: Iterable[Mapping[str, Any]]) -> OiHistory:
        """From ccxt open-interest structures (``timestamp``, ``openInterestAmount``,
        ``openInterestValue``); sorted, later duplicates win."""
        rows = [(r.get("timestamp"), r.get("openInterestAmount"), r.get("openInterestValue"))
                for r in records]
        return cls.from_rows(rows)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, Any, Any]]) -> OiHistory:
        """From ``(timestamp, amount, value)`` rows; None → NaN; rows without time dropped."""
        clean = [(int(t), _num(a), _num(v)) for t, a, v in rows if t is not None]
        if not clean:
            return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        arr = np.array(clean, dtype=np.float64)
        ts = arr[:, 0].astype(np.int64)
        # Keep the last row per timestamp, ascending.
        rev_ts = ts[::-1]
        _, first_rev = np.unique(rev_ts, return_index=True)
        keep = len(ts) - 1 - first_rev
        return cls(ts[keep], arr[keep, 1], arr[keep, 2])

    def __len__(self) -> int:
        return len(self.timestamp)


def _num(x: Any) -> float:
    try:
        return float(x) if x is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def align_usd(hist: OiHistory, candle_ts: IntArray, close: FloatArray, tf_ms: int,
              tolerance_ms: int) -> FloatArray:
    """OI in USD at each candle's close (``candle_ts + tf_ms``); NaN where unknown.

    As-of join: the latest snapshot at or before the close, if no older than ``tolerance_ms``.
    USD value is used when reported, else coins × that candle's close.
    """
    out = np.full(len(candle_ts), np.nan)
    if len(hist) == 0:
        return out
    closes_at = np.asarray(candle_ts, dtype=np.int64) + tf_ms
    j = np.searchsorted(hist.timestamp, closes_at, side="right") - 1
    ok = j >= 0
    jj = np.where(ok, j, 0)
    ok &= closes_at - hist.timestamp[jj] <= tolerance_ms
    usd = np.where(np.isfinite(hist.value[jj]), hist.value[jj], hist.amount[jj] * close)
    ok &= np.isfinite(usd) & (usd >= 0)
    out[ok] = usd[ok]
    return out


@dataclass(frozen=True)
class OiAggregate:
    """Summed OI (USD per candle close; None = no usable exchange) and what went into it."""

    usd: FloatArray | None
    sources: tuple[str, ...]
    notes: dict[str, str]


def fill(series: FloatArray) -> FloatArray:
    """Forward-fill NaN; leading NaN take the first known value (so ΔOI there is 0, no
    invented position openings)."""
    ok = np.isfinite(series)
    if not ok.any():
        return series.copy()
    idx = np.where(ok, np.arange(len(series)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = series[idx]
    out[: int(np.argmax(ok))] = series[int(np.argmax(ok))]
    return out


def aggregate(aligned: Mapping[str, FloatArray], failures: Mapping[str, str] | None = None,
              min_coverage: float = 0.9) -> OiAggregate:
    """Sum per-exchange aligned OI (USD) and note what each exchange contributed.

    Coverage is counted from an exchange's first known point (history limits such as Binance's
    30 days only cut the start; the start is back-filled, so it adds no fake jump). Exchanges
    with holes in more than ``1 − min_coverage`` of the rest are left out.
    """
    notes = {name: f"missing: {why}" for name, why in (failures or {}).items()}
    total: FloatArray | None = None
    sources: list[str] = []
    for name, series in aligned.items():
        known = np.isfinite(series)
        if not known.any():
            notes[name] = "left out: no OI for these candles"
            continue
        lead = int(np.argmax(known))
        span = len(series) - lead
        covered = int(known.sum())
        share = covered / span
        head = f", none for the first {lead}" if lead else ""
        if share < min_coverage:
            notes[name] = (f"left out: OI for {covered}/{span} candles ({share:.0%}, "
                           f"need {min_coverage:.0%}){head}")
            continue
        notes[name] = f"OI for {covered}/{span} candles ({share:.0%}){head}"
        filled = fill(series)
        total = filled if total is None else total + filled
        sources.append(name)
    return OiAggregate(total, tuple(sources), notes)
