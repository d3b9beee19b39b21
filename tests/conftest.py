"""Shared test settings.

Long soak/fuzz runs are marked ``slow`` and scale their size by ``LIQBOT_SLOW_SHARE``:
0.2 by default (what ``pytest`` and ``.ci/run`` run, ~5 min), 1.0 for the full soak
(``LIQBOT_SLOW_SHARE=1 pytest -m slow``, ~20 min).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator

import pytest

from tests.pg_server import PgServer, PgUnavailable


def slow_share() -> float:
    """Fraction of the full slow-run size to use (0 < share ≤ 1)."""
    raw = os.environ.get("LIQBOT_SLOW_SHARE", "0.2")
    try:
        share = float(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"LIQBOT_SLOW_SHARE must be a number, got {raw!r}") from exc
    return min(max(share, 0.01), 1.0)


def scaled(full: int, minimum: int = 1) -> int:
    """``full`` scaled by the slow share, never below ``minimum``."""
    return max(minimum, round(full * slow_share()))


# -- a real PostgreSQL server (tests/pg_server.py) ---------------------------------------------
# Session fixture ``pg_server`` (one server per pytest run, started on first use) and module
# fixture ``pg_dsn`` (a fresh database per test module). Without a usable server the tests
# using them skip with one line saying why — unless LIQBOT_REQUIRE_POSTGRES=1 (.ci/run sets
# it), where they fail instead.

_PG_FAILED: list[str] = []  # why the first start failed (tried once per session)


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("LIQBOT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"LIQBOT_REQUIRE_POSTGRES=1 but no PostgreSQL server: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if _PG_FAILED:
        _pg_unavailable(_PG_FAILED[0])
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        _PG_FAILED.append(str(exc))
    if _PG_FAILED:  # outside the except block: one line, no chained traceback
        _pg_unavailable(_PG_FAILED[0])
    atexit.register(server.stop)  # also when the session ends without teardown
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_dsn(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    """DSN of a fresh, empty database for this test module."""
    return pg_server.create_database(request.module.__name__.rsplit(".", 1)[-1])
