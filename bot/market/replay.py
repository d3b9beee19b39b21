"""Offline market data: a validated CSV loader and a replay source on a virtual clock.

CSV format: header ``timestamp,open,high,low,close,volume`` plus optional ``open_interest_usd``
and ``taker_buy_volume`` (any column order, extra columns ignored); ``timestamp`` is the candle
open time in unix ms UTC, strictly ascending; prices in USD, volumes in base units, OI in USD.
Timestamps in seconds are refused (see :func:`load_csv`); every number must be below 1e18;
bad-print wicks are clipped with a warning (:func:`estimator.candles.clip_bad_wicks`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path

import numpy as np

from bot.errors import BadSymbolError, DataFileError, UsageError
from bot.market.base import MarketSnapshot, PriceTick, is_stale
from bot.market.csv_numbers import parse_block
from bot.market.symbols import normalise
from estimator import Candles
from estimator.candles import WICK_FACTOR, clip_bad_wicks

log = logging.getLogger(__name__)

BUNDLED_CSV: Path = Path(__file__).resolve().parent.parent / "data" / "btcusd_coinbase_1h.csv"
"""Real Coinbase BTC-USD hourly candles, 2017-07 … 2019-10 (see bot/data/README.md)."""

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
MAX_VALUE = 1e18
"""Every number in a candle CSV is below this (1e308 is finite but overflows the model)."""
SECONDS_RANGE = (1e9, 1e11)
"""All timestamps in here: seconds since 2001-09-09, not ms in 1970-01-12 … 1973-03-03."""
OPTIONAL = ("open_interest_usd", "taker_buy_volume")


@dataclass(frozen=True)
class Gaps:
    """Missing candles in a series: ``step_ms`` is the usual spacing (median), ``count`` the
    number of holes, ``missing`` the candles they span, ``first_row`` the 0-based row after the
    first hole (None without gaps)."""

    step_ms: int
    count: int
    missing: int
    first_row: int | None


def find_gaps(timestamp: np.ndarray, step_ms: int | None = None) -> Gaps:
    """Holes in an ascending ms timestamp series (spacing > step; step = median by default)."""
    ts = np.asarray(timestamp, dtype=np.int64)
    if len(ts) < 2:
        return Gaps(step_ms or 0, 0, 0, None)
    diff = np.diff(ts)
    step = int(step_ms if step_ms is not None else np.median(diff))
    holes = np.nonzero(diff > step)[0]
    missing = int(np.sum(diff[holes] // max(step, 1) - 1)) if len(holes) else 0
    first = int(holes[0]) + 1 if len(holes) else None
    return Gaps(step, len(holes), max(missing, len(holes)), first)


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


CHUNK_BYTES = 256 << 10
"""The loader reads this much at a time (whole rows): memory stays at the final arrays plus
a few blocks, whatever the file's size; small blocks keep the parse's temporaries in cache
(bench/csv_bench.py: 256 KB loaded the 260 MB file faster than 64 KB, 1 MB or 2 MB)."""


TEXT_ERRORS_BYTES = 16 << 20
"""A file up to this size that fails to parse is read again as text, so that its error is
the one the whole-file reader gives (field counts before numbers, bad bytes before both);
in a larger file, the first bad line block by block."""


class _Irregular(Exception):
    """A lone carriage return, non-UTF-8 bytes or a bad header: the whole-file reader numbers
    the lines (and words the error) as an editor would."""


def load_csv(path: str | Path, clip_wicks: bool = True) -> Candles:
    """Load and validate a candle CSV (format in the module docstring); bad-print wicks are
    clipped with a warning unless ``clip_wicks`` is False.

    Raises DataFileError naming the file and line (1-based, header = line 1) for: missing
    columns, wrong field counts, non-numeric values, non-integer/unsorted/duplicate timestamps,
    high < low, non-positive prices, negative volume/OI. Gaps are allowed (see find_gaps).

    Read in blocks of whole rows: a block of plain decimals is parsed vectorised
    (:mod:`bot.market.csv_numbers`, equal bit for bit to ``float``), any other block line by
    line, which accepts it the same way or names its bad line.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            header, col, line_of = _read_blocks(path, f)
    except OSError as exc:
        raise _fail(path, None, f"cannot read: {exc}") from exc
    except _Irregular:
        header, col, line_of = _read_text(path)
    except DataFileError:
        if size > TEXT_ERRORS_BYTES:
            raise
        header, col, line_of = _read_text(path)  # raises: the same error as ever
    return _validated(path, col, line_of, clip_wicks)


