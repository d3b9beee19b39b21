"""The candle CSV loader as it was before issue 20's CSV work, kept verbatim as the baseline
bench/csv_bench.py times in the same run: load_csv of bot/market/replay.py and median_range /
clip_bad_wicks of estimator/candles.py at commit d23e8b7 (the whole file as text, every cell
through one np.array(list of str), the wick median over a window x n copy). Not used by the bot.
"""
# ruff: noqa
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from bot.errors import DataFileError
from bot.market.replay import MAX_VALUE, OPTIONAL, REQUIRED, SECONDS_RANGE
from estimator import Candles
from estimator.candles import WICK_FACTOR, WICK_WINDOW, FloatArray, IntArray

log = logging.getLogger(__name__)


def _fail(path: Path, line: int | None, message: str) -> DataFileError:
    where = f"{path.name}:{line}" if line is not None else path.name
    return DataFileError(f"{where}: {message}")


def _parse_cells(path: Path, cells: list[str], rows: list[str], linenos: list[int],
                 width: int, names: list[str]) -> np.ndarray:
    """Cells → float matrix (rows × width); on failure find the offending line (slow path)."""
    try:
        mat = np.array(cells, dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        mat = None
    if mat is not None and bool(np.all(np.abs(mat) < MAX_VALUE)):  # False for NaN too
        return mat
    for row, lineno in zip(rows, linenos, strict=True):
        for name, cell in zip(names, row.split(","), strict=True):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise _fail(path, lineno, f"{name} is not a finite number: {cell.strip()[:30]!r}")
            if not abs(value) < MAX_VALUE:
                raise _fail(path, lineno, f"{name} {cell.strip()[:30]} is too large (every "
                            f"number must be below {MAX_VALUE:g})")
    raise _fail(path, None, "could not parse numbers")  # pragma: no cover - unreachable


def load_csv(path: str | Path, clip_wicks: bool = True) -> Candles:
    """Load and validate a candle CSV (format in the module docstring); bad-print wicks are
    clipped with a warning unless ``clip_wicks`` is False.

    Raises DataFileError naming the file and line (1-based, header = line 1) for: missing
    columns, wrong field counts, non-numeric values, non-integer/unsorted/duplicate timestamps,
    high < low, non-positive prices, negative volume/OI. Gaps are allowed (see find_gaps).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, None, f"cannot read: {exc}") from exc
    # read_text already turned \r\n and \r into \n; split on that only, as editors number
    # lines (str.splitlines() would also break on \v, \f, \x1c… and miscount).
    lines = text.split("\n")
    if not lines or not lines[0].strip():
        raise _fail(path, 1, "empty file or header line")
    header = [h.strip().lower() for h in lines[0].split(",")]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _fail(path, 1, f"missing column(s) {', '.join(missing)}; header is {lines[0]!r}")
    if len(set(header)) != len(header):
        raise _fail(path, 1, "duplicate column name in header")
    width = len(header)
    linenos = [i + 1 for i, line in enumerate(lines) if i and line.strip()]
    rows = [lines[i - 1] for i in linenos]
    if not rows:
        raise _fail(path, None, "no data rows")
    cells = ",".join(rows).split(",")
    # Row by row: a short row and a long one elsewhere add up to the right total (and would
    # shift every cell in between).
    for row, lineno in zip(rows, linenos, strict=True):
        if row.count(",") + 1 != width:
            raise _fail(path, lineno, f"expected {width} fields, got {row.count(',') + 1}")
    mat = _parse_cells(path, cells, rows, linenos, width, header)
    col = {name: mat[:, header.index(name)] for name in (*REQUIRED, *OPTIONAL) if name in header}

    def line_of(row: int) -> int:
        return linenos[row]

    ts_f = col["timestamp"]
    bad = np.nonzero((ts_f != np.round(ts_f)) | (ts_f < 0) | (ts_f > 2**53))[0]
    if len(bad):
        raise _fail(path, line_of(int(bad[0])), "timestamp must be a whole number of ms")
    ts = ts_f.astype(np.int64)
    if len(ts) > 1:
        d = np.diff(ts)
        bad = np.nonzero(d <= 0)[0]
        if len(bad):
            r = int(bad[0]) + 1
            kind = "duplicate" if d[r - 1] == 0 else "unsorted"
            raise _fail(path, line_of(r), f"{kind} timestamp {ts[r]} (previous row has "
                        f"{ts[r - 1]}); timestamps must be strictly ascending")
    for name in ("open", "high", "low", "close"):
        bad = np.nonzero(col[name] <= 0)[0]
        if len(bad):
            raise _fail(path, line_of(int(bad[0])), f"non-positive {name} {col[name][bad[0]]}")
    bad = np.nonzero(col["high"] < col["low"])[0]
    if len(bad):
        r = int(bad[0])
        raise _fail(path, line_of(r), f"high {col['high'][r]} < low {col['low'][r]}")
    for name in ("volume", *OPTIONAL):
        if name in col:
            bad = np.nonzero(col[name] < 0)[0]
            if len(bad):
                raise _fail(path, line_of(int(bad[0])), f"negative {name} {col[name][bad[0]]}")
    lo, hi = SECONDS_RANGE
    if len(ts) > 1 and lo <= ts[0] and ts[-1] < hi:
        raise _fail(path, line_of(0), f"timestamp {ts[0]} looks like seconds (as ms it is in "
                    "1970); timestamps are unix milliseconds: multiply them by 1000")
    try:
        candles = Candles(ts, col["open"], col["high"], col["low"], col["close"], col["volume"],
                          col.get("open_interest_usd"), col.get("taker_buy_volume"))
    except ValueError as exc:  # pragma: no cover - the checks above cover Candles' rules
        raise _fail(path, None, str(exc)) from exc
    candles, clipped = clip_bad_wicks(candles) if clip_wicks else (candles, ())
    if len(clipped):
        log.warning("%s:%d: %d bad-print candle(s) (a wick over %g× the median range of the "
                    "candles around it), clipped to one median range; first high %s / low %s",
                    path.name, line_of(int(clipped[0])), len(clipped), WICK_FACTOR,
                    col["high"][clipped[0]], col["low"][clipped[0]])
    return candles




def median_range(c: Candles, window: int = WICK_WINDOW) -> FloatArray:
    """Per candle, the median high−low range of the ``window`` candles centred on it (mirrored
    at the ends, so the first candle is judged by its neighbours, not by itself)."""
    half = min(window // 2, len(c) - 1)
    if half < 1:
        return c.high - c.low
    rng = np.pad(c.high - c.low, (half, half), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(rng, 2 * half + 1)
    return np.partition(windows, half, axis=1)[:, half]


def clip_bad_wicks(c: Candles, factor: float = WICK_FACTOR,
                   window: int = WICK_WINDOW) -> tuple[Candles, IntArray]:
    """Clip bad prints: a wick (high above max(open, close), or low below min(open, close))
    longer than ``factor`` × the median high−low range of the ``window`` candles centred on it
    is cut to one median range. Returns the clipped series and the rows changed (ascending).

    Wicks, not ranges: a real crash moves open/close too (the bundled file has genuine candles
    with a range 20× their neighbours' median, but no wick beyond 12×), while a bad print
    leaves a lone spike (a public Binance hourly export starts with high 16,199 / low 4,261
    at a 4,300 price). A median range of 0 (a flat stretch) flags nothing.
    """
    med = median_range(c, window)
    top = np.maximum(c.open, c.close)
    bottom = np.minimum(c.open, c.close)
    limit = np.where(med > 0, factor * med, np.inf)
    up = (c.high - top) > limit
    down = (bottom - c.low) > limit
    rows = np.nonzero(up | down)[0]
    if not len(rows):
        return c, rows
    # Kept a valid candle even where open/close lie outside high/low: low ≤ high, both > 0.
    high = np.where(up, np.maximum(top + med, c.low), c.high)
    low = np.minimum(np.where(down, np.maximum(bottom - med, bottom * 0.5), c.low), high)
    return Candles(c.timestamp, c.open, high, low, c.close, c.volume, c.open_interest_usd,
                   c.taker_buy_volume), rows
