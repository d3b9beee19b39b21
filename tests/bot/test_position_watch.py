"""The /mypos watch (issue 19): stored per private chat, listed in /alerts, removed with
/unlevel wID or its button, alerts through the outbox exactly once, nothing in groups or logs.
"""

from __future__ import annotations

import logging

import pytest

from bot.alerts.events import EventKind
from bot.alerts.messages import render
from bot.fmt import price_text
from bot.position_watch import PositionWatch, watch_events
from estimator import Cluster
from tests.bot.helpers import SYMBOL, group, private, started_service

T0 = 1_700_000_000_000


def watch(**kw: object) -> PositionWatch:
    base = dict(id=3, chat=1, symbol=SYMBOL, side="long", entry=100.0, leverage=10.0,
                size_usd=None, liq_price=90.0, within_pct=2.0, near_epoch=T0, near_fired=False)
    return PositionWatch(**(base | kw))  # type: ignore[arg-type]


def long_cluster(low: float, high: float, cid: str = "L1") -> Cluster:
    return Cluster(cid, "long", low, high, (low + high) / 2, 5e6, (low / 100 - 1) * 100)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


# --- the rule ----------------------------------------------------------------------------------
def test_near_fires_once_per_arming_and_rearms_after_a_real_move_away():
    w = watch()
    events, w = watch_events(w, 95.0, 93.0, 93.5, 91.7, T0 + 1, [])  # low within 2 % of 90
    assert [(e.kind, e.ref, e.epoch) for e in events] == [(EventKind.POSITION, "pos:3:near", T0)]
    assert w.near_fired
    again, w = watch_events(w, 93.0, 92.0, 93.0, 91.0, T0 + 2, [])
    assert again == []  # still near: no second alert
    _, w = watch_events(w, 92.0, 93.5, 93.5, 92.0, T0 + 3, [])
    assert w.near_fired  # 3.7 % away: not yet twice the 2 %
    _, w = watch_events(w, 94.0, 95.0, 95.0, 94.0, T0 + 4, [])
    assert (w.near_fired, w.near_epoch) == (False, T0 + 4)  # 5.3 % away: re-armed
    events, _ = watch_events(w, 95.0, 91.5, 95.0, 91.5, T0 + 5, [])
    assert [(e.ref, e.epoch) for e in events] == [("pos:3:near", T0 + 4)]


def test_short_watch_is_near_from_the_high():
    w = watch(side="short", liq_price=110.0)
    assert watch_events(w, 100.0, 105.0, 107.0, 104.0, T0, [])[0] == []
    [e] = watch_events(w, 105.0, 106.0, 108.0, 105.0, T0, [])[0]
    assert e.ref == "pos:3:near" and e.side == "short"


def test_a_cluster_between_price_and_the_liquidation_breaking_alerts_once():
    w = watch()
    between = long_cluster(94.0, 95.0, "L94")
    beyond = long_cluster(85.0, 86.0, "L85")  # past the liquidation: not between
    above = long_cluster(97.0, 98.0, "L97")  # above the previous price: not between
    short = Cluster("S1", "short", 94.0, 95.0, 94.5, 5e6, -5.5)
    clusters = [between, beyond, above, short]
    assert watch_events(w, 96.0, 95.5, 96.0, 94.5, T0, clusters)[0] == []  # not through yet
    [e] = watch_events(w, 96.0, 95.0, 96.0, 93.9, T0, clusters)[0]
    assert (e.ref, e.epoch, e.low, e.high) == ("pos:3:L94", 0, 94.0, 95.0)
    text = render(e)
    assert text.startswith(f"🛡 {SYMBOL} broke the $5.0M long cluster 94.00–95.00 between "
                           "price and your long liquidation at 90.00 (watch #w3)")
    assert "estimate, not exchange data" in text
    no_previous = watch_events(w, None, 95.0, 96.0, 80.0, T0, clusters)[0]
    assert [e.ref for e in no_previous] == ["pos:3:near"]  # the first tick: no break


