"""SQLite cache of candles and OI per (exchange, symbol, timeframe), so restarts fetch only what
is new. Writes are all-or-nothing: one transaction per fetch, made after every page arrived."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from bot.errors import MarketDataError
from bot.market.oi import OiHistory
from estimator.candles import FloatArray, IntArray

_KEY = ("exchange", "symbol", "timeframe", "ts")


@dataclass(frozen=True)
class CandleRows:
    """Raw candles as fetched: ``ts`` (open, ms), OHLCV, ``taker_buy`` (base units, NaN unknown)."""

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    taker_buy: FloatArray

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> CandleRows:
        """From an (n, 7) float matrix [ts, o, h, l, c, v, taker]; sorted, later duplicates win."""
        m = np.asarray(m, dtype=np.float64).reshape(-1, 7)
        ts = m[:, 0].astype(np.int64)
        _, first_rev = np.unique(ts[::-1], return_index=True)
        keep = len(ts) - 1 - first_rev
        m = m[keep]
        return cls(ts[keep], *(m[:, i].copy() for i in range(1, 7)))

    def matrix(self) -> np.ndarray:
        return np.column_stack([self.ts.astype(np.float64), self.open, self.high, self.low,
                                self.close, self.volume, self.taker_buy])

    def __len__(self) -> int:
        return len(self.ts)

    def merge(self, newer: CandleRows) -> CandleRows:
        """Union by timestamp; ``newer`` wins (it may complete a candle that was forming)."""
        return CandleRows.from_matrix(np.vstack([self.matrix(), newer.matrix()]))

    def since(self, start_ms: int) -> CandleRows:
        return CandleRows.from_matrix(self.matrix()[self.ts >= start_ms])


def empty_rows() -> CandleRows:
    return CandleRows.from_matrix(np.zeros((0, 7)))


def _create_private(path: Path) -> None:
    """Create the cache file with mode 0600 if it does not exist (it sits next to the store,
    which is private too; SQLite's -wal/-shm files copy the file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _nullable(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


class MarketCache:
    """Candle/OI cache in SQLite (``path`` or ``":memory:"``, or an open sqlite-utils Database)."""

    def __init__(self, db: str | Path | sqlite_utils.Database = ":memory:") -> None:
        try:
            if isinstance(db, sqlite_utils.Database):
                self.db = db
            elif str(db) == ":memory:":
                self.db = sqlite_utils.Database(memory=True)
            else:
                _create_private(Path(db))
                self.db = sqlite_utils.Database(db)
            self.db.table("candles").create(
                {"exchange": str, "symbol": str, "timeframe": str, "ts": int, "open": float,
                 "high": float, "low": float, "close": float, "volume": float,
                 "taker_buy": float}, pk=_KEY, if_not_exists=True)
            self.db.table("open_interest").create(
                {"exchange": str, "symbol": str, "timeframe": str, "ts": int, "amount": float,
                 "value": float}, pk=_KEY, if_not_exists=True)
        except sqlite3.Error as exc:
            raise MarketDataError(f"market cache {db}: {exc}") from exc

    def candles(self, exchange: str, symbol: str, timeframe: str, since_ms: int) -> CandleRows:
        """Cached candles from ``since_ms`` on (ascending)."""
        cur = self.db.execute(
            "SELECT ts, open, high, low, close, volume, taker_buy FROM candles WHERE exchange=? "
            "AND symbol=? AND timeframe=? AND ts>=? ORDER BY ts",
            [exchange, symbol, timeframe, since_ms])
        rows = [tuple(np.nan if v is None else v for v in r) for r in cur.fetchall()]
        return CandleRows.from_matrix(np.array(rows, dtype=np.float64).reshape(-1, 7))

    def oi(self, exchange: str, symbol: str, timeframe: str, since_ms: int) -> OiHistory:
        """Cached OI snapshots from ``since_ms`` on (ascending)."""
        cur = self.db.execute(
            "SELECT ts, amount, value FROM open_interest WHERE exchange=? AND symbol=? "
            "AND timeframe=? AND ts>=? ORDER BY ts", [exchange, symbol, timeframe, since_ms])
        return OiHistory.from_rows(cur.fetchall())

    def write(self, symbol: str, timeframe: str,
              candles: dict[str, CandleRows], oi: dict[str, OiHistory],
              prune_before_ms: int | None = None) -> None:
        """Upsert candles and OI per exchange in ONE transaction; optionally drop older rows."""
        crow = [(ex, symbol, timeframe, int(r.ts[i]), *(float(a[i]) for a in
                 (r.open, r.high, r.low, r.close, r.volume)), _nullable(r.taker_buy[i]))
                for ex, r in candles.items() for i in range(len(r))]
        orow = [(ex, symbol, timeframe, int(h.timestamp[i]), _nullable(h.amount[i]),
                 _nullable(h.value[i])) for ex, h in oi.items() for i in range(len(h))]
        conn = self.db.conn
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO candles VALUES (?,?,?,?,?,?,?,?,?,?)",
                                 crow)
                conn.executemany("INSERT OR REPLACE INTO open_interest VALUES (?,?,?,?,?,?)",
                                 orow)
                if prune_before_ms is not None:
                    for table in ("candles", "open_interest"):
                        conn.execute(f"DELETE FROM {table} WHERE symbol=? AND timeframe=? "
                                     "AND ts<?", [symbol, timeframe, prune_before_ms])
        except sqlite3.Error as exc:
            raise MarketDataError(f"market cache write failed: {exc}") from exc

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests and /status)."""
        return {t: self.db[t].count for t in ("candles", "open_interest")}
