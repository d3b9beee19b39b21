"""Calibrate the leverage ladder and the long/short split from recorded liquidations.

A level of ladder leverage j dies at the same candle whatever its weight, so the liquidated
notional the model predicts per candle is linear in the ladder weights. For one
``dominant_share``, the observed liquidations (binned to the candles, per side) are fitted by
non-negative least squares on the per-leverage predictions; the share comes from a grid search
over [0.5, 1]. The fit is only up to one overall scale (the tape records a fraction of what
closes), which is reported, and the weights are normalised to sum to 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from estimator.candles import Candles, FloatArray, IntArray
from estimator.levels import level_model
from estimator.params import ModelParams
from estimator.positions import LONG, long_share


@dataclass(frozen=True)
class LadderFit:
    """A ladder fitted to recorded liquidations.

    ``weights`` (sum 1) over ``leverages`` and ``dominant_share`` are the fitted parameters;
    ``scale`` is observed USD per USD the model liquidates (the tape undercounts, so < 1 is
    normal). ``r2`` is the in-sample R² of the fit; ``r2_default`` the same data under the base
    ladder and share, ``r2_flat`` under equal weights and the base share, each with its own best
    scale. ``n_candles`` candles (``start_ms`` … ``end_ms``, unix ms) held ``n_liquidations``
    liquidations of ``observed_usd`` USD. ``proxy``: new notional came from the volume proxy.
    """

    leverages: tuple[float, ...]
    weights: tuple[float, ...]
    dominant_share: float
    scale: float
    r2: float
    r2_default: float
    r2_flat: float
    n_candles: int
    n_liquidations: int
    observed_usd: float
    start_ms: int
    end_ms: int
    proxy: bool

    def params(self, base: ModelParams) -> ModelParams:
        """``base`` with the fitted ladder and long/short split."""
        return dataclasses.replace(base, leverages=self.leverages, weights=self.weights,
                                   dominant_share=self.dominant_share)


@dataclass(frozen=True)
class _Deaths:
    """The levels price consumes, valued per unit of ladder weight and of side share.

    ``unit`` is the USD of a level at the close of the candle before the one (``at``) that
    consumes it: the value standing when its last candle opened, before that candle's OI drop
    (which the liquidations themselves are part of).
    """

    side: NDArray[np.int8]
    lev: IntArray
    born: IntArray
    at: IntArray
    unit: FloatArray
    n_lev: int
    n: int
    proxy: bool

    def predict(self, weights: ArrayLike, share_long: FloatArray) -> FloatArray:
        """USD liquidated per side, ladder leverage and candle: shape (2, n_lev, n)."""
        w = np.asarray(weights, dtype=np.float64)
        share = np.where(self.side == LONG, share_long[self.born], 1.0 - share_long[self.born])
        flat = (self.side.astype(np.int64) * self.n_lev + self.lev) * self.n + self.at
        out = np.bincount(flat, weights=self.unit * w[self.lev] * share,
                          minlength=2 * self.n_lev * self.n)
        return np.asarray(out, dtype=np.float64).reshape(2, self.n_lev, self.n)


def _deaths(c: Candles, base: ModelParams) -> _Deaths:
    n_lev = len(base.leverages)
    # Equal weights and a share off 0 and 1 create every (candle, side, leverage) row that any
    # ladder or share could create; their value is then divided back out.
    probe = dataclasses.replace(base, weights=(1.0 / n_lev,) * n_lev, dominant_share=0.75)
    model = level_model(c, probe)
    rows = model.rows
    dies = np.nonzero(model.death < len(c))[0]
    at = model.death[dies]
    share0 = long_share(c, probe)[rows.born[dies]]
    side = rows.side[dies]
    per_unit = (1.0 / n_lev) * np.where(side == LONG, share0, 1.0 - share0)
    unit = model.value_at(dies, at - 1) / per_unit
    return _Deaths(side, rows.lev[dies], rows.born[dies], at, unit, n_lev, len(c), model.proxy)


def predicted_liquidations(c: Candles, params: ModelParams) -> FloatArray:
    """Liquidated notional (USD) the model predicts, ``out[side, j, t]``: side 0 long / 1 short,
    ladder leverage ``params.leverages[j]``, consumed at candle ``t`` (valued at the close of
    candle t − 1, survival factors applied)."""
    return _deaths(c, params).predict(params.weights, long_share(c, params))


def nnls(a: ArrayLike, b: ArrayLike, max_iter: int | None = None) -> tuple[FloatArray, float]:
    """Non-negative least squares: x ≥ 0 minimising ‖a·x − b‖₂ (Lawson–Hanson active set).

    Returns x and the residual norm. ValueError on bad shapes, non-finite input, or no
    convergence within ``max_iter`` inner steps (default 3·columns + 30).
    """
    a_ = np.asarray(a, dtype=np.float64)
    b_ = np.asarray(b, dtype=np.float64)
    if a_.ndim != 2 or b_.shape != (a_.shape[0],):
        raise ValueError(f"nnls: need a (m, n) matrix and an (m,) vector, got {a_.shape} and "
                         f"{b_.shape}")
    if not (np.all(np.isfinite(a_)) and np.all(np.isfinite(b_))):
        raise ValueError("nnls: non-finite input")
    m, n = a_.shape
    limit = max_iter if max_iter is not None else 3 * n + 30
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    # Dual feasibility tolerance, in the units of aᵀb.
    tol = 10 * np.finfo(np.float64).eps * max(m, n, 1) * max(
        float(np.abs(a_).sum(axis=0).max(initial=0.0)) * float(np.abs(b_).max(initial=0.0)),
        np.finfo(np.float64).tiny)
    # A variable added and dropped again with x unmoved is rounding (in exact arithmetic the fit
    # keeps what was just added): leave it out until x moves, or it would be re-added forever.
    skip = np.zeros(n, dtype=bool)
    steps = 0
    grad = a_.T @ (b_ - a_ @ x)
    while True:
        candidates = ~passive & ~skip & (grad > tol)
        if not candidates.any():
            break
        j = int(np.argmax(np.where(candidates, grad, -np.inf)))
        passive[j] = True
        before = x
        while True:
            steps += 1
            if steps > limit:
                raise ValueError(f"nnls: no convergence in {limit} steps")
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a_[:, passive], b_, rcond=None)[0]
            if bool(np.all(z[passive] > 0)):
                x = z
                break
            # Step from x towards z until the first passive variable reaches 0; drop it.
            neg = np.nonzero(passive & (z <= 0))[0]
            gap = x[neg] - z[neg]  # ≥ 0: x ≥ 0 and z ≤ 0 there; 0 only when both are 0
            ratios = x[neg] / np.where(gap > 0, gap, 1.0)
            k = int(neg[np.argmin(ratios)])
            x = x + float(ratios.min()) * (z - x)
            x[k] = 0.0
            passive &= x > 0
            x[~passive] = 0.0
            if not passive.any():
                break
        if passive[j] or not np.allclose(x, before, rtol=1e-12, atol=0.0):
            skip[:] = False
        else:
            skip[j] = True
        grad = a_.T @ (b_ - a_ @ x)
    return x, float(np.linalg.norm(a_ @ x - b_))


def fit_ladder(c: Candles, base: ModelParams, timestamp: ArrayLike, is_short: ArrayLike,
               notional: ArrayLike, *, share_steps: int = 51,
               progress: Callable[[int, int], None] | None = None) -> LadderFit:
    """Fit ladder weights (NNLS) and ``dominant_share`` (grid of ``share_steps`` points over
    [0.5, 1]) to recorded liquidations: ``timestamp`` (unix ms), ``is_short`` (the liquidated
    position was short), ``notional`` (USD).

    The model runs over all of ``c``; only the candles from the first to the last one holding a
    liquidation are fitted (the tape was not recording outside them). ValueError names the
    problem: no or malformed liquidations, none within the candles, nothing predicted there.
    ``progress(done, total)`` is called after each share tried.
    """
    if share_steps < 2:
        raise ValueError(f"calibrate: share_steps must be ≥ 2, got {share_steps!r}")
    ts, short, usd = _check_events(timestamp, is_short, notional)
    observed, first, last, used = _bin_events(c, ts, short, usd)
    deaths = _deaths(c, base)
    window = slice(first, last + 1)
    y = observed[:, window].ravel()
    n_lev = len(base.leverages)

    def design(share: float) -> FloatArray:
        p = dataclasses.replace(base, dominant_share=share)
        basis = deaths.predict(np.ones(n_lev), long_share(c, p))[:, :, window]
        return np.asarray(basis.transpose(0, 2, 1).reshape(-1, n_lev), dtype=np.float64)

    best: tuple[float, float, FloatArray, FloatArray] | None = None
    for i, share in enumerate(np.round(np.linspace(0.5, 1.0, share_steps), 10)):
        x_mat = design(float(share))
        beta, resid = _nnls_tall(x_mat, y)
        if best is None or resid < best[0]:
            best = (resid, float(share), beta, x_mat)
        if progress is not None:
            progress(i + 1, share_steps)
    assert best is not None  # share_steps ≥ 2
    _, share, beta, x_mat = best
    scale = float(beta.sum())
    if not scale > 0:
        raise ValueError("calibrate: the model predicts no liquidations in the candles that hold "
                         "the recorded ones (too little history before the tape, or no OI rise?)")
    at_base = design(base.dominant_share)
    return LadderFit(
        leverages=tuple(base.leverages),
        weights=tuple(float(w) for w in beta / scale),
        dominant_share=share, scale=scale,
        r2=_r2(x_mat @ beta, y),
        r2_default=_r2_best_scale(at_base @ np.asarray(base.weights, dtype=np.float64), y),
        r2_flat=_r2_best_scale(at_base.mean(axis=1), y),
        n_candles=last - first + 1, n_liquidations=int(used.sum()),
        observed_usd=float(usd[used].sum()),
        start_ms=int(c.timestamp[first]), end_ms=int(c.timestamp[last]) + _step_ms(c),
        proxy=deaths.proxy,
    )


def _check_events(timestamp: ArrayLike, is_short: ArrayLike,
                  notional: ArrayLike) -> tuple[IntArray, NDArray[np.bool_], FloatArray]:
    ts = np.asarray(timestamp, dtype=np.int64)
    short = np.asarray(is_short, dtype=bool)
    usd = np.asarray(notional, dtype=np.float64)
    if ts.ndim != 1 or short.shape != ts.shape or usd.shape != ts.shape:
        raise ValueError(f"calibrate: liquidation arrays differ in shape: timestamp {ts.shape}, "
                         f"is_short {short.shape}, notional {usd.shape}")
    if len(ts) == 0:
        raise ValueError("calibrate: no liquidations to fit")
    bad = np.nonzero(~(np.isfinite(usd) & (usd >= 0)))[0]
    if len(bad):
        raise ValueError(f"calibrate: liquidation {int(bad[0])} has a negative or non-finite "
                         f"notional {usd[bad[0]]!r}")
    return ts, short, usd


def _step_ms(c: Candles) -> int:
    return int(np.median(np.diff(c.timestamp)))


def _bin_events(c: Candles, ts: IntArray, short: NDArray[np.bool_],
                usd: FloatArray) -> tuple[FloatArray, int, int, NDArray[np.bool_]]:
    """Observed USD per side and candle (2, n), the first and last candle holding an event, and
    which events fell in a candle (a candle lasts the median spacing; gaps hold none)."""
    if len(c) < 2:
        raise ValueError("calibrate: need at least 2 candles")
    idx = np.searchsorted(c.timestamp, ts, side="right") - 1
    inside = idx >= 0
    inside[inside] &= ts[inside] < c.timestamp[idx[inside]] + _step_ms(c)
    if not inside.any():
        raise ValueError(
            f"calibrate: no liquidation falls within the candles (candles {int(c.timestamp[0])}"
            f"…{int(c.timestamp[-1])} ms, liquidations {int(ts.min())}…{int(ts.max())} ms)")
    if not float(usd[inside].sum()) > 0:
        raise ValueError("calibrate: the liquidations within the candles total 0 USD")
    cell = short[inside].astype(np.int64) * len(c) + idx[inside]
    observed = np.bincount(cell, weights=usd[inside], minlength=2 * len(c)).reshape(2, len(c))
    return (np.asarray(observed, dtype=np.float64), int(idx[inside].min()),
            int(idx[inside].max()), inside)


def _nnls_tall(x_mat: FloatArray, y: FloatArray) -> tuple[FloatArray, float]:
    """:func:`nnls` on a tall matrix through its QR factors (same minimiser, as
    ‖Xβ − y‖² = ‖Rβ − Qᵀy‖² + const): a few columns instead of thousands of rows."""
    q, r = np.linalg.qr(x_mat)
    beta, _ = nnls(r, q.T @ y)
    return beta, float(np.linalg.norm(x_mat @ beta - y))


def _r2(fitted: FloatArray, y: FloatArray) -> float:
    """1 − SS_res / SS_tot (nan when y is constant); negative when worse than the mean."""
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - fitted) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def _r2_best_scale(x: FloatArray, y: FloatArray) -> float:
    """R² of ``y`` against ``s·x`` with the best s ≥ 0."""
    s, _ = nnls(x[:, None], y)
    return _r2(x * s[0], y)
