"""One backtest run: walk forward, score, bootstrap, and the report (a JSON-ready dict)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bot.backtest.bootstrap import BlockBootstrap, default_block, interval
from bot.backtest.liquidations import Liquidations, score_liquidations
from bot.backtest.score import outcomes, per_eval, pick, random_sides, rule_sides
from bot.backtest.walk import (
    candle_step_ms,
    evaluation_times,
    parse_duration,
    to_candles,
    walk,
)
from bot.finite import require_finite
from estimator import Candles, ClusterRule, ModelParams


@dataclass(frozen=True)
class BacktestOptions:
    """What to score and how. Durations are text ('24h'); ``every`` is in candles.

    ``lookback`` None = every candle ≤ t feeds the estimate at t (exact); otherwise the last
    ``lookback`` duration of candles (faster; positions older than that are dropped).
    """

    horizon: str = "24h"
    reaction: str = "6h"
    beyond_pct: float = 0.5
    top: int = 5
    every: int = 24
    warmup: str = "30d"
    lookback: str | None = None
    seed: int = 0
    draws: int = 200
    resamples: int = 2000
    block: int | None = None
    params: ModelParams = field(default_factory=ModelParams)
    rule: ClusterRule = field(default_factory=ClusterRule)


def run_backtest(c: Candles, opts: BacktestOptions,
                 liquidations: Liquidations | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
    """Walk-forward score of the model's top clusters against the b1 baseline and the rules.

    ``progress(done, total)`` follows the evaluations of the walk (most of the time)."""
    t0 = time.perf_counter()
    if opts.top < 1 or opts.draws < 1:
        raise ValueError(f"top and draws must be ≥ 1, got {opts.top!r} and {opts.draws!r}")
    step = candle_step_ms(c)
    horizon = to_candles(parse_duration(opts.horizon), step)
    reaction = to_candles(parse_duration(opts.reaction), step)
    warmup = to_candles(parse_duration(opts.warmup), step)
    day = to_candles(parse_duration("24h"), step)
    lookback = None if opts.lookback is None else to_candles(parse_duration(opts.lookback), step)
    times = evaluation_times(len(c), warmup, opts.every, horizon + reaction)
    est = walk(c, times, opts.params, opts.rule, opts.top, lookback, progress)
    walk_s = time.perf_counter() - t0
    if len(est) == 0:
        raise ValueError(f"the model found no clusters in {len(times)} evaluations (is the "
                         "volume column all zeros?): nothing to score")

    o = outcomes(c, est, horizon, reaction, opts.beyond_pct / 100.0)
    draws = random_sides(len(est), opts.draws, opts.seed)
    b1_up_share = draws.mean(axis=0)  # per cluster: share of draws that put it above
    b1_touch = b1_up_share * o.above.touched + (1 - b1_up_share) * o.below.touched
    b1_cont = b1_up_share * o.above.continued + (1 - b1_up_share) * o.below.continued
    oracle = o.above.touched | o.below.touched

    if not b1_touch.any():
        raise ValueError(f"no level of the {len(est)} clusters was touched on either side "
                         "within the horizon (does the price never move?): lift is undefined")
    n = len(times)
    boot = BlockBootstrap(n, opts.block or default_block(n, horizon, opts.every),
                          opts.resamples, opts.seed)
    touch_e, b1_e = per_eval(est, o.model.touched), per_eval(est, b1_touch)
    n_clusters = len(est)

    def lift(num_e: np.ndarray) -> dict[str, Any]:
        rate = float(num_e.sum() / n_clusters) if n_clusters else float("nan")
        value = _ratio(num_e.sum(), b1_e.sum())
        return {"touch_rate": rate, "lift": value,
                "lift_ci95": _rounded(interval(boot.ratio(num_e, b1_e)))}

    model = lift(touch_e)
    oracle_e = per_eval(est, oracle)
    ceiling = _ratio(oracle_e.sum(), b1_e.sum())
    lift_v = float(model["lift"])
    rules = {}
    for name, up in rule_sides(c, est, day).items():
        placed = pick(o, up)
        rule_e = per_eval(est, placed.touched)
        # The model against the rule on the same clusters: > 1 means it beats price alone.
        rules[name] = lift(rule_e) | {
            "model_vs_rule": _ratio(touch_e.sum(), rule_e.sum()),
            "model_vs_rule_ci95": _rounded(interval(boot.ratio(touch_e, rule_e))),
            "reaction_rate": _ratio(placed.continued.sum(), placed.touched.sum())}

    # Reaction: P(continue ≥ beyond past the far edge | touched), model vs b1.
    cont_e, b1_cont_e = per_eval(est, o.model.continued), per_eval(est, b1_cont)
    react = _ratio(cont_e.sum(), touch_e.sum())
    react_b1 = _ratio(b1_cont_e.sum(), b1_e.sum())
    ratio_samples = boot.ratio(cont_e, touch_e) / boot.ratio(b1_cont_e, b1_e)

    per_draw = np.where(draws, o.above.touched, o.below.touched).mean(axis=1)
    result: dict[str, object] = {
        "touch_rate": model["touch_rate"],
        "baseline_touch_rate": float(b1_e.sum() / n_clusters) if n_clusters else None,
        "baseline_draw_sd": float(per_draw.std()) if n_clusters else None,
        "lift": model["lift"],
        "lift_ci95": model["lift_ci95"],
        "ceiling": ceiling,
        "ceiling_ci95": _rounded(interval(boot.ratio(oracle_e, b1_e))),
        "headroom": (lift_v - 1.0) / (ceiling - 1.0) if ceiling > 1.0 else None,
        "rules": rules,
        "reaction": {
            "window": opts.reaction, "beyond_pct": opts.beyond_pct,
            "rate": react, "baseline_rate": react_b1, "ratio": _ratio(react, react_b1),
            "ratio_ci95": _rounded(interval(ratio_samples)),
            "n_touched": int(o.model.touched.sum()),
        },
        "n_clusters": n_clusters,
        "n_evaluations": n,
        "horizon": opts.horizon,
        "horizon_candles": horizon,
        "every_candles": opts.every,
        "top_per_side": opts.top,
        "proxy": est.proxy,
        "data_source": "volume proxy (no open interest in the data)" if est.proxy
                       else "open interest",
        "model": _params_dict(opts.params),
        "lookback": opts.lookback or "all candles ≤ t",
        "warmup": opts.warmup,
        "seed": opts.seed, "draws": opts.draws, "resamples": opts.resamples,
        "block": boot.block,
        "first_evaluation_ms": int(c.timestamp[times[0]]),
        "last_evaluation_ms": int(c.timestamp[times[-1]]),
        "liquidations": None,
    }
    if liquidations is not None:
        close_ms = c.timestamp[times] + step
        result["liquidations"] = score_liquidations(
            liquidations, est, close_ms, opts.every * step, draws[: min(opts.draws, 50)])
    result["walk_s"] = round(walk_s, 2)
    result["elapsed_s"] = round(time.perf_counter() - t0, 2)
    require_finite(result, "backtest")  # NaN is an error, never a result (or a verdict)
    return result


def with_model(opts: BacktestOptions, **changes: object) -> BacktestOptions:
    """A copy of ``opts`` with ModelParams fields changed (e.g. half_life_hours)."""
    return replace(opts, params=replace(opts.params, **changes))  # type: ignore[arg-type]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _rounded(ci: tuple[float, float]) -> list[float]:
    return [round(ci[0], 4), round(ci[1], 4)]


def _params_dict(p: ModelParams) -> dict[str, object]:
    return {"half_life_hours": p.half_life_hours, "dominant_share": p.dominant_share,
            "buckets": p.grid.describe(), "leverages": list(p.leverages),
            "weights": list(p.weights), "proxy_fraction": p.proxy_fraction}


def format_text(r: dict[str, Any]) -> str:
    """A short human-readable table of a result (from :func:`run_backtest`); a result holding
    NaN/inf gets no table and no verdict (NonFiniteResultError)."""
    require_finite(r, "backtest")
    rules, react = r["rules"], r["reaction"]

    def row(name: str, touch: float, lift: float, ci: list[float]) -> str:
        lo, hi = ci
        return f"  {name:<22} {touch:>7.3f} {lift:>6.2f}  [{lo:.2f}, {hi:.2f}]"

    lines = [
        f"walk-forward backtest · {r['n_evaluations']} evaluations · {r['n_clusters']} clusters"
        f" · horizon {r['horizon']} · {r['data_source']}",
        f"  {'':<22} {'touch':>7} {'lift':>6}  95 % block bootstrap",
        row("model (top clusters)", r["touch_rate"], r["lift"], r["lift_ci95"]),
        f"  {'b1 (random side)':<22} {r['baseline_touch_rate']:>7.3f} {1.0:>6.2f}",
        *(row(f"rule: {k}", v["touch_rate"], v["lift"], v["lift_ci95"])
          + f"   model/rule {v['model_vs_rule']:.2f}" for k, v in rules.items()),
        row("oracle (ceiling)", float("nan"), r["ceiling"], r["ceiling_ci95"]).replace(
            "    nan", "      –"),
        f"  headroom (lift − 1)/(ceiling − 1): {_fmt(r['headroom'])}",
        f"  reaction (≥ {react['beyond_pct']} % past the far edge within {react['window']} of a"
        f" touch): model {react['rate']:.3f} vs b1 {react['baseline_rate']:.3f}, ratio "
        f"{react['ratio']:.2f} [{react['ratio_ci95'][0]:.2f}, {react['ratio_ci95'][1]:.2f}]",
    ]
    liq = r.get("liquidations")
    if isinstance(liq, dict):
        for k, v in liq.items():
            if k.startswith("within_") and isinstance(v, dict):
                lines.append(f"  liquidation notional {k.replace('_', ' ').replace('pct', ' %')}"
                             f" of a zone: {v['share']:.3f} vs b1 {v['baseline_share']:.3f}")
    lo, hi = r["lift_ci95"]
    best = min(rules, key=lambda k: rules[k]["model_vs_rule"])  # the strongest rule
    if lo <= 1.0 <= hi:
        verdict = "no signal beyond distance: the interval contains 1"
    elif lo < 1.0:
        verdict = "worse than a random side"
    elif rules[best]["model_vs_rule_ci95"][0] <= 1.0:
        verdict = (f"lift above 1, but not above the price-only rule {best} (model/rule "
                   f"{rules[best]['model_vs_rule']:.2f}): no signal beyond distance and price")
    else:
        verdict = "lift above 1 and above every price-only rule"
    lines.append(f"  reading: {verdict} · {r['elapsed_s']} s")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"
