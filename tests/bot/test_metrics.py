"""``/metrics`` and ``/healthz`` (issue 21, operations): scraped over loopback.

A real ``liqbot run`` (replay, console adapter) with ``[metrics] port`` set: its series exist
and move while it alerts — outbox depth by state, send latency, recompute and tick counts, data
age — and ``/healthz`` says ok. The health endpoint over a real service in this loop answers
503 when the store no longer answers (a closed SQLite store; a PostgreSQL server stopped), a
job is stuck or the scheduler has stopped; a chat worker, which schedules nothing, is healthy
while its store answers. Bad
``[metrics]`` keys and a taken port: one line naming the key, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.alerts import SymbolState
from bot.config import ConsoleSection
from bot.console import ConsoleAdapter
from bot.ops_http import OpsServer
from bot.store import Store
from bot.wiring import make_service
from tests.bot.helpers import SYMBOL, replay_config, started_service
from tests.bot.test_dispatcher_fairness import SYM, approach
from tests.bot.test_run_e2e import CONFIG as RUN_CONFIG
from tests.pg_server import PgServer, PgUnavailable, free_port

CONFIG = RUN_CONFIG + """[metrics]
listen = "127.0.0.1"
port = {port}
"""


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_run_serves_metrics_that_move_and_a_healthy_healthz(tmp_path: Path) -> None:
    store_path = tmp_path / "bot.db"
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(store=store_path, port=port))
    store = Store(store_path)
    chat = store.upsert_chat("console", "console")
    store.subscribe(chat.id, SYMBOL, min_usd=1_000_000, approach_pct=0.5)
    store.close()
    base = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(cfg)],
                                cwd=tmp_path, stdout=fo, stderr=fe,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        health = (0, "")
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = get(f"{base}/healthz")
            except OSError:  # not listening yet
                health = (0, "")
            if health[0] == 200:
                break
            time.sleep(0.05)
        assert health[0] == 200, (health, err.read_text()[-2000:])
        body = json.loads(health[1])
        assert body["status"] == "ok" and body["scheduler"] == "running", body
        assert body["jobs"] >= 3, body  # price, dispatch, prune

        status, text = get(f"{base}/metrics")
        assert status == 200
        first = samples(text)
        sends = ("liqbot_send_seconds_count", (("platform", "console"),))
        recomputes = ("liqbot_recompute_seconds_count", (("symbol", SYMBOL),))
        ticks = ("liqbot_engine_tick_seconds_count", ())
        age = ("liqbot_data_age_seconds", (("symbol", SYMBOL),))
        for key in (recomputes, ticks, age):
            assert key in first, (key, text)
        assert {k for k in first if k[0] == "liqbot_outbox_depth"} == {
            ("liqbot_outbox_depth", (("state", "pending"),)),
            ("liqbot_outbox_depth", (("state", "sending"),))}, text
        assert ("liqbot_leases_held", ()) in first
        moved = first
        while time.monotonic() < deadline:  # alerts go out: every series moves
            moved = samples(get(f"{base}/metrics")[1])
            if all(moved.get(k, 0) > first.get(k, 0) for k in (sends, recomputes, ticks)):
                break
            time.sleep(0.1)
        for key in (sends, recomputes, ticks):
            assert moved.get(key, 0) > first.get(key, 0), (key, first.get(key), moved.get(key))
        assert 0 <= moved[age] < 30
        assert moved[("liqbot_send_seconds_sum", (("platform", "console"),))] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err.read_text()[-2000:]
    assert "stopped (store integrity ok)" in err.read_text()
    assert "ALERT " in out.read_text()


async def test_outbox_depth_counts_the_queue_and_falls_as_alerts_go_out() -> None:
    store = Store(memory=True)
    out = io.StringIO()
    service, _ = make_service(replay_config(), store, [ConsoleAdapter(ConsoleSection(), out)])
    ops = OpsServer(store, service)
    url = (await ops.start("127.0.0.1", 0))[0] + "/metrics"
    pending = ("liqbot_outbox_depth", (("state", "pending"),))
    sends = ("liqbot_send_seconds_count", (("platform", "console"),))
    try:
        async with aiohttp.ClientSession() as http:
            async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                async with http.get(url) as resp:
                    return samples(await resp.text())

            chat = store.upsert_chat("console", "console").id
            now = service.dispatcher.clock()
            events = [approach(chat, i)._replace(ts_ms=now) for i in range(3)]
            assert store.commit_tick(SYM, SymbolState(), None, events, now=now) == 3
            before = await scrape()
            assert before[pending] == 3
            assert before[("liqbot_outbox_depth", (("state", "sending"),))] == 0
            assert await service.dispatch() == 3
            after = await scrape()
            assert after[pending] == 0
            assert after.get(sends, 0) == before.get(sends, 0) + 3
            assert out.getvalue().count("ALERT ") == 3
    finally:
        await ops.stop()
        store.close()


def test_a_dispatch_worker_on_postgresql_reports_its_sends(tmp_path: Path, pg_dsn: str) -> None:
    """``liqbot run --role dispatch`` on a shared PostgreSQL store: healthy with its one job,
    the queued alerts leave the outbox and show as console sends."""
    store = Store(dsn=pg_dsn)
    try:
        chat = store.upsert_chat("console", "dispatch-metrics").id
        now = int(time.time() * 1000)
        events = [approach(chat, i)._replace(ts_ms=now) for i in range(3)]
        assert store.commit_tick(SYM, SymbolState(), None, events, now=now) == 3
    finally:
        store.close()
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[bot]\nstore = "{pg_dsn}"\n[source]\nkind = "replay"\n'
                   f'[metrics]\nport = {port}\n')
    base = f"http://127.0.0.1:{port}"
    err = tmp_path / "stderr.txt"
    with err.open("w") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--role", "dispatch",
                                 "--config", str(cfg)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=fe, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        pending = ("liqbot_outbox_depth", (("state", "pending"),))
        sends = ("liqbot_send_seconds_count", (("platform", "console"),))
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):  # not listening yet
                scraped = samples(get(f"{base}/metrics")[1])
            if scraped.get(pending) == 0 and scraped.get(sends, 0) >= 3:
                break
            time.sleep(0.1)
        assert scraped.get(pending) == 0 and scraped.get(sends) == 3, (
            scraped.get(pending), scraped.get(sends), err.read_text()[-2000:])
        status, text = get(f"{base}/healthz")
        body = json.loads(text)
        assert status == 200 and body["role"] == "dispatch" and body["jobs"] == 1, body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err.read_text()[-2000:]


async def health(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_healthz_503_when_the_store_stops_answering() -> None:
    service, _, store = await started_service()
    await service.start()
    ops = OpsServer(store, service)
    url = (await ops.start("127.0.0.1", 0))[0] + "/healthz"
    try:
        status, body = await health(url)
        assert status == 200 and body["status"] == "ok", body
        errors = ("liqbot_errors_total", (("kind", "store"),))
        before = samples(generate_latest(metrics.REGISTRY).decode()).get(errors, 0)
        store.close()  # the store is gone under the running service
        status, body = await health(url)
        assert status == 503, body
        assert body["status"] == "unhealthy"
        assert body["problems"] == ["store does not answer (ProgrammingError)"], body
        # Counted by kind; the scrape itself still answers, without the outbox depth.
        scraped = samples(generate_latest(metrics.REGISTRY).decode())
        assert scraped[errors] >= before + 1  # /healthz found it (this scrape counts next)
        assert not any(k[0] == "liqbot_outbox_depth" for k in scraped)
    finally:
        await ops.stop()
        await service.stop()


async def test_healthz_503_when_a_job_is_stuck_and_when_the_scheduler_stops() -> None:
    service, _, store = await started_service()
    await service.start()
    ops = OpsServer(store, service, late_s=0.3)
    url = (await ops.start("127.0.0.1", 0))[0] + "/healthz"
    stuck = asyncio.Event()
    try:
        assert (await health(url))[0] == 200
        assert service.scheduler is not None

        async def hang() -> None:  # a job that never finishes (a send with no answer)
            await stuck.wait()

        service.scheduler.add_job(service._guard("stuck", hang), "interval", seconds=0.1,
                                  id="stuck", max_instances=1)
        await asyncio.sleep(0.3 + 3 * 0.1 + 0.3)
        status, body = await health(url)
        assert status == 503, body
        problems = body["problems"]
        assert isinstance(problems, list) and problems, body
        assert all(p.startswith("job stuck has not finished for ") for p in problems), body
        service.scheduler.remove_job("stuck")
        stuck.set()
        await asyncio.sleep(0.05)
        assert (await health(url))[0] == 200
        await service.stop()
        status, body = await health(url)
        assert status == 503 and body["scheduler"] == "not running", body
    finally:
        stuck.set()
        await ops.stop()
        store.close()


async def test_healthz_503_when_the_postgresql_server_stops(pg_server: PgServer) -> None:
    """A service on a PostgreSQL store whose server then stops (a private server: the
    session's one stays up for the other tests)."""
    try:
        server = PgServer.start(max_connections=20)
    except PgUnavailable as exc:  # pg_server started, so this one should too
        raise AssertionError(f"a second server did not start: {exc}") from None
    try:
        store = Store(dsn=server.create_database("healthz"))
        service, _ = make_service(replay_config(), store, [])
        await service.recompute(SYMBOL)
        await service.start()
        ops = OpsServer(store, service)
        url = (await ops.start("127.0.0.1", 0))[0] + "/healthz"
        try:
            status, body = await health(url)
            assert status == 200 and body["status"] == "ok", body
            server.stop()  # the database server goes away under the running service
            status, body = await health(url)
            assert status == 503, body
            assert body["problems"] == ["store does not answer (OperationalError)"], body
            assert "outbox_pending" not in body
        finally:
            await ops.stop()
            await service.stop()
            store.close()
    finally:
        server.stop()


async def test_a_chat_worker_is_healthy_without_a_scheduler_while_its_store_answers() -> None:
    store = Store(memory=True)
    service, _ = make_service(replay_config(), store, [], role="chat")
    await service.start()  # a chat worker schedules nothing
    ops = OpsServer(store, service)
    url = (await ops.start("127.0.0.1", 0))[0] + "/healthz"
    try:
        assert service.scheduler is None
        status, body = await health(url)
        assert status == 200, body
        assert body["role"] == "chat" and body["scheduler"] == "none (chat role)", body
        store.close()
        status, body = await health(url)
        assert status == 503 and body["problems"] == [
            "store does not answer (ProgrammingError)"], body
    finally:
        await ops.stop()
        await service.stop()


async def test_a_market_worker_reports_the_symbol_leases_it_holds() -> None:
    store = Store(memory=True)
    service, _ = make_service(replay_config(), store, [], role="market")
    metrics.leases_held(7)  # whatever an earlier service in this process left
    await service.start()
    try:
        assert service.board.symbols == (SYMBOL,)
        held = samples(generate_latest(metrics.REGISTRY).decode())[("liqbot_leases_held", ())]
        assert held == 1.0
    finally:
        await service.stop()
        store.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60)


def test_bad_metrics_keys_name_the_key_and_exit_2(tmp_path: Path) -> None:
    for value, words in (("70000", "metrics.port = 70000 must be in [0, 65535] (0 = off)"),
                         ('"x"', "metrics.port must be an integer")):
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[bot]\nstore = "{tmp_path / "b.db"}"\n[metrics]\nport = {value}\n')
        done = run_cli("check-config", str(cfg), cwd=tmp_path)
        assert done.returncode == 2, done
        assert words in done.stderr and ":line 4" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_taken_metrics_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "config.toml"
        cfg.write_text(CONFIG.format(store=tmp_path / "bot.db", port=port))
        done = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    line = [ln for ln in done.stderr.splitlines() if "config error" in ln]
    assert line == [f"liqbot: config error: {cfg}: [metrics] cannot listen on 127.0.0.1:{port}: "
                    "Address already in use"], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
