"""Sweep receipts (issue 18): receipt_minutes after a break, what the tape saw in the broken
cluster, the estimate and a control band — queued once per break through the outbox, restart-
safe, and delivered as a reply to the break message (Telegram reply_parameters, Discord message
reference; the console names the alert it answers)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.messages import render
from bot.audit.receipts import DueReceipt, control_band, due_from_break, receipt_event
from bot.commands.reply import Caller
from bot.config import Config
from bot.console import ConsoleNotifier
from bot.dispatcher import Dispatcher
from bot.market.replay import load_csv
from bot.store import Store
from bot.tape.events import Liquidation
from bot.wiring import make_service
from tests.bot.helpers import SYMBOL, replay_config, tape_config, write_liqs
from tests.bot.test_alert_lifecycle import CHANNEL, TG_CHAT, platform
from tests.bot.test_tape_alerts import replay_alerts, run_to_end

T0 = 1_764_000_000_000


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22 deprecation warning otherwise


def liq(t: int, usd: float, price: float, side: str = "long") -> Liquidation:
    return Liquidation("binanceusdm", t, SYMBOL, side, price, usd / price, usd)  # type: ignore[arg-type]


def due(**kw: Any) -> DueReceipt:
    base = dict(chat=1, ref="L91000", epoch=0, symbol=SYMBOL, side="long", low=91_000.0,
                high=91_400.0, pre_price=92_000.0, break_ms=T0, since_ms=T0 - 60_000,
                due_ms=T0 + 15 * 60_000, estimate_usd=120e6, proxy=True)
    return DueReceipt(**{**base, **kw})  # type: ignore[arg-type]


# --- the receipt itself -------------------------------------------------------------------------
def test_control_band_is_the_mirror_around_the_pre_break_price() -> None:
    assert control_band(91_000.0, 91_400.0, 92_000.0, "long") == (92_600.0, 93_000.0)
    assert control_band(93_000.0, 93_500.0, 92_000.0, "short") == (90_500.0, 91_000.0)
    # Price was inside the cluster before the break: the band starts at the cluster's edge
    # on the other side (a control never shares a price with the cluster).
    assert control_band(91_000.0, 91_400.0, 91_200.0, "long") == (91_400.0, 91_800.0)
    assert control_band(91_000.0, 91_400.0, 91_200.0, "short") == (90_600.0, 91_000.0)


def test_receipt_counts_the_tape_in_the_cluster_since_the_break_and_the_control() -> None:
    r = due()
    tape = ([liq(T0 + i * 1_000, 75_000.0, 91_200.0) for i in range(40)]
            + [liq(T0 + 50_000, 0.0 + 3e6 - 40 * 75_000.0, 91_050.0),  # 41 events, $3.0M
               liq(T0 + 60_000, 200_000.0, 92_800.0),  # the control band above
               liq(T0 + 70_000, 5e6, 91_200.0, side="short"),  # other side: not counted
               liq(T0 - 120_000, 5e6, 91_200.0),  # before the tick that broke it
               liq(T0 + 15 * 60_000, 5e6, 91_200.0)])  # at the due time: after the window
    e = receipt_event(r, tape, price=90_900.0)
    assert (e.kind, e.chat, e.ref, e.epoch) == (EventKind.RECEIPT, 1, "L91000", 0)
    assert e.tape_count == 41 and e.tape_usd == pytest.approx(3e6)
    assert e.control_usd == pytest.approx(2e5)
    text = render(e)
    assert text.startswith("🧾 Receipt BTC/USDT:USDT 91,000–91,400 long (broke ")
    assert ("tape saw $3.0M of long liquidations (41) in 15 min; estimate $120M (proxy "
            "units); control band above: $200K · tape = exchange data; estimate = ") in text
    assert "under-report" in text
    # Round trip through the outbox payload.
    assert AlertEvent.from_dict(e.to_dict()) == e


def test_a_break_asks_for_its_receipt_receipt_minutes_later() -> None:
    brk = AlertEvent(EventKind.BREAK, 3, SYMBOL, "S94000", 2, price=94_700.0, ts_ms=T0,
                     side="short", low=94_000.0, high=94_400.0, notional_usd=1e9)
    r = due_from_break(brk, 93_800.0, T0 - 60_000, 15, proxy=False)
    assert (r.chat, r.ref, r.epoch, r.due_ms, r.since_ms) == (3, "S94000", 2, T0 + 900_000,
                                                              T0 - 60_000)
    assert control_band(r.low, r.high, r.pre_price, r.side) == (93_200.0, 93_600.0)
    assert "control band below" in render(receipt_event(r, [], 94_700.0))
    assert "(USD)" in render(receipt_event(r, [], 94_700.0))


# --- store: exactly once ----------------------------------------------------------------------
def test_a_receipt_waits_for_its_break_row_and_is_queued_once(store: Store) -> None:
    from bot.alerts import SymbolState
    chat = store.upsert_chat("console", "c").id
    r = due(chat=chat)
    assert store.add_receipts_due([r]) == 1 and store.add_receipts_due([r]) == 0
    # Crash between the receipt row and the break's row: nothing is due without the break.
    assert store.receipts_due(SYMBOL, r.due_ms) == []
    brk = AlertEvent(EventKind.BREAK, chat, SYMBOL, r.ref, r.epoch, price=90_900.0, ts_ms=T0,
                     side="long", low=r.low, high=r.high, notional_usd=r.estimate_usd)
    store.commit_tick(SYMBOL, SymbolState(), None, [brk], now=T0)
    assert store.receipts_due(SYMBOL, r.due_ms - 1) == []  # not yet
    [got] = store.receipts_due(SYMBOL, r.due_ms)
    assert got == r
    e = receipt_event(got, [], 90_900.0)
    assert store.commit_receipts([e], T0) == 1
    assert store.receipts_due(SYMBOL, r.due_ms) == []
    assert store.commit_receipts([e], T0) == 0  # a repeat cannot queue a second one
    assert store.receipt_captures(SYMBOL, 0) == [0.0]
    store.close()


# --- through the service: replayed candles and tape ---------------------------------------------
async def find_break(tmp_path: Path) -> AlertEvent:
    plain = replace(replay_config(), bot=replace(Config().bot, store=str(tmp_path / "p.db")))
    return next(e for e in await replay_alerts(plain, "/subscribe BTC 1m 0.5")
                if e.kind is EventKind.BREAK)


def pre_break_price(brk: AlertEvent) -> float:
    """The close of the tick before the break (the engine's previous price)."""
    c = load_csv(Path(__file__).resolve().parents[2] / "bot" / "data" / "btcusd_coinbase_1h.csv")
    step = 3_600_000
    [i] = np.nonzero(c.timestamp == brk.ts_ms - 2 * step)[0]
    return float(c.close[i])


def tape_rows(brk: AlertEvent) -> list[tuple[int, str, float, float]]:
    assert brk.low is not None and brk.high is not None and brk.side
    from bot.audit.receipts import control_band

    mid, pre = (brk.low + brk.high) / 2, pre_break_price(brk)
    c_lo, c_hi = control_band(brk.low, brk.high, pre, brk.side)
    return [(brk.ts_ms - 1_000, brk.side, mid, 3e6),  # while price broke it
            (brk.ts_ms + 60_000, brk.side, mid, 1e6),  # after the break, within 15 min
            (brk.ts_ms + 30 * 60_000, brk.side, mid, 7e6),  # after the receipt's window
            (brk.ts_ms + 90_000, brk.side, (c_lo + c_hi) / 2, 2e5)]  # in the control band


def receipts_of(events: list[AlertEvent], ref: str) -> list[AlertEvent]:
    return [e for e in events if e.kind is EventKind.RECEIPT and e.ref == ref]


async def test_every_break_gets_one_receipt_with_the_tape_and_the_control(
        tmp_path: Path) -> None:
    brk = await find_break(tmp_path)
    cfg = replace(tape_config(write_liqs(tmp_path / "liqs.csv", tape_rows(brk))),
                  bot=replace(Config().bot, store=str(tmp_path / "t.db")))
    events = await replay_alerts(cfg, "/subscribe BTC 1m 0.5")
    breaks = [e for e in events if e.kind is EventKind.BREAK]
    receipts = [e for e in events if e.kind is EventKind.RECEIPT]
    assert breaks and sorted((e.ref, e.epoch) for e in receipts) == sorted(
        (e.ref, e.epoch) for e in breaks)
    [r] = receipts_of(events, brk.ref)
    assert r.tape_count == 2 and r.tape_usd == pytest.approx(4e6)
    assert r.control_usd == pytest.approx(2e5) and r.notional_usd == brk.notional_usd
    assert r.since_ms == brk.ts_ms and r.ts_ms == brk.ts_ms + 15 * 60_000
    assert events.index(r) > events.index(next(e for e in breaks if e.ref == brk.ref))
    # The same store re-played (a restart after the end) queues nothing new.
    assert await replay_alerts(cfg, "/subscribe BTC 1m 0.5") == events


def caller(name: str) -> Caller:
    if name == "telegram":
        return Caller("telegram", str(TG_CHAT), "u1")
    if name == "discord":
        return Caller("discord", str(CHANNEL), "u1", is_group=True, is_admin=True)
    return Caller("console", "console", "u1")


def reply_ids(name: str, p: Any, out: io.StringIO) -> list[tuple[str, str | None, str]]:
    """(message id, the id it replies to, text) of every message the chat got."""
    if name == "telegram":
        return [(str(m["message_id"]), None if m["reply_to"] is None else str(m["reply_to"]),
                 m["text"]) for m in p.fake.sent_to(TG_CHAT)]
    if name == "discord":
        return [(m["id"], str(m.get("message_reference", {}).get("message_id")),
                 m["embeds"][0]["description"]) for m in p.fake.messages[CHANNEL]]
    return [(str(i + 1), None, line) for i, line in enumerate(out.getvalue().splitlines())]


@pytest.mark.parametrize("name", ["telegram", "discord", "console"])
async def test_a_kill_9_between_break_and_receipt_still_sends_one_receipt_replying_to_the_break(
        name: str, tmp_path: Path) -> None:
    brk = await find_break(tmp_path)
    path = tmp_path / "live.db"
    cfg = replace(tape_config(write_liqs(tmp_path / "liqs.csv", tape_rows(brk))),
                  bot=replace(Config().bot, store=str(path)))
    out = io.StringIO()
    async with platform(name if name != "console" else "telegram") as (p, connect):
        # Process 1: a real process replays until the break is queued and is then killed
        # (SIGKILL): every commit so far is all that survives.
        proc = subprocess.run(
            [sys.executable, "-m", "tests.bot.receipt_kill_worker", str(path),
             str(tmp_path / "liqs.csv"), name, caller(name).chat_id, brk.ref],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
            timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        store = Store(path)
        chat = store.find_chat(name, caller(name).chat_id)
        assert chat is not None

        def queued(kind: str) -> int:
            return int(store.db.execute(
                "SELECT COUNT(*) FROM outbox WHERE kind = ? AND ref = ? AND chat = ?",
                (kind, brk.ref, chat.id)).fetchone()[0])

        assert queued("break") == 1 and queued("receipt") == 0
        assert store.db.execute("SELECT COUNT(*) FROM receipts WHERE ref = ? AND done = 0",
                                (brk.ref,)).fetchone()[0] == 1
        # The break is delivered (its message id kept), then the bot starts again.
        console = ConsoleNotifier(out)
        async with connect() as notifier:
            n = notifier if name != "console" else console
            await Dispatcher(store, {name: n}).run_once()
        # Process 2: the same file, the replay resumed from its last committed tick.
        store2 = Store(path)
        service2, _ = make_service(cfg, store2, [])
        await service2.start()
        assert service2.scheduler is not None
        service2.scheduler.shutdown(wait=False)
        await run_to_end(service2)
        async with connect() as notifier:
            n = notifier if name != "console" else console
            await Dispatcher(store2, {name: n}).run_once()
        rows = store2.db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'receipt' AND"
                                 " ref = ? AND chat = ?", (brk.ref, chat.id)).fetchone()[0]
        assert rows == 1
        msgs = reply_ids(name, p, out)
        receipts = [m for m in msgs if "Receipt" in m[2]]
        assert len(receipts) >= 1
        mine = [m for m in receipts if "tape saw $4.0M" in m[2]]
        assert len(mine) == 1  # exactly one receipt for the cluster with the tape
        break_id = store2.thread(chat.id, brk.ref)
        assert break_id is not None and break_id.closed
        if name == "console":
            assert msgs[int(mine[0][0]) - 1][2].startswith(
                f"ALERT (reply to alert {break_id.message_id}) 🧾 Receipt")
        else:
            assert mine[0][1] == break_id.message_id  # threaded under the break message
            assert any(m[0] == break_id.message_id and "broke through" in m[2] for m in msgs)
        store2.close()
        store.close()

