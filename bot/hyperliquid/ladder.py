"""``liqbot calibrate --positions``: the leverage of every real position is public, so the
ladder's weights are read off directly — each position's notional at entry (``|szi|`` ×
``entryPx``) counts for the ladder band nearest its leverage (in log terms) — and written as the
``[model] ladder_file`` the bot already reads (:func:`bot.calibration.load_ladder`).

A position seen in several snapshots counts once (same wallet, coin, side, entry and leverage).
The long share of that notional is reported; it is not the model's ``dominant_share`` (the long
share of new notional on buy-dominated candles), which a snapshot cannot identify, so the file
keeps the base model's. Survivorship: high-leverage positions are liquidated sooner, so a
snapshot sample under-counts them against the ladder new positions were opened with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.calibration import _rounded
from bot.errors import DataFileError
from bot.fmt import money, utc_text
from bot.hyperliquid.positions import Position, parse_state
from bot.hyperliquid.snapshots import read_snapshots
from estimator import ModelParams


@dataclass(frozen=True)
class PositionsLadder:
    leverages: tuple[float, ...]
    weights: tuple[float, ...]
    base_weights: tuple[float, ...]
    dominant_share: float  # the base model's, unchanged (see the module docstring)
    long_share: float
    n_positions: int
    notional_usd: float
    start_ms: int
    end_ms: int
    positions_file: str

    def as_dict(self) -> dict[str, Any]:
        return {"leverages": list(self.leverages), "weights": list(self.weights),
                "base_weights": list(self.base_weights), "dominant_share": self.dominant_share,
                "long_share": self.long_share, "n_positions": self.n_positions,
                "notional_usd": self.notional_usd, "start_ms": self.start_ms,
                "end_ms": self.end_ms, "positions_file": self.positions_file}


def distinct_positions(path: str | Path) -> tuple[list[Position], int, int]:
    """Every position in the file once (its latest snapshot), and the file's time range."""
    snaps = read_snapshots(path)
    seen: dict[tuple[str, str, str, float, float], Position] = {}
    for s in sorted(snaps, key=lambda s: s.time):
        for p in parse_state(s.user, s.state):
            seen[(p.user, p.coin, p.side, p.entry_px, p.leverage)] = p
    return list(seen.values()), min(s.time for s in snaps), max(s.time for s in snaps)


def fit_positions(path: str | Path, base: ModelParams, coin: str | None = None) -> PositionsLadder:
    positions, start, end = distinct_positions(path)
    if coin is not None:
        positions = [p for p in positions if p.coin == coin]
    if not positions:
        raise DataFileError(f"{path}: no open positions{f' of {coin}' if coin else ''} to fit")
    levs = np.log(np.asarray(base.leverages, dtype=np.float64))
    notional = np.array([abs(p.size) * p.entry_px for p in positions])
    band = np.abs(np.log([p.leverage for p in positions])[:, None] - levs[None, :]).argmin(1)
    per_band = np.bincount(band, weights=notional, minlength=len(levs))
    total = math.fsum(notional)
    weights = tuple(float(w) for w in per_band / total)
    longs = math.fsum(n for n, p in zip(notional, positions, strict=True) if p.size > 0)
    return PositionsLadder(tuple(base.leverages), tuple(_rounded(weights)), tuple(base.weights),
                           base.dominant_share, longs / total, len(positions), total, start, end,
                           str(path))


def ladder_toml(fit: PositionsLadder) -> str:
    return (f"# fitted by liqbot calibrate --positions from {Path(fit.positions_file).name}, "
            f"{fit.n_positions} positions, {utc_text(fit.start_ms)} → {utc_text(fit.end_ms)} "
            f"UTC; long share {fit.long_share:.3f} (dominant_share kept from the base model)\n"
            "[model]\n"
            f"leverage = [{', '.join(f'{lev:g}' for lev in fit.leverages)}]\n"
            f"weights = [{', '.join(repr(w) for w in fit.weights)}]\n"
            f"dominant_share = {fit.dominant_share!r}\n")


def format_report(fit: PositionsLadder) -> str:
    lines = [f"ladder from real positions · {Path(fit.positions_file).name}",
             f"  {fit.n_positions} positions, {money(fit.notional_usd)} at entry, "
             f"{utc_text(fit.start_ms)} → {utc_text(fit.end_ms)} UTC",
             f"  {'leverage':>8}  {'fitted':>7}  {'default':>7}",
             *(f"  {lev:>7g}x  {w * 100:>6.1f} %  {b * 100:>5.1f} %" for lev, w, b in
               zip(fit.leverages, fit.weights, fit.base_weights, strict=True)),
             f"  long share      {fit.long_share:.3f} of the notional (dominant_share kept: "
             f"{fit.dominant_share:.2f})",
             "caveats: a sample of wallets on one venue; positions liquidated before a scan are "
             "missing, so high leverage is under-counted."]
    return "\n".join(lines)


def write_ladder(fit: PositionsLadder, path: str | Path) -> None:
    p = Path(path)
    try:
        p.write_text(ladder_toml(fit), encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{p}: cannot write: {exc.strerror or exc}") from exc
