"""Liquidation alerts and the tape in the bot: the window rule, the store's tape tables, the
commands, and a replayed tape through the real service (break alerts naming real liquidations,
/subscribe_liqs alerts exactly once, also after a restart)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.events import EventKind
from bot.alerts.messages import render
from bot.charts.heatmap import heatmap_figure
from bot.config import Config
from bot.store import MIGRATIONS, SCHEMA_VERSION, Store
from bot.tape.alerts import LiqSubscription, seen_in, window_alerts
from bot.tape.events import BINANCE_NOTE, Liquidation
from bot.tape.feed import LiveFeed, TapeDesk
from bot.tape.source import TapeSource
from bot.wiring import make_service
from tests.bot.helpers import (
    SYMBOL,
    group,
    private,
    replay_config,
    started_service,
    tape_config,
    write_liqs,
)

T0 = 1_764_000_000_000  # a minute boundary
SUB = LiqSubscription(chat=1, symbol=SYMBOL, min_usd=1e6, sum_usd=10e6)


def liq(t: int, usd: float, side: str = "long", price: float = 91_234.0,
        symbol: str = SYMBOL, exchange: str = "binanceusdm") -> Liquidation:
    return Liquidation(exchange, t, symbol, side, price, usd / price, usd)  # type: ignore[arg-type]


# --- the window rule ----------------------------------------------------------------------------
def test_one_big_liquidation_is_one_message() -> None:
    (ev,) = window_alerts([liq(T0 + 5_000, 2.3e6), liq(T0 + 6_000, 50_000)], [SUB])
    assert (ev.kind, ev.ref, ev.tape_count, ev.notional_usd) == (
        EventKind.LIQUIDATIONS, f"{SYMBOL}@{T0}", 1, 2.3e6)
    assert render(ev).startswith(f"🔥 {SYMBOL} $2.3M long liquidated at 91,234 on binanceusdm "
                                 "— price 91,234")
    assert render(ev).endswith("exchange data (liquidation tape)")


def test_big_ones_summarised_and_a_cascade_sends_everything() -> None:
    small = [liq(T0 + i * 100, 100_000, "short", 90_000 + i) for i in range(20)]
    (ev,) = window_alerts([liq(T0, 1.5e6), liq(T0 + 1_000, 1.2e6)] + small, [SUB])
    assert ev.tape_count == 2 and ev.long_usd == pytest.approx(2.7e6) and ev.short_usd == 0
    cascade = [liq(T0 + i * 100, 600_000, "short", 90_000 + i) for i in range(20)]
    (ev,) = window_alerts(cascade + [liq(T0 + 50_000, 1.5e6)], [SUB])
    assert ev.tape_count == 21 and ev.short_usd == pytest.approx(12e6)
    assert render(ev).startswith(f"🔥 {SYMBOL} 21 liquidations on binanceusdm: $1.5M of longs, "
                                 "$12.0M of shorts between 90,000 and 91,234; largest $1.5M long")


def test_windows_symbols_and_thresholds_are_separate() -> None:
    other = LiqSubscription(chat=2, symbol="ETH/USDT:USDT", min_usd=1e5, sum_usd=1e6)
    events = [liq(T0, 2e6), liq(T0 + 60_000, 3e6), liq(T0 + 1, 5e5, symbol="ETH/USDT:USDT"),
              liq(T0 + 2, 9e5)]
    out = window_alerts(events, [SUB, other])
    assert [(e.chat, e.ref, e.tape_count) for e in out] == [
        (1, f"{SYMBOL}@{T0}", 1), (2, f"ETH/USDT:USDT@{T0}", 1),
        (1, f"{SYMBOL}@{T0 + 60_000}", 1)]
    assert window_alerts([liq(T0, 9e5)], [SUB]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300_000), st.floats(1e3, 5e6),
                          st.sampled_from(["long", "short"])), max_size=60),
       st.lists(st.tuples(st.floats(1e4, 3e6), st.floats(1e5, 3e7)), min_size=1, max_size=4))
def test_each_window_alerts_each_chat_at_most_once_and_misses_no_big_one(raw, thresholds) -> None:
    events = [liq(T0 + t, usd, side) for t, usd, side in raw]
    subs = [LiqSubscription(i, SYMBOL, lo, hi) for i, (lo, hi) in enumerate(thresholds)]
    out = window_alerts(events, subs)
    keys = [e.dedupe_key for e in out]
    assert len(keys) == len(set(keys))
    for sub in subs:
        for w in {e.timestamp // 60_000 for e in events}:
            in_w = [e for e in events if e.timestamp // 60_000 == w]
            mine = [a for a in out if a.chat == sub.chat and a.ref == f"{SYMBOL}@{w * 60_000}"]
            total = sum(e.notional_usd for e in in_w)
            big = [e for e in in_w if e.notional_usd >= sub.min_usd]
            want = len(in_w) if total >= sub.sum_usd else len(big)
            assert len(mine) == (1 if want else 0)
            if mine:
                assert mine[0].tape_count == want
                assert (mine[0].long_usd or 0) + (mine[0].short_usd or 0) == pytest.approx(
                    total if total >= sub.sum_usd else sum(e.notional_usd for e in big))


def test_seen_in_counts_only_that_side_within_the_range() -> None:
    events = [liq(T0, 1e6, "long", 91_000), liq(T0, 2e6, "long", 91_500),
              liq(T0, 4e6, "short", 91_000), liq(T0, 8e6, "long", 91_050)]
    assert seen_in(events, "long", 90_950, 91_000) == (pytest.approx(9e6), 2)  # ±0.1 % slack
    assert seen_in(events, "short", 92_000, 93_000) == (0.0, 0)


# --- store --------------------------------------------------------------------------------------
def test_a_v1_store_file_migrates_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for stmt in MIGRATIONS[0]:
        conn.execute(stmt)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO chats (platform, chat_id, created_ms) VALUES ('console', 'c', 0)")
    conn.execute("INSERT INTO subscriptions (chat, symbol, min_usd, approach_pct, created_ms)"
                 " VALUES (1, ?, 1e8, 0.5, 0)", (SYMBOL,))
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 2
    assert [s.symbol for s in store.list_subscriptions(1)] == [SYMBOL]
    assert store.subscribe_liqs(1, SYMBOL, 1e6, 1e7, now=0).sum_usd == 1e7
    store.close()


def test_tape_tables_ignore_repeats_and_commit_windows_once(open_store) -> None:
    store = open_store(max_subscriptions=2)
    chat = store.upsert_chat("console", "c1")
    store.subscribe_liqs(chat.id, SYMBOL, 1e6, 1e7, now=0)
    store.subscribe_liqs(chat.id, SYMBOL, 2e6, 2e7, now=0)  # an update, not a second row
    assert store.list_liq_subscriptions(chat.id) == [
        LiqSubscription(chat.id, SYMBOL, 2e6, 2e7)]
    store.subscribe_liqs(chat.id, "ETH/USDT:USDT", 1e6, 1e7, now=0)
    with pytest.raises(Exception, match="maximum"):
        store.subscribe_liqs(chat.id, "SOL/USDT:USDT", 1e6, 1e7, now=0)
    with pytest.raises(Exception, match="> 0"):
        store.subscribe_liqs(chat.id, SYMBOL, 0, 1e7, now=0)
    events = [liq(T0, 3e6), liq(T0 + 1, 5e5)]
    assert store.add_liquidations(events) == 2
    assert store.add_liquidations(events) == 0  # a reconnect replaying them
    alerts = window_alerts(store.liquidations(SYMBOL, T0, T0 + 60_000),
                           store.active_liq_subscriptions(SYMBOL))
    assert store.commit_tape(SYMBOL, T0 + 60_000, alerts, now=1) == 1
    assert store.commit_tape(SYMBOL, T0 + 60_000, alerts, now=2) == 0
    assert store.tape_flushed(SYMBOL) == T0 + 60_000
    assert store.liq_subscriber_counts() == {"ETH/USDT:USDT": 1, SYMBOL: 1}
    assert store.prune_liquidations(T0 + 1) == 1 and len(store.liquidations(SYMBOL, 0)) == 1


# --- commands -----------------------------------------------------------------------------------
async def test_subscribe_liqs_needs_the_tape() -> None:
    _, core, store = await started_service()
    reply = await core.handle("/subscribe_liqs BTC 1m", private())
    assert reply.error and "tape is off" in reply.text
    assert store.find_chat("console", "c1") is None  # nothing created
    store.close()


async def test_subscribe_liqs_lists_validates_and_unsubscribes(tmp_path: Path) -> None:
    cfg = tape_config(write_liqs(tmp_path / "l.csv", []))
    service, core, store = await started_service(cfg)
    reply = await core.handle("/subscribe_liqs BTC 1m", private())
    assert not reply.error and "≥ $1.0M" in reply.text and "≥ $10.0M" in reply.text
    assert "replay of l.csv" in reply.text
    chat = store.find_chat("console", "c1")
    assert chat is not None
    for bad, needle in (("/subscribe_liqs BTC lots", "not a valid minimum liquidation size"),
                        ("/subscribe_liqs DOGE 1m", "not"), ("/subscribe_liqs", "Which symbol"),
                        ("/subscribe_liqs BTC 1m 2m 3m", "Too many")):
        r = await core.handle(bad, private())
        assert r.error and needle in r.text, (bad, r.text)
    assert store.list_liq_subscriptions(chat.id) == [LiqSubscription(chat.id, SYMBOL, 1e6, 1e7)]
    assert "Liquidation alerts (real, from the tape):" in (await core.handle("/alerts",
                                                                             private())).text
    refused = await core.handle("/subscribe_liqs BTC 5m", group("u2", admin=False))
    assert refused.error and "Only chat admins" in refused.text
    assert "stopped" in (await core.handle("/unsubscribe_liqs btc", private())).text
    assert (await core.handle("/unsubscribe_liqs btc", private())).error
    assert store.list_liq_subscriptions(chat.id) == []
    store.close()


async def test_status_shows_the_tape_and_binance_undercount() -> None:
    service, core, store = await started_service()
    core.tape = TapeDesk(LiveFeed(TapeSource([SYMBOL])), store, [SYMBOL], window_ms=60_000,
                         keep_ms=3_600_000, clock=lambda: 0)
    text = (await core.handle("/status", private())).text
    assert "Liquidation tape (real liquidations, exchange data): binanceusdm" in text
    assert "binanceusdm: ok, 0 events, 0 reconnect(s)" in text and BINANCE_NOTE in text
    store.close()


async def test_levels_and_heatmap_mark_clusters_real_liquidations_are_eating(
        tmp_path: Path) -> None:
    plain = await started_service()
    est = plain[0].board.get(SYMBOL)
    plain[2].close()
    c = max((c for c in est.clusters if c.side == "long"), key=lambda c: c.notional_usd)
    now = est.snapshot.now_ms
    rows = [(now - 30 * 60_000, "long", (c.low + c.high) / 2, 2_500_000.0),
            (now - 5 * 3_600_000, "long", (c.low + c.high) / 2, 7_000_000.0)]  # too old: not live
    service, core, store = await started_service(tape_config(write_liqs(tmp_path / "l.csv",
                                                                         rows)))
    text = (await core.handle("/levels", private())).text
    assert "🔥 live: $2.5M of real long liquidations here in the last 60 min (1)" in text
    assert text.count("🔥 live") == 1
    heat = await core.handle("/heatmap 7d", private())
    assert heat.png is not None and not heat.error
    # 7d: the chart labels zones on it, and this cluster is below the 24h chart's range.
    fig = heatmap_figure(est.snapshot.candles, est.heatmap("7d"), est.clusters,
                         symbol=SYMBOL, exchange="x", timeframe="1h", window_label="7d",
                         tape=store.liquidations(SYMBOL, 0), live={c.id})
    ax = fig.axes[0]
    dots = [a for a in ax.collections if a.get_gid() == "tape"]
    assert len(dots) == 1 and len(dots[0].get_offsets()) == 2
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "cluster"]
    assert sum("· LIVE" in label for label in labels) == 1
    store.close()


# --- a replayed tape through the service --------------------------------------------------------
async def run_to_end(service) -> None:
    while not service.replay_done.is_set():
        await service.price_job()


async def replay_alerts(cfg: Config, *commands: str) -> list:
    """Play ``cfg``'s replay to the end through the real service, after ``commands`` from
    one private chat; the alerts queued, in order."""
    store = Store(cfg.bot.store)
    service, core = make_service(cfg, store, [])
    for text in commands:
        await core.handle(text, private())
    await service.start()
    try:
        await run_to_end(service)
    finally:
        await service.stop()
    events = [r.event for r in store.due(now=2**62, limit=10_000)]
    store.close()
    return events


async def test_replayed_tape_alerts_once_and_names_real_liquidations_in_breaks(
        tmp_path: Path) -> None:
    plain = replace(replay_config(), bot=replace(Config().bot, store=str(tmp_path / "plain.db")))
    brk = next(e for e in await replay_alerts(plain, "/subscribe BTC 1m 0.5")
               if e.kind is EventKind.BREAK)
    mid = (brk.low + brk.high) / 2
    start = 1_569_106_800_000  # the replay's first virtual hour (warm-up 19,500 candles)
    burst_at = start + 10 * 3_600_000
    rows = ([(start - 86_400_000, "long", mid, 9e6),  # history before the replay: not news
             (brk.ts_ms - 1_000, brk.side, mid, 3e6)]  # while price broke the cluster
            + [(burst_at + i * 500, "short", 9_000.0 + i, 100_000.0) for i in range(20)])
    cfg = replace(tape_config(write_liqs(tmp_path / "liqs.csv", rows)),
                  bot=replace(Config().bot, store=str(tmp_path / "tape.db")))
    commands = ("/subscribe BTC 1m 0.5", "/subscribe_liqs BTC 1m 1.5m")
    alerts = await replay_alerts(cfg, *commands)
    broke = [e for e in alerts if e.kind is EventKind.BREAK and e.ref == brk.ref]
    assert broke and broke[0].tape_count == 1 and broke[0].tape_usd == pytest.approx(3e6)
    assert f"the tape saw $3.0M of real {brk.side} liquidations in it (1)" in render(broke[0])
    liqs = [e for e in alerts if e.kind is EventKind.LIQUIDATIONS]
    assert sorted((e.tape_count, round(e.notional_usd or 0)) for e in liqs) == [
        (1, 3_000_000), (20, 100_000)]
    # A restarted process (same store, replay resumed) sends nothing twice.
    assert await replay_alerts(cfg, *commands) == alerts


def test_discord_embed_of_a_liquidation_alert_says_exchange_data() -> None:
    from bot.discord_embeds import alert_embed
    from bot.dispatcher import Alert

    (ev,) = window_alerts([liq(T0, 1.5e6), liq(T0 + 1_000, 1.2e6, "short", 90_000)], [SUB])
    embed = alert_embed(Alert(render(ev), ev, ev.dedupe_key))
    assert embed.title == f"{SYMBOL} · Real liquidations"
    fields = {f.name: f.value for f in embed.fields}
    assert fields == {"Events": "2", "Longs": "$1.5M", "Shorts": "$1.2M",
                      "Range": "90,000–91,234", "Price": "90,000"}
    assert embed.footer.text.endswith("exchange data (liquidation tape)")
    assert "estimate" not in embed.footer.text


def test_status_line_says_stopped_and_the_last_error() -> None:
    from bot.errors import MarketDataError
    from bot.tape.feed import status_line
    from bot.tape.source import FeedStatus

    s = FeedStatus("bybit", events=3, reconnects=2, last_error="network error: reset")
    assert status_line(s) == ("bybit: ok, 3 events, 2 reconnect(s), last error: network error: "
                              "reset")
    s.error = MarketDataError("bybit liquidations: not supported")
    s.note = "n"
    assert status_line(s).startswith("bybit: STOPPED, 3 events") and status_line(s).endswith(
        "\n  note: n")
