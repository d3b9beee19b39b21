"""The accuracy scoreboard from stored per-evaluation scores (nothing is re-scored here).

Definitions are the backtest's (:mod:`bot.backtest.run`): touch rate = touched clusters /
clusters; b1 = the same zones on a random side; lift = Σ touch / Σ b1 with a 95 % circular block
bootstrap over evaluation times (:class:`bot.backtest.bootstrap.BlockBootstrap`, same seed and
block rule); ceiling = the lift of a perfect side-picker, headroom = (lift − 1)/(ceiling − 1);
the trend rule (the side price moved to over the last 24 h) as model ÷ rule; liquidation
capture = share of the tape's USD within ±0.5 % / ±1 % of the standing zones, vs b1.
Volume-proxy and open-interest evaluations are scored separately.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.audit.evaluations import SCORES
from bot.backtest.bootstrap import BlockBootstrap, default_block, interval
from bot.backtest.liquidations import BANDS, band_key
from bot.backtest.walk import parse_duration, to_candles

if TYPE_CHECKING:
    from bot.config import AccuracySection
    from bot.store import Store

WINDOWS = ("7d", "30d", "all")
RESAMPLES = 2000
SEED = 0


def window_ms(window: str) -> int | None:
    """'7d' / '30d' → ms; 'all' → None. Anything else: ValueError naming the choices."""
    if window == "all":
        return None
    if window not in WINDOWS:
        raise ValueError(f"window {window!r}: expected one of {', '.join(WINDOWS)}")
    return parse_duration(window)


def for_config(store: Store, acc: AccuracySection, symbol: str | None,
               window: str = "30d") -> dict[bool, dict[str, Any]]:
    """:func:`scoreboards` with the bootstrap's horizon and spacing in candles taken from the
    config and the stored data (candle step: the price path; spacing: the evaluations)."""
    ts = [r[0] for r in store.db.execute(
        "SELECT ts FROM price_path WHERE ? IS NULL OR symbol = ? ORDER BY symbol, ts LIMIT 1000",
        (symbol, symbol))]
    ev = [r[0] for r in store.db.execute(
        "SELECT t_ms FROM evaluations WHERE ? IS NULL OR symbol = ? ORDER BY symbol, t_ms "
        "LIMIT 1000", (symbol, symbol))]
    pos = [d for d in np.diff(ts) if d > 0]
    step = int(np.median(pos)) if pos else 60_000
    gaps = [d for d in np.diff(ev) if d > 0]
    every = to_candles(int(np.median(gaps)), step) if gaps else 1
    return scoreboards(store, symbol, window, horizon=to_candles(parse_duration(acc.horizon), step),
                       every=every, min_n=acc.min_evaluations)


def scoreboards(store: Store, symbol: str | None, window: str, *, horizon: int, every: int,
                min_n: int, end_ms: int | None = None) -> dict[bool, dict[str, Any]]:
    """proxy flag → scoreboard, for the data kinds present in the window. The window ends at
    ``end_ms`` (default: the newest recorded evaluation, the data clock)."""
    span = window_ms(window)
    if end_ms is None:
        row = store.db.execute("SELECT MAX(t_ms) FROM evaluations WHERE ? IS NULL OR symbol = ?",
                               (symbol, symbol)).fetchone()
        end_ms = int(row[0]) if row[0] is not None else 0
    since = 0 if span is None else end_ms - span
    flags_json, scores_json = store.scored_table(symbol, since)
    flags = _numbers(flags_json).astype(bool)
    table = _numbers(scores_json).reshape(len(flags), len(SCORES))
    receipts = store.receipt_captures(symbol, since)
    out: dict[bool, dict[str, Any]] = {}
    for proxy in sorted(set(flags.tolist())) or [True]:
        cols = dict(zip(SCORES, table[flags == proxy].T, strict=True))
        out[proxy] = board(cols, symbol, window, proxy, horizon=horizon, every=every,
                           min_n=min_n, receipts=receipts)
    return out


def board(cols: dict[str, np.ndarray], symbol: str | None, window: str, proxy: bool, *,
          horizon: int, every: int, min_n: int, receipts: list[float]) -> dict[str, Any]:
    """The JSON scoreboard from per-evaluation columns (oldest first; NaN liquidation columns
    = the tape was off for that evaluation). Below ``min_n`` evaluations every figure is None
    (the text says "not enough data yet")."""
    n = len(cols["n"])
    n_cl = int(cols["n"].sum())
    out: dict[str, Any] = {
        "symbol": symbol or "all", "window": window, "n_evaluations": n, "n_clusters": n_cl,
        "touch_rate": None, "baseline_touch_rate": None, "lift": None, "lift_ci95": None,
        "ceiling": None, "headroom": None, "liq_capture": None, "liq_capture_baseline": None,
        "receipts": {"n": len(receipts),
                     "median_capture_usd": statistics.median(receipts) if receipts else None},
        "proxy": proxy,
    }
    touch, oracle, rule = cols["touch"], cols["oracle"], cols["rule"]
    b1 = (cols["above"] + cols["below"]) / 2.0
    if n < min_n or n_cl == 0 or b1.sum() <= 0:  # (nothing touched: lift undefined)
        return out
    boot = BlockBootstrap(n, default_block(n, horizon, every), RESAMPLES, SEED)
    # BlockBootstrap.ratio's Σ num / Σ den per resample, each column resampled once.
    s_touch, s_b1 = boot.sums(touch), boot.sums(b1)
    lift = float(touch.sum() / b1.sum())
    ceiling = float(oracle.sum() / b1.sum())
    out.update({
        "touch_rate": float(touch.sum() / n_cl), "baseline_touch_rate": float(b1.sum() / n_cl),
        "lift": lift, "lift_ci95": _rounded(interval(_ratio(s_touch, s_b1))),
        "ceiling": ceiling, "headroom": (lift - 1.0) / (ceiling - 1.0) if ceiling > 1 else None,
    })
    if rule.sum() > 0:
        out["trend_rule"] = {  # not in the JSON of `liqbot accuracy` (text only)
            "model_vs_rule": float(touch.sum() / rule.sum()),
            "model_vs_rule_ci95": _rounded(interval(_ratio(s_touch, boot.sums(rule))))}
    total = float(np.nansum(cols["liq_total"]))
    if total > 0:
        def share(kind: str) -> dict[str, float]:
            return {band_key(b): float(np.nansum(cols[f"{band_key(b)}_{kind}"]) / total)
                    for b in BANDS}

        out["liq_capture"], out["liq_capture_baseline"] = share("model_usd"), share(
            "baseline_usd")
    return out


JSON_FIELDS = ("symbol", "window", "n_evaluations", "n_clusters", "touch_rate",
               "baseline_touch_rate", "lift", "lift_ci95", "ceiling", "headroom", "liq_capture",
               "liq_capture_baseline", "receipts", "proxy")


def as_json(b: dict[str, Any]) -> dict[str, Any]:
    """Exactly the fields of ``liqbot accuracy --json``."""
    return {k: b[k] for k in JSON_FIELDS}


def _numbers(text: str) -> np.ndarray:
    """A JSON array of numbers, or of flat arrays of numbers (null → NaN), as one flat float
    array: numpy's text parser, about twice as fast as json.loads on a year of scores."""
    flat = text.strip()[1:-1].replace("[", "").replace("]", "").replace("null", "nan")
    if not flat.strip():
        return np.zeros(0)
    return np.fromstring(flat, sep=",")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """As :meth:`BlockBootstrap.ratio` (nan where Σ den = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _rounded(ci: tuple[float, float]) -> list[float]:
    return [round(ci[0], 4), round(ci[1], 4)]


def kind(proxy: bool) -> str:
    return "volume proxy (no open interest)" if proxy else "open interest"


def text(boards: dict[bool, dict[str, Any]], min_n: int) -> str:
    """The /accuracy answer: one block per data kind, always with the CI and the baseline."""
    lines = []
    for proxy, b in boards.items():
        head = (f"Accuracy {b['symbol']} · {b['window']} · {kind(proxy)} — scored from this "
                "bot's own stored estimates, misses included")
        lines.append(head)
        if b["lift"] is None:
            lines.append(f"  not enough data yet (n = {b['n_evaluations']} evaluations; "
                         f"need {min_n})")
        else:
            lo, hi = b["lift_ci95"]
            lines.append(f"  touch {b['touch_rate']:.3f} vs b1 (same distance, random side) "
                         f"{b['baseline_touch_rate']:.3f}: lift {b['lift']:.2f} "
                         f"[{lo:.2f}, {hi:.2f}], n = {b['n_evaluations']} evaluations, "
                         f"{b['n_clusters']} clusters")
            ceil = f"{b['ceiling']:.2f}"
            head_ = "–" if b["headroom"] is None else f"{b['headroom']:.2f}"
            lines.append(f"  ceiling (perfect side-picker) {ceil}, headroom {head_}")
            tr = b.get("trend_rule")
            if tr:
                rlo, rhi = tr["model_vs_rule_ci95"]
                lines.append(f"  vs the trend rule (side of the last 24 h move): model/rule "
                             f"{tr['model_vs_rule']:.2f} [{rlo:.2f}, {rhi:.2f}]")
            cap, base = b["liq_capture"], b["liq_capture_baseline"]
            if cap:
                lines.append("  real liquidations near standing zones (tape = exchange data): "
                             + ", ".join(f"{k[7:].replace('pct', ' %')} {cap[k]:.3f} vs b1 "
                                         f"{base[k]:.3f}" for k in cap))
        r = b["receipts"]
        if r["n"]:
            lines.append(f"  receipts: {r['n']}, median tape capture "
                         f"${r['median_capture_usd']:,.0f}")
    return "\n".join(lines)


def summary(boards: dict[bool, dict[str, Any]], min_n: int) -> str:
    """The /status line: ``last 30 d: lift 1.04 [0.97, 1.11], n = 412`` (per data kind)."""
    parts = []
    for proxy, b in boards.items():
        label = "proxy" if proxy else "OI"
        if b["lift"] is None:
            parts.append(f"{label}: not enough data yet (n = {b['n_evaluations']}; need {min_n})")
        else:
            lo, hi = b["lift_ci95"]
            parts.append(f"{label}: lift {b['lift']:.2f} [{lo:.2f}, {hi:.2f}] vs b1, "
                         f"n = {b['n_evaluations']}")
    return f"Accuracy, last {b['window'].replace('d', ' d')}: " + "; ".join(parts)
