"""The confirmed layer's data side against the loopback Hyperliquid fake: wallet discovery from
the trades websocket (ccxt.pro), scanning through ccxt's implicit ``publicPostInfo`` under the
weight budget, faults, parsing and coverage."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest

from bot.hyperliquid.client import InfoClient, WeightLimiter, hyperliquid_exchange
from bot.hyperliquid.discovery import Discovery
from bot.hyperliquid.positions import book_positions, confirmed_totals, parse_state
from bot.hyperliquid.scanner import Scanner
from bot.hyperliquid.snapshots import SnapshotReplay, read_snapshots
from bot.market.errors import MalformedResponse, RetryPolicy
from bot.store import Store
from tests.bot.fake_hyperliquid import FakeHyperliquid, address, position, state, trade

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
T0 = 1_764_000_000_000


class VirtualClock:
    """Seconds that only move when the limiter sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += s
        await asyncio.sleep(0)


@pytest.fixture
async def hl() -> AsyncIterator[FakeHyperliquid]:
    async with FakeHyperliquid(slow_s=2.0) as fake:
        yield fake


def client(hl: FakeHyperliquid, per_minute: float = 1200, clock: VirtualClock | None = None,
           timeout_ms: int = 10_000) -> InfoClient:
    ex = hyperliquid_exchange(rest_url=hl.http_url, ws_url=hl.url, timeout_ms=timeout_ms,
                              enableRateLimit=False)
    clock = clock or VirtualClock()
    return InfoClient(ex, WeightLimiter(per_minute, clock, clock.sleep), FAST)


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


async def test_discovery_from_trades_websocket_persists_addresses_with_last_seen(
        hl: FakeHyperliquid) -> None:
    store = Store(memory=True)
    ex = hyperliquid_exchange(rest_url=hl.http_url, ws_url=hl.url)
    disc = Discovery(ex, ["BTC"], store.see_wallets, FAST)
    disc.start()
    try:
        await hl.wait_subscribed(1)
        assert hl.subscriptions == [["trades:BTC"]]
        await hl.push_trades(trade("BTC", 100_000, 0.1, T0, address(1), address(2), 1),
                             trade("BTC", 100_001, 0.2, T0 + 5, address(2), address(3), 2))
        for _ in range(200):
            if store.wallet_count() == 3:
                break
            await asyncio.sleep(0.01)
        # a trade without users or with garbage in them adds nothing
        await hl.push_trades({"coin": "BTC", "side": "A", "px": "1", "sz": "1", "time": T0 + 9,
                              "hash": "0x", "tid": 3, "users": ["nobody", 7]})
        await asyncio.sleep(0.05)
    finally:
        await disc.stop()
        await ex.close()
    assert store.wallet_count() == 3
    w2 = store.wallet(address(2))
    assert w2 is not None and (w2.first_seen_ms, w2.last_seen_ms) == (T0, T0 + 5)
    assert disc.error is None


async def test_scan_stores_states_and_builds_the_book(hl: FakeHyperliquid) -> None:
    a, b, c = address(1), address(2), address(3)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000, 10, "cross"),
                         position("ETH", -2, 4_000, 4_300, 20, "isolated"))
    hl.states[b] = state(position("BTC", -1.0, 101_000, None, 3, "cross"))  # null liq
    store = Store(memory=True)
    store.see_wallets([a, b, c], T0)
    out = io.StringIO()
    cl = client(hl)
    try:
        report = await Scanner(cl, store, ["BTC", "ETH"], 600_000, now_ms=Clock(),
                               out=out).scan_once()
    finally:
        await cl.close()
    assert (report.scanned, report.failed) == (3, 0)
    states, scans = store.wallet_states()
    btc = book_positions(states, "BTC")
    assert {(p.user, p.side, p.liq_px, p.margin) for p in btc} == {
        (a, "long", 91_000.0, "cross"), (b, "short", None, "cross")}
    eth = book_positions(states, "ETH")
    assert [(p.side, p.margin, p.leverage) for p in eth] == [("short", "isolated", 20.0)]
    # totals count only positions with a liquidation price, exactly
    assert confirmed_totals(btc) == {"long_usd": 50_000.0, "short_usd": 0.0, "positions": 1,
                                     "wallets": 1}
    # the snapshot lines hold the response verbatim
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert {x["user"] for x in lines} == {a, b, c}
    assert next(x for x in lines if x["user"] == a)["state"] == hl.states[a]


