"""``liqbot run --role``: which jobs each role's service schedules, market workers sharing
symbols through leases (their recompute jobs follow the leases), the tick fence at the
service, and the refusal of a non-``all`` role on a SQLite store.

Real Service, Store, ccxt source and loopback Binance fake; two workers = two Store
connections to one store."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.alerts import SymbolState
from bot.cli import main
from bot.commands.reply import Caller
from bot.config import (
    BotSection,
    ClusterSection,
    Config,
    ConsoleSection,
    ScheduleSection,
    SourceSection,
)
from bot.console import ConsoleAdapter
from bot.leases import MARKET_JOBS, SymbolLeases
from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from bot.service import Service
from bot.store import Store, now_ms
from bot.wiring import make_service, make_source
from tests.bot.fake_binance import FakeBinance

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)
SLOW = ScheduleSection(recompute_seconds=3600, price_seconds=3600, dispatch_seconds=3600)


def jobs(service: Service) -> set[str]:
    return set() if service.scheduler is None else {j.id for j in service.scheduler.get_jobs()}


@pytest.mark.parametrize("role, expected", [
    ("all", {"price", "dispatch", "prune", "top_digest"}),
    ("market", {"price", "prune", "top_digest", "leases"}),
    ("dispatch", {"dispatch"}),
    ("chat", set()),
])
async def test_each_role_schedules_its_jobs(tmp_path: Path, role: str,
                                            expected: set[str]) -> None:
    """The bundled replay: 'all' is today's process; a market worker leases the symbol."""
    cfg = replace(Config(), bot=BotSection(store=str(tmp_path / "s.db")), schedule=SLOW,
                  cluster=ClusterSection(worker="w1"))
    store = Store(cfg.bot.store)
    out = io.StringIO()
    service, _core = make_service(cfg, store, [ConsoleAdapter(cfg.console, out)], role=role)
    try:
        await service.start()
        assert jobs(service) == expected
        if role == "market":
            assert service.leases is not None
            owners = service.leases.owners()
            assert sorted(owners) == sorted((cfg.bot.symbols[0], MARKET_JOBS))
            for owner, expires in owners.values():  # default lease: 30 s
                assert owner == "w1" and abs(expires - (now_ms() + 30_000)) < 5_000
            assert service.board.get(cfg.bot.symbols[0]) is not None  # computed: it holds it
        elif role in ("dispatch", "chat"):
            assert service.board.get(cfg.bot.symbols[0]) is None  # no market work here
    finally:
        await service.stop()
        if service.leases is not None:  # a clean stop hands the symbols over at once
            assert service.leases.owners() == {}
        store.close()


def test_service_refuses_a_role_without_its_leases() -> None:
    store = Store(memory=True)
    source = make_source(Config())
    with pytest.raises(ValueError, match="market role"):
        Service(Config(), source, store, {}, role="market")  # no leases
    with pytest.raises(ValueError, match="role must be one of"):
        Service(Config(), source, store, {}, role="chats")
    store.close()


class Worker:
    """A market-role Service with its own store connection, ccxt source and leases: on the
    SQLite file ``where`` or the PostgreSQL DSN ``where``."""

    def __init__(self, name: str, where: Path | str, fake: FakeBinance, ttl_ms: int = 30_000,
                 timeout_ms: int = 2000) -> None:
        self.cfg = replace(Config(), bot=BotSection(symbols=SYMBOLS, store=str(where)),
                           source=SourceSection(kind="live", lookback_days=1.0,
                                                exchanges=("binanceusdm",)),
                           console=ConsoleSection(enabled=False), schedule=SLOW)
        self.store = Store(where) if isinstance(where, Path) else Store(dsn=where)
        self.source = CcxtSource(["binanceusdm"], lookback_days=1, retry=FAST,
                                 exchange_factory=binance_factory(fake.url, timeout_ms=timeout_ms,
                                                                  rateLimit=2),
                                 clock=lambda: fake.now_ms)
        self.leases = SymbolLeases(self.store, name, ttl_ms)
        self.service = Service(self.cfg, self.source, self.store, {}, role="market",
                               leases=self.leases, clock_ms=lambda: fake.now_ms)

    def recomputes(self) -> set[str]:
        return {j.removeprefix("recompute:") for j in jobs(self.service)
                if j.startswith("recompute:")}

    async def close(self) -> None:
        if self.service.scheduler is not None:
            await self.service.stop()
        await self.source.close()
        self.store.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as fb:
        yield fb


async def test_market_workers_split_the_symbols_and_jobs_follow_the_leases(
        tmp_path: Path, fake: FakeBinance) -> None:
    a = Worker("a", tmp_path / "s.db", fake)
    b = Worker("b", tmp_path / "s.db", fake)
    try:
        await a.service.start()
        assert a.recomputes() == set(SYMBOLS)  # alone: every symbol
        await b.service.start()
        assert b.recomputes() == set()  # every symbol is taken; b now counts as live
        await a.service.lease_job()  # two live workers: a keeps ceil(3 / 2) = 2
        await b.service.lease_job()
        assert len(a.recomputes()) == 2 and len(b.recomputes()) == 1
        assert a.recomputes() | b.recomputes() == set(SYMBOLS)
        assert a.service.board.symbols == tuple(s for s in SYMBOLS if s in a.recomputes())
        moved = next(iter(b.recomputes()))
        for _ in range(200):  # computed when taken, by a job of its own
            if b.service.board.get(moved) is not None:
                break
            await asyncio.sleep(0.05)
        assert b.service.board.get(moved) is not None
        # a ticks only what it holds; the symbol it gave away is skipped.
        assert (await a.service.price_tick(moved)).skipped == "lease not held"
        # The market-wide jobs (tape alerts, Hyperliquid scan, prune) run in one of them.
        assert a.service._market_wide() != b.service._market_wide()
        # a stops cleanly: b takes everything on its next round.
        await a.service.stop()
        await b.service.lease_job()
        assert b.recomputes() == set(SYMBOLS)
        assert b.service._market_wide()
    finally:
        await a.close()
        await b.close()