# --- through the command core, the store and the service ---------------------------------------
async def test_watch_is_stored_listed_and_removed_and_private():
    service, core, store = await started_service()
    try:
        price = service.board.get(SYMBOL).price
        entry = f"{price * 1.07:.0f}"
        refused = await core.handle(f"/mypos BTC long {entry} 10x watch 5", group("u1", True))
        assert refused.error and "private chat" in refused.text
        assert store.db.execute("SELECT COUNT(*) FROM position_watches").fetchone()[0] == 0

        plain = await core.handle(f"/mypos BTC long {entry} 10x", private())
        [button] = plain.buttons
        assert button.command == f"/mypos BTC long {entry} 10 watch"
        reply = await core.handle(button.command, private())  # the button: 2 % by default
        assert "Watching it as #w1" in reply.text and "within 2 %" in reply.text
        assert [b.command for b in reply.buttons] == ["/unlevel w1"]
        reply = await core.handle(f"/mypos BTC long {entry} 10x 50k watch 5", private())
        assert "Watching it as #w2" in reply.text
        chat = store.find_chat("console", "c1")
        [w1, w2] = store.list_position_watches(chat.id)
        assert (w2.side, w2.entry, w2.leverage, w2.size_usd, w2.within_pct) == (
            "long", float(entry), 10.0, 50_000.0, 5.0)
        listed = (await core.handle("/alerts", private())).text
        assert f"#w2 {SYMBOL} long 10x from {price_text(float(entry))}: liquidation " \
               f"{price_text(w2.liq_price)}, alert within 5 %" in listed
        # Another chat sees nothing and cannot remove it.
        assert "#w" not in (await core.handle("/alerts", private("u2", "c2"))).text
        assert (await core.handle("/unlevel w1", private("u2", "c2"))).error
        assert (await core.handle("/unlevel w1", private())).text == "Position watch #w1 removed."
        assert [w.id for w in store.list_position_watches(chat.id)] == [2]
    finally:
        store.close()


async def test_at_most_ten_watches_per_chat():
    service, core, store = await started_service()
    try:
        entry = f"{service.board.get(SYMBOL).price:.0f}"
        for i in range(10):
            assert not (await core.handle(f"/mypos BTC short {entry} {i + 2}x watch",
                                          private())).error
        refused = await core.handle(f"/mypos BTC short {entry} 20x watch", private())
        assert refused.error and refused.text.startswith(
            "this chat already watches 10 positions (the maximum)")
        assert len(store.list_position_watches(store.find_chat("console", "c1").id)) == 10
    finally:
        store.close()


async def test_the_near_alert_goes_through_the_outbox_exactly_once():
    service, core, store = await started_service()
    try:
        price = service.board.get(SYMBOL).price
        # 10x long from 7 % above price: liquidation ~3 % below price, within the 5 % asked.
        await core.handle(f"/mypos BTC long {price * 1.07:.0f} 10x watch 5", private())
        for _ in range(3):  # the same tick again (a retry, a restart) inserts nothing new
            await service.price_tick(SYMBOL)
        rows = store.db.execute("SELECT kind, ref, payload FROM outbox").fetchall()
        assert [(k, r) for k, r, _ in rows] == [("position", "pos:1:near")]
        [w] = store.active_position_watches(SYMBOL)
        assert w.near_fired
    finally:
        store.close()


async def test_telegram_watch_alert_is_delivered_once_and_never_logged(caplog):
    from tests.bot.fake_telegram import ANN, PRIVATE
    from tests.bot.test_telegram import running, texts

    caplog.set_level(logging.DEBUG)
    async with running() as h:
        price = h.service.board.get(SYMBOL).price
        entry = f"{price * 1.07:.2f}"
        await h.ask(PRIVATE, ANN, f"/mypos BTC long {entry} 10x watch 5")
        n = len(h.fake.sent)
        for _ in range(3):
            await h.service.price_tick(SYMBOL)
            await h.service.dispatch()
        alerts = [t for t in texts(h.fake.sent[n:]) if t.startswith("🛡")]
        [w] = h.store.active_position_watches(SYMBOL)
        assert alerts == [alerts[0]] and f"your long liquidation at {price_text(w.liq_price)}" \
            in alerts[0]
        listed = await h.ask(PRIVATE, ANN, "/alerts")
        assert "#w1" in listed["text"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged
    for secret in (entry, price_text(float(entry)), price_text(w.liq_price)):
        assert secret not in logged, secret