async def test_scan_under_the_weight_budget_on_a_virtual_clock(hl: FakeHyperliquid) -> None:
    store = Store(memory=True)
    store.see_wallets([address(i) for i in range(1, 101)], T0)
    clock = VirtualClock()
    cl = client(hl, per_minute=0.1 * 1200, clock=clock)  # a 10 % share: 120 weight / min
    try:
        report = await Scanner(cl, store, ["BTC"], 600_000, batch=100,
                               now_ms=Clock()).scan_once()
    finally:
        await cl.close()
    assert report.scanned == 100
    spent = cl.limiter.spent
    assert sum(w for _, w in spent) == 20 + 100 * 2  # metaAndAssetCtxs + 100 states
    for t0, _ in spent:  # every sliding minute stays within the budget
        assert sum(w for t, w in spent if t0 <= t < t0 + 60) <= 120
    assert clock.now >= 60  # 220 weight at 120/min: the second 100 wait for the next minute
    assert len(hl.requests) == len(spent)


@pytest.mark.parametrize("fault", ["429", "500", "502", "malformed", "shape", "partial"])
async def test_transient_faults_are_retried_and_the_state_kept(hl: FakeHyperliquid,
                                                               fault: str) -> None:
    a = address(1)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000))
    hl.inject("clearinghouseState", fault)
    store = Store(memory=True)
    store.see_wallets([a], T0)
    cl = client(hl)
    try:
        report = await Scanner(cl, store, ["BTC"], 600_000, now_ms=Clock()).scan_once()
    finally:
        await cl.close()
    assert (report.scanned, report.failed) == (1, 0)
    assert len([r for r in hl.requests if r["type"] == "clearinghouseState"]) == 2
    assert store.wallet_states()[0][a] == hl.states[a]


async def test_timeout_is_retried(hl: FakeHyperliquid) -> None:
    a = address(1)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000))
    hl.inject("clearinghouseState", "slow")
    store = Store(memory=True)
    store.see_wallets([a], T0)
    cl = client(hl, timeout_ms=300)
    try:
        report = await Scanner(cl, store, ["BTC"], 600_000, now_ms=Clock()).scan_once()
    finally:
        await cl.close()
    assert (report.scanned, report.failed) == (1, 0)


async def test_a_wallet_failing_after_retries_keeps_its_previous_state_and_stays_due(
        hl: FakeHyperliquid) -> None:
    a, b = address(1), address(2)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000))
    store = Store(memory=True)
    store.see_wallets([a, b], T0)
    clock = Clock()
    cl = client(hl)
    try:
        scanner = Scanner(cl, store, ["BTC"], 600_000, now_ms=clock)
        await scanner.scan_once()
        clock.t += 600_000
        hl.states[a] = state()  # closed meanwhile, but the answers are garbage
        hl.inject("clearinghouseState", "malformed", "malformed", "malformed")
        report = await scanner.scan_once()
    finally:
        await cl.close()
    assert (report.scanned, report.failed) == (1, 1)
    assert "malformed response" in report.errors[0]
    assert store.wallet_states()[0][a]["assetPositions"]  # previous state kept
    assert store.wallets_to_scan(clock.t, 600_000, 10)[0] == a  # overdue, first


async def test_closed_and_flipped_positions_between_scans(hl: FakeHyperliquid) -> None:
    a, b = address(1), address(2)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000))
    hl.states[b] = state(position("BTC", 1.0, 100_000, 80_000))
    store = Store(memory=True)
    store.see_wallets([a, b], T0)
    clock = Clock()
    cl = client(hl)
    try:
        scanner = Scanner(cl, store, ["BTC"], 600_000, now_ms=clock)
        await scanner.scan_once()
        assert {p.side for p in scanner.positions("BTC")} == {"long"}
        hl.states[a] = state()  # closed
        hl.states[b] = state(position("BTC", -1.0, 100_500, 120_000))  # flipped short
        clock.t += 600_000
        await scanner.scan_once()
        book = scanner.positions("BTC")
    finally:
        await cl.close()
    assert [(p.user, p.side, p.liq_px) for p in book] == [(b, "short", 120_000.0)]


