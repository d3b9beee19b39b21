"""The store's audit tables (one migration, :data:`MIGRATION`), mixed into
:class:`bot.store.Store`:

- ``receipts``: breaks waiting for their sweep receipt, and the receipts made (one row per
  chat and break, keyed like the break's outbox row). :meth:`AuditTables.commit_receipts`
  queues receipts and marks their rows done in ONE transaction, and the outbox key (chat,
  'receipt', ref, epoch) is unique: a receipt is queued exactly once whatever restarts happen.
  A confirmed cluster's receipt (:mod:`bot.hyperliquid.alerts`) has ``positions`` (its real
  positions; :data:`CONFIRMED_MIGRATION`, v9) and needs no break row: it is queued once due.
- ``evaluations``: every recorded recompute's top clusters per side, and once its horizon has
  passed its per-evaluation scores (written once; :mod:`bot.audit.evaluations`).
- ``price_path``: the candles (high, low, close) the bot fetched, to score evaluations.

Times in ms, prices USD.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.alerts.events import AlertEvent
from bot.audit.receipts import DueReceipt

if TYPE_CHECKING:
    from bot.db import Database

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE receipts (
        chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        ref TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        low REAL NOT NULL,
        high REAL NOT NULL,
        pre_price REAL NOT NULL,
        break_ms INTEGER NOT NULL,
        since_ms INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        estimate_usd REAL NOT NULL,
        proxy INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        tape_usd REAL,
        control_usd REAL,
        PRIMARY KEY (chat, ref, epoch))""",
    "CREATE INDEX receipts_due ON receipts(symbol, done, due_ms)",
    """CREATE TABLE evaluations (
        symbol TEXT NOT NULL,
        t_ms INTEGER NOT NULL,
        close_ms INTEGER NOT NULL,
        valid_ms INTEGER NOT NULL,
        price REAL NOT NULL,
        proxy INTEGER NOT NULL,
        moved_up INTEGER NOT NULL,
        clusters TEXT NOT NULL,
        scored INTEGER NOT NULL DEFAULT 0,
        scores TEXT,
        PRIMARY KEY (symbol, t_ms))""",
    "CREATE INDEX evaluations_pending ON evaluations(symbol, scored, t_ms)",
    """CREATE TABLE price_path (
        symbol TEXT NOT NULL,
        ts INTEGER NOT NULL,
        high REAL NOT NULL,
        low REAL NOT NULL,
        close REAL NOT NULL,
        PRIMARY KEY (symbol, ts))""",
)

# v9: a confirmed cluster's receipt carries its real positions (NULL: an estimated cluster).
CONFIRMED_MIGRATION: tuple[str, ...] = ("ALTER TABLE receipts ADD COLUMN positions INTEGER",)


_SCORED_SQLITE = (
    "SELECT '[' || COALESCE(group_concat(proxy), '') || ']',"
    " '[' || COALESCE(group_concat(scores), '') || ']'"
    " FROM (SELECT symbol, t_ms, proxy, scores FROM evaluations WHERE scored = 1"
    " AND t_ms >= ? AND (? IS NULL OR symbol = ?) ORDER BY symbol, t_ms) AS e")
_SCORED_POSTGRES = (
    "SELECT '[' || COALESCE(string_agg(CAST(proxy AS TEXT), ',' ORDER BY symbol, t_ms), '')"
    " || ']', '[' || COALESCE(string_agg(scores, ',' ORDER BY symbol, t_ms), '') || ']'"
    " FROM evaluations WHERE scored = 1 AND t_ms >= ? AND (? IS NULL OR symbol = ?)")


