"""Receipt kill worker: the real service over the bundled replay with a recorded tape, killed
with SIGKILL by itself right after the tick that queued a given cluster's break (before its
receipt is due). tests/bot/test_receipts.py restarts from the same store file.

    python -m tests.bot.receipt_kill_worker STORE LIQS_CSV PLATFORM CHAT_ID REF
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace

from bot.commands.reply import Caller
from bot.config import Config
from bot.store import Store
from bot.wiring import make_service
from tests.bot.helpers import tape_config


async def main(store_path: str, liqs: str, platform: str, chat_id: str, ref: str) -> None:
    cfg = replace(tape_config(liqs), bot=replace(Config().bot, store=store_path))  # type: ignore[arg-type]
    store = Store(store_path)
    service, core = make_service(cfg, store, [])
    group = platform == "discord"
    await core.handle("/subscribe BTC 1m 0.5", Caller(platform, chat_id, "u1", is_group=group,
                                                      is_admin=group))
    await service.start()
    assert service.scheduler is not None
    service.scheduler.shutdown(wait=False)  # this process drives the virtual clock
    while not store.db.execute("SELECT 1 FROM outbox WHERE kind = 'break' AND ref = ?",
                               (ref,)).fetchone():
        await service.price_job()
    os.kill(os.getpid(), signal.SIGKILL)  # no stop, no close: kill -9


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