async def test_many_coins_in_one_wallet_and_coverage_arithmetic(hl: FakeHyperliquid) -> None:
    coins = [f"C{i}" for i in range(30)]
    hl.coins = {"BTC": (100_000.0, 10.0)} | {c: (10.0, 1000.0) for c in coins}
    a, b = address(1), address(2)
    hl.states[a] = state(position("BTC", 2.0, 100_000, 90_000),
                         *[position(c, 5.0, 10.0, 9.0) for c in coins])
    hl.states[b] = state(position("BTC", -3.0, 100_000, 110_000))
    store = Store(memory=True)
    store.see_wallets([a, b], T0)
    clock = Clock()
    cl = client(hl)
    try:
        scanner = Scanner(cl, store, ["BTC"], 600_000, now_ms=clock)
        await scanner.scan_once()
        clock.t += 14 * 60_000
        cov = scanner.coverage("BTC")
        c7 = scanner.coverage("C7")
    finally:
        await cl.close()
    assert len(store.wallet_states()[0][a]["assetPositions"]) == 31
    assert cov is not None and c7 is not None
    # (long 200k + short 300k) / 2 sampled of OI 10 BTC × 100k = 1M
    assert (cov.sampled_usd, cov.oi_usd, cov.wallets) == (250_000.0, 1_000_000.0, 2)
    assert cov.share == 0.25
    assert cov.text(clock.t) == "$250K of $1.0M OI on BTC, 25 %, 2 wallets, oldest scan 14 min"
    assert (c7.sampled_usd, c7.oi_usd, c7.wallets) == (25.0, 10_000.0, 1)


@pytest.mark.parametrize("bad, field", [
    ({"assetPositions": "x"}, "assetPositions missing"),
    ({"assetPositions": [{"position": {"coin": "BTC", "szi": "nan", "entryPx": "1",
                                       "positionValue": "1", "liquidationPx": None,
                                       "leverage": {"type": "cross", "value": 2}}}]}, "szi"),
    ({"assetPositions": [{"position": {"coin": "BTC", "szi": "1", "entryPx": "1",
                                       "positionValue": "1", "liquidationPx": "-3",
                                       "leverage": {"type": "cross", "value": 2}}}]},
     "liquidationPx"),
    ({"assetPositions": [{"position": {"coin": "BTC", "szi": "1", "entryPx": "1",
                                       "positionValue": "1", "liquidationPx": "3",
                                       "leverage": {"type": "portfolio", "value": 2}}}]},
     "leverage"),
])
def test_malformed_states_name_the_field(bad: dict, field: str) -> None:
    with pytest.raises(MalformedResponse, match=field):
        parse_state(address(1), bad)


def test_snapshot_round_trip_and_replay_is_latest_at_or_before(tmp_path) -> None:
    from bot.hyperliquid.snapshots import Snapshot, write_snapshot
    a, b = address(1), address(2)
    snaps = [Snapshot(T0, a, state(position("BTC", 1.0, 100_000, 90_000))),
             Snapshot(T0 + 60_000, a, state()),
             Snapshot(T0 + 30_000, b, state(position("BTC", -1.0, 100_000, 110_000)))]
    path = tmp_path / "s.jsonl"
    with path.open("w") as f:
        for s in snaps:
            write_snapshot(f, s)
    back = read_snapshots(path)
    assert back == snaps
    r1, r2 = SnapshotReplay(back), SnapshotReplay(reversed(back))
    for t in (T0 - 1, T0, T0 + 30_000, T0 + 59_999, T0 + 60_000):
        assert r1.states_at(t) == r2.states_at(t)  # deterministic whatever the line order
    assert set(r1.states_at(T0 - 1)) == set()
    assert book_positions(r1.states_at(T0 + 30_000), "BTC")[0].user == a
    assert [p.user for p in book_positions(r1.states_at(T0 + 60_000), "BTC")] == [b]


