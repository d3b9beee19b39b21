"""Fixtures of the bot tests: the store on both backends — ``store`` (a Store) and
``open_store`` (opens another connection to the same store: another process's view).

Parametrised ``sqlite`` (a file in tmp_path) and ``postgresql`` (a fresh database on the test
server of :mod:`tests.pg_server`, per test; skipped with one line when no server can start,
failed under LIQBOT_REQUIRE_POSTGRES=1). A module's own ``store`` fixture overrides these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.store import Store

OpenStore = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[OpenStore]:
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "liqbot.db"

        def make(**kwargs: Any) -> Store:
            opened.append(Store(path, **kwargs))
            return opened[-1]
        dsn = None
    else:
        server = request.getfixturevalue("pg_server")
        dsn = server.create_database(request.node.name)

        def make(**kwargs: Any) -> Store:
            opened.append(Store(dsn=dsn, **kwargs))
            return opened[-1]
    try:
        yield make
    finally:
        for s in opened:
            s.close()
        if dsn is not None:
            server.drop_database(dsn)


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
