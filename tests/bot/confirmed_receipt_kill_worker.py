"""Confirmed-receipt kill worker: the real service over the synthetic Hyperliquid replay (candles +
positions snapshots) with a recorded tape, killed with SIGKILL by itself right after the tick
in which a confirmed cluster broke (its receipt not yet due).
tests/bot/test_confirmed_receipts.py restarts from the same store file.

    python -m tests.bot.confirmed_receipt_kill_worker STORE LIQS_CSV
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bot.store import Store
from bot.wiring import make_service
from tests.bot.test_confirmed_receipts import COMMANDS, confirmed_tape_config


async def main(store_path: str, liqs: str) -> None:
    cfg = confirmed_tape_config(store_path, liqs)
    store = Store(store_path)
    service, core = make_service(cfg, store, [])
    for caller, text in COMMANDS:
        await core.handle(text, caller)
    await service.start()
    assert service.scheduler is not None
    service.scheduler.shutdown(wait=False)  # this process drives the virtual clock
    while not store.db.execute("SELECT 1 FROM receipts WHERE positions IS NOT NULL").fetchone():
        await service.price_job()
    os.kill(os.getpid(), signal.SIGKILL)  # no stop, no close: kill -9


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