async def test_record_writes_snapshots_and_candles_with_oi(hl: FakeHyperliquid, tmp_path) -> None:
    from bot.hyperliquid.record import record_positions
    from bot.market.replay import load_csv
    a, b = address(1), address(2)
    hl.states[a] = state(position("BTC", 0.5, 100_000, 91_000))
    clock = Clock(T0)

    def now() -> int:
        clock.t += 20_000  # each reading 20 s later: the recording spans a few minutes
        return clock.t

    async def trades() -> None:
        await hl.wait_subscribed(1)
        await hl.push_trades(trade("BTC", 100_000, 0.1, T0, a, b, 1))
    pusher = asyncio.create_task(trades())
    result = await record_positions(["BTC"], tmp_path, 0.02, rest_url=hl.http_url,
                                    ws_url=hl.url, retry=FAST, now_ms=now, pause_s=0.05)
    await pusher
    assert result.wallets == 2 and result.snapshots >= 2
    snaps = read_snapshots(next(tmp_path.glob("hyperliquid_positions_*.jsonl")))
    assert {s.user for s in snaps} == {a, b}
    assert next(s for s in snaps if s.user == a).state == hl.states[a]
    csvs = list(tmp_path.glob("BTC_hyperliquid_1m_*.csv"))
    assert len(csvs) == 1 and result.candles["BTC"] >= 1
    c = load_csv(csvs[0])
    assert c.open_interest_usd is not None
    assert set(c.open_interest_usd.tolist()) == {1_000.0 * 100_000.0}  # OI coins × close


async def test_open_interest_is_refreshed_at_most_once_a_minute(hl: FakeHyperliquid) -> None:
    store = Store(memory=True)
    store.see_wallets([address(1)], T0)
    clock = Clock()
    cl = client(hl)
    try:
        scanner = Scanner(cl, store, ["BTC"], 600_000, now_ms=clock)
        for _ in range(5):  # five passes within 50 s
            await scanner.scan_once()
            clock.t += 10_000
        clock.t += 10_000
        await scanner.scan_once()  # a minute after the first
    finally:
        await cl.close()
    assert [r["type"] for r in hl.requests].count("metaAndAssetCtxs") == 2


def test_scan_order_overdue_then_new_by_recency_then_largest(store: Store) -> None:
    w = [address(i) for i in range(1, 7)]
    store.see_wallets(w[:4], T0)
    store.see_wallets([w[4]], T0 + 5)  # new, seen later
    store.see_wallets([w[5]], T0 + 1)  # new, seen earlier
    store.save_scan(w[0], T0, 1_000.0, state())  # scanned long ago, small
    store.save_scan(w[1], T0, 9_000.0, state())  # scanned long ago, large
    store.save_scan(w[2], T0 + 400_000, 50_000.0, state())  # 200 s ago (≥ a quarter), largest
    store.save_scan(w[3], T0 + 590_000, 80_000.0, state())  # too recent to rescan yet
    now = T0 + 600_000
    assert store.wallets_to_scan(now, 600_000, 10) == [w[1], w[0], w[4], w[5], w[2]]


def test_every_wallet_rescanned_within_rescan_minutes_when_the_budget_allows(store: Store) -> None:
    wallets = [address(i) for i in range(1, 201)]
    store.see_wallets(wallets, T0)
    rescan, t, batch = 600_000, T0, 25  # 25 wallets per 30 s pass: 500 per 10 min
    last: dict[str, int] = {}
    worst = 0
    for _ in range(200):  # 100 minutes of passes
        for i, a in enumerate(store.wallets_to_scan(t, rescan, batch)):
            if a in last:
                worst = max(worst, t - last[a])
            last[a] = t
            store.save_scan(a, t, float(i), state())
        t += 30_000
    assert len(last) == 200 and worst <= rescan
