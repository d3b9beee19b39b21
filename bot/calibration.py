"""`liqbot calibrate`: fit the leverage ladder to a recorded liquidation tape, report it, and
write/read the ladder file (``[model] leverage / weights / dominant_share``).

The fit itself is :func:`estimator.fit_ladder`; this module owns the files and the wording.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.backtest.liquidations import load_liquidations
from bot.errors import ConfigError, DataFileError
from bot.fmt import money, utc_text
from bot.market.replay import load_csv
from estimator import LadderFit, ModelParams, fit_ladder

CAVEAT = (
    "caveats: the Binance liquidation feed sends at most one liquidation per second per\n"
    "symbol, so the tape undercounts: the scale is tape USD per model USD for this tape, not a\n"
    "market-wide figure. R² is in-sample (fitted and scored on the same candles): compare it\n"
    "with the default and equal-weight rows, not with 1. Neighbouring leverages die at similar\n"
    "candles and trade weight off against each other: treat single weights as rough."
)
_KEYS = ("leverage", "weights", "dominant_share")


@dataclass(frozen=True)
class Calibration:
    """A ladder fit with where it came from: ``base`` is the ladder it is compared with."""

    fit: LadderFit
    base: ModelParams
    candles_file: Path
    liquidations_file: Path

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fit's fields (a constant tape's R² is None), base ladder, files."""
        fields = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                  for k, v in asdict(self.fit).items()}
        return fields | {
            "base_weights": list(self.base.weights),
            "base_dominant_share": self.base.dominant_share,
            "candles_file": str(self.candles_file),
            "liquidations_file": str(self.liquidations_file),
        }


def calibrate(candles_file: str | Path, liquidations_file: str | Path,
              base: ModelParams,
              progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Load both CSVs and fit; DataFileError names the file(s) and the problem.
    ``progress(done, total)`` follows the fit (see ``fit_ladder``)."""
    cpath, lpath = Path(candles_file), Path(liquidations_file)
    candles = load_csv(cpath)
    liq = load_liquidations(lpath)
    try:
        fit = fit_ladder(candles, base, liq.timestamp, liq.is_short, liq.notional,
                         progress=progress)
    except ValueError as exc:
        raise DataFileError(f"{lpath.name} on {cpath.name}: "
                            f"{str(exc).removeprefix('calibrate: ')}") from exc
    return Calibration(fit, base, cpath, lpath)


def format_report(cal: Calibration) -> str:
    """Plain-text report: weights fitted vs base per leverage, share, scale, R², caveats."""
    fit, base = cal.fit, cal.base
    source = ("volume proxy (no open_interest_usd column: new notional is guessed from volume, "
              "so this fit is weak)" if fit.proxy else "open interest")
    lines = [
        f"ladder calibration · {cal.candles_file.name} + {cal.liquidations_file.name}",
        f"  {fit.n_liquidations} liquidations, {money(fit.observed_usd)} over {fit.n_candles} "
        f"candles, {utc_text(fit.start_ms)} → {utc_text(fit.end_ms)} UTC",
        f"  new notional from: {source}",
        f"  {'leverage':>8}  {'fitted':>7}  {'default':>7}",
        *(f"  {lev:>7g}x  {w * 100:>6.1f} %  {b * 100:>5.1f} %"
          for lev, w, b in zip(fit.leverages, fit.weights, base.weights, strict=True)),
        f"  dominant share  {fit.dominant_share:.2f} (default {base.dominant_share:.2f})",
        f"  scale           {fit.scale:.3g} tape USD per model USD liquidated",
        f"  R²              fitted {_r2(fit.r2)} · default ladder {_r2(fit.r2_default)} · "
        f"equal weights {_r2(fit.r2_flat)}",
        CAVEAT,
    ]
    return "\n".join(lines)


def _r2(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def ladder_toml(cal: Calibration) -> str:
    """The ladder file: a comment saying where it came from, then ``[model]``."""
    fit = cal.fit
    return (
        f"# fitted by liqbot calibrate from {cal.candles_file.name}, "
        f"{cal.liquidations_file.name}, {fit.n_liquidations} liquidations, "
        f"{utc_text(fit.start_ms)} → {utc_text(fit.end_ms)} UTC\n"
        "[model]\n"
        f"leverage = [{', '.join(f'{lev:g}' for lev in fit.leverages)}]\n"
        f"weights = [{', '.join(repr(w) for w in _rounded(fit.weights))}]\n"
        f"dominant_share = {fit.dominant_share!r}\n"
    )


def _rounded(weights: tuple[float, ...], digits: int = 6) -> list[float]:
    """Weights to ``digits`` decimals, the rounding left over put on the largest: still sum 1."""
    out = [round(w, digits) for w in weights]
    top = max(range(len(out)), key=out.__getitem__)
    out[top] = round(out[top] + 1.0 - math.fsum(out), digits)
    return out


def write_ladder(cal: Calibration, path: str | Path) -> None:
    """Write :func:`ladder_toml` to ``path``; DataFileError when it cannot."""
    p = Path(path)
    try:
        p.write_text(ladder_toml(cal), encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{p}: cannot write: {exc.strerror or exc}") from exc


def load_ladder(path: str | Path) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Read a ladder file back: (leverages, weights, dominant_share).

    ConfigError names the file and the problem: unreadable, not TOML, no ``[model]`` table,
    missing or unknown keys, non-numbers, lengths that differ, weights not summing to 1 within
    1e-6 (within that, the decimals' rounding is normalised away), or a ladder the model rejects.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ladder file: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a valid TOML ladder file: {exc}") from exc
    model = raw.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{p}: missing [model] table")
    missing = [k for k in _KEYS if k not in model]
    if missing:
        raise ConfigError(f"{p}: model: missing {', '.join(missing)}")
    unknown = sorted(set(model) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{p}: model: unknown key(s) {', '.join(unknown)}")
    leverage = _numbers(p, "leverage", model["leverage"])
    weights = _numbers(p, "weights", model["weights"])
    share = model["dominant_share"]
    if not _is_number(share):
        raise ConfigError(f"{p}: model.dominant_share must be a number, got {share!r}")
    if len(leverage) != len(weights):
        raise ConfigError(f"{p}: model: {len(leverage)} leverages but {len(weights)} weights")
    total = math.fsum(weights)
    if not abs(total - 1.0) <= 1e-6:
        raise ConfigError(f"{p}: model.weights sum to {total!r}, expected 1")
    weights = tuple(w / total for w in weights)
    try:
        ModelParams(leverages=leverage, weights=weights, dominant_share=float(share))
    except ValueError as exc:
        raise ConfigError(f"{p}: model: {exc}") from exc
    return leverage, weights, float(share)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(p: Path, key: str, value: object) -> tuple[float, ...]:
    if not (isinstance(value, list) and value and all(_is_number(v) for v in value)):
        raise ConfigError(f"{p}: model.{key} must be a non-empty list of numbers, got {value!r}")
    return tuple(float(v) for v in value)
