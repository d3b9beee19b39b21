"""``liqbot run`` stops within 5 s during a platform outage (issue 24, item 3).

A real ``liqbot run`` subprocess with Telegram (PTB 22, ``telegram.base_url``) and Discord
(discord.py 2.x, REST base and gateway pointed at the fake by a launcher line) on the loopback
fakes, which keep serving in this test's loop. Alerts are pending at start; every send hangs
(never answered), and once the bot runs Telegram's long poll hangs too. SIGTERM → "stopped
(store integrity ok)" logged within 5 s, exit 0 (the interpreter's teardown included) within
6 s, no outbox row left 'sending' (those in flight are pending again). Before: the service's 4 s,
then each adapter in turn, Telegram's stop waiting on the dead server (over 6 s in all).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import SymbolState
from bot.store import Store
from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.fake_discord import FakeDiscord
from tests.bot.fake_telegram import PRIVATE, FakeTelegram
from tests.bot.test_dispatcher_fairness import SYM, approach

STOPPED = re.compile(r"^(\S+ \S+) INFO bot.run: stopped \(store integrity ok\)$", re.M)
CHANNEL = 555_000_000_000_000_001
STOP_S = 5.0  # issue 24: whatever the platforms are doing (Docker's default stop timeout: 10 s)
EXIT_MARGIN_S = 1.0  # the interpreter's teardown after the last log line (~0.5 s here)
CONFIG = """
[bot]
store = "{store}"
[source]
kind = "replay"
warmup_candles = 19_500
lookback_days = 60
[schedule]
recompute_seconds = 3600
dispatch_seconds = 0.2
[console]
enabled = false
[telegram]
enabled = true
base_url = "{telegram}"
[discord]
enabled = true
guild_ids = [7]
"""
# discord.py has no base URL setting: the launcher points its REST base and gateway at the fake.
LAUNCH = """
import os, sys, yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route
Route.BASE = os.environ["FAKE_DISCORD_BASE"]
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_DISCORD_GATEWAY"])
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def seed(path: Path) -> None:
    """One Telegram chat and one Discord channel, three fresh alerts each pending."""
    store = Store(path)
    now = int(time.time() * 1000)
    try:
        chats = [store.upsert_chat("telegram", PRIVATE["id"]).id,
                 store.upsert_chat("discord", CHANNEL, is_group=True).id]
        events = [approach(c, i)._replace(ts_ms=now) for c in chats for i in range(3)]
        assert store.commit_tick(SYM, SymbolState(), None, events, now=now) == len(events)
    finally:
        store.close()


async def wait_until(cond: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_run_stops_within_5_s_during_an_outage_and_leaves_rows_pending(
        tmp_path: Path) -> None:
    store_path = tmp_path / "bot.db"
    seed(store_path)
    outage_over = asyncio.Event()

    async def hang(p: dict[str, Any]) -> Any:  # a request the platform never answers
        await outage_over.wait()
        return []

    async with FakeTelegram() as tg, FakeDiscord() as dc:
        tg._m_sendMessage = hang  # type: ignore[method-assign]
        dc.failing[CHANNEL] = "hang"
        cfg = tmp_path / "config.toml"
        cfg.write_text(CONFIG.format(store=store_path, telegram=tg.base_url))
        err_path = tmp_path / "stderr.txt"
        with err_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LAUNCH, "run", "--config", str(cfg), cwd=tmp_path,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PTB_TIMEDELTA": "1",
                     "TELEGRAM_TOKEN": tg.token, "DISCORD_TOKEN": DISCORD_TOKEN,
                     "FAKE_DISCORD_BASE": dc.base, "FAKE_DISCORD_GATEWAY": dc.gateway_url})
        try:
            await wait_until(lambda: "liqbot running" in err_path.read_text(errors="replace")
                             or proc.returncode is not None, "liqbot running")
            assert proc.returncode is None, err_path.read_text()[-3000:]
            tg._m_getUpdates = hang  # type: ignore[method-assign]  # the whole platform is down
            await wait_until(lambda: tg.count("sendMessage") >= 1 and any(
                str(CHANNEL) in p.path for p in dc.posted), "sends in flight on both platforms")
            await asyncio.sleep(0.5)  # the next long poll is hanging too
            t0, signalled = time.monotonic(), time.time()
            proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(proc.wait(), STOP_S + EXIT_MARGIN_S)
            except TimeoutError:
                raise AssertionError(f"still running {STOP_S + EXIT_MARGIN_S} s after SIGTERM:"
                                     f"\n{err_path.read_text()[-3000:]}") from None
            took = time.monotonic() - t0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            outage_over.set()
        text = err_path.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert took < STOP_S + EXIT_MARGIN_S
        stopped = STOPPED.search(text)
        assert stopped is not None, text[-3000:]
        at = datetime.strptime(stopped[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        assert at - signalled < STOP_S, text[-3000:]
        assert tg.sent == [] and dc.messages[CHANNEL] == []
    store = Store(store_path)
    try:
        assert store.integrity_ok()
        counts = store.outbox_counts()
        assert counts.get("sending", 0) == 0, counts
        assert counts.get("pending", 0) == 6, counts
    finally:
        store.close()