class AuditTables:
    db: Database
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    # --- receipts ------------------------------------------------------------------------------
    def add_receipts_due(self, due: Iterable[DueReceipt]) -> int:
        """Remember breaks waiting for a receipt (a break already remembered is ignored)."""
        rows = [(r.chat, r.ref, r.epoch, r.symbol, r.side, r.low, r.high, r.pre_price,
                 r.break_ms, r.since_ms, r.due_ms, r.estimate_usd, int(r.proxy), r.positions)
                for r in due]
        return self.db.executemany(
            "INSERT INTO receipts (chat, ref, epoch, symbol, side, low, high,"
            " pre_price, break_ms, since_ms, due_ms, estimate_usd, proxy, positions)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)

    def receipts_due(self, symbol: str, now_ms: int) -> list[DueReceipt]:
        """Receipts of ``symbol`` due by ``now_ms`` (tick clock) whose break was queued (a
        confirmed cluster's: its row is its break)."""
        rows = self.db.execute(
            "SELECT r.chat, r.ref, r.epoch, r.symbol, r.side, r.low, r.high, r.pre_price,"
            " r.break_ms, r.since_ms, r.due_ms, r.estimate_usd, r.proxy, r.positions"
            " FROM receipts r WHERE r.symbol = ? AND r.done = 0 AND r.due_ms <= ?"
            " AND (r.positions IS NOT NULL OR EXISTS (SELECT 1 FROM outbox o"
            " WHERE o.chat = r.chat AND o.kind = 'break' AND o.ref = r.ref"
            " AND o.epoch = r.epoch)) ORDER BY r.due_ms, r.chat", (symbol, now_ms)).fetchall()
        return [DueReceipt(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                           r[11], bool(r[12]), None if r[13] is None else int(r[13]))
                for r in rows]

    def commit_receipts(self, receipts: Sequence[AlertEvent], now: int) -> int:
        """Queue the receipt alerts and mark their rows done, in one transaction. Returns the
        number of new outbox rows."""
        with self.db.atomic():
            self.db.executemany(
                "UPDATE receipts SET done = 1, tape_usd = ?, control_usd = ?"
                " WHERE chat = ? AND ref = ? AND epoch = ?",
                [(e.tape_usd, e.control_usd, e.chat, e.ref, e.epoch) for e in receipts])
            return self._insert_outbox(receipts, now)

    def receipt_captures(self, symbol: str | None, since_ms: int) -> list[float]:
        """Tape USD inside the cluster of each receipt made (one per break, not per chat)
        for breaks at or after ``since_ms``; estimated clusters only (the scoreboard's)."""
        rows = self.db.execute(
            "SELECT MAX(tape_usd) FROM receipts WHERE done = 1 AND break_ms >= ?"
            " AND positions IS NULL"
            " AND (? IS NULL OR symbol = ?) GROUP BY symbol, ref, break_ms",
            (since_ms, symbol, symbol)).fetchall()
        return [float(r[0]) for r in rows if r[0] is not None]

    # --- evaluations -----------------------------------------------------------------------------
    def add_evaluation(self, symbol: str, t_ms: int, close_ms: int, valid_ms: int, price: float,
                       proxy: bool, moved_up: bool,
                       clusters: Sequence[tuple[bool, float, float, float]]) -> bool:
        """Record one evaluation (``clusters``: (is_short, low, high, notional)); False when
        one at ``t_ms`` exists (a replay re-played after a restart)."""
        cur = self.db.execute(
            "INSERT INTO evaluations (symbol, t_ms, close_ms, valid_ms, price, proxy,"
            " moved_up, clusters) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (symbol, t_ms, close_ms, valid_ms, price, int(proxy), int(moved_up),
             json.dumps([[int(s), lo, hi, n] for s, lo, hi, n in clusters])))
        return cur.rowcount == 1

    def last_evaluation_ms(self, symbol: str) -> int | None:
        row = self.db.execute("SELECT MAX(t_ms) FROM evaluations WHERE symbol = ?",
                              (symbol,)).fetchone()
        return None if row[0] is None else int(row[0])

    def unscored(self, symbol: str, before_ms: int) -> list[dict[str, Any]]:
        """Unscored evaluations of ``symbol`` at or before ``before_ms``, oldest first."""
        return list(self.db.query(
            "SELECT * FROM evaluations WHERE symbol = ? AND scored = 0 AND t_ms <= ?"
            " ORDER BY t_ms", (symbol, before_ms)))

    def set_scores(self, symbol: str, scores: Sequence[tuple[int, Sequence[Any]]]) -> None:
        """Write evaluations' scores (once: a scored evaluation is never re-scored)."""
        self.db.executemany(
            "UPDATE evaluations SET scored = 1, scores = ? WHERE symbol = ? AND t_ms = ?"
            " AND scored = 0", [(json.dumps(s), symbol, t) for t, s in scores])

    def scored_table(self, symbol: str | None, since_ms: int) -> tuple[str, str]:
        """The scored evaluations since ``since_ms`` (oldest first per symbol) as two JSON
        texts: their proxy flags, and their score arrays — one decode each per request."""
        # SQLite before 3.44 has no string_agg; PostgreSQL has no group_concat.
        sql = (_SCORED_POSTGRES if self.db.dialect == "postgresql" else _SCORED_SQLITE)
        row = self.db.execute(sql, (since_ms, symbol, symbol)).fetchone()
        return str(row[0]), str(row[1])

    def evaluation_count(self, symbol: str | None = None) -> tuple[int, int]:
        """(recorded, scored) evaluations."""
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(scored), 0) FROM evaluations"
                              " WHERE ? IS NULL OR symbol = ?", (symbol, symbol)).fetchone()
        return int(row[0]), int(row[1])

    # --- price path ------------------------------------------------------------------------------
    def add_path(self, symbol: str, rows: Iterable[tuple[int, float, float, float]]) -> None:
        """Candles (ts, high, low, close); a candle stored again replaces the earlier copy (a
        live candle fetched while it was still forming)."""
        self.db.executemany(
            "INSERT INTO price_path (symbol, ts, high, low, close) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (symbol, ts) DO UPDATE SET high = excluded.high, low = excluded.low,"
            " close = excluded.close", [(symbol, int(t), h, lo, c) for t, h, lo, c in rows])

    def last_path_ms(self, symbol: str) -> int | None:
        row = self.db.execute("SELECT MAX(ts) FROM price_path WHERE symbol = ?",
                              (symbol,)).fetchone()
        return None if row[0] is None else int(row[0])

    def path(self, symbol: str, since_ms: int,
             limit: int = -1) -> list[tuple[int, float, float, float]]:
        """The first ``limit`` (all: -1) stored candles at or after ``since_ms``."""
        sql = ("SELECT ts, high, low, close FROM price_path WHERE symbol = ? AND ts >= ?"
               " ORDER BY ts")
        params: tuple[Any, ...] = (symbol, since_ms)
        if limit >= 0:
            sql, params = sql + " LIMIT ?", (*params, limit)
        return [(int(r[0]), r[1], r[2], r[3]) for r in self.db.execute(sql, params).fetchall()]

    def prune_audit(self, before_ms: int) -> int:
        """Forget evaluations, price path and receipts older than ``before_ms``."""
        with self.db.atomic():
            n = self.db.execute("DELETE FROM evaluations WHERE t_ms < ?", (before_ms,)).rowcount
            self.db.execute("DELETE FROM price_path WHERE ts < ?", (before_ms,))
            self.db.execute("DELETE FROM receipts WHERE break_ms < ?", (before_ms,))
        return int(n)
