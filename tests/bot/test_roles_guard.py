"""One ``--role all`` process or role workers on a PostgreSQL database, never both
(bot.role_lock), as real ``liqbot run`` processes on the test server; and ``[cluster]
reclaim_seconds``, after which another dispatcher resends a dead dispatcher's claimed row."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bot.alerts import SymbolState
from bot.cli import main
from bot.config import ClusterSection, Config, ConsoleSection, ScheduleSection, load_config
from bot.dispatcher import Alert, Dispatcher
from bot.service import Service
from bot.store import Chat
from bot.wiring import make_source
from tests.bot.conftest import OpenStore
from tests.bot.engine_helpers import SYM, T0
from tests.bot.test_roles_dispatch import SlowPlatform, event
from tests.bot.test_roles_processes import Proc, config, procs  # noqa: F401 (fixture)


def refused(p: Proc) -> str:
    """The process exits 1 with one line, no traceback; that line."""
    assert p.p.wait(timeout=30) == 1, p.text()[-2000:]
    lines = [ln for ln in p.text().splitlines() if ln.strip()]
    assert "Traceback" not in p.text() and len(lines) == 1, p.text()[-2000:]
    return lines[0]


def test_all_is_refused_beside_a_live_market_worker_and_runs_once_it_stopped(
        pg_dsn: str, tmp_path: Path, procs: list[Proc]) -> None:  # noqa: F811
    market = Proc("market", config(tmp_path, "m1"), pg_dsn, tmp_path / "m1.log")
    procs.append(market)
    market.wait_for("liqbot running (role market)")
    alone = Proc("all", config(tmp_path, "a1"), pg_dsn, tmp_path / "a1.log")
    procs.append(alone)
    line = refused(alone)
    assert line.startswith("liqbot: store postgresql://"), line
    assert "in use by other liqbot processes (liqbot market m1 (server pid " in line, line
    assert "--role all runs alone on a database" in line, line
    assert market.stop() == 0, market.text()[-2000:]
    again = Proc("all", config(tmp_path, "a2"), pg_dsn, tmp_path / "a2.log")
    procs.append(again)
    again.wait_for("liqbot running (role all)")
    assert again.stop() == 0, again.text()[-2000:]


def test_a_role_worker_is_refused_beside_a_live_all_process_until_it_is_killed(
        pg_dsn: str, tmp_path: Path, procs: list[Proc]) -> None:  # noqa: F811
    alone = Proc("all", config(tmp_path, "a1"), pg_dsn, tmp_path / "a1.log")
    procs.append(alone)
    alone.wait_for("liqbot running (role all)")
    for role in ("market", "dispatch"):
        worker = Proc(role, config(tmp_path, f"{role}-1"), pg_dsn, tmp_path / f"{role}-1.log")
        procs.append(worker)
        line = refused(worker)
        assert "in use by a --role all process (liqbot all a1 (server pid " in line, line
    second = Proc("all", config(tmp_path, "a2"), pg_dsn, tmp_path / "a2.log")
    procs.append(second)  # a second `all` is refused too, like a second SQLite owner
    assert "(liqbot all a1 (server pid " in refused(second)
    alone.p.kill()  # SIGKILL: no clean stop; the lock goes with its connection
    alone.p.wait()
    market = Proc("market", config(tmp_path, "m2"), pg_dsn, tmp_path / "m2.log")
    procs.append(market)
    market.wait_for("liqbot running (role market)")
    assert market.stop() == 0, market.text()[-2000:]


async def test_a_dead_dispatchers_claim_is_resent_after_reclaim_seconds(
        open_store: OpenStore) -> None:
    dead, live = open_store(), open_store()
    chat = dead.upsert_chat("console", "c1").id
    dead.commit_tick(SYM, SymbolState(), [], [event(chat, "S1")], now=T0)
    assert [r.event.ref for r in dead.claim_due(T0, 10, platforms=["console"])] == ["S1"]
    platform = SlowPlatform(0)
    clock = [T0 + 20_000]
    cfg = replace(Config(), console=ConsoleSection(enabled=False),
                  schedule=ScheduleSection(recompute_seconds=3600, price_seconds=3600),
                  cluster=ClusterSection(reclaim_seconds=30))
    service = Service(cfg, make_source(cfg), live, {"console": platform.notifier("d", Counter())},
                      role="dispatch", clock_ms=lambda: clock[0])
    await service.dispatcher.run_once()
    assert platform.sent == []  # claimed 20 s ago: maybe still being sent
    clock[0] = T0 + 31_000
    await service.dispatcher.run_once()
    assert [k.split("|")[2] for _, k in platform.sent] == ["S1"]  # 31 s: resent (not 60 s)


@pytest.mark.parametrize(("value", "code"), [("20", 2), ("0", 2), ("86401", 2), ("'x'", 2),
                                             ("20.5", 0), ("600", 0)])
def test_reclaim_seconds_must_exceed_the_send_cut_off(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, code: int) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[cluster]\nlease_seconds = 30\nreclaim_seconds = {value}\n")
    assert main(["check-config", str(path)]) == code
    err = capsys.readouterr().err.strip()
    if code:
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "c.toml:line 3: cluster.reclaim_seconds" in err, err
    if value == "20":
        assert ("must be in (20, 86400] seconds: longer than a live dispatcher holds a claimed "
                "alert (2 sends of at most 10 s)") in err


def test_the_example_config_states_the_cluster_defaults() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "config.example.toml", env={})
    assert cfg.cluster == ClusterSection() and cfg.cluster.reclaim_seconds == 60


async def test_a_shared_dispatcher_keeps_few_claimed_rows_waiting(
        open_store: OpenStore) -> None:
    """A claim waiting behind many slow sends would age past reclaim_seconds while its
    dispatcher lives: with 2 sends at once, at most 2 more rows are claimed and waiting (so
    each starts once one of the 2 sends ended), whenever a send runs."""
    store = open_store()
    chats = [store.upsert_chat("console", f"c{i}").id for i in range(10)]
    store.commit_tick(SYM, SymbolState(), [], [event(c, "S1") for c in chats], now=T0)
    claimed: list[int] = []

    notifier = SlowPlatform(0.05).notifier("d", Counter())
    send = notifier.send

    async def counted_send(chat: Chat, alert: Alert) -> None:  # the fake platform, counting
        claimed.append(store.outbox_counts().get("sending", 0))
        await send(chat, alert)

    notifier.send = counted_send  # type: ignore[method-assign]
    d = Dispatcher(store, {"console": notifier}, clock=lambda: T0, shared=True, concurrency=2)
    await d.run_once()
    assert store.outbox_counts()["sent"] == 10
    assert len(claimed) == 10 and max(claimed) <= 4, claimed