LineOf = Callable[[int], int]


def _header(path: Path, line: str) -> list[str]:
    if not line.strip():
        raise _fail(path, 1, "empty file or header line")
    header = [h.strip().lower() for h in line.split(",")]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _fail(path, 1, f"missing column(s) {', '.join(missing)}; header is {line!r}")
    if len(set(header)) != len(header):
        raise _fail(path, 1, "duplicate column name in header")
    return header


def _parse_lines(path: Path, lines: list[str], first_line: int,
                 header: list[str]) -> tuple[np.ndarray, list[int]]:
    """The exact reader: text lines (numbered from ``first_line``; blank ones skipped) → float
    matrix and the line number of each row."""
    width = len(header)
    linenos = [first_line + i for i, line in enumerate(lines) if line.strip()]
    rows = [lines[n - first_line] for n in linenos]
    if not rows:
        return np.empty((0, width)), linenos
    # Row by row: a short row and a long one elsewhere add up to the right total (and would
    # shift every cell in between).
    for row, lineno in zip(rows, linenos, strict=True):
        if row.count(",") + 1 != width:
            raise _fail(path, lineno, f"expected {width} fields, got {row.count(',') + 1}")
    cells = ",".join(rows).split(",")
    return _parse_cells(path, cells, rows, linenos, width, header), linenos


def _read_text(path: Path) -> tuple[list[str], dict[str, np.ndarray], LineOf]:
    """The whole file as text, line by line (files with lone carriage returns, bad bytes)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, None, f"cannot read: {exc}") from exc
    # read_text already turned \r\n and \r into \n; split on that only, as editors number
    # lines (str.splitlines() would also break on \v, \f, \x1c… and miscount).
    lines = text.split("\n")
    header = _header(path, lines[0])
    mat, linenos = _parse_lines(path, lines[1:], 2, header)
    if not linenos:
        raise _fail(path, None, "no data rows")
    col = {name: mat[:, header.index(name)] for name in (*REQUIRED, *OPTIONAL) if name in header}
    return header, col, linenos.__getitem__


def _read_blocks(path: Path, f: BufferedReader) -> tuple[list[str], dict[str, np.ndarray], LineOf]:
    first = f.readline().removeprefix(b"\xef\xbb\xbf")
    if first.endswith(b"\r\n"):
        first = first[:-2]
    if b"\r" in first:
        raise _Irregular
    try:
        header = _header(path, first.decode("utf-8").removesuffix("\n"))
    except (UnicodeDecodeError, DataFileError) as exc:
        raise _Irregular from exc  # the text reader words it (bad bytes anywhere come first)
    width = len(header)
    keep = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}
    # Parsed blocks go straight into the columns, nothing to concatenate. Room for as many
    # rows as the file could hold (a row is at least 2 x width bytes, newline included):
    # pages never written are never allocated, so only the rows read take memory.
    most = (os.fstat(f.fileno()).st_size + 1) // (2 * width) + 1
    col = {name: np.empty(most) for name in keep}
    # Where each block's rows start, and its first line (rows 1:1 with lines) or, for a block
    # with blank lines, the line of each row.
    seg_rows: list[int] = []
    seg_lines: list[int | list[int]] = []
    rows = 0
    line = 2
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    kept = 0  # bytes of an unfinished row carried over at the front of buffer
    while True:
        if kept == len(buffer):  # a row longer than the buffer: a new one, twice as long
            buffer = buffer + bytes(len(buffer))
            view = memoryview(buffer)
        got = f.readinto(view[kept:])
        size = kept + got
        cut = buffer.rfind(b"\n", 0, size) + 1
        if not got:
            if not size:
                break
            if size == len(buffer):
                buffer = buffer + b"\n"
                view = memoryview(buffer)
            buffer[size] = 10  # the last row without its newline
            cut = size = size + 1
        elif not cut:
            kept = size
            continue
        block: bytes | memoryview = view[:cut]
        if buffer.find(b"\r", 0, cut) >= 0:
            block = bytes(block).replace(b"\r\n", b"\n")
            if b"\r" in block:
                raise _Irregular
        mat = parse_block(block, width)
        if mat is None:
            try:
                text = bytes(block).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Irregular from exc
            lines = text.split("\n")[:-1]
            mat, linenos = _parse_lines(path, lines, line, header)
            seg_lines.append(linenos)
            line += len(lines)
        else:
            seg_lines.append(line)
            line += len(mat)
        seg_rows.append(rows)
        for name, j in keep.items():
            col[name][rows:rows + len(mat)] = mat[:, j]
        rows += len(mat)
        del block
        kept = size - cut
        buffer[:kept] = bytes(view[cut:size])
        if not got:
            break
    if not rows:
        raise _fail(path, None, "no data rows")
    col = {name: values[:rows] for name, values in col.items()}

    def line_of(row: int) -> int:
        k = bisect_right(seg_rows, row) - 1
        where = seg_lines[k]
        return where[row - seg_rows[k]] if isinstance(where, list) else where + row - seg_rows[k]

    return header, col, line_of


def _validated(path: Path, col: dict[str, np.ndarray], line_of: LineOf,
               clip_wicks: bool) -> Candles:
    """The rows' rules (module docstring) on the parsed columns; the candles, wicks clipped."""
    ts_f = col.pop("timestamp")
    bad = np.nonzero((ts_f != np.round(ts_f)) | (ts_f < 0) | (ts_f > 2**53))[0]
    if len(bad):
        raise _fail(path, line_of(int(bad[0])), "timestamp must be a whole number of ms")
    ts = ts_f.astype(np.int64)
    del ts_f
    if len(ts) > 1:
        d = np.diff(ts)
        bad = np.nonzero(d <= 0)[0]
        if len(bad):
            r = int(bad[0]) + 1
            kind = "duplicate" if d[r - 1] == 0 else "unsorted"
            raise _fail(path, line_of(r), f"{kind} timestamp {ts[r]} (previous row has "
                        f"{ts[r - 1]}); timestamps must be strictly ascending")
        del d
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
    candles, clipped = (clip_bad_wicks(candles) if clip_wicks
                        else (candles, np.empty(0, dtype=np.int64)))
    if len(clipped):
        log.warning("%s:%d: %d bad-print candle(s) (a wick over %g× the median range of the "
                    "candles around it), clipped to one median range; first high %s / low %s",
                    path.name, line_of(int(clipped[0])), len(clipped), WICK_FACTOR,
                    col["high"][clipped[0]], col["low"][clipped[0]])
    return candles


