"""The store's Hyperliquid wallet table (:data:`MIGRATION`, schema v7 in
:data:`bot.store.MIGRATIONS`), mixed into :class:`bot.store.Store`: every address discovered
from public trades with its first/last-seen time, its last scan time, the notional it held then
and the last ``clearinghouseState`` verbatim (so the confirmed book survives a restart).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.db import Database

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE hl_wallets (
        address TEXT PRIMARY KEY,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        last_scan_ms INTEGER,
        notional_usd REAL NOT NULL DEFAULT 0,
        state TEXT)""",
    "CREATE INDEX hl_wallets_scan ON hl_wallets(last_scan_ms)",
)


@dataclass(frozen=True)
class Wallet:
    address: str
    first_seen_ms: int
    last_seen_ms: int
    last_scan_ms: int | None
    notional_usd: float


class WalletTables:
    db: Database

    def see_wallets(self, addresses: Iterable[str], t: int) -> int:
        """Record ``addresses`` as seen at ``t`` (last-seen only moves forward); the number
        of new ones."""
        new = 0
        with self.db.atomic():
            for a in dict.fromkeys(addresses):
                cur = self.db.execute(
                    "INSERT INTO hl_wallets (address, first_seen_ms, last_seen_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT (address) DO NOTHING", (a, t, t))
                new += cur.rowcount
                self.db.execute("UPDATE hl_wallets SET last_seen_ms = ? WHERE address = ?"
                                " AND last_seen_ms < ?", (t, a, t))
        return new

    def wallets_to_scan(self, now: int, rescan_ms: int, limit: int,
                        min_gap_ms: int | None = None) -> list[str]:
        """Up to ``limit`` addresses, in order: overdue (last scan ≥ ``rescan_ms`` ago) by size
        then age; never scanned, most recently seen first; then the rest scanned at least
        ``min_gap_ms`` (default a quarter of ``rescan_ms``) ago, largest first."""
        gap = rescan_ms // 4 if min_gap_ms is None else min_gap_ms
        rows = self.db.execute(
            "SELECT address FROM hl_wallets WHERE last_scan_ms IS NULL OR last_scan_ms <= ?"
            " ORDER BY CASE WHEN last_scan_ms IS NULL THEN 1"
            " WHEN last_scan_ms <= ? THEN 0 ELSE 2 END,"
            " notional_usd DESC, last_seen_ms DESC, last_scan_ms ASC, address LIMIT ?",
            (now - gap, now - rescan_ms, limit)).fetchall()
        return [r[0] for r in rows]

    def save_scan(self, address: str, t: int, notional_usd: float, state: Any) -> None:
        self.db.execute("UPDATE hl_wallets SET last_scan_ms = ?, notional_usd = ?, state = ?"
                        " WHERE address = ?",
                        (t, float(notional_usd), json.dumps(state, allow_nan=False), address))

    def wallet_states(self) -> tuple[dict[str, Any], dict[str, int]]:
        """({address: last state}, {address: last scan ms}) of every scanned wallet."""
        states: dict[str, Any] = {}
        scans: dict[str, int] = {}
        for a, t, s in self.db.execute(
                "SELECT address, last_scan_ms, state FROM hl_wallets WHERE state IS NOT NULL"):
            states[a], scans[a] = json.loads(s), int(t)
        return states, scans

    def wallet(self, address: str) -> Wallet | None:
        row = self.db.execute("SELECT address, first_seen_ms, last_seen_ms, last_scan_ms,"
                              " notional_usd FROM hl_wallets WHERE address = ?",
                              (address,)).fetchone()
        return None if row is None else Wallet(*row)

    def wallet_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM hl_wallets").fetchone()[0])
