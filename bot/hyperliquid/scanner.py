"""The wallet scanner: each pass takes up to ``batch`` wallets from the store (overdue ones
first, then new ones by recency, then the largest positions; see
:meth:`~bot.hyperliquid.wallets.WalletTables.wallets_to_scan`), fetches each
``clearinghouseState`` through :class:`~bot.hyperliquid.client.InfoClient` (weight budget,
retry policy) and stores it as that wallet's book entry. A wallet whose new state has no
position of a coin simply has none in the book: closed positions disappear, flipped ones
change side. A wallet that still fails after the retries keeps its previous state and stays
due. Optionally each scanned state is appended to a snapshot file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from bot.errors import MarketDataError
from bot.hyperliquid.client import InfoClient
from bot.hyperliquid.positions import Coverage, Position, book_positions, coverage, parse_state
from bot.hyperliquid.snapshots import Snapshot, write_snapshot

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ScanReport:
    scanned: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Scanner:
    def __init__(self, client: InfoClient, store: Any, coins: Sequence[str], rescan_ms: int,
                 batch: int = 50, now_ms: Callable[[], int] = wall_ms,
                 out: IO[str] | None = None, contexts_every_ms: int = 60_000) -> None:
        self.client = client
        self.store = store
        self.coins = list(coins)
        self.rescan_ms = int(rescan_ms)
        self.batch = batch
        self.now_ms = now_ms
        self.out = out
        self.contexts: dict[str, dict[str, float]] = {}
        self.contexts_every_ms = contexts_every_ms  # metaAndAssetCtxs costs 20: once a minute
        self._contexts_ms: int | None = None

    async def scan_once(self) -> ScanReport:
        """One pass: refresh the coins' mark/OI (at most every ``contexts_every_ms``), then
        scan the due wallets."""
        report = ScanReport()
        now = self.now_ms()
        if self._contexts_ms is None or now - self._contexts_ms >= self.contexts_every_ms:
            try:
                self.contexts = await self.client.asset_contexts()
                self._contexts_ms = now
            except MarketDataError as exc:
                report.errors.append(str(exc))
                log.warning("%s", exc)
        for address in self.store.wallets_to_scan(self.now_ms(), self.rescan_ms, self.batch):
            try:
                state = await self.client.clearinghouse_state(address)
            except MarketDataError as exc:
                report.failed += 1
                report.errors.append(str(exc))
                log.warning("%s", exc)
                continue
            t = self.now_ms()
            held = sum(p.value_usd for p in parse_state(address, state))
            self.store.save_scan(address, t, held, state)
            if self.out is not None:
                write_snapshot(self.out, Snapshot(t, address, state))
                self.out.flush()
            report.scanned += 1
        return report

    def positions(self, coin: str) -> list[Position]:
        states, _ = self.store.wallet_states()
        return book_positions(states, coin)

    def coverage(self, coin: str) -> Coverage | None:
        """Sampled notional vs the coin's OI, or None before the first ``metaAndAssetCtxs``."""
        ctx = self.contexts.get(coin)
        if ctx is None:
            return None
        states, scans = self.store.wallet_states()
        return coverage(coin, book_positions(states, coin), ctx, scans)
