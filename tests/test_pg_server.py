"""The test PostgreSQL server fixtures (tests/pg_server.py, tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.pg_server import PgServer

ROOT = Path(__file__).resolve().parents[1]


def test_pg_dsn_is_a_fresh_database_on_loopback(pg_dsn: str) -> None:
    assert pg_dsn.startswith("postgresql://liqbot@127.0.0.1:")
    assert ":5432/" not in pg_dsn
    with psycopg.connect(pg_dsn) as conn:
        db = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_schema = 'public'").fetchone()
        conn.execute("CREATE TABLE marker (x INTEGER)")
    assert db is not None and db[0].startswith("test_pg_server_")
    assert tables == (0,)


def test_each_module_gets_its_own_database(pg_server: PgServer, pg_dsn: str) -> None:
    # What pg_dsn does for another module with the same name: a different, empty database.
    other = pg_server.create_database("test_pg_server")
    assert other != pg_dsn
    with psycopg.connect(other) as conn:
        seen = conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'marker'").fetchone()
    assert seen == (0,)
    with psycopg.connect(pg_dsn) as conn:  # the first test's table is still in this module's
        assert conn.execute("SELECT count(*) FROM marker").fetchone() == (0,)
    pg_server.drop_database(other)


def test_server_listens_on_loopback_only(pg_server: PgServer) -> None:
    with psycopg.connect(pg_server.dsn()) as conn:
        row = conn.execute("SHOW listen_addresses").fetchone()
        sock = conn.execute("SHOW unix_socket_directories").fetchone()
    assert row == ("127.0.0.1",)
    assert sock == (str(pg_server.base),)
    assert pg_server.port != 5432


PROBE = "def test_probe(pg_dsn):\n    assert pg_dsn\n"


def _run_probe(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    """A one-test pytest run (outside the repo) using the fixtures when no server can start."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import pg_dsn, pg_server  "
                                          "# noqa: F401\n")
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n"
                                         "asyncio_default_fixture_loop_scope = function\n")
    env = {**os.environ, "LIQBOT_PG_BIN": str(tmp_path / "nothing-here"),
           "PYTHONPATH": str(ROOT)}
    env.pop("LIQBOT_REQUIRE_POSTGRES", None)
    if require:
        env["LIQBOT_REQUIRE_POSTGRES"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "test_probe.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_no_server_skips_with_one_line_or_fails_when_required(tmp_path: Path) -> None:
    skipped = _run_probe(tmp_path, require=False)
    assert skipped.returncode == 0, skipped.stdout
    reason = [ln for ln in skipped.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert len(reason) == 1, skipped.stdout
    assert "no PostgreSQL server: LIQBOT_PG_BIN=" in reason[0]
    assert "Traceback" not in skipped.stdout
    failed = _run_probe(tmp_path, require=True)
    assert failed.returncode == 1, failed.stdout
    assert "LIQBOT_REQUIRE_POSTGRES=1 but no PostgreSQL server" in failed.stdout
    assert "Traceback" not in failed.stdout and "another exception" not in failed.stdout


def test_server_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    """A pytest run killed by a timeout (SIGKILL: no teardown, no atexit) leaves no server."""
    owner = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom tests.pg_server import PgServer\n"
         "s = PgServer.start()\nprint(s.base, s.port, flush=True)\ntime.sleep(600)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    base, port = owner.stdout.readline().split()
    with psycopg.connect(f"postgresql://liqbot@127.0.0.1:{port}/postgres"):
        pass
    owner.kill()
    owner.wait(timeout=30)
    owner.stdout.close()
    deadline = time.monotonic() + 60
    while Path(base).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(base).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://liqbot@127.0.0.1:{port}/postgres", connect_timeout=3)
