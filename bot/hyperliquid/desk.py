"""Where the running bot's confirmed book comes from (``[positions]`` in the config):

- replay (``positions.path``): a snapshot file on the virtual clock, each wallet's latest
  snapshot at or before the tick;
- live: wallet discovery from the tracked coins' trades (ccxt.pro) and the scanner, run as the
  service's supervised ``positions`` job every ``scan_seconds``; the book is the store's last
  state per wallet, so it survives a restart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.hyperliquid.confirmed import ConfirmedView, coin_of, view_at
from bot.hyperliquid.discovery import Discovery
from bot.hyperliquid.scanner import Scanner, ScanReport
from bot.hyperliquid.snapshots import SnapshotReplay
from estimator.grid import PriceGrid


class PositionsDesk:
    def __init__(self, replay: SnapshotReplay | None = None, scanner: Scanner | None = None,
                 discovery: Discovery | None = None) -> None:
        if (replay is None) == (scanner is None):
            raise ValueError("positions desk: give a replay file or a live scanner")
        self.replay, self.scanner, self.discovery = replay, scanner, discovery
        self.last_report: ScanReport | None = None

    @property
    def live(self) -> bool:
        return self.scanner is not None

    def view(self, symbol: str, t_ms: int, price: float, grid: PriceGrid,
             oi_usd: float | None = None) -> ConfirmedView:
        """The confirmed book of ``symbol``'s coin at ``t_ms`` (replay) or now (live, with the
        coin's Hyperliquid OI from the last ``metaAndAssetCtxs``)."""
        coin = coin_of(symbol)
        if self.replay is not None:
            return view_at(self.replay.states_at(t_ms), coin, t_ms, price, grid, oi_usd)
        assert self.scanner is not None
        states, _ = self.scanner.store.wallet_states()
        ctx = self.scanner.contexts.get(coin)
        view = view_at(states, coin, t_ms, price, grid,
                       None if ctx is None else ctx["oi"] * ctx["mark"])
        return replace(view, oi_label="Hyperliquid open interest")

    def status_lines(self) -> list[str]:
        """For /status: where the confirmed book comes from and how the scanner is doing."""
        head = "Confirmed layer (real positions on Hyperliquid, a sample of wallets)"
        if self.replay is not None:
            return [f"{head}: replayed snapshot file, {len(self.replay.times)} scan times"]
        assert self.scanner is not None
        states, _ = self.scanner.store.wallet_states()
        known = self.scanner.store.wallet_count()
        limiter = self.scanner.client.limiter
        lines = [f"{head}: {known} wallets discovered, {len(states)} scanned; budget "
                 f"{limiter.per_minute:g} weight/min"]
        r = self.last_report
        if r is not None:
            lines.append(f"  last pass: {r.scanned} scanned, {r.failed} failed"
                         + (f"; last error: {r.errors[-1][:160]}" if r.errors else ""))
        if self.discovery is not None and self.discovery.error is not None:
            lines.append(f"  wallet discovery stopped: {self.discovery.error}")
        return lines

    async def start(self) -> None:
        if self.discovery is not None:
            self.discovery.start()

    async def job(self) -> ScanReport:
        assert self.scanner is not None
        self.last_report = await self.scanner.scan_once()
        return self.last_report

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
            await self.discovery.ex.close()
        if self.scanner is not None:
            await self.scanner.client.close()


def make_desk(section: Any, store: Any, coins: list[str]) -> PositionsDesk | None:
    """The desk a ``[positions]`` section asks for (None when disabled)."""
    if not section.enabled:
        return None
    if section.path:
        return PositionsDesk(replay=SnapshotReplay.load(section.path))
    from bot.hyperliquid.client import InfoClient, WeightLimiter, hyperliquid_exchange
    ex = hyperliquid_exchange(section.rest_url or None, section.ws_url or None)
    client = InfoClient(ex, WeightLimiter(section.weight_share * 1200))
    ws = hyperliquid_exchange(section.rest_url or None, section.ws_url or None)
    names = list(dict.fromkeys(coin_of(c) for c in coins))
    return PositionsDesk(scanner=Scanner(client, store, names,
                                         int(section.rescan_minutes * 60_000), section.batch),
                         discovery=Discovery(ws, names, store.see_wallets))
