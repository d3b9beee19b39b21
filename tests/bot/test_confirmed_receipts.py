"""Receipts of confirmed clusters (issues 18 + 17): when price trades through a confirmed cluster
(real Hyperliquid positions) that a chat follows and the tape is on, the chat gets a sweep
receipt ``receipt_minutes`` later — the same receipts as estimated breaks, worded with the
confirmed size ("confirmed: N real positions on Hyperliquid, $X"), never an estimate; exactly
once per chat and break, also across a kill -9 between break and receipt, replying to the
chat's confirmed alert on that cluster."""

from __future__ import annotations

import io
import json
import math
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.messages import render
from bot.audit.receipts import DueReceipt, receipt_event
from bot.config import Config, TapeSection
from bot.console import ConsoleNotifier
from bot.dispatcher import Dispatcher
from bot.hyperliquid.alerts import ConfirmedSubscription, confirmed_breaks
from bot.hyperliquid.confirmed import view_at
from bot.store import Store
from bot.wiring import make_service
from estimator import PriceGrid
from tests.bot.fake_hyperliquid import address, position, state
from tests.bot.helpers import SYMBOL, private, write_liqs
from tests.bot.test_hyperliquid_service import SNAPS, positions_config
from tests.bot.test_tape_alerts import run_to_end

ROOT = Path(__file__).resolve().parents[2]
C1, C2 = private(chat="c1"), private(user="u2", chat="c2")
# c1 follows confirmed clusters of ≥ $10K; c2 only of ≥ $5M (none of the synthetic ones).
COMMANDS = ((C1, "/subscribe BTC 10k 1 confirmed"), (C2, "/subscribe BTC 5m 1 confirmed"))


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


def confirmed_tape_config(store: str, liqs: str) -> Config:
    """The synthetic Hyperliquid replay (candles + positions snapshots) with a recorded tape."""
    return replace(positions_config(), tape=TapeSection(enabled=True, path=liqs),
                   bot=replace(Config().bot, store=store))


async def replay(cfg: Config) -> list[AlertEvent]:
    store = Store(cfg.bot.store)
    service, core = make_service(cfg, store, [])
    for caller, text in COMMANDS:
        reply = await core.handle(text, caller)
        assert reply is not None and not reply.error
    await service.start()
    try:
        await run_to_end(service)
    finally:
        await service.stop()
    events = [r.event for r in store.due(now=2**62, limit=10_000)]
    store.close()
    return events


def truth(t_ms: int, side: str, low: float, high: float) -> tuple[int, float]:
    """(positions, USD) of BTC positions of ``side`` liquidating in [low, high) in each
    wallet's latest snapshot at or before ``t_ms``, read straight from the snapshot file."""
    latest: dict[str, dict[str, Any]] = {}
    for line in SNAPS.read_text().splitlines():
        row = json.loads(line)
        if row["time"] <= t_ms and row["time"] >= latest.get(row["user"], {}).get("time", -1):
            latest[row["user"]] = row
    n, usd = 0, list[float]()
    for row in latest.values():
        for ap in row["state"]["assetPositions"]:
            p = ap["position"]
            szi, liq = float(p["szi"]), p["liquidationPx"]
            if p["coin"] != "BTC" or liq is None or (szi < 0) != (side == "short"):
                continue
            if low <= float(liq) < high:
                n, usd = n + 1, [*usd, abs(float(p["positionValue"]))]
    return n, math.fsum(usd)


async def find_confirmed_break(tmp_path: Path) -> AlertEvent:
    """The confirmed receipt of a replay with an empty tape: which cluster broke, when."""
    cfg = confirmed_tape_config(str(tmp_path / "find.db"),
                                str(write_liqs(tmp_path / "empty.csv", [])))
    [r] = [e for e in await replay(cfg) if e.kind is EventKind.RECEIPT]
    return r


