"""The confirmed layer in the running bot: ``[positions]`` config, a replayed snapshot file on
the virtual clock behind /levels, and the live desk (discovery + scan job) on the loopback
Hyperliquid fake."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Config, PositionsSection, SourceSection, parse_config
from bot.errors import ConfigError
from bot.hyperliquid.desk import make_desk
from bot.hyperliquid.positions import book_positions, confirmed_totals
from bot.hyperliquid.snapshots import SnapshotReplay
from bot.market.errors import RetryPolicy
from bot.store import Store
from estimator import PriceGrid
from tests.bot.fake_hyperliquid import FakeHyperliquid, address, position, state, trade
from tests.bot.helpers import SYMBOL, private, started_service

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid"
CANDLES = FIX / "synthetic_btc_1h.csv"
SNAPS = FIX / "synthetic_positions.jsonl"


def positions_config(**positions: object) -> Config:
    base = Config()
    return replace(
        base, source=SourceSection(kind="replay", path=str(CANDLES), warmup_candles=120,
                                   timeframe="1h"),
        console=replace(base.console, enabled=False),
        positions=PositionsSection(**{"enabled": True, "path": str(SNAPS), **positions}))


async def test_replayed_snapshots_show_under_levels_at_the_virtual_time() -> None:
    service, core, store = await started_service(positions_config())
    replay = SnapshotReplay.load(SNAPS)
    seen = []
    for _ in range(3):
        est = core.board.get(SYMBOL)
        assert est is not None
        text = (await core.handle("/levels", private())).text
        estimate_part, confirmed = text.split("Confirmed on Hyperliquid")
        assert "estimate" not in confirmed  # never called an estimate
        want = confirmed_totals(book_positions(replay.states_at(est.snapshot.now_ms), "BTC"))
        assert f"{want['positions']} positions in {want['wallets']} wallets" in confirmed
        seen.append(want["positions"])
        for _ in range(12):  # twelve virtual hours on
            await service.price_job()
        await service.recompute(SYMBOL)
    assert len(set(seen)) > 1  # the book follows the virtual clock
    status = (await core.handle("/status", private())).text
    assert "Confirmed layer (real positions on Hyperliquid, a sample of wallets): replayed " \
           "snapshot file" in status
    store.close()


def test_positions_config_checks(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r":line 4: positions is enabled with a replay source"):
        parse_config("[source]\nkind = 'replay'\n[positions]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"positions.weight_share.*must be in \(0, 1\]"):
        parse_config("[positions]\nweight_share = 1.5\n")
    with pytest.raises(ConfigError, match=r"positions.path .* is not a file"):
        parse_config(f"[positions]\nenabled = true\npath = '{tmp_path / 'none.jsonl'}'\n")
    cfg = parse_config(f"[positions]\nenabled = true\npath = '{SNAPS}'\nrescan_minutes = 5\n")
    assert cfg.positions.rescan_minutes == 5.0 and cfg.positions.weight_share == 0.5


async def test_live_desk_discovers_scans_and_reports_coverage() -> None:
    async with FakeHyperliquid() as hl:
        a, b = address(1), address(2)
        hl.states[a] = state(position("BTC", 2.0, 100_000, 90_000))
        hl.states[b] = state(position("BTC", -1.0, 100_000, 110_000, 5, "isolated"))
        store = Store(memory=True)
        section = PositionsSection(enabled=True, rest_url=hl.http_url, ws_url=hl.url,
                                   weight_share=0.1)
        desk = make_desk(section, store, [SYMBOL])
        assert desk is not None and desk.live and desk.discovery is not None
        desk.discovery.retry = desk.scanner.client.retry = RetryPolicy(3, 0.01, 0.05)
        await desk.start()
        try:
            await hl.wait_subscribed(1)
            await hl.push_trades(trade("BTC", 100_000, 0.1, 1_764_000_000_000, a, b, 1))
            for _ in range(200):
                if store.wallet_count() == 2:
                    break
                await asyncio.sleep(0.01)
            report = await desk.job()
        finally:
            await desk.stop()
        assert report.scanned == 2
        assert desk.status_lines() == [
            "Confirmed layer (real positions on Hyperliquid, a sample of wallets): 2 wallets "
            "discovered, 2 scanned; budget 120 weight/min", "  last pass: 2 scanned, 0 failed"]
        view = desk.view(SYMBOL, 1_764_000_000_000, 100_000.0, PriceGrid.relative(0.1))
        assert view.totals == {"long_usd": 200_000.0, "short_usd": 100_000.0, "positions": 2,
                               "wallets": 2}
        assert view.oi_usd == 1_000.0 * 100_000.0 and view.coverage == 150_000.0 / 1e8
        from bot.hyperliquid.confirmed import confirmed_lines
        assert "$150K = 0.15 % of $100M Hyperliquid open interest" in confirmed_lines(view, 3)[1]
        store.close()


async def test_live_service_scans_in_its_job_and_alerts_a_confirmed_cluster_once() -> None:
    """Live: `[positions]` → discovery from the trades websocket → the scheduler's positions
    job scans the wallets → the price job alerts the confirmed cluster near price → dispatch →
    one chat message (the market source is the Binance fake)."""
    import io

    from bot.console import ConsoleNotifier
    from bot.market.ccxt_source import CcxtSource, binance_factory
    from bot.service import Service
    from tests.bot.fake_binance import NOW_MS, FakeBinance, price_at

    async def until(cond, timeout_s: float = 15.0) -> None:
        async def wait() -> None:
            while not cond():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait(), timeout_s)

    async with FakeBinance() as rest, FakeHyperliquid() as hl:
        near = price_at(NOW_MS) * 0.996
        a, b = address(1), address(2)
        hl.states[a] = state(position("BTC", 20.0, near * 1.1, near, 10, "isolated"))
        cfg = parse_config(f"""
[source]
kind = "live"
lookback_days = 1.0
[positions]
enabled = true
scan_seconds = 0.2
rest_url = "{hl.http_url}"
ws_url = "{hl.url}"
[schedule]
price_seconds = 0.2
dispatch_seconds = 0.2
[console]
enabled = false
""")
        store = Store(memory=True)
        notifier = ConsoleNotifier(io.StringIO())
        source = CcxtSource(exchange_factory=binance_factory(rest.url, timeout_ms=1000),
                            lookback_days=1, clock=lambda: rest.now_ms)
        service = Service(cfg, source, store, {"console": notifier})
        service.positions = make_desk(cfg.positions, store, list(cfg.bot.symbols))
        chat = store.upsert_chat("console", "c1")
        store.subscribe_confirmed(chat.id, SYMBOL, 1e6, 1.0, now=0)
        await service.start()
        try:
            await hl.wait_subscribed(1)
            await hl.push_trades(trade("BTC", near, 0.1, NOW_MS, a, b, 1))
            await until(lambda: len(notifier.sent) >= 1)
            await asyncio.sleep(0.6)  # more scans and price ticks: still one message
        finally:
            await service.stop()
            await source.close()
        states, _ = store.wallet_states()
        assert set(states) == {a, b}
        assert len(notifier.sent) == 1
        text = notifier.sent[0].text
        assert "confirmed: 1 real position on Hyperliquid" in text and "estimate" not in text
        store.close()
