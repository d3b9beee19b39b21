"""Confirmed-cluster alerts: ``/subscribe BTC 100m 0.5 confirmed`` follows real Hyperliquid
positions; each confirmed cluster near price alerts once through the outbox (also after a
restart), worded "confirmed: N real positions on Hyperliquid, $X", never "estimate"."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from bot.alerts.events import EventKind
from bot.alerts.messages import render
from bot.config import Config
from bot.console import ConsoleNotifier
from bot.dispatcher import Dispatcher
from bot.hyperliquid.alerts import ConfirmedSubscription, confirmed_events, confirmed_text
from bot.hyperliquid.confirmed import view_at
from bot.store import Store
from bot.wiring import make_service
from estimator import PriceGrid
from tests.bot.fake_hyperliquid import address, position, state
from tests.bot.helpers import SYMBOL, private
from tests.bot.test_hyperliquid_service import positions_config

GRID = PriceGrid.relative(0.1)


def test_rule_threshold_distance_and_wording() -> None:
    a, b, c = address(1), address(2), address(3)
    states = {a: state(position("BTC", 1.0, 100_000, 99_000)),
              b: state(position("BTC", 2.0, 100_000, 99_010)),
              c: state(position("BTC", -1.0, 100_000, 104_000))}
    view = view_at(states, "BTC", 1, 100_000.0, GRID)
    subs = [ConfirmedSubscription(7, SYMBOL, 250_000.0, 1.5),
            ConfirmedSubscription(8, SYMBOL, 50_000.0, 5.0)]
    events = confirmed_events(subs, view, SYMBOL, 100_000.0, 1, GRID)
    got = sorted((e.chat, e.side, e.positions, e.notional_usd) for e in events)
    # chat 7: the $300K long cluster 1 % below; the $100K short is too small
    # chat 8: both (the short is 4 % above, within 5 %)
    assert got == [(7, "long", 2, 300_000.0), (8, "long", 2, 300_000.0),
                   (8, "short", 1, 100_000.0)]
    long7 = next(e for e in events if e.chat == 7)
    text = render(long7)
    assert confirmed_text(long7) in text
    assert "confirmed: 2 real positions on Hyperliquid, $300K" in text
    assert "below price" in text and "estimate" not in text.lower()
    # the ref is stable for the same bucket run: a later tick makes the same keys, and the
    # outbox takes each once
    again = confirmed_events(subs, view, SYMBOL, 100_100.0, 2, GRID)
    assert {e.dedupe_key for e in again} == {e.dedupe_key for e in events}
    store = Store(memory=True)
    for chat in ("7", "8"):
        store.upsert_chat("console", chat)
    events = [e._replace(chat=store.find_chat("console", str(e.chat)).id) for e in events]
    again = [e._replace(chat=store.find_chat("console", str(e.chat)).id) for e in again]
    assert store.commit_confirmed(events, 1) == 3
    assert store.commit_confirmed(again, 2) == 0
    store.close()


async def replay_confirmed(cfg: Config, *commands: str) -> list:
    store = Store(cfg.bot.store)
    service, core = make_service(cfg, store, [])
    replies = [await core.handle(text, private()) for text in commands]
    assert not any(r.error for r in replies), [r.text for r in replies]
    await service.start()
    try:
        while not service.replay_done.is_set():
            await service.price_job()
    finally:
        await service.stop()
    rows = store.due(now=2**62, limit=10_000)
    store.close()
    return rows


async def test_confirmed_alerts_once_through_the_outbox_and_after_a_restart(
        tmp_path: Path) -> None:
    cfg = replace(positions_config(), bot=replace(Config().bot, store=str(tmp_path / "c.db")))
    rows = await replay_confirmed(cfg, "/subscribe BTC 300k 1 confirmed")
    events = [r.event for r in rows]
    assert events and all(e.kind is EventKind.CONFIRMED for e in events)  # estimate: not followed
    assert len({(e.chat, e.ref) for e in events}) == len(events)  # once per cluster
    assert all(e.notional_usd >= 300_000 and abs(e.distance_pct) <= 1 for e in events)
    # a restarted process (same store, replay resumed) queues nothing again
    again = await replay_confirmed(cfg, "/subscribe BTC 300k 1 confirmed")
    assert [r.event for r in again] == events
    # delivered once each
    store = Store(cfg.bot.store)
    out = io.StringIO()
    stats = await Dispatcher(store, {"console": ConsoleNotifier(out)}).run_once()
    assert stats.sent == len(events) and stats.failed == 0
    assert (await Dispatcher(store, {"console": ConsoleNotifier(out)}).run_once()).sent == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == len(events)
    assert all("real positions on Hyperliquid" in line or "real position on" in line
               for line in lines)
    assert not any("estimate" in line.lower() for line in lines)
    store.close()


async def test_both_follows_both_and_estimate_word_drops_confirmed(tmp_path: Path) -> None:
    cfg = replace(positions_config(), bot=replace(Config().bot, store=str(tmp_path / "b.db")))
    store = Store(cfg.bot.store)
    service, core = make_service(cfg, store, [])
    reply = await core.handle("/subscribe BTC 300k 1 both", private())
    assert not reply.error and "estimated clusters (a model) and confirmed ones" in reply.text
    chat = store.find_chat("console", "c1")
    assert chat is not None
    assert [s.symbol for s in store.list_subscriptions(chat.id)] == [SYMBOL]
    assert [s.symbol for s in store.confirmed_subscriptions(chat=chat.id)] == [SYMBOL]
    listed = (await core.handle("/alerts", private())).text
    assert f"Confirmed cluster alerts (real positions on Hyperliquid):\n  {SYMBOL}: confirmed " \
           "clusters ≥ $300K, within 1 %" in listed
    await core.handle("/subscribe BTC 300k 1 estimate", private())
    assert store.confirmed_subscriptions(chat=chat.id) == []
    await core.handle("/subscribe BTC 300k 1 confirmed", private())
    assert store.list_subscriptions(chat.id) == []
    assert (await core.handle("/unsubscribe BTC", private())).text == f"Unsubscribed from {SYMBOL}."
    assert store.confirmed_subscriptions(chat=chat.id) == []
    store.close()


async def test_confirmed_refused_without_positions_config() -> None:
    from tests.bot.helpers import started_service
    service, core, store = await started_service()
    reply = await core.handle("/subscribe BTC 100m 0.5 confirmed", private())
    assert reply.error and "Confirmed levels are off on this bot" in reply.text
    store.close()


def test_discord_embed_of_a_confirmed_alert_says_exchange_data() -> None:
    from bot.discord_embeds import alert_embed
    from bot.dispatcher import Alert
    view = view_at({address(1): state(position("BTC", 1.0, 100_000, 99_000))}, "BTC", 1,
                   100_000.0, GRID)
    (ev,) = confirmed_events([ConfirmedSubscription(1, SYMBOL, 1.0, 2.0)], view, SYMBOL,
                             100_000.0, 1, GRID)
    embed = alert_embed(Alert(render(ev), ev, ev.dedupe_key))
    assert embed.title == f"{SYMBOL} · Confirmed: real positions (Hyperliquid)"
    assert "estimate" not in (embed.footer.text or "").lower()