def tape_rows(r: AlertEvent) -> list[tuple[int, str, float, float]]:
    assert r.low is not None and r.high is not None and r.side and r.since_ms is not None
    brk, mid = r.since_ms, (r.low + r.high) / 2
    other = "long" if r.side == "short" else "short"
    pre = r.level_price or 0.0
    c_mid = 2 * pre - mid  # the mirror of the cluster around the pre-break price
    return [(brk + 60_000, r.side, mid, 1e6),  # inside, after the break: counted
            (brk + 120_000, r.side, mid, 5e5),  # counted
            (brk + 100_000, other, mid, 9e6),  # the other side: not counted
            (brk + 90_000, r.side, c_mid, 2e5),  # the control band
            (brk + 30 * 60_000, r.side, mid, 7e6)]  # after the receipt's window


# --- the rule and the wording -------------------------------------------------------------------
def test_a_confirmed_break_asks_for_a_receipt_worded_with_the_confirmed_size() -> None:
    grid = PriceGrid.relative(0.1)
    a, b, c = address(1), address(2), address(3)
    states = {a: state(position("BTC", -1.0, 100_000, 101_000)),
              b: state(position("BTC", -2.0, 100_000, 101_010)),
              c: state(position("BTC", 1.0, 100_000, 99_000))}
    view = view_at(states, "BTC", 1, 100_500.0, grid)
    subs = [ConfirmedSubscription(7, SYMBOL, 250_000.0, 1.0),
            ConfirmedSubscription(8, SYMBOL, 5e6, 1.0)]
    t = 1_764_000_000_000
    # The tick's high crosses the short cluster's far edge from below: a break (chat 7 only:
    # $300K is under chat 8's $5M); the long cluster 1.5 % below is untouched.
    [r] = confirmed_breaks(subs, view, SYMBOL, 100_500.0, 101_200.0, 100_400.0, t - 60_000, t,
                           grid, 15)
    assert (r.chat, r.side, r.positions, r.estimate_usd, r.epoch) == (7, "short", 2, 300_000.0, 0)
    assert (r.break_ms, r.due_ms, r.pre_price) == (t, t + 900_000, 100_500.0)
    # Touching without crossing the far edge, or no previous price: no break.
    assert confirmed_breaks(subs, view, SYMBOL, 100_500.0, 101_000.0, 100_400.0, 0, t, grid,
                            15) == []
    assert confirmed_breaks(subs, view, SYMBOL, None, 102_000.0, 100_400.0, 0, t, grid, 15) == []
    e = receipt_event(r, [], 101_300.0)
    assert e.positions == 2 and AlertEvent.from_dict(e.to_dict()) == e
    text = render(e)
    assert "confirmed: 2 real positions on Hyperliquid, $300K" in text
    assert "tape saw $0 of short liquidations (0) in 15 min" in text
    assert "control band below" in text and "estimate" not in text.lower()
    # Discord: the embed's fields and footer say the same, never "estimate".
    from bot.discord_embeds import alert_embed
    from bot.dispatcher import Alert
    embed = alert_embed(Alert(text, e, e.dedupe_key))
    shown = [embed.title, embed.description, embed.footer.text,
             *(f"{f.name} {f.value}" for f in embed.fields)]
    assert "Real positions 2, $300K" in shown
    assert not any("estimate" in (s or "").lower() for s in shown), shown


def test_a_confirmed_receipt_needs_no_break_row_and_is_queued_once() -> None:
    store = Store(memory=True)
    chat = store.upsert_chat("console", "c").id
    r = DueReceipt(chat, "hl:short:11584", 0, SYMBOL, "short", 101_000.0, 101_100.0, 100_500.0,
                   1_000, 0, 901_000, 300_000.0, False, positions=2)
    assert store.add_receipts_due([r]) == 1 and store.add_receipts_due([r]) == 0
    assert store.receipts_due(SYMBOL, 900_999) == []
    [got] = store.receipts_due(SYMBOL, 901_000)
    assert got == r
    assert store.commit_receipts([receipt_event(got, [], 101_300.0)], 1) == 1
    assert store.receipts_due(SYMBOL, 10**9) == []
    assert store.commit_receipts([receipt_event(got, [], 101_300.0)], 1) == 0
    assert store.receipt_captures(SYMBOL, 0) == []  # the estimate's scoreboard: not these
    store.close()


