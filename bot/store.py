"""The store: chats, watches, engine state and outbox, in one SQLite file (sqlite-utils, WAL;
the default) or on a PostgreSQL server (psycopg 3; several processes share it). The backends
are :mod:`bot.db`; the SQL here is written once, SQLite-style, and runs on both.

Public API (all methods synchronous; use from one thread at a time):

- ``Store(path)`` / ``Store(memory=True)`` / ``Store(dsn="postgresql://…")`` — open, create
  (a file: mode 0600) and migrate; ``exclusive=True`` (``liqbot run``) also takes a SQLite
  file's one-owner lock. Path checks, permissions, the lock and the corruption check are in
  :mod:`bot.store_file`. :func:`open_store` picks the backend from the config's values.
- chats: :meth:`Store.upsert_chat`, :meth:`get_chat`, :meth:`find_chat`,
  :meth:`set_timezone`, :meth:`deactivate_chat`.
- watches: :meth:`subscribe`, :meth:`unsubscribe`, :meth:`list_subscriptions`,
  :meth:`add_level`, :meth:`remove_level`, :meth:`list_levels`, :meth:`active_subscriptions`,
  :meth:`active_levels`, :meth:`watched_symbols`, :meth:`watch_version`.
- engine: :meth:`load_state`, :meth:`load_clusters`, :meth:`save_clusters` (+ the estimate
  summary other processes read: :meth:`load_summaries`),
  :meth:`commit_tick` (state + clusters + outbox rows in one transaction).
- outbox: :meth:`due`, :meth:`claim`, :meth:`claim_due` (several dispatchers),
  :meth:`outbox_waiter`, :meth:`mark_sent`, :meth:`mark_retry`, :meth:`mark_failed`,
  :meth:`recover_inflight`, :meth:`prune_outbox`.
- alert threads (:class:`bot.alerts.threads.AlertThreads`): the message each (chat,
  cluster) approach / inside / break updates.
- quiet subscriptions (:class:`bot.alerts.digest.DigestTables`): :meth:`set_quiet`,
  :meth:`quiet_symbols`, :meth:`held_count`; news held for their digest.
- liquidation tape (:class:`bot.tape.tables.TapeTables`): ``/subscribe_liqs`` subscriptions,
  recorded liquidations, and each symbol's last alerted window.
- audit (:class:`bot.audit.tables.AuditTables`): breaks waiting for their receipt,
  recorded evaluations and their scores, the price path.
- Hyperliquid wallets (:class:`bot.hyperliquid.wallets.WalletTables`): discovered addresses,
  last seen / last scan, the last state (the confirmed book).
- status: :meth:`subscriber_counts`, :meth:`pending_count`, :meth:`outbox_counts`,
  :meth:`integrity_ok`.

Every statement that carries user data is parameterised. Prices USD, distances %, times ms.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import leases, position_watch, store_file
from bot.alerts import digest, top_digest
from bot.alerts.digest import DigestTables
from bot.alerts.engine import DEFAULT_CONFIG, Subscription, SymbolState, UserLevel
from bot.alerts.events import AlertEvent
from bot.alerts.threads import AlertThreads
from bot.audit import tables as audit_tables
from bot.db import Database
from bot.db.sqlite import SqliteDatabase
from bot.db.wait import OutboxWaiter, waiter_for
from bot.errors import LeaseLostError, LimitExceededError, StoreError, UserInputError
from bot.estimate_summaries import EstimateSummary, from_row
from bot.hyperliquid import alerts as hl_alerts
from bot.hyperliquid import wallets as hl_wallets
from bot.redact import redact
from bot.tape.tables import TapeTables
from estimator import Cluster

MAX_SUBSCRIPTIONS = 20  # per chat
MAX_LEVELS = 50  # per chat
DIRECTIONS = ("up", "down", "any")
STATUSES = ("pending", "sending", "sent", "failed")
OUTBOX_CHANNEL = "liqbot_outbox"  # NOTIFY'd (PostgreSQL) when outbox rows are inserted

# Each entry migrates the schema from version i to i + 1; never edit a released entry,
# append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE chats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            thread_id TEXT NOT NULL DEFAULT '',
            is_group INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1,
            timezone TEXT NOT NULL DEFAULT 'UTC',
            language TEXT,
            created_ms INTEGER NOT NULL,
            deactivated_reason TEXT,
            UNIQUE (platform, chat_id, thread_id))""",
        """CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            min_usd REAL NOT NULL,
            approach_pct REAL NOT NULL,
            created_ms INTEGER NOT NULL,
            UNIQUE (chat, symbol))""",
        """CREATE TABLE levels (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            price REAL NOT NULL CHECK (price > 0),
            direction TEXT NOT NULL CHECK (direction IN ('up', 'down', 'any')),
            note TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL)""",
        "CREATE INDEX levels_chat ON levels(chat)",
        """CREATE TABLE engine_state (
            symbol TEXT PRIMARY KEY, state TEXT NOT NULL, updated_ms INTEGER NOT NULL)""",
        """CREATE TABLE cluster_state (
            symbol TEXT PRIMARY KEY, clusters TEXT NOT NULL, updated_ms INTEGER NOT NULL)""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            dedupe_key TEXT NOT NULL UNIQUE,
            symbol TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_ms INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            sent_ms INTEGER,
            last_error TEXT,
            UNIQUE (chat, kind, ref, epoch))""",
        "CREATE INDEX outbox_due ON outbox(status, next_try_ms)",
    ),
    (  # v2: the liquidation tape (bot.tape.tables)
        """CREATE TABLE liq_subscriptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            min_usd REAL NOT NULL CHECK (min_usd > 0),
            sum_usd REAL NOT NULL CHECK (sum_usd > 0),
            created_ms INTEGER NOT NULL,
            UNIQUE (chat, symbol))""",
        """CREATE TABLE liquidations (
            exchange TEXT NOT NULL,
            symbol TEXT NOT NULL,
            ts INTEGER NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('long', 'short')),
            price REAL NOT NULL,
            amount REAL NOT NULL,
            notional_usd REAL NOT NULL,
            PRIMARY KEY (exchange, symbol, ts, side, price, amount))""",
        "CREATE INDEX liquidations_symbol_ts ON liquidations(symbol, ts)",
        """CREATE TABLE tape_state (
            symbol TEXT PRIMARY KEY, flushed_ms INTEGER NOT NULL)""",
    ),
    (  # v3: the message each (chat, cluster) alert thread edits (bot.alerts.threads)
        """CREATE TABLE alert_threads (
            chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            ref TEXT NOT NULL,
            message_id TEXT NOT NULL,
            timeline TEXT NOT NULL,
            closed INTEGER NOT NULL DEFAULT 0,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (chat, ref))""",
    ),
    position_watch.MIGRATION,  # /mypos watches (bot.position_watch)
    digest.MIGRATION,  # v5: quiet subscriptions and their held news (bot.alerts.digest)
    audit_tables.MIGRATION,  # v6: receipts, evaluations, price path (bot.audit.tables)
    hl_wallets.MIGRATION,  # v7: Hyperliquid wallets and their last scan (bot.hyperliquid.wallets)
    hl_alerts.MIGRATION,  # v8: chats following confirmed clusters (bot.hyperliquid.alerts)
    audit_tables.CONFIRMED_MIGRATION,  # v9: receipts of confirmed clusters (bot.audit.tables)
    leases.MIGRATION,  # v10: symbol leases of market workers, their heartbeats (bot.leases)
    (  # v11: a watch version every process sees (bumped with each watch / chat change)
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('watch_version', 0)",
        # claim_due: a chat's oldest pending row and whether it has one 'sending'
        "CREATE INDEX outbox_chat_status ON outbox(chat, status, id)",
    ),
    top_digest.MIGRATION,  # v12: chats with a daily /top digest (bot.alerts.top_digest)
    (  # v13: beside the clusters, what /top and /status of other processes need
        # (bot.estimate_summaries): price, latest open interest, wall-clock write time
        "ALTER TABLE cluster_state ADD COLUMN price REAL",
        "ALTER TABLE cluster_state ADD COLUMN oi_usd REAL",
        "ALTER TABLE cluster_state ADD COLUMN written_ms INTEGER",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def now_ms() -> int:
    """Wall-clock time in ms."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Chat:
    """A chat (or a topic/thread of one) the bot talks to. ``id`` is the store's key."""

    id: int
    platform: str
    chat_id: str
    thread_id: str | None
    is_group: bool
    active: bool
    timezone: str
    language: str | None


@dataclass(frozen=True)
class OutboxRow:
    """A due outbox row with the chat it goes to and the event it carries."""

    id: int
    chat: Chat
    event: AlertEvent
    dedupe_key: str
    status: str
    attempts: int
    next_try_ms: int
    created_ms: int


def _marks(n: int) -> str:
    """``?, ?, …``: ``n`` placeholders for an IN list (the values stay parameters)."""
    return ", ".join("?" * n)


def _outbox_filter(platforms: Iterable[str] | None,
                   skip_chats: Iterable[int]) -> tuple[str, list[Any]]:
    """SQL (`` AND …``) and parameters: chats on ``platforms`` (all when None), none of
    ``skip_chats``."""
    where, params = "", list[Any]()
    if platforms is not None:
        only = sorted(platforms)
        where += f" AND c.platform IN ({_marks(len(only))})" if only else " AND 1 = 0"
        params += only
    skip = sorted(skip_chats)
    if skip:
        where += f" AND o.chat NOT IN ({_marks(len(skip))})"
        params += skip
    return where, params


def _chat(row: dict[str, Any]) -> Chat:
    return Chat(id=row["id"], platform=row["platform"], chat_id=row["chat_id"],
                thread_id=row["thread_id"] or None, is_group=bool(row["is_group"]),
                active=bool(row["active"]), timezone=row["timezone"], language=row["language"])


class Store(TapeTables, AlertThreads, DigestTables, position_watch.PositionWatchTables,
            audit_tables.AuditTables, hl_wallets.WalletTables,
            hl_alerts.ConfirmedAlertTables, top_digest.TopDigestTables):
    """liqbot's store. ``Store(path)`` for a SQLite file, ``Store(memory=True)`` for tests,
    ``Store(dsn=…)`` for a PostgreSQL server."""

    db: Database

    def __init__(self, path: str | Path | None = None, *, memory: bool = False,
                 dsn: str | None = None, synchronous: str = "FULL",
                 max_subscriptions: int = MAX_SUBSCRIPTIONS, max_levels: int = MAX_LEVELS,
                 exclusive: bool = False) -> None:
        """``exclusive``: this process owns the SQLite file (``liqbot run``); a second owner is
        refused with :class:`~bot.errors.StoreLockedError` (a PostgreSQL store is shared).
        Path problems raise :class:`~bot.errors.StorePathError`; a corrupt file a StoreError
        saying how to recover; a server that cannot be reached
        :class:`~bot.errors.StoreUnreachableError` (the password never in the message)."""
        self.max_subscriptions = max_subscriptions  # per chat
        self.max_levels = max_levels  # per chat
        self._bumped_in: int | None = None  # the transaction that bumped the watch version
        if sum((memory, path is not None, dsn is not None)) != 1:
            raise ValueError("give one of a path, a dsn or memory=True")
        if dsn is not None:
            from bot.db.postgres import PostgresDatabase, failure  # psycopg only if asked

            self.db = PostgresDatabase(dsn)
            try:
                self._migrate()
            except BaseException as exc:
                self.db.close()
                raise failure(dsn, exc) from None
            return
        p = Path(path) if path is not None else None
        self.db = SqliteDatabase.open(p, synchronous=synchronous, exclusive=exclusive)
        try:
            self._migrate()
        except (sqlite3.DatabaseError, StoreError) as exc:
            self.db.close()
            if isinstance(exc, StoreError):
                raise
            raise store_file.open_error(exc, p or Path(":memory:")) from exc

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    @property
    def schema_version(self) -> int:
        return self.db.schema_version

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(f"store schema v{current} is newer than this liqbot "
                             f"(v{SCHEMA_VERSION}); upgrade liqbot")
        for version in range(current, SCHEMA_VERSION):
            with self.db.atomic():
                self.db.lock_schema()  # PostgreSQL: processes starting together migrate once
                if self.db.schema_version != version:
                    continue  # another process applied it meanwhile
                for stmt in MIGRATIONS[version]:
                    self.db.execute(stmt)
                # The schema and its number commit together.
                self.db.set_schema_version(version + 1)

    def close(self) -> None:
        self.db.close()

    def integrity_ok(self) -> bool:
        """SQLite: ``PRAGMA integrity_check`` says ok; PostgreSQL: the server answers."""
        return self.db.integrity_ok()

    def journal_mode(self) -> str:
        return self.db.journal_mode

    # --- chats -------------------------------------------------------------------------------
    def upsert_chat(self, platform: str, chat_id: str | int, *, thread_id: str | int | None = None,
                    is_group: bool = False, timezone: str | None = None,
                    language: str | None = None, now: int | None = None) -> Chat:
        """The chat row for (platform, chat id, thread), created or re-activated."""
        thread = "" if thread_id is None else str(thread_id)
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO chats (platform, chat_id, thread_id, is_group, timezone, language,"
                " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, chat_id, thread_id) DO UPDATE SET active = 1,"
                " deactivated_reason = NULL, is_group = excluded.is_group,"
                " timezone = COALESCE(?, chats.timezone),"
                " language = COALESCE(excluded.language, chats.language)",
                (platform, str(chat_id), thread, int(is_group), timezone or "UTC", language,
                 now if now is not None else now_ms(), timezone))
            chat = self.find_chat(platform, chat_id, thread_id)
            self._bump_watches()  # a re-activated chat's watches count again
        assert chat is not None
        return chat

    def get_chat(self, chat: int) -> Chat | None:
        rows = list(self.db.query("SELECT * FROM chats WHERE id = ?", (chat,)))
        return _chat(rows[0]) if rows else None

    def find_chat(self, platform: str, chat_id: str | int,
                  thread_id: str | int | None = None) -> Chat | None:
        thread = "" if thread_id is None else str(thread_id)
        rows = list(self.db.query(
            "SELECT * FROM chats WHERE platform = ? AND chat_id = ? AND thread_id = ?",
            (platform, str(chat_id), thread)))
        return _chat(rows[0]) if rows else None

    def set_timezone(self, chat: int, tz: str) -> None:
        self.db.execute("UPDATE chats SET timezone = ? WHERE id = ?", (tz, chat))

    def deactivate_chat(self, chat: int, reason: str = "", now: int | None = None) -> int:
        """Stop alerting ``chat`` (blocked/deleted); its pending outbox rows become failed.

        Returns the number of outbox rows failed. Watches are kept so /start can resume them.
        """
        t = now if now is not None else now_ms()
        reason = redact(reason)
        with self.db.atomic():
            self.db.execute("UPDATE chats SET active = 0, deactivated_reason = ? WHERE id = ?",
                            (reason, chat))
            cur = self.db.execute(
                "UPDATE outbox SET status = 'failed', last_error = ?, sent_ms = ?"
                " WHERE chat = ? AND status IN ('pending', 'sending')",
                (f"chat deactivated: {reason}", t, chat))
            self._bump_watches()
        return cur.rowcount

    # --- subscriptions -------------------------------------------------------------------------
    def subscribe(self, chat: int, symbol: str, min_usd: float = DEFAULT_CONFIG.min_usd,
                  approach_pct: float = DEFAULT_CONFIG.approach_pct,
                  now: int | None = None) -> Subscription:
        """Add or update ``chat``'s subscription to ``symbol`` (cap: 20 symbols per chat)."""
        if not symbol:
            raise UserInputError("symbol must not be empty")
        if not (min_usd >= 0):
            raise UserInputError("minimum cluster size must be ≥ 0 USD")
        if not (0 < approach_pct <= 20):
            raise UserInputError("approach distance must be between 0 and 20 %")
        # Rounded so subscriptions share a few approach zones in the engine.
        pct = round(float(approach_pct), 2)
        with self.db.atomic():
            exists = self.db.execute("SELECT 1 FROM subscriptions WHERE chat = ? AND symbol = ?",
                                     (chat, symbol)).fetchone()
            if not exists:
                n = self.db.execute("SELECT COUNT(*) FROM subscriptions WHERE chat = ?",
                                    (chat,)).fetchone()[0]
                if n >= self.max_subscriptions:
                    raise LimitExceededError(
                        f"this chat already has {self.max_subscriptions} subscriptions (the "
                        "maximum); "
                        "remove one with /unsubscribe SYMBOL first")
            self.db.execute(
                "INSERT INTO subscriptions (chat, symbol, min_usd, approach_pct, created_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat, symbol) DO UPDATE SET"
                " min_usd = excluded.min_usd, approach_pct = excluded.approach_pct",
                (chat, symbol, float(min_usd), pct, now if now is not None else now_ms()))
            self._bump_watches()
        return Subscription(chat=chat, symbol=symbol, min_usd=float(min_usd), approach_pct=pct)

    def unsubscribe(self, chat: int, symbol: str) -> bool:
        """Remove the subscription; False when there was none."""
        with self.db.atomic():
            cur = self.db.execute("DELETE FROM subscriptions WHERE chat = ? AND symbol = ?",
                                  (chat, symbol))
            self._bump_watches()
        return cur.rowcount > 0

    def list_subscriptions(self, chat: int) -> list[Subscription]:
        return [Subscription(chat=r["chat"], symbol=r["symbol"], min_usd=r["min_usd"],
                             approach_pct=r["approach_pct"])
                for r in self.db.query("SELECT * FROM subscriptions WHERE chat = ?"
                                       " ORDER BY symbol", (chat,))]

    def active_subscriptions(self, symbol: str | None = None) -> list[Subscription]:
        """Subscriptions of active chats (all symbols, or one)."""
        sql = ("SELECT s.* FROM subscriptions s JOIN chats c ON c.id = s.chat"
               " WHERE c.active = 1 AND (? IS NULL OR s.symbol = ?) ORDER BY s.id")
        return [Subscription(chat=r["chat"], symbol=r["symbol"], min_usd=r["min_usd"],
                             approach_pct=r["approach_pct"])
                for r in self.db.query(sql, (symbol, symbol))]

    # --- user levels ---------------------------------------------------------------------------
    def add_level(self, chat: int, symbol: str, price: float, direction: str = "any",
                  note: str = "", now: int | None = None) -> UserLevel:
        """Add a price level (USD) to ``chat`` (cap: 50 levels per chat)."""
        if not symbol:
            raise UserInputError("symbol must not be empty")
        if not (price > 0):
            raise UserInputError("level price must be a positive number")
        if direction not in DIRECTIONS:
            raise UserInputError("direction must be up, down or any")
        note = note[:200]
        with self.db.atomic():
            n = self.db.execute("SELECT COUNT(*) FROM levels WHERE chat = ?",
                                (chat,)).fetchone()[0]
            if n >= self.max_levels:
                raise LimitExceededError(
                    f"this chat already has {self.max_levels} levels (the maximum); "
                    "remove one with /unlevel ID first")
            level_id = int(self.db.execute(
                "INSERT INTO levels (chat, symbol, price, direction, note, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (chat, symbol, float(price), direction, note,
                 now if now is not None else now_ms())).fetchone()[0])
            self._bump_watches()
        return UserLevel(id=level_id, chat=chat, symbol=symbol,
                         price=float(price), direction=direction, note=note)

    def remove_level(self, chat: int, level_id: int) -> bool:
        """Delete level ``level_id`` if ``chat`` owns it; False otherwise."""
        with self.db.atomic():
            cur = self.db.execute("DELETE FROM levels WHERE id = ? AND chat = ?",
                                  (level_id, chat))
            self._bump_watches()
        return cur.rowcount > 0

    def list_levels(self, chat: int, symbol: str | None = None) -> list[UserLevel]:
        sql = ("SELECT * FROM levels WHERE chat = ? AND (? IS NULL OR symbol = ?)"
               " ORDER BY symbol, price")
        return [self._level(r) for r in self.db.query(sql, (chat, symbol, symbol))]

    def active_levels(self, symbol: str | None = None) -> list[UserLevel]:
        """Levels of active chats (all symbols, or one)."""
        sql = ("SELECT l.* FROM levels l JOIN chats c ON c.id = l.chat"
               " WHERE c.active = 1 AND (? IS NULL OR l.symbol = ?) ORDER BY l.id")
        return [self._level(r) for r in self.db.query(sql, (symbol, symbol))]

    @staticmethod
    def _level(r: dict[str, Any]) -> UserLevel:
        return UserLevel(id=r["id"], chat=r["chat"], symbol=r["symbol"], price=r["price"],
                         direction=r["direction"], note=r["note"])

    def watched_symbols(self) -> list[str]:
        """Symbols with at least one subscription or level of an active chat."""
        rows = self.db.execute(
            "SELECT symbol FROM subscriptions s JOIN chats c ON c.id = s.chat WHERE c.active = 1"
            " UNION SELECT symbol FROM levels l JOIN chats c ON c.id = l.chat WHERE c.active = 1"
            " ORDER BY symbol").fetchall()
        return [r[0] for r in rows]

    def watch_version(self) -> int:
        """Bumped by every change to watches or chat activity, by any process on this store
        (a row in the store, changed in the change's transaction): rebuild the engine's
        :class:`~bot.alerts.SymbolWatch` when it changes."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'watch_version'").fetchone()
        return int(row[0])

    def _bump_watches(self) -> None:
        """Inside the caller's transaction: the watches or a chat's activity changed. Once
        per transaction: readers see it at the commit anyway, and PostgreSQL slows down
        quadratically when one transaction updates the same row thousands of times."""
        tx = self.db.transaction
        if tx is not None and tx == self._bumped_in:
            return
        self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'watch_version'")
        self._bumped_in = tx

    # --- engine state ----------------------------------------------------------------------------
    def load_state(self, symbol: str) -> SymbolState:
        row = self.db.execute("SELECT state FROM engine_state WHERE symbol = ?",
                              (symbol,)).fetchone()
        return SymbolState.from_json(row[0] if row else None)

    def load_clusters(self, symbol: str) -> list[Cluster]:
        row = self.db.execute("SELECT clusters FROM cluster_state WHERE symbol = ?",
                              (symbol,)).fetchone()
        return [Cluster(**d) for d in json.loads(row[0])] if row else []

    def save_clusters(self, symbol: str, clusters: Sequence[Cluster],
                      now: int | None = None, price: float | None = None,
                      oi_usd: float | None = None) -> None:
        """The symbol's clusters (``now``: the estimate's time) and, with ``price``, the
        summary other processes read (:meth:`load_summaries`), in one statement."""
        self._put_clusters(symbol, clusters, now if now is not None else now_ms(), price,
                           oi_usd)

    def _put_clusters(self, symbol: str, clusters: Sequence[Cluster], t: int,
                      price: float | None = None, oi_usd: float | None = None) -> None:
        self.db.execute(
            "INSERT INTO cluster_state (symbol, clusters, updated_ms, price, oi_usd, written_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (symbol) DO UPDATE SET clusters = excluded.clusters,"
            " updated_ms = excluded.updated_ms, price = excluded.price,"
            " oi_usd = excluded.oi_usd, written_ms = excluded.written_ms",
            (symbol, json.dumps([c.as_dict() for c in clusters]), t, price, oi_usd,
             now_ms() if price is not None else None))

    def load_summaries(self) -> list[EstimateSummary]:
        """Every symbol's stored estimate summary (rows written with a price), by symbol."""
        return [from_row(r["symbol"], (Cluster(**d) for d in json.loads(r["clusters"])),
                         r["price"], r["oi_usd"], r["updated_ms"], r["written_ms"])
                for r in self.db.query(
                    "SELECT symbol, clusters, updated_ms, price, oi_usd, written_ms"
                    " FROM cluster_state WHERE price IS NOT NULL AND written_ms IS NOT NULL"
                    " ORDER BY symbol", ())]

    def commit_tick(self, symbol: str, new_state: SymbolState,
                    clusters: Sequence[Cluster] | None, events: Iterable[AlertEvent],
                    now: int | None = None,
                    digest_hours: float = digest.DEFAULT_DIGEST_HOURS,
                    lease_owner: str | None = None) -> int:
        """Write the engine state, the clusters (when given) and one outbox row per event in
        ONE transaction. Rows whose (chat, kind, ref, epoch) exists are ignored, as are events
        for inactive chats. News for quiet subscriptions are held for their digest, and
        digests whose ``digest_hours`` slot ended by the tick's time are queued
        (:mod:`bot.alerts.digest`). Returns the number of new outbox rows.

        ``now`` (ms) becomes the rows' creation and first-try time and must be on the
        dispatcher's clock (wall clock by default), not the market timestamp of a replayed
        candle: the dispatcher gives up on rows older than its ``give_up_after_ms``.

        ``lease_owner`` (market workers, :mod:`bot.leases`): commit only while that worker
        owns ``symbol``'s lease — the lease row is updated first, so it stays locked until
        the commit and a takeover waits for it; else :class:`~bot.errors.LeaseLostError` and
        nothing is written."""
        t = now if now is not None else now_ms()
        with self.db.atomic():
            if lease_owner is not None and self.db.execute(
                    "UPDATE symbol_leases SET owner = owner WHERE symbol = ? AND owner = ?",
                    (symbol, lease_owner)).rowcount != 1:
                raise LeaseLostError(f"{symbol}: the lease is no longer {lease_owner}'s; "
                                     "tick dropped")
            self.db.execute(
                "INSERT INTO engine_state (symbol, state, updated_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (symbol) DO UPDATE SET state = excluded.state,"
                " updated_ms = excluded.updated_ms",
                (symbol, new_state.to_json(), t))
            if clusters is not None:
                self._put_clusters(symbol, clusters, t)
            period = digest.digest_ms(digest_hours)
            n = self._insert_outbox(self._hold_quiet(symbol, list(events), period), t)
            if new_state.last_ms is not None and new_state.last_price is not None:
                n += self._flush_digests(symbol, new_state.last_ms, new_state.last_price,
                                         period, t)
            return n

    def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int:
        """Outbox rows for ``events`` (inside the caller's transaction); rows whose key exists
        and rows for inactive chats are ignored. Returns the number inserted; when > 0,
        dispatchers listening on PostgreSQL are woken at the commit."""
        rows = [(e.chat, e.kind.value, e.ref, e.epoch, e.dedupe_key, e.symbol,
                 json.dumps(e.to_dict()), t, t, e.chat) for e in events]
        n = self.db.executemany(
            "INSERT INTO outbox (chat, kind, ref, epoch, dedupe_key, symbol,"
            " payload, next_try_ms, created_ms) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM chats WHERE id = ? AND active = 1)"
            " ON CONFLICT DO NOTHING", rows)
        if n:
            self.db.notify(OUTBOX_CHANNEL)
        return n

    # --- outbox -------------------------------------------------------------------------------
    def due(self, now: int | None = None, limit: int = 50,
            platforms: Iterable[str] | None = None,
            skip_chats: Iterable[int] = ()) -> list[OutboxRow]:
        """Pending rows whose next try is due, oldest first; only chats on ``platforms`` when
        given (rows for a platform this process does not run must not block the others), none
        of ``skip_chats`` (chats the dispatcher is sending to or holding back)."""
        t = now if now is not None else now_ms()
        where, params = _outbox_filter(platforms, skip_chats)
        return self._outbox_rows(
            f"o.status = 'pending' AND o.next_try_ms <= ?{where}"
            " ORDER BY o.next_try_ms, o.id LIMIT ?", (t, *params, limit))

    def _outbox_rows(self, where: str, params: Sequence[Any]) -> list[OutboxRow]:
        sql = ("SELECT o.id AS oid, o.payload, o.dedupe_key, o.status, o.attempts,"
               " o.next_try_ms, o.created_ms, c.* FROM outbox o JOIN chats c ON c.id = o.chat"
               " WHERE " + where)
        return [OutboxRow(id=r["oid"], chat=_chat(r),
                          event=AlertEvent.from_dict(json.loads(r["payload"])),
                          dedupe_key=r["dedupe_key"], status=r["status"],
                          attempts=r["attempts"], next_try_ms=r["next_try_ms"],
                          created_ms=r["created_ms"])
                for r in self.db.query(sql, params)]

    def claim_due(self, now: int | None = None, limit: int = 50,
                  platforms: Iterable[str] | None = None,
                  skip_chats: Iterable[int] = ()) -> list[OutboxRow]:
        """For several dispatchers on one store: atomically take due rows — per chat its
        oldest pending row when that one is due (a chat's rows go out in order), no chat that
        has a row 'sending' (another dispatcher's, or this one's), oldest first, ``platforms``
        and ``skip_chats`` as in :meth:`due` — mark them 'sending' (attempts + 1, next try
        ``now``) and return them (status 'sending'). Rows of inactive chats are returned too
        (the caller fails them).

        On PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED``: two dispatchers
        never take the same row, and as a chat's oldest pending row is the only one of that
        chat a claim can take, they never take two rows of one chat either (the second sees
        the row already 'sending' or locked and skips the chat)."""
        t = now if now is not None else now_ms()
        where, params = _outbox_filter(platforms, skip_chats)
        lock = " FOR UPDATE OF o SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        with self.db.atomic():
            ids = [int(r[0]) for r in self.db.execute(
                "SELECT o.id FROM outbox o JOIN chats c ON c.id = o.chat"
                f" WHERE o.status = 'pending' AND o.next_try_ms <= ?{where}"
                " AND o.id = (SELECT MIN(h.id) FROM outbox h WHERE h.chat = o.chat"
                " AND h.status = 'pending')"
                " AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.chat = o.chat"
                " AND s.status = 'sending')"
                f" ORDER BY o.next_try_ms, o.id LIMIT ?{lock}", (t, *params, limit)).fetchall()]
            if not ids:
                return []
            marks = _marks(len(ids))
            self.db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_try_ms = ?"
                f" WHERE id IN ({marks})", (t, *ids))
            rows = {r.id: r for r in self._outbox_rows(f"o.id IN ({marks})", ids)}
        return [rows[i] for i in ids]

    def outbox_waiter(self) -> OutboxWaiter:
        """Something to await between dispatch passes: ``await w.wait(timeout_s)`` returns
        True as soon as outbox rows were committed (PostgreSQL: LISTEN on its own connection
        for the NOTIFY :meth:`commit_tick` and every outbox insert sends), False after the
        timeout (SQLite always: poll). ``await w.close()`` when done."""
        return waiter_for(self.db, OUTBOX_CHANNEL)

    def oldest_pending(self, chats: Iterable[int]) -> dict[int, tuple[int, int]]:
        """For each of ``chats`` with pending rows: (id, next_try_ms) of its oldest one."""
        ids = sorted(chats)
        if not ids:
            return {}
        rows = self.db.execute(
            "SELECT o.chat, o.id, o.next_try_ms FROM outbox o WHERE o.id IN"
            " (SELECT MIN(id) FROM outbox WHERE status = 'pending'"
            f" AND chat IN ({_marks(len(ids))}) GROUP BY chat)", ids).fetchall()
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def claim(self, row_id: int, now: int | None = None) -> bool:
        """Mark a pending row as being sent (attempts + 1). False if it was not pending."""
        cur = self.db.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_try_ms = ?"
            " WHERE id = ? AND status = 'pending'",
            (now if now is not None else now_ms(), row_id))
        return cur.rowcount == 1

    def mark_sent(self, row_id: int, now: int | None = None) -> None:
        self.db.execute("UPDATE outbox SET status = 'sent', sent_ms = ?, last_error = NULL"
                        " WHERE id = ?", (now if now is not None else now_ms(), row_id))

    def mark_retry(self, row_id: int, next_try: int, error: str) -> None:
        """Back to pending; ``error`` is stored redacted (:func:`bot.redact.redact`)."""
        self.db.execute("UPDATE outbox SET status = 'pending', next_try_ms = ?, last_error = ?"
                        " WHERE id = ?", (next_try, redact(error)[:500], row_id))

    def mark_failed(self, row_id: int, error: str, now: int | None = None) -> None:
        """Failed for good; ``error`` is stored redacted (:func:`bot.redact.redact`)."""
        self.db.execute("UPDATE outbox SET status = 'failed', last_error = ?, sent_ms = ?"
                        " WHERE id = ?", (redact(error)[:500],
                                          now if now is not None else now_ms(), row_id))

    def release(self, row_id: int, *, unsent: bool = False) -> None:
        """A claimed row whose send was cancelled (stop): 'sending' → 'pending', due now.
        ``unsent``: the send was never tried (its chat must wait): the claim's attempt is
        taken back too."""
        self.db.execute("UPDATE outbox SET status = 'pending', attempts = attempts - ?"
                        " WHERE id = ? AND status = 'sending'", (int(unsent), row_id))

    def recover_inflight(self, claimed_before: int | None = None) -> int:
        """At start-up: rows left 'sending' by a crash may or may not have been delivered;
        put them back to pending (at-least-once). Returns how many. ``claimed_before`` (ms;
        several dispatchers): only rows claimed before then — a dead dispatcher's, not those
        another one is sending now (a claim stamps ``next_try_ms``)."""
        if claimed_before is None:
            cur = self.db.execute("UPDATE outbox SET status = 'pending' WHERE status = 'sending'")
        else:
            cur = self.db.execute("UPDATE outbox SET status = 'pending' WHERE status = 'sending'"
                                  " AND next_try_ms < ?", (claimed_before,))
        return cur.rowcount

    def prune_outbox(self, before: int) -> int:
        """Delete sent/failed rows older than ``before`` (ms). Safe: epochs live in the engine
        state, so a pruned key is never produced again."""
        cur = self.db.execute("DELETE FROM outbox WHERE status IN ('sent', 'failed')"
                              " AND created_ms < ?", (before,))
        return cur.rowcount

    # --- status --------------------------------------------------------------------------------
    def subscriber_counts(self) -> dict[str, int]:
        """Active subscribed chats per symbol (for /status)."""
        rows = self.db.execute(
            "SELECT s.symbol, COUNT(*) FROM subscriptions s JOIN chats c ON c.id = s.chat"
            " WHERE c.active = 1 GROUP BY s.symbol ORDER BY s.symbol").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def pending_count(self) -> int:
        return int(self.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0])

    def outbox_depth(self) -> dict[str, int]:
        """Rows waiting to be sent, by state (pending, sending): a search of the outbox_due
        index, as cheap with millions of sent rows as with none (/metrics reads it)."""
        rows = self.db.execute("SELECT status, COUNT(*) FROM outbox WHERE status IN "
                               "('pending', 'sending') GROUP BY status").fetchall()
        return {"pending": 0, "sending": 0} | {r[0]: int(r[1]) for r in rows}

    def outbox_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts


def open_store(store: str, dsn: str | None = None, *,
               max_subscriptions: int = MAX_SUBSCRIPTIONS, max_levels: int = MAX_LEVELS,
               exclusive: bool = True) -> Store:
    """The store ``[bot]`` names: PostgreSQL when there is a DSN (``dsn``, from
    ``store_dsn_env`` or a postgresql:// ``store``), else the SQLite file ``store`` exactly as
    before (``exclusive``: owned by this process, a second owner refused). A server that cannot
    be reached: :class:`~bot.errors.StoreUnreachableError` (exit 2, no password in it)."""
    from bot.db.dsn import is_dsn

    if dsn is None and is_dsn(store):
        dsn = store
    if dsn is not None:
        return Store(dsn=dsn, max_subscriptions=max_subscriptions, max_levels=max_levels)
    return Store(store, max_subscriptions=max_subscriptions, max_levels=max_levels,
                 exclusive=exclusive)
