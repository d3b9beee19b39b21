"""ChartCache: LRU of PNG bytes keyed by (symbol, kind, window, version), thread-safe."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.charts import ChartCache, ChartKey


def key(version: int = 1, window: str = "24h") -> ChartKey:
    return ChartKey("BTC/USDT", "heatmap", window, version)


def test_miss_then_hit_counts():
    cache = ChartCache(maxsize=4)
    calls = []

    def render() -> bytes:
        calls.append(1)
        return b"png"

    assert cache.get_or_render(key(), render) == b"png"
    assert cache.get_or_render(key(), render) == b"png"
    assert len(calls) == 1
    assert cache.stats() == {"size": 1, "maxsize": 4, "hits": 1, "misses": 1}


def test_new_estimate_version_is_a_miss():
    cache = ChartCache()
    cache.put(key(1), b"old")
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) == b"old"
    assert (cache.hits, cache.misses) == (1, 1)


def test_least_recently_used_is_evicted():
    cache = ChartCache(maxsize=2)
    cache.put(key(1), b"a")
    cache.put(key(2), b"b")
    assert cache.get(key(1)) == b"a"  # 1 is now the most recent
    cache.put(key(3), b"c")
    assert key(2) not in cache and key(1) in cache and key(3) in cache
    assert len(cache) == 2


def test_failed_render_is_not_cached():
    cache = ChartCache()

    def boom() -> bytes:
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        cache.get_or_render(key(), boom)
    assert key() not in cache
    assert cache.get_or_render(key(), lambda: b"ok") == b"ok"


def test_concurrent_misses_render_once():
    cache = ChartCache()
    calls = []
    started = threading.Event()

    def slow() -> bytes:
        calls.append(1)
        started.set()
        time.sleep(0.05)
        return b"png"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _i: cache.get_or_render(key(), slow), range(4)))
    assert results == [b"png"] * 4
    assert len(calls) == 1
    assert cache.hits + cache.misses == 4


def test_clear_and_bad_size():
    cache = ChartCache()
    cache.put(key(), b"x")
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        ChartCache(maxsize=0)