# --- replayed snapshots + replayed tape through the service ------------------------------------
async def test_replay_gives_one_confirmed_receipt_per_chat_and_break(tmp_path: Path) -> None:
    found = await find_confirmed_break(tmp_path)
    liqs = write_liqs(tmp_path / "liqs.csv", tape_rows(found))
    cfg = confirmed_tape_config(str(tmp_path / "r.db"), str(liqs))
    events = await replay(cfg)
    receipts = [e for e in events if e.kind is EventKind.RECEIPT]
    store = Store(cfg.bot.store)
    c1, c2 = (store.find_chat("console", c.chat_id) for c in (C1, C2))
    assert c1 is not None and c2 is not None
    [r] = receipts  # one break, one following chat (c2's $5M is more than the cluster)
    assert r.chat == c1.id and r.ref == found.ref and r.ref.startswith("hl:")
    assert r.since_ms is not None and r.since_ms == found.since_ms
    assert r.ts_ms == r.since_ms + 15 * 60_000
    # What the tape saw, and the control band.
    assert r.tape_count == 2 and r.tape_usd == pytest.approx(1.5e6)
    assert r.control_usd == pytest.approx(2e5)
    # The confirmed size, recounted from the snapshot file at the break.
    assert r.low is not None and r.high is not None and r.side and r.since_ms is not None
    n, usd = truth(r.since_ms, r.side, r.low, r.high)
    assert n >= 1 and r.positions == n and r.notional_usd == pytest.approx(usd)
    assert r.level_price is not None and (r.level_price < r.high if r.side == "short"
                                          else r.level_price > r.low)  # came from the near side
    text = render(r)
    assert f"confirmed: {n} real position" in text and "tape saw $1.5M" in text
    assert "estimate" not in text.lower()
    # The same store re-played (a restart after the end) queues nothing new.
    assert await replay(cfg) == events
    store.close()


async def test_a_kill_9_between_confirmed_break_and_receipt_still_sends_one_reply(
        tmp_path: Path) -> None:
    found = await find_confirmed_break(tmp_path)
    liqs = write_liqs(tmp_path / "liqs.csv", tape_rows(found))
    path = tmp_path / "live.db"
    proc = subprocess.run([sys.executable, "-m", "tests.bot.confirmed_receipt_kill_worker",
                           str(path), str(liqs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    store = Store(path)
    chat = store.find_chat("console", C1.chat_id)
    assert chat is not None
    assert store.db.execute("SELECT COUNT(*) FROM receipts WHERE ref = ? AND done = 0",
                            (found.ref,)).fetchone()[0] == 1
    assert store.db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'receipt'"
                            ).fetchone()[0] == 0
    # What was queued before the kill is delivered (the confirmed alert's message id kept) ...
    out = io.StringIO()
    console = ConsoleNotifier(out)  # one process's console: its alert numbers run on
    await Dispatcher(store, {"console": console}).run_once()
    # ... then the bot starts again on the same file and the replay resumes.
    cfg = confirmed_tape_config(str(path), str(liqs))
    store2 = Store(path)
    service2, _ = make_service(cfg, store2, [])
    await service2.start()
    assert service2.scheduler is not None
    service2.scheduler.shutdown(wait=False)
    await run_to_end(service2)
    await Dispatcher(store2, {"console": console}).run_once()
    assert store2.db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'receipt' AND ref = ?",
                             (found.ref,)).fetchone()[0] == 1
    lines = out.getvalue().splitlines()
    mine = [line for line in lines if "Receipt" in line]
    assert len(mine) == 1 and "tape saw $1.5M" in mine[0] and "confirmed: " in mine[0]
    thread = store2.thread(chat.id, found.ref)
    assert thread is not None  # the chat's confirmed alert on the cluster
    assert mine[0].startswith(f"ALERT (reply to alert {thread.message_id}) 🧾 Receipt")
    assert "real position" in lines[int(thread.message_id) - 1]
    store2.close()
    store.close()
