"""Harness of the multi-process e2e (tests/bot/test_roles_e2e.py): ``liqbot run --role …``
processes on one PostgreSQL database against the loopback Binance and Telegram fakes.

The alerts must be the same in every run so that a run with kill -9s can be compared key by key
with a single-process reference run. Live ticks are wall-clock, so the market data is made
deterministic relative to a minute boundary instead (:class:`RampBinance`): every deployment
of one scenario shares one fake exchange whose candles, from ``ramp_start`` on, rise a fixed
step per 1-minute bar; each chat's price levels sit half a step into a bar, so bar ``j`` of the
ramp crosses exactly the levels of step ``j`` — once, whichever process ticks the symbol and
whenever (a tick's range starts at the bar of the previous tick, so a tick after a takeover
still sees a crossing it missed). Alerts are level crossings only (no subscriptions, so no
estimate-dependent cluster alerts). A level alert's epoch is its tick's wall time, so the
comparison key is (chat, kind, ref) — each level is crossed once, so that is the alert.

Every level carries a unique note (``L<chat>-<symbol>-<step>``) that the Telegram message
contains, so what the fake received maps back to the level (and its key) without rendering.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from bot.store import Store
from tests.bot.fake_binance import FakeBinance, price_at
from tests.bot.fake_telegram import TOKEN

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "AAA/USDT:USDT")
MINUTE = 60_000
STEP = 0.004  # the ramp's rise per 1-minute bar (0.4 %)
NOTE = re.compile(r"L(\d+)-(\d+)-(\d+)")  # chat index, symbol index, ramp step


def wall_ms() -> int:
    return int(time.time() * 1000)


class RampBinance(FakeBinance):
    """FakeBinance on the wall clock. Candles before ``t0`` follow the fake's usual wave
    (shifted so every scenario gets the same history relative to ``t0``), then price stays
    flat until ``ramp_start`` and rises :data:`STEP` per minute for ``ramp_minutes``, then
    stays flat. A bar's close is the price at its end, whenever it is asked for, so every
    process sees the same bars."""

    def __init__(self, t0: int, ramp_start: int, ramp_minutes: int) -> None:
        super().__init__()
        self.t0, self.ramp_start, self.ramp_minutes = t0, ramp_start, ramp_minutes
        self.add_perpetuals(["AAAUSDT"])

    async def __aenter__(self) -> RampBinance:
        await super().__aenter__()
        return self

    @property
    def now_ms(self) -> int:
        return wall_ms()

    @now_ms.setter
    def now_ms(self, _value: int) -> None:  # FakeBinance.__init__ sets it: the wall wins
        pass

    def base(self, scale: float) -> float:
        """Price from ``t0`` to the ramp."""
        return price_at(self.t0 - self.t0 % 86_400_000 + 3 * 3_600_000, scale)

    def price(self, t: int, scale: float) -> float:
        if t < self.t0:
            return price_at(t - self.t0 + (self.t0 - self.t0 % 86_400_000 + 3 * 3_600_000),
                            scale)
        minutes = min(max(t - self.ramp_start, 0) / MINUTE, self.ramp_minutes)
        return self.base(scale) * (1 + STEP * minutes)

    def level(self, scale: float, step: int) -> float:
        """A level crossed first by bar ``step`` of the ramp (half a step into it)."""
        return self.base(scale) * (1 + STEP * (step + 0.5))

    def row(self, t: int, step: int, scale: float) -> list[Any]:
        o, c = self.price(t, scale), self.price(t + step, scale)
        h, lo = max(o, c) * 1.0002, min(o, c) * 0.9998
        vol = 100 + 50 * math.sin(t / 7_000_000)
        buy = vol * (0.5 + 0.15 * math.sin(t / 3_000_000))
        return [t, f"{o:.6f}", f"{h:.6f}", f"{lo:.6f}", f"{c:.6f}", f"{vol:.3f}", t + step - 1,
                f"{vol * c:.2f}", 1000, f"{buy:.3f}", f"{buy * c:.2f}", "0"]

    async def _klines(self, request: web.Request) -> web.Response:
        found = await self._checked(request)
        if isinstance(found, web.Response):
            return found
        _, scale = found
        q = request.query
        from tests.bot.fake_binance import INTERVAL_MS

        step = INTERVAL_MS[q["interval"]]
        limit = min(int(q.get("limit", 500)), self.kline_max)
        last_open = self.now_ms // step * step
        end = min(int(q.get("endTime", last_open)), last_open)
        first = (-(-int(q["startTime"]) // step) * step if "startTime" in q
                 else last_open - (limit - 1) * step)
        return web.json_response([self.row(t, step, scale)
                                  for t in range(first, end + 1, step)[:limit]])


@dataclass(frozen=True)
class Scenario:
    """Chats and levels: chat ``i`` has a level on every symbol at each ramp step ``j`` with
    ``j % spread == i % spread``."""

    chats: int
    ramp_minutes: int
    spread: int = 4

    def levels(self) -> list[tuple[int, int, int]]:
        """(chat index, symbol index, step) of every level."""
        return [(i, s, j) for i in range(self.chats) for s in range(len(SYMBOLS))
                for j in range(self.ramp_minutes) if j % self.spread == i % self.spread]


def chat_id(i: int) -> int:
    return 500_000 + i


def seed(dsn: str, scenario: Scenario, fake: RampBinance) -> None:
    """Telegram chats with their levels (no subscriptions: level alerts only)."""
    store = Store(dsn=dsn)
    try:
        ids = {i: store.upsert_chat("telegram", chat_id(i)).id for i in range(scenario.chats)}
        for i, s, j in scenario.levels():
            scale = fake.scale[SYMBOLS[s].split("/")[0] + "USDT"]
            store.add_level(ids[i], SYMBOLS[s], fake.level(scale, j), "up", f"L{i}-{s}-{j}")
    finally:
        store.close()


CONFIG = """
[bot]
store = "{dsn}"
symbols = [{symbols}]
[source]
kind = "live"
exchanges = ["binanceusdm"]
rest_url = "{binance}"
lookback_days = 1
[schedule]
recompute_seconds = 3600
price_seconds = 0.5
dispatch_seconds = 0.2
[alerts]
cooldown_minutes = 0
[console]
enabled = false
[telegram]
enabled = true
base_url = "{telegram}"
[cluster]
lease_seconds = {lease}
worker = "{name}"
"""


@dataclass
class Proc:
    name: str
    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class Deployment:
    """One database, one fake Telegram, any number of ``liqbot run`` processes."""

    root: Path
    dsn: str
    binance_url: str
    telegram_url: str
    lease_s: float = 3.0
    procs: list[Proc] = field(default_factory=list)
    generation: Counter[str] = field(default_factory=Counter)

    def spawn(self, role: str) -> Proc:
        self.generation[role] += 1
        name = f"{role}-{self.generation[role]}"
        cfg = self.root / f"{name}.toml"
        cfg.write_text(CONFIG.format(
            dsn=self.dsn, symbols=", ".join(f'"{s}"' for s in SYMBOLS),
            binance=self.binance_url, telegram=self.telegram_url, lease=self.lease_s, name=name))
        log = self.root / f"{name}.log"
        args = [sys.executable, "-m", "bot.cli", "run", "--config", str(cfg)]
        if role != "all":
            args += ["--role", role]
        env = {**os.environ, "TELEGRAM_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as err:
            popen = subprocess.Popen(args, cwd=self.root, stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=subprocess.STDOUT, env=env)
        proc = Proc(name, role, popen, log)
        self.procs.append(proc)
        return proc

    def alive(self, role: str | None = None) -> list[Proc]:
        return [p for p in self.procs if p.popen.poll() is None
                and (role is None or p.role == role)]

    def kill(self, proc: Proc) -> None:
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=30)
        proc.killed = True

    def check_alive(self) -> None:
        """Every process not killed by the test is still running."""
        for p in self.procs:
            if not p.killed and p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited {p.popen.returncode}: "
                                     f"{p.log.read_text(errors='replace')[-3000:]}")

    async def stop(self) -> None:
        """SIGTERM every live process; each must stop cleanly (exit 0)."""
        live = self.alive()
        for p in live:
            p.popen.send_signal(signal.SIGTERM)
        for p in live:
            for _ in range(300):
                if p.popen.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                p.popen.kill()
        for p in live:
            text = p.log.read_text(errors="replace")
            assert p.popen.returncode == 0, f"{p.name} exit {p.popen.returncode}: {text[-3000:]}"
            assert "Traceback" not in text, f"{p.name}: {text[-3000:]}"

    # -- the database -------------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def undelivered(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM outbox WHERE status IN "
                              "('pending', 'sending')")[0][0])

    def last_ticks(self) -> dict[str, int]:
        """symbol → the engine state's last tick (ms)."""
        import json

        return {s: int(json.loads(st).get("last_ms") or 0)
                for s, st in self.query("SELECT symbol, state FROM engine_state")}

    def lease_owners(self) -> dict[str, str]:
        return {s: o for s, o in self.query("SELECT symbol, owner FROM symbol_leases")
                if not s.startswith("job:")}

    def outbox_keys(self) -> Counter[tuple[str, str]]:
        """(chat id, kind|ref) of every outbox row, and the statuses."""
        rows = self.query("SELECT c.chat_id, o.kind, o.ref, o.status FROM outbox o "
                          "JOIN chats c ON c.id = o.chat")
        return Counter((str(c), f"{k}|{r}|{s}") for c, k, r, s in rows)


async def wait_until(cond: Any, timeout_s: float, what: str, dep: Deployment) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        dep.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.log.read_text(errors='replace')[-1500:]}"
                             for p in dep.procs[-6:])
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.2)


def received(sent: list[dict[str, Any]]) -> Counter[tuple[int, int, int]]:
    """What the fake Telegram accepted, as (chat index, symbol index, step) counts."""
    out: Counter[tuple[int, int, int]] = Counter()
    for m in sent:
        found = NOTE.search(str(m.get("text", "")))
        if found:
            i, s, j = (int(x) for x in found.groups())
            assert int(m["chat_id"]) == chat_id(i), m
            out[(i, s, j)] += 1
    return out
