"""``liqbot record``: real candles (with open interest and taker-buy volume) in the replay CSV
format, plus the liquidation tape as CSV, one file per UTC day.

Files in ``out``: ``BTCUSDT_binanceusdm_5m_2025-11-24.csv`` (the format
:func:`bot.market.replay.load_csv` reads; complete candles only, merged with what an earlier
run wrote) and ``BTCUSDT_binanceusdm_liquidations_2025-11-24.csv`` (``timestamp,side,price,
notional_usd``, what ``liqbot backtest --liquidations`` reads; appended and flushed per event,
so an interrupted recording keeps what it saw).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bot.errors import MarketDataError
from bot.market.base import timeframe_ms
from bot.market.ccxt_source import CcxtSource, ExchangeFactory
from bot.market.errors import RetryPolicy
from bot.market.replay import OPTIONAL, REQUIRED
from bot.tape.events import Liquidation
from bot.tape.source import Backoff, TapeSource, WsFactory

log = logging.getLogger(__name__)

LIQ_COLUMNS = ("timestamp", "side", "price", "notional_usd")


def utc_date(ms: int) -> str:
    """Unix ms → ``YYYY-MM-DD`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def file_stem(symbol: str, exchange: str) -> str:
    """``BTC/USDT:USDT`` on binanceusdm → ``BTCUSDT_binanceusdm``."""
    return f"{symbol.split(':')[0].replace('/', '')}_{exchange}"


@dataclass
class RecordResult:
    """What a recording wrote: files touched, liquidations and candles per symbol."""

    files: set[Path] = field(default_factory=set)
    liquidations: dict[str, int] = field(default_factory=dict)
    candles: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class LiquidationWriter:
    """Appends events to one CSV per symbol and UTC day (header written on creation)."""

    def __init__(self, out: Path, exchange: str, result: RecordResult) -> None:
        self.out, self.exchange, self.result = out, exchange, result
        self._open: dict[str, tuple[Path, IO[str]]] = {}

    def write(self, event: Liquidation) -> None:
        path = self.out / (f"{file_stem(event.symbol, self.exchange)}_liquidations_"
                           f"{utc_date(event.timestamp)}.csv")
        current = self._open.get(event.symbol)
        if current is None or current[0] != path:
            if current is not None:
                current[1].close()
            new = not path.exists()
            opened: IO[str] = path.open("a", newline="", encoding="utf-8")
            if new:
                opened.write(",".join(LIQ_COLUMNS) + "\n")
            self._open[event.symbol] = current = (path, opened)
        fh = current[1]
        fh.write(f"{event.timestamp},{event.side},{event.price!r},{event.notional_usd:.2f}\n")
        fh.flush()
        self.result.files.add(path)
        self.result.liquidations[event.symbol] = self.result.liquidations.get(event.symbol, 0) + 1

    def close(self) -> None:
        for _, fh in self._open.values():
            fh.close()
        self._open.clear()


def write_candles_daily(columns: Mapping[str, Sequence[float]], out: Path, stem: str) -> set[Path]:
    """Candle columns (``timestamp`` in ms first) → one CSV per UTC day, merged by timestamp
    with rows already there that have the same columns (new rows win)."""
    names = list(columns)
    n = len(columns["timestamp"])
    by_day: dict[str, dict[int, list[str]]] = {}
    for i in range(n):
        ts = int(columns["timestamp"][i])
        cells = [str(ts)] + [repr(float(columns[c][i])) for c in names[1:]]
        by_day.setdefault(utc_date(ts), {})[ts] = cells
    written = set()
    for day, rows in by_day.items():
        path = out / f"{stem}_{day}.csv"
        if path.exists():
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, [])
                if header == names:
                    old = {int(r[0]): r for r in reader if len(r) == len(names)}
                    rows = old | rows
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            fh.write(",".join(names) + "\n")
            for ts in sorted(rows):
                fh.write(",".join(rows[ts]) + "\n")
        tmp.replace(path)
        written.add(path)
    return written


async def record(symbols: Sequence[str], out: Path, exchange: str = "binanceusdm",
                 minutes: float = 60.0, *, timeframe: str = "5m",
                 exchange_factory: ExchangeFactory | None = None,
                 ws_factory: WsFactory | None = None, clock: Callable[[], int] | None = None,
                 retry: RetryPolicy | None = None, backoff: Backoff | None = None,
                 timeout_ms: int = 10_000, stop: asyncio.Event | None = None) -> RecordResult:
    """Record the tape for ``minutes`` (or until ``stop`` is set), then the candles covering
    it (at least a day).

    ``exchange_factory`` / ``ws_factory`` / ``clock`` / ``stop`` are seams for tests.
    Raises MarketDataError if the feed stopped for good (files written so far are kept).
    """
    if not minutes > 0:
        raise ValueError("record: minutes must be > 0")
    out.mkdir(parents=True, exist_ok=True)
    lookback_days = min(max(1.0, minutes / 1440 + 0.05), 365.0)
    src = CcxtSource([exchange], timeframe, lookback_days, exchange_factory=exchange_factory,
                     retry=retry, timeout_ms=timeout_ms, clock=clock)
    result = RecordResult()
    try:
        resolved = [await src.normalise(s) for s in symbols]
        writer = LiquidationWriter(out, exchange, result)
        try:
            tape = TapeSource(resolved, [exchange], ws_factory, on_event=writer.write,
                              backoff=backoff)
            async with tape:
                # Until the time is up, ``stop`` is set, or the feed gives up for good.
                stopper = asyncio.ensure_future((stop or asyncio.Event()).wait())
                try:
                    await asyncio.wait([stopper, *tape.tasks], timeout=minutes * 60,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
        finally:
            writer.close()
        status = tape.status[exchange]
        if status.note:
            result.notes.append(status.note)
        for sym in resolved:
            await _record_candles(src, sym, out, exchange, result)
    finally:
        await src.close()
    if status.error is not None:
        raise MarketDataError(f"the liquidation feed stopped: {status.error}") from status.error
    return result


async def _record_candles(src: CcxtSource, symbol: str, out: Path, exchange: str,
                          result: RecordResult) -> None:
    snap = await src.fetch(symbol)
    c = snap.candles
    complete = c.timestamp + timeframe_ms(src.timeframe) <= snap.now_ms
    cols: dict[str, Sequence[float]] = {
        name: getattr(c, name)[complete] for name in REQUIRED}
    for name in OPTIONAL:
        values = getattr(c, name)
        if values is not None and all(math.isfinite(v) for v in values[complete]):
            cols[name] = values[complete]
        else:
            result.notes.append(f"{symbol}: no {name} recorded")
    result.files |= write_candles_daily(cols, out, f"{file_stem(symbol, exchange)}_"
                                                   f"{src.timeframe}")
    result.candles[symbol] = int(complete.sum())
    result.notes.extend(f"{symbol}: {w}" for w in snap.warnings)