class ReplaySource:
    """Replays a candle series on a virtual clock: the whole bot runs offline.

    ``warmup`` candles are visible at the start; each :meth:`advance` reveals
    ``candles_per_tick`` more. ``window`` (optional) caps how many candles :meth:`fetch` returns
    (the newest ones). Implements :class:`bot.market.base.MarketSource`.
    """

    def __init__(self, candles: Candles, symbol: str = "BTC/USDT:USDT",
                 candles_per_tick: int = 1, warmup: int = 500, window: int | None = None,
                 timeframe: str | None = None) -> None:
        if candles_per_tick < 1:
            raise ValueError(f"replay: candles_per_tick must be ≥ 1, got {candles_per_tick!r}")
        if warmup < 1:
            raise ValueError(f"replay: warmup must be ≥ 1, got {warmup!r}")
        if window is not None and window < 1:
            raise ValueError(f"replay: window must be ≥ 1, got {window!r}")
        self.candles = candles
        self.symbol = symbol
        self.candles_per_tick = candles_per_tick
        self.window = window
        self.gaps = find_gaps(candles.timestamp)
        self.step_ms = self.gaps.step_ms or 60_000
        self.timeframe = timeframe or _timeframe_name(self.step_ms)
        self._pos = min(warmup, len(candles))  # candles visible
        self._prev = self._pos - 1  # first candle of the latest tick

    @classmethod
    def from_csv(cls, path: str | Path = BUNDLED_CSV, **kwargs: object) -> ReplaySource:
        """Replay a CSV file (the bundled BTC-USD 1h file by default)."""
        return cls(load_csv(path), **kwargs)  # type: ignore[arg-type]

    @property
    def position(self) -> int:
        """Number of candles visible so far."""
        return self._pos

    @property
    def done(self) -> bool:
        """True when every candle has been revealed."""
        return self._pos >= len(self.candles)

    @property
    def now_ms(self) -> int:
        """Virtual wall clock (ms): the close time of the newest visible candle."""
        return int(self.candles.timestamp[self._pos - 1]) + self.step_ms

    @property
    def next_ms(self) -> int | None:
        """The virtual clock :meth:`advance` would move to (ms); None at the end."""
        if self.done:
            return None
        pos = min(self._pos + self.candles_per_tick, len(self.candles))
        return int(self.candles.timestamp[pos - 1]) + self.step_ms

    def advance(self) -> bool:
        """Reveal the next ``candles_per_tick`` candles; False (and no move) at the end."""
        if self.done:
            return False
        self._prev = self._pos
        self._pos = min(self._pos + self.candles_per_tick, len(self.candles))
        return True

    def _check(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise BadSymbolError(f"{symbol} is not available in replay (only {self.symbol}).")

    async def normalise(self, user_text: str) -> str:
        """Unified symbol for user text; only the replayed symbol exists."""
        symbol = normalise(user_text)
        self._check(symbol)
        return symbol

    async def fetch(self, symbol: str) -> MarketSnapshot:
        """The candles visible at the virtual clock (the newest ``window`` of them)."""
        self._check(symbol)
        start = 0 if self.window is None else max(0, self._pos - self.window)
        view = self.candles.slice(start, self._pos)
        notes: list[str] = ["replay data"]
        if view.open_interest_usd is None:
            notes.append("no open interest in the file: volume proxy")
        taker = "file" if view.taker_buy_volume is not None else "candle colour"
        if self.gaps.count:
            notes.append(f"{self.gaps.count} gap(s) in the file")
        stale = is_stale(int(view.timestamp[-1]), self.now_ms, self.step_ms)
        return MarketSnapshot(self.symbol, self.timeframe, view, self.now_ms, stale,
                              oi_sources=("file",) if view.open_interest_usd is not None else (),
                              taker_source=taker, warnings=tuple(notes))

    async def last_price(self, symbol: str, since_ms: int | None = None) -> PriceTick:
        """Newest close and the high/low of the candles revealed by the latest tick
        (``since_ms`` is not needed: a restarted replay re-plays up to its last tick)."""
        self._check(symbol)
        s = slice(max(self._prev, 0), self._pos)
        c = self.candles
        return PriceTick(self.symbol, float(c.close[self._pos - 1]), float(c.high[s].max()),
                         float(c.low[s].min()), self.now_ms)

    async def close(self) -> None:
        """Nothing to release."""


_RECORDED = re.compile(r"^([A-Z0-9]+)_[a-z0-9]+_[0-9]+[smhdwM]_\d{4}-\d{2}-\d{2}\.csv$")


def replay_symbol(user_text: str, path: str | Path | None = None) -> str:
    """The unified symbol for ``user_text`` when replaying ``path`` (None / "" = the bundled
    BTC file). A replay file holds one symbol: the bundled file BTC, a ``liqbot record`` file
    the one in its name; another symbol is a UsageError (a file without a recorded name is
    labelled with whatever symbol is given)."""
    try:
        symbol = normalise(user_text)
    except BadSymbolError as exc:
        raise UsageError(f"symbol {user_text!r}: {exc}") from exc
    name = Path(path).name if path else BUNDLED_CSV.name
    if not path and symbol.split("/")[0] != "BTC":  # BTC-USD candles: any BTC quote will do
        raise UsageError(f"symbol {user_text!r}: {name} holds BTC only (a replay file has "
                         "one symbol)")
    if (m := _RECORDED.match(name)) and _compact(symbol) != m.group(1):
        raise UsageError(f"symbol {user_text!r}: {name} holds {m.group(1)} only (a replay file "
                         "has one symbol)")
    return symbol


def _compact(symbol: str) -> str:
    """BTC/USDT:USDT → BTCUSDT, as ``liqbot record`` names its files."""
    return symbol.split(":")[0].replace("/", "")


def replay_label(path: str | Path | None) -> str:
    """How charts and /status name a replay source ("" / None = the bundled file). No
    timeframe: charts print it next to the label."""
    return "replay: " + (Path(path).name if path else "Coinbase BTC-USD")


def replay_is_spot(path: str | Path | None) -> bool:
    """Whether the replayed candles are spot, not perpetual: the bundled file is Coinbase
    BTC-USD spot; any other file is taken to be what ``liqbot record`` writes (perpetuals)."""
    return not path


def timeframe_of(candles: Candles) -> str:
    """The ccxt-style timeframe ("1h", "5m") of a candle series, from its usual step."""
    return _timeframe_name(find_gaps(candles.timestamp).step_ms or 60_000)


def _timeframe_name(step_ms: int) -> str:
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    return f"{max(step_ms // 60_000, 1)}m"