async def test_a_worker_whose_lease_was_taken_drops_its_tick(tmp_path: Path,
                                                             fake: FakeBinance) -> None:
    a = Worker("a", tmp_path / "s.db", fake)
    b = Worker("b", tmp_path / "s.db", fake)
    sym = SYMBOLS[0]
    try:
        await a.service.start()
        first = await a.service.price_tick(sym)
        assert first.skipped == ""
        committed = a.store.load_state(sym)
        assert committed.last_ms is not None
        # a stalls past its lease (it still believes it holds it); b takes the symbol over
        # and commits its own tick.
        assert b.leases.try_take(sym, now_ms() + 30_000)
        mark = SymbolState(last_price=1.0, last_ms=committed.last_ms + 1)
        b.store.commit_tick(sym, mark, None, [], lease_owner="b")
        fake.now_ms += 60_000
        result = await a.service.price_tick(sym)
        assert result.skipped == "lease lost"
        assert b.store.load_state(sym) == mark  # a wrote nothing
        assert sym not in a.service.board.symbols and sym not in a.recomputes()
    finally:
        await a.close()
        await b.close()


def test_roles_other_than_all_refuse_a_sqlite_store(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "bot.db"
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text(f'[bot]\nstore = "{store}"\n[console]\nenabled = false\n')
    for role in ("market", "dispatch", "chat"):
        assert main(["run", "--role", role, "--config", str(cfg)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert f"--role {role} needs a PostgreSQL store" in err[0] and str(cfg) in err[0]
        assert not store.exists()  # refused before anything was opened
    # Without --config (the bundled replay on liqbot.db): the same one line, no note first.
    assert main(["run", "--role", "chat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--role chat needs a PostgreSQL store" in err[0], err


async def test_the_chat_role_estimates_tracked_symbols_on_request(tmp_path: Path) -> None:
    """No recompute runs in a chat worker: /levels of a configured symbol is fetched and
    estimated on request (the on-demand estimates), not 'no estimate yet' forever."""
    async with FakeBinance(now_ms=now_ms()) as fb:
        cfg = replace(Config(), bot=BotSection(symbols=SYMBOLS[:1], store=str(tmp_path / "s.db")),
                      source=SourceSection(kind="live", lookback_days=1.0,
                                           exchanges=("binanceusdm",), rest_url=fb.url),
                      console=ConsoleSection(enabled=False), schedule=SLOW)
        store = Store(cfg.bot.store)
        service, core = make_service(cfg, store, [], role="chat")
        try:
            await service.start()
            assert jobs(service) == set() and service.board.get(SYMBOLS[0]) is None
            reply = await core.handle("/levels BTC", Caller("console", "c1", "u1"))
            assert reply is not None and not reply.error, reply
            assert "No estimate" not in reply.text and "BTC" in reply.text
            assert service.ondemand is not None and service.ondemand.fetches == 1
        finally:
            await service.stop()
            await service.source.close()
            store.close()


async def test_a_tick_whose_lease_ran_out_while_fetching_writes_nothing(
        tmp_path: Path, fake: FakeBinance) -> None:
    """Renewals stop and the price takes longer than the lease has left (nobody has taken
    the symbol yet): the tick is dropped before anything is written."""
    a = Worker("a", tmp_path / "s.db", fake, ttl_ms=3_000, timeout_ms=6_000)
    sym = SYMBOLS[0]
    try:
        await a.service.start()
        assert (await a.service.price_tick(sym)).skipped == ""
        before = a.store.load_state(sym)
        assert a.service.scheduler is not None
        a.service.scheduler.pause()  # renewals stop (a stalled or cut-off worker)
        fake.now_ms += 60_000
        fake.slow_s = 3.5
        # (a recompute the scheduler started just before the pause may take one of them)
        fake.inject("/fapi/v1/klines", "slow", "slow", "slow")
        result = await a.service.price_tick(sym)
        assert result.skipped == "lease not held"
        assert a.store.load_state(sym) == before
    finally:
        await a.close()


async def test_taking_over_symbols_does_not_hold_up_the_lease_job(tmp_path: Path,
                                                                 fake: FakeBinance) -> None:
    """The lease job renews the leases held: a takeover's first estimates (slow here) run
    as jobs of their own, so the round that takes the symbols returns at once."""
    a = Worker("a", tmp_path / "s.db", fake)
    b = Worker("b", tmp_path / "s.db", fake, timeout_ms=8_000)
    try:
        await a.service.start()
        await b.service.start()
        await a.service.stop()  # hands every symbol over
        fake.slow_s = 2.0
        fake.inject("/fapi/v1/klines", *["slow"] * 6)
        t0 = time.monotonic()
        change = await b.service.lease_job()
        assert set(change.acquired) == set(SYMBOLS)
        assert time.monotonic() - t0 < 1.0
        assert b.recomputes() == set(SYMBOLS)
    finally:
        await a.close()
        await b.close()
