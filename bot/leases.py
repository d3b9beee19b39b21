"""Symbol leases: which ``liqbot run --role market`` worker computes and ticks which symbol.

Several market workers share one PostgreSQL store. Each symbol has at most one lease row
(``symbol_leases``: owner, expiry in ms); a worker runs a symbol's recompute and price jobs
only while it holds the symbol's lease. Every worker, every third of the lease time
(``[cluster] lease_seconds``, default 30 s), runs one :meth:`SymbolLeases.balance` round:

1. heartbeat: its row in ``cluster_workers`` (seen now); the live market workers are those
   seen within one lease time;
2. renew: its own leases get a new expiry (now + lease time);
3. share: a worker keeps at most ``ceil(symbols / live workers)`` symbols — it releases the
   extra ones (a new worker joined) or takes free ones: never leased, released, or expired
   (a dead worker's), each with one conditional upsert that only one worker can win.

A worker killed at time t renewed last at t at the latest, so its leases expire by t + TTL and
its heartbeat stops counting then too; the next round of another worker (within TTL / 3) takes
the symbols: they move within 2 × TTL. A clean stop releases its leases at once.

The fence: the tick's commit (:meth:`bot.store.Store.commit_tick` with ``lease_owner``)
updates the symbol's lease row inside the tick transaction and commits only if the caller
still owns it (PostgreSQL: that row stays locked until the commit, so a takeover waits for
it; the new owner reads the engine state after its takeover committed). A worker that lost
the lease drops the tick (:class:`~bot.errors.LeaseLostError`), so no tick is committed twice.

Times are each worker's wall clock: the machines' clocks must agree to well within the lease
time (NTP does). The lease table also holds market-wide jobs under a ``job:`` key (the tape,
the Hyperliquid scan, pruning), held by one worker at a time like a symbol.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE symbol_leases (
        symbol TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        acquired_ms INTEGER NOT NULL)""",
    """CREATE TABLE cluster_workers (
        worker TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        seen_ms INTEGER NOT NULL)""",
)

GONE_TTLS = 10  # a worker unseen for this many lease times is forgotten
MARKET_JOBS = "job:market"  # the tape, Hyperliquid scan and pruning: one worker runs them


