"""``liqbot run --role X --config F`` as real processes on the test PostgreSQL server: each
role starts and stops cleanly (exit 0), and a market worker killed with SIGKILL has its symbol
taken over by the other within 2 × the lease time. (The full multi-process kill test with
alerts compared key by key is tests/bot/test_roles_e2e.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.alerts import SymbolState
from bot.leases import MARKET_JOBS
from bot.store import Store
from tests.bot.engine_helpers import SYM
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.test_roles_dispatch import event

REPO = Path(__file__).resolve().parents[2]
LEASE_S = 3  # the smallest [cluster] lease_seconds


class Proc:
    def __init__(self, role: str, cfg: Path, dsn: str, log: Path) -> None:
        self.log = log
        env = {**os.environ, "LIQBOT_TEST_DSN": dsn, "PYTHONUNBUFFERED": "1"}
        with log.open("w") as err:  # the child keeps its own descriptor
            self.p = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run", "--role", role, "--config", str(cfg)],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout_s: float = 30) -> None:
        end = time.monotonic() + timeout_s
        while needle not in self.text():
            assert self.p.poll() is None, f"exited {self.p.returncode}: {self.text()[-2000:]}"
            assert time.monotonic() < end, f"no {needle!r} in: {self.text()[-2000:]}"
            time.sleep(0.1)

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout=20)


def config(tmp_path: Path, worker: str) -> Path:
    path = tmp_path / f"{worker}.toml"
    path.write_text(f"""[bot]
store_dsn_env = "LIQBOT_TEST_DSN"
[schedule]
price_seconds = 0.5
[console]
enabled = false
[cluster]
worker = "{worker}"
lease_seconds = {LEASE_S}
""")
    return path


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()


def owners(dsn: str) -> dict[str, str]:
    store = Store(dsn=dsn)
    try:
        return {str(r["symbol"]): str(r["owner"]) for r in store.db.query(
            "SELECT symbol, owner FROM symbol_leases WHERE expires_ms > ?",
            (int(time.time() * 1000),))}
    finally:
        store.close()


def test_each_role_runs_and_stops_cleanly(pg_dsn: str, tmp_path: Path,
                                          procs: list[Proc]) -> None:
    for role in ("dispatch", "chat", "market"):
        p = Proc(role, config(tmp_path, role), pg_dsn, tmp_path / f"{role}.log")
        procs.append(p)
        p.wait_for(f"liqbot running (role {role})")
    assert owners(pg_dsn) == {SYM: "market", MARKET_JOBS: "market"}
    for p in procs:
        assert p.stop() == 0, p.text()[-2000:]
        assert "Traceback" not in p.text()
    assert owners(pg_dsn) == {}  # a clean stop hands the leases back


def test_a_killed_market_workers_symbol_moves_within_two_lease_times(
        pg_dsn: str, tmp_path: Path, procs: list[Proc]) -> None:
    first = Proc("market", config(tmp_path, "m1"), pg_dsn, tmp_path / "m1.log")
    procs.append(first)
    first.wait_for("liqbot running (role market)")
    second = Proc("market", config(tmp_path, "m2"), pg_dsn, tmp_path / "m2.log")
    procs.append(second)
    second.wait_for("liqbot running (role market)")
    assert owners(pg_dsn)[SYM] == "m1"
    first.p.kill()  # SIGKILL: no clean stop, the leases stay until they expire
    first.p.wait()
    killed = time.monotonic()
    while owners(pg_dsn).get(SYM) != "m2":
        assert time.monotonic() - killed < 2 * LEASE_S, "not taken over within 2 × TTL"
        time.sleep(0.1)
    assert owners(pg_dsn).get(MARKET_JOBS) == "m2"
    assert second.stop() == 0, second.text()[-2000:]


async def run_role(role: str, cfg: Path, dsn: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("w") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--role", role, "--config", str(cfg),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "LIQBOT_TEST_DSN": dsn,
                 "TELEGRAM_TOKEN": TOKEN})


async def running(proc: asyncio.subprocess.Process, log: Path, role: str) -> None:
    for _ in range(300):
        assert proc.returncode is None, log.read_text()[-2000:]
        if f"liqbot running (role {role})" in log.read_text():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(log.read_text()[-2000:])


async def test_dispatch_sends_without_receiving_and_chat_answers_without_sending(
        pg_dsn: str, tmp_path: Path) -> None:
    """Telegram behind the loopback fake: a dispatch worker connects for sending only (no
    polling, no command menu) and sends the queued alert; a chat worker answers a command
    and leaves the queued alerts to the dispatchers."""
    store = Store(dsn=pg_dsn)
    try:
        async with FakeTelegram() as tg:
            chat = store.upsert_chat("telegram", "4242").id
            store.commit_tick(SYM, SymbolState(), [], [event(chat, "R1")])
            cfg = tmp_path / "tg.toml"
            cfg.write_text(config(tmp_path, "tg").read_text()
                           + f'[telegram]\nenabled = true\nbase_url = "{tg.base_url}"\n')
            log = tmp_path / "dispatch.log"
            proc = await run_role("dispatch", cfg, pg_dsn, log)
            await running(proc, log, "dispatch")
            sent = await tg.wait_sent(1)
            assert "4242" in str(sent[0].get("chat_id"))
            assert tg.count("getUpdates") == tg.count("setMyCommands") == 0
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0, log.read_text()[-2000:]

            store.commit_tick(SYM, SymbolState(), [], [event(chat, "R2")])
            log = tmp_path / "chat.log"
            proc = await run_role("chat", cfg, pg_dsn, log)
            await running(proc, log, "chat")
            before = len(tg.sent_to(4242))
            tg.command({"id": 4242, "type": "private"},
                       {"id": 7, "is_bot": False, "first_name": "u"}, "/help")
            await tg.wait_sent(before + 1)
            await asyncio.sleep(1.0)
            assert store.outbox_counts()["pending"] == 1  # R2 waits for a dispatcher
            texts = [str(m.get("text", "")) for m in tg.sent_to(4242)[before:]]
            assert len(texts) == 1 and "/levels" in texts[0]  # the /help answer only
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0, log.read_text()[-2000:]
    finally:
        store.close()
