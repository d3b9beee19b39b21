"""/top, its daily digest and /status with several processes on one store: a symbol this process
does not estimate is read from the summary its market worker stored (``cluster_state``: clusters,
price, open interest, write time), labelled with its age; a stale one is named, not ranked.

Both backends for the store part (the ``store`` fixture); two market-worker Services and a
chat-role command core on a real PostgreSQL server for the rest (real ccxt source against the
loopback Binance fake, real leases)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.alerts.top_digest import HOUR_MS
from bot.commands.reply import Caller
from bot.commands.top_cmds import top_answer
from bot.estimate_summaries import stale_after_ms, tracked_summaries
from bot.estimates import EstimateBoard
from bot.leases import MARKET_JOBS
from bot.store import Store, now_ms
from bot.wiring import make_service
from estimator import Cluster
from tests.bot.fake_binance import FakeBinance
from tests.bot.test_roles import SYMBOLS, Worker


def cluster(side: str, low: float, high: float, usd: float, dist: float) -> Cluster:
    return Cluster(f"{side}-{low}", side, low, high, (low + high) / 2, usd, dist)


def test_a_stored_summary_is_ranked_with_its_age_and_a_stale_one_is_named(store: Store) -> None:
    """On both backends: what a market worker stored is what another process ranks."""
    store.save_clusters("SOL/USDT:USDT", [cluster("long", 97.0, 98.0, 3e6, -2.5)], 1,
                        price=100.0, oi_usd=1e8)
    store.save_clusters("BTC/USDT:USDT", [cluster("short", 101.0, 102.0, 5e6, 1.5)], 1,
                        price=100.0, oi_usd=1e9)
    store.save_clusters("ETH/USDT:USDT", [cluster("long", 99.0, 99.5, 9e9, -0.7)], 1)  # no price
    (sol, btc) = sorted(store.load_summaries(), key=lambda s: s.symbol, reverse=True)
    assert (sol.symbol, sol.price, sol.oi_usd, sol.clusters[0].notional_usd) == (
        "SOL/USDT:USDT", 100.0, 1e8, 3e6)
    assert btc.written_ms is not None and abs(btc.written_ms - now_ms()) < 60_000
    board = EstimateBoard(symbols=())
    t = now_ms() + 150_000
    tops = tracked_summaries(store, board, ("BTC/USDT:USDT", "SOL/USDT:USDT", "ETH/USDT:USDT"),
                             3600, t, shared=False)
    n, text = top_answer(tops, 5, None)
    lines = text.splitlines()
    assert n == 2 and "across 2 tracked symbol(s)" in lines[0]
    # SOL: 3 % of its OI outranks BTC's 0.5 %; each line says it is a stored estimate's age
    assert lines[1].startswith("SOL long ") and lines[1].endswith(", estimate 2 min old")
    assert lines[2].startswith("BTC short ") and ", estimate 2 min old" in lines[2]
    # Older than 2× the recompute interval: named as stale, not ranked.
    late = t + stale_after_ms(3600)
    tops = tracked_summaries(store, board, ("BTC/USDT:USDT", "SOL/USDT:USDT"), 3600, late,
                             shared=False)
    n, text = top_answer(tops, 5, None)
    assert n == 0 and tops.fresh == ()
    assert text.splitlines()[-1] == ("Stale, not ranked (no estimate stored for over 2 h 0 min, "
                                     "2× the recompute interval): BTC/USDT:USDT 2 h 2 min old, "
                                     "SOL/USDT:USDT 2 h 2 min old")
    # shared (a chat-role process): a fresh summary of a symbol it does not list counts too
    tops = tracked_summaries(store, board, ("BTC/USDT:USDT",), 3600, t, shared=True)
    assert [s.symbol for s in tops.fresh] == ["BTC/USDT:USDT", "SOL/USDT:USDT"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(now_ms=now_ms()) as fb:
        yield fb


def symbols_in(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(BTC|ETH|SOL) (?:long|short) ", text, re.M)}


async def test_a_chat_process_ranks_the_symbols_of_both_market_workers(
        pg_dsn: str, fake: FakeBinance) -> None:
    a = Worker("a", pg_dsn, fake, timeout_ms=10_000)
    b = Worker("b", pg_dsn, fake, timeout_ms=10_000)
    chat_store = Store(dsn=pg_dsn)
    cfg = replace(a.cfg, source=replace(a.cfg.source, rest_url=fake.url))
    chat, core = make_service(cfg, chat_store, [], role="chat")
    try:
        await a.service.start()
        await b.service.start()
        await a.service.lease_job()  # two live workers: a keeps 2, b takes the third
        await b.service.lease_job()
        held_b = set(b.service.board.symbols)
        held_a = set(a.service.board.symbols)
        assert len(held_a) == 2 and len(held_b) == 1 and held_a | held_b == set(SYMBOLS)
        (moved,) = held_b
        for _ in range(200):  # b computes it in a job of its own
            if b.service.board.get(moved) is not None:
                break
            await asyncio.sleep(0.05)
        assert b.service.board.get(moved) is not None
        # What each worker itself would rank: only its own symbols.
        own = {w: symbols_in(top_answer(tracked_summaries(
            None, w.service.board, w.service.board.symbols, 3600, now_ms(), False), 25,
            None)[1]) for w in (a, b)}
        assert own[a] and own[b] and not own[a] & own[b]

        reply = await core.handle("/top 25", Caller("console", "c1", "u1"))
        assert reply is not None and not reply.error, reply
        lines = reply.text.splitlines()
        assert "across 3 tracked symbol(s)" in lines[0]
        assert symbols_in(reply.text) == own[a] | own[b]  # both workers' symbols
        assert all(re.search(r", estimate \d+ s old$", line) for line in lines[1:]), lines
        assert chat.board.get(moved) is None  # read from the store, not estimated here

        # /status of the chat process: each symbol's stored estimate and its age.
        status = await core.handle("/status", Caller("console", "c1", "u1"))
        assert status is not None
        for sym in SYMBOLS:
            (line,) = [x for x in status.text.splitlines() if x.startswith(sym + ":")]
            assert line.startswith(f"{sym}: fresh, last recompute ")
            assert "UTC by a market worker (stored estimate " in line and " clusters" in line

        # The daily digest, queued by the worker holding job:market, covers b's symbol too.
        digest_worker = a if a.leases.holds(MARKET_JOBS, now_ms()) else b
        chat_row = chat_store.upsert_chat("console", "c1", timezone="UTC")
        chat_store.subscribe_top(chat_row.id, 25, None, now_ms())
        day = fake.now_ms - fake.now_ms % (24 * HOUR_MS)
        at = day + cfg.alerts.top_digest_hour * HOUR_MS + 60_000
        assert await digest_worker.service.top_digest_job(now=at) == 1
        (row,) = chat_store.due(now=at + 1)
        assert row.event.note is not None and "across 3 tracked symbol(s)" in row.event.note
        assert symbols_in(row.event.note) == own[a] | own[b]
    finally:
        await a.close()
        await b.close()
        await chat.source.close()
        chat_store.close()