def worker_name(configured: str = "") -> str:
    """``[cluster] worker`` if set, else hostname:pid (unique per process)."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseChange:
    """One balance round: the symbols now held, and those taken and lost in it."""

    held: tuple[str, ...]
    acquired: tuple[str, ...]
    lost: tuple[str, ...]


class SymbolLeases:
    """One worker's leases in the store (see the module docstring). Keeps the expiry of each
    lease it holds as of its last renewal: :meth:`holds` is False once that passed, even
    before another worker takes the symbol."""

    def __init__(self, store: Store, worker: str, ttl_ms: int, role: str = "market") -> None:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be > 0")
        self.store = store
        self.worker = worker
        self.ttl_ms = ttl_ms
        self.role = role
        self._expiry: dict[str, int] = {}  # symbol → expiry (ms) this worker last wrote

    # --- reading -----------------------------------------------------------------------------
    def holds(self, symbol: str, now: int) -> bool:
        return self._expiry.get(symbol, 0) > now

    def held(self, now: int) -> tuple[str, ...]:
        return tuple(sorted(s for s, t in self._expiry.items() if t > now))

    def live_workers(self, now: int) -> int:
        """Workers of this role seen within one lease time (this one included once it has
        sent a heartbeat)."""
        row = self.store.db.execute(
            "SELECT COUNT(*) FROM cluster_workers WHERE role = ? AND seen_ms > ?",
            (self.role, now - self.ttl_ms)).fetchone()
        return int(row[0])

    def owners(self) -> dict[str, tuple[str, int]]:
        """Every lease row: key → (owner, expires_ms) (status, tests)."""
        return {r["symbol"]: (r["owner"], int(r["expires_ms"]))
                for r in self.store.db.query(
                    "SELECT symbol, owner, expires_ms FROM symbol_leases")}

    # --- writing -----------------------------------------------------------------------------
    def heartbeat(self, now: int) -> None:
        """This worker is live; rows of workers gone for 10 lease times are deleted (a name
        per process: hostname:pid)."""
        with self.store.db.atomic():
            self.store.db.execute(
                "INSERT INTO cluster_workers (worker, role, seen_ms) VALUES (?, ?, ?) ON CONFLICT"
                " (worker) DO UPDATE SET role = excluded.role, seen_ms = excluded.seen_ms",
                (self.worker, self.role, now))
            self.store.db.execute("DELETE FROM cluster_workers WHERE seen_ms < ?",
                                  (now - GONE_TTLS * self.ttl_ms,))

    def try_take(self, key: str, now: int) -> bool:
        """Take (or renew) the lease on ``key`` if it is free, expired or already ours."""
        cur = self.store.db.execute(
            "INSERT INTO symbol_leases (symbol, owner, expires_ms, acquired_ms)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET owner = excluded.owner,"
            " expires_ms = excluded.expires_ms, acquired_ms = CASE WHEN symbol_leases.owner"
            " = excluded.owner THEN symbol_leases.acquired_ms ELSE excluded.acquired_ms END"
            " WHERE symbol_leases.owner = excluded.owner OR symbol_leases.expires_ms <= ?",
            (key, self.worker, now + self.ttl_ms, now, now))
        if cur.rowcount == 1:
            self._expiry[key] = now + self.ttl_ms
            return True
        self._expiry.pop(key, None)
        return False

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.store.db.execute("DELETE FROM symbol_leases WHERE symbol = ? AND owner = ?",
                                  (key, self.worker))
            self._expiry.pop(key, None)

    def release_all(self) -> None:
        """Clean stop: free every lease now (others take them on their next round) and stop
        counting as a live worker."""
        self.store.db.execute("DELETE FROM symbol_leases WHERE owner = ?", (self.worker,))
        self.store.db.execute("DELETE FROM cluster_workers WHERE worker = ?", (self.worker,))
        self._expiry.clear()

    def balance(self, symbols: Sequence[str], now: int) -> LeaseChange:
        """One round (module docstring): heartbeat, renew, release the extra or take free
        symbols up to this worker's share of ``symbols``. ``job:`` keys are not touched."""
        before = {s for s in self.held(now) if not s.startswith("job:")}
        self.heartbeat(now)
        wanted = list(dict.fromkeys(symbols))
        with self.store.db.atomic():
            self.store.db.execute("UPDATE symbol_leases SET expires_ms = ? WHERE owner = ?",
                                  (now + self.ttl_ms, self.worker))
            rows = self.store.db.execute("SELECT symbol FROM symbol_leases WHERE owner = ?",
                                         (self.worker,)).fetchall()
        mine = {str(r[0]) for r in rows}
        for key in mine:
            self._expiry[key] = now + self.ttl_ms
        for key in set(self._expiry) - mine:  # taken over (or released) behind our back
            self._expiry.pop(key)
        symbols_held = sorted(s for s in mine if not s.startswith("job:"))
        gone = [s for s in symbols_held if s not in wanted]  # no longer tracked
        self.release(gone)
        held = [s for s in symbols_held if s in wanted]
        quota = math.ceil(len(wanted) / max(1, self.live_workers(now)))
        if len(held) > quota:
            self.release(held[quota:])  # a worker joined: hand the extra ones over
            held = held[:quota]
        elif len(held) < quota:
            taken = self._owned_by_others(now)
            for symbol in wanted:
                if len(held) >= quota:
                    break
                if symbol not in held and symbol not in taken and self.try_take(symbol, now):
                    held.append(symbol)
        after = set(held)
        change = LeaseChange(tuple(sorted(after)), tuple(sorted(after - before)),
                             tuple(sorted(before - after)))
        if change.acquired or change.lost:
            log.info("leases (%s): took %s, lost %s; holding %d of %d symbols",
                     self.worker, ", ".join(change.acquired) or "none",
                     ", ".join(change.lost) or "none", len(after), len(wanted))
        return change

    def _owned_by_others(self, now: int) -> set[str]:
        """Keys another worker holds unexpired (not worth an upsert each)."""
        rows = self.store.db.execute(
            "SELECT symbol FROM symbol_leases WHERE owner <> ? AND expires_ms > ?",
            (self.worker, now)).fetchall()
        return {str(r[0]) for r in rows}
