"""ConsoleNotifier: prints every alert, remembers only the most recent ones."""

from __future__ import annotations

import io

from bot.alerts.events import AlertEvent, EventKind
from bot.console import ConsoleNotifier
from bot.dispatcher import Alert
from bot.store import Store


async def test_a_long_run_keeps_a_bounded_memory_of_alerts() -> None:
    """A week of alerts must not pile up in the process: every one is printed, only the last
    ``keep`` stay in memory (the notifier used to keep all of them)."""
    out = io.StringIO()
    notifier = ConsoleNotifier(out, keep=50)
    chat = Store(memory=True).upsert_chat("console", "console")
    for i in range(5_000):
        ev = AlertEvent(kind=EventKind.LEVEL_CROSS, chat=chat.id, symbol="BTC/USDT:USDT",
                        ref="level:1", epoch=i, price=100.0, ts_ms=i, level_price=100.0)
        await notifier.send(chat, Alert(f"alert {i}", ev, ev.dedupe_key))
    assert notifier.count == 5_000
    assert out.getvalue().count("\n") == 5_000 and out.getvalue().endswith("ALERT alert 4999\n")
    assert len(notifier.sent) == 50
    assert [a.text for a in notifier.sent][0] == "alert 4950"
