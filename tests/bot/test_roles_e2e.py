"""Multi-process e2e (issue 21): 2 market + 3 dispatch + 1 chat ``liqbot run --role`` workers
on one PostgreSQL database against the loopback Binance and Telegram fakes; kill -9 of one
dispatcher and one market worker per round at random moments (replacements started after
each round), compared key by key with a single-process (``--role all``) reference run on its
own database, running at the same time against the same exchange fake.

Asserted: the reference delivers every level crossing of the scenario exactly once; the
multi-process run delivers the same alerts (0 lost, 0 new), with at most one repeat per
dispatcher kill (the message in flight: accepted by Telegram, not yet marked sent); both
outboxes hold the same keys, all sent; every symbol a killed market worker held is taken
over by another worker and ticked again; every process not killed stops cleanly on SIGTERM.
How the market data is made the same in every run: tests/bot/roles_e2e.py.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from tests.bot.fake_telegram import FakeTelegram
from tests.bot.roles_e2e import (
    MINUTE,
    SYMBOLS,
    Deployment,
    RampBinance,
    Scenario,
    received,
    seed,
    wait_until,
    wall_ms,
)
from tests.conftest import scaled
from tests.pg_server import PgServer

ROUND_S = 9.0  # a kill round: a dispatcher, a market worker, their takeover, replacements
LEASE_S = 3.0
STARTUP_S = 180.0


@pytest.mark.slow
async def test_kill9_of_role_workers_loses_nothing_and_moves_every_symbol(
        tmp_path: Path, pg_server: PgServer) -> None:
    rounds = int(os.environ.get("LIQBOT_E2E_ROUNDS", "0")) or scaled(100, minimum=20)
    rng = random.Random(int(os.environ.get("LIQBOT_CRASH_SEED", "20261201")))
    ramp_minutes = math.ceil(rounds * ROUND_S / 60) + 1
    scenario = Scenario(chats=48, ramp_minutes=ramp_minutes)
    t0 = wall_ms() // MINUTE * MINUTE
    far = 10**15  # no ramp until every process has its first tick
    async with RampBinance(t0, far, ramp_minutes) as binance, \
            FakeTelegram() as tg_ref, FakeTelegram() as tg_run:
        ref = Deployment(tmp_path / "reference", pg_server.create_database("e2e_ref"),
                         binance.url, tg_ref.base_url, LEASE_S)
        run = Deployment(tmp_path / "roles", pg_server.create_database("e2e_roles"),
                         binance.url, tg_run.base_url, LEASE_S)
        for dep in (ref, run):
            dep.root.mkdir()
            seed(dep.dsn, scenario, binance)
        try:
            ref.spawn("all")
            for role, n in (("market", 2), ("dispatch", 3), ("chat", 1)):
                for _ in range(n):
                    run.spawn(role)
            for dep in (ref, run):  # every symbol has its baseline tick
                await wait_until(lambda d=dep: set(d.last_ticks()) >= set(SYMBOLS), STARTUP_S,
                                 "every symbol's first tick", dep)
            binance.ramp_start = (wall_ms() // MINUTE + 1) * MINUTE
            ramp_end = binance.ramp_start + ramp_minutes * MINUTE
            kills = Counter[str]()
            takeover_s: list[float] = []  # kill → every symbol it held ticked by another
            lease_s: list[float] = []  # kill → every lease it held owned by another
            symbols_moved = 0
            for _ in range(rounds):
                await asyncio.sleep(rng.uniform(0, ROUND_S / 3))
                run.kill(rng.choice(run.alive("dispatch")))
                kills["dispatch"] += 1
                await asyncio.sleep(rng.uniform(0, ROUND_S / 3))
                owners = run.lease_owners()
                holding = [p for p in run.alive("market") if p.name in owners.values()]
                victim = rng.choice(holding or run.alive("market"))
                held = {s for s, o in owners.items() if o == victim.name}
                run.kill(victim)
                killed_at = wall_ms()
                kills["market"] += 1

                moved: list[float] = []

                def taken_over(symbols: set[str] = held, gone: str = victim.name,
                               at: int = killed_at, moved: list[float] = moved) -> bool:
                    owners, ticks = run.lease_owners(), run.last_ticks()
                    if not moved and all(owners.get(s, gone) != gone for s in symbols):
                        moved.append((wall_ms() - at) / 1000)
                    return bool(moved) and all(ticks.get(s, 0) > at for s in symbols)

                await wait_until(taken_over, 6 * LEASE_S + 60, "takeover", run)
                lease_s.append(moved[0])
                takeover_s.append((wall_ms() - killed_at) / 1000)
                symbols_moved += len(held)
                run.spawn("dispatch")
                run.spawn("market")
            for dep in (ref, run):
                await wait_until(lambda d=dep: wall_ms() > ramp_end + 2_000 and min(
                    d.last_ticks().values()) > ramp_end and d.undelivered() == 0,
                    max(0, (ramp_end - wall_ms()) / 1000) + 120, "the end of the ramp", dep)
        finally:
            await ref.stop()
            await run.stop()
        expected = Counter({level: 1 for level in scenario.levels()})
        got_ref, got = received(tg_ref.sent), received(tg_run.sent)
        assert got_ref == expected, (expected - got_ref, got_ref - expected)
        lost = set(expected) - set(got)
        new = set(got) - set(expected)
        repeats = sum(n - 1 for n in got.values())
        assert not lost, f"lost: {sorted(lost)[:5]}"
        assert not new, f"new: {sorted(new)[:5]}"
        assert repeats <= kills["dispatch"], (repeats, kills)
        ref_keys, run_keys = ref.outbox_keys(), run.outbox_keys()
        assert set(ref_keys) == set(run_keys)
        assert all(k.endswith("|sent") for _, k in run_keys)
        print(f"\nroles e2e: {rounds} rounds, {kills['dispatch']} dispatcher + {kills['market']} "
              f"market kill -9s; {len(expected)} alerts, 0 lost, 0 new, {repeats} repeat(s) of "
              f"a message in flight; {symbols_moved} symbol leases taken over, leases moved "
              f"within {max(lease_s):.1f} s (median {statistics.median(lease_s):.1f} s), "
              f"ticked again within {max(takeover_s):.1f} s (median "
              f"{statistics.median(takeover_s):.1f} s) of the kill, lease {LEASE_S:.0f} s")
