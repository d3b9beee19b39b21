"""Prometheus metrics of one liqbot process (issue 21), in this process's own registry.

Series (``/metrics`` of :mod:`bot.ops_http`):

- ``liqbot_outbox_depth{state}``: outbox rows waiting, by state (pending, sending), read from
  the store when scraped (:meth:`bot.store.Store.outbox_depth`, an index search; the store is
  shared, so every process on one database reports the same queue);
- ``liqbot_send_seconds{platform}``: delivered sends, notifier call to the platform's answer;
- ``liqbot_recompute_seconds{symbol}``: successful recomputes, fetch + estimate + save;
- ``liqbot_data_age_seconds{symbol}``: since each symbol this process tracks was last
  recomputed successfully (absent until its first estimate);
- ``liqbot_engine_tick_seconds``: one symbol's price tick (price, engine, commit);
- ``liqbot_errors_total{kind}``: failures by kind (``job``, ``recompute``, ``price``,
  ``send_retry``, ``send_failed``, ``store``, ``lease_lost``);
- ``liqbot_leases_held``: symbols whose lease this process holds (market role).

Instrumented code calls the module functions (one line each); :func:`bind` tells the scrape
where the process's store and tracked symbols are.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

SEND_SECONDS = Histogram(
    "liqbot_send_seconds", "Delivered alert sends: notifier call to the platform's answer (s)",
    ["platform"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
RECOMPUTE_SECONDS = Histogram(
    "liqbot_recompute_seconds", "Successful recomputes: fetch, estimate and save (s)",
    ["symbol"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))
TICK_SECONDS = Histogram(
    "liqbot_engine_tick_seconds", "One symbol's price tick: price, threshold engine, commit (s)",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
ERRORS = Counter("liqbot_errors", "Failures by kind", ["kind"], registry=REGISTRY)
LEASES = Gauge("liqbot_leases_held", "Symbols whose lease this process holds",
               registry=REGISTRY)

P = ParamSpec("P")
R = TypeVar("R")


def error(kind: str) -> None:
    """Count one failure of ``kind`` (a short fixed word, never a message)."""
    ERRORS.labels(kind).inc()


def dispatched(retried: int, failed: int) -> None:
    """One dispatch pass's sends that will be retried and those given up (row failed)."""
    if retried:
        ERRORS.labels("send_retry").inc(retried)
    if failed:
        ERRORS.labels("send_failed").inc(failed)


def leases_held(n: int) -> None:
    """The number of symbol leases this process holds now."""
    LEASES.set(n)


def recomputed(symbol: str, seconds: float) -> None:
    """A successful recompute of ``symbol`` that took ``seconds``; its data age restarts."""
    RECOMPUTE_SECONDS.labels(symbol).observe(seconds)
    _live.done[symbol] = time.monotonic()


def job_done(job: str) -> None:
    """A scheduled job (its APScheduler id) finished, well or not (``/healthz`` reads it)."""
    _live.jobs[job] = time.monotonic()


def last_done(job: str) -> float:
    """Monotonic time ``job`` last finished (0.0: never)."""
    return _live.jobs.get(job, 0.0)


class send_time:  # noqa: N801 - used like a function: ``async with send_time(platform):``
    """Times a send; observed only when it completes (a failed or cut-off send is not a
    delivery: its kind is counted by :func:`error`)."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.t0 = 0.0

    async def __aenter__(self) -> None:
        self.t0 = time.perf_counter()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if kind is None:
            SEND_SECONDS.labels(self.platform).observe(time.perf_counter() - self.t0)


def timed_tick(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorates the engine's per-symbol price tick: its duration when it returns."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        t0 = time.perf_counter()
        result = await fn(*args, **kwargs)
        TICK_SECONDS.observe(time.perf_counter() - t0)
        return result

    return run


class _Live:
    """The series read when scraped: the outbox from the store, data ages from the tracked
    symbols."""

    def __init__(self) -> None:
        self.outbox: Callable[[], Mapping[str, int]] | None = None
        self.symbols: Callable[[], Iterable[str]] | None = None
        self.done: dict[str, float] = {}  # symbol → monotonic time of its last estimate
        self.jobs: dict[str, float] = {}  # job id → monotonic time it last finished

    def describe(self) -> list[Metric]:
        return []  # the series vary with the bound store and symbols

    def collect(self) -> Iterator[Metric]:
        if self.outbox is not None:
            try:
                counts = self.outbox()
            except Exception as exc:  # a store that does not answer: no depth, an error
                error("store")
                log.warning("metrics: outbox depth unavailable: %s", type(exc).__name__)
            else:
                depth = GaugeMetricFamily("liqbot_outbox_depth", "Outbox rows waiting, by state",
                                          labels=["state"])
                for state, n in sorted(counts.items()):
                    depth.add_metric([state], n)
                yield depth
        if self.symbols is not None:
            now = time.monotonic()
            age = GaugeMetricFamily("liqbot_data_age_seconds",
                                    "Since the symbol's last successful recompute (s)",
                                    labels=["symbol"])
            for symbol in sorted(self.symbols()):
                if symbol in self.done:
                    age.add_metric([symbol], now - self.done[symbol])
            yield age


_live = _Live()
REGISTRY.register(_live)  # a collector by shape (collect/describe)


def bind(outbox: Callable[[], Mapping[str, int]] | None,
         symbols: Callable[[], Iterable[str]] | None) -> None:
    """Scrapes read the outbox depth from ``outbox()`` and the data ages of ``symbols()``
    (None: not reported). The process's ``liqbot run`` binds its store and board."""
    _live.outbox = outbox
    _live.symbols = symbols

