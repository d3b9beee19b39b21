"""The service: recompute → engine → outbox → dispatcher, on APScheduler in one asyncio loop.

Jobs (AsyncIOScheduler, the loop the chat clients share):
- ``recompute:<symbol>`` every ``recompute_seconds``: fetch candles, estimate in a worker
  thread (``asyncio.to_thread``), keep cluster ids stable, persist the clusters;
- ``price`` every ``price_seconds``: the latest price and traded range → threshold engine →
  events and engine state committed to the store in one transaction (in replay, this job
  also advances the virtual clock);
- ``dispatch`` every ``dispatch_seconds``: outbox → notifiers (on PostgreSQL it also runs
  a pass as soon as new outbox rows are notified, and at once at start);
- ``prune`` hourly: old outbox rows (and liquidations older than ``tape.keep_hours``);
- ``tape`` every ``tape.flush_seconds`` when the live tape is on: new liquidations to the
  store, closed windows to ``/subscribe_liqs`` chats (:mod:`bot.tape.feed`). A replayed tape
  is flushed on every virtual tick instead, on the virtual clock.

Store calls stay on the loop thread (short transactions); only the estimator and chart
rendering run in worker threads.

Roles (``liqbot run --role``, :data:`ROLES`): ``all`` runs every job above (one process);
``market`` the recompute, price, track, tape, positions and prune jobs, for the symbols whose
lease it holds (:mod:`bot.leases`; a ``leases`` job every third of the lease time takes and
gives symbols, adding and removing their jobs; the tape flush, Hyperliquid scan and prune run
in the one worker holding the ``job:market`` lease); ``dispatch`` the dispatch job alone;
``chat`` no job at all (the adapters answer commands from the store and on-demand estimates).

Replay is deterministic and restart-safe. The virtual clock drives everything: there is no
``recompute:<symbol>`` job; the price job recomputes every ``round(recompute_seconds /
price_seconds)`` virtual ticks (the configured ratio), so every run of a replay computes the
same estimates, cluster ids and alerts. A restarted replay (after a crash) re-plays its
virtual history from the warm-up without alerting — recomputes only, which rebuilds the cluster
ids and their 48 h memory exactly — up to the tick the stored engine state last committed,
then carries on live; ticks the engine already processed would be no-ops anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import metrics
from bot.adapters import ChatAdapter
from bot.alerts import EngineConfig, SymbolState, SymbolWatch, Tick, evaluate, top_digest
from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.threads import THREAD_KEEP_MS
from bot.audit import evaluations, receipts
from bot.config import Config, model_params
from bot.db.wait import OutboxWaiter
from bot.dispatcher import Dispatcher, Notifier
from bot.errors import LeaseLostError, LiqBotError, MarketDataError
from bot.estimate_summaries import latest_oi, tracked_summaries
from bot.estimates import Estimate, EstimateBoard, compute_estimate
from bot.hyperliquid.alerts import ConfirmedSubscription, confirmed_breaks, confirmed_events
from bot.hyperliquid.confirmed import ConfirmedView
from bot.hyperliquid.desk import PositionsDesk
from bot.leases import MARKET_JOBS, LeaseChange, SymbolLeases
from bot.market.base import MarketSource, timeframe_ms
from bot.market.replay import ReplaySource
from bot.ondemand import OnDemandEstimates
from bot.position_watch import tick_watches
from bot.store import Store, now_ms
from bot.tape.alerts import seen_in
from bot.tape.feed import TapeDesk
from bot.tracking import GRACE_S, even_phases, free_phase, plan_tracked

log = logging.getLogger(__name__)

OUTBOX_KEEP_MS = 7 * 86_400_000
STOP_BUDGET_S = 4.0  # Service.stop returns within this, whatever the platforms are doing
SEND_GRACE_S = 1.0  # of which sends in flight get the last second to finish
ROLES = ("all", "market", "dispatch", "chat")  # liqbot run --role
WAKE_SLICE_S = 0.5  # a dispatch job waiting for new rows checks for a stop this often


def engine_config(cfg: Config) -> EngineConfig:
    a = cfg.alerts
    return EngineConfig(approach_pct=a.approach_pct, min_usd=a.min_usd,
                        cooldown_ms=int(a.cooldown_minutes * 60_000), growth=a.growth_factor,
                        rearm_pct=a.rearm_pct, new_cluster_range_pct=a.new_cluster_range_pct)


@dataclass
class TickResult:
    """What one price tick did, for progress output and tests."""

    symbol: str
    events: list[AlertEvent] = field(default_factory=list)
    queued: int = 0
    skipped: str = ""


class Service:
    """Owns the board of estimates, the engine state and the dispatcher for one process."""

    def __init__(self, cfg: Config, source: MarketSource, store: Store,
                 notifiers: Mapping[str, Notifier], *,
                 clock_ms: Callable[[], int] | None = None, role: str = "all",
                 leases: SymbolLeases | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if (role == "market") != (leases is not None):
            raise ValueError("the market role, and only it, runs with symbol leases")
        self.cfg = cfg
        self.role = role
        self.leases = leases
        self._universe: tuple[str, ...] = ()  # market role: the symbols the workers share
        self.source = source
        self.store = store
        self.params = model_params(cfg)
        self.engine = engine_config(cfg)
        self.board = EstimateBoard(cfg.bot.symbols)
        # Dispatch role: other dispatchers share the outbox (only stale claims are recovered).
        self.dispatcher = Dispatcher(store, notifiers, clock=clock_ms or now_ms,
                                     shared=role == "dispatch",
                                     stale_ms=round(cfg.cluster.reclaim_seconds * 1000))
        self._waiter: OutboxWaiter | None = None  # PostgreSQL: new outbox rows wake dispatch
        self.scheduler: AsyncIOScheduler | None = None
        self._states: dict[str, SymbolState] = {}
        self._watches: dict[str, SymbolWatch] = {}
        self._watch_version = -1
        self._running: set[asyncio.Task[Any]] = set()
        # Replay only: virtual ticks since the warm-up, and recompute every n-th of them.
        self._replay_ticks = 0
        self._recompute_every = max(1, round(cfg.schedule.recompute_seconds
                                             / cfg.schedule.price_seconds))
        self._stopping = False
        self.replay_done = asyncio.Event()
        self.adapters: list[ChatAdapter] = []  # set by bot.wiring; started by bot.run
        self.tape: TapeDesk | None = None  # set by bot.wiring when the config enables it
        self.positions: PositionsDesk | None = None  # the confirmed layer, set by bot.wiring
        # Untracked symbols on request (live only: a replay file holds one symbol).
        self.ondemand = None if self.replay is not None else OnDemandEstimates(
            source, self.params, cfg.limits.on_demand_symbols, cfg.schedule.recompute_seconds)
        self.track_grace_s = GRACE_S
        self._leaving: dict[str, float] = {}  # tracked symbols without subscribers, since
        self._phase: dict[str, float] = {}  # each recompute's offset in the interval (s)
        self._last_done: dict[str, float] = {}  # monotonic time of each symbol's last estimate
        self._epoch = datetime.now(UTC)

    @property
    def replay(self) -> ReplaySource | None:
        return self.source if isinstance(self.source, ReplaySource) else None

    # --- the three steps -------------------------------------------------------------------
    async def recompute(self, symbol: str) -> None:
        """Fetch and estimate one symbol; on failure keep the previous estimate and say why."""
        t0 = time.monotonic()
        try:
            snapshot = await self.source.fetch(symbol)
            previous = self.board.get(symbol)
            if previous is not None and not previous.proxy and snapshot.proxy:
                # Partial data: OI failed this time. A volume-proxy estimate would resize
                # every cluster (false "new"/"grew" alerts); keep the OI one, pause alerts.
                notes = "; ".join(f"{k}: {v}" for k, v in snapshot.oi_notes.items())
                raise MarketDataError(f"open interest unavailable ({notes or 'no source'}); "
                                      "keeping the last estimate made with it")
            # After a restart ids continue from the stored clusters; not in replay, which
            # starts again from the warm-up (the stored clusters are from later in its history).
            prior = previous if previous is not None else (
                self.store.load_clusters(symbol) if self.replay is None else [])
            est = await asyncio.to_thread(compute_estimate, snapshot, self.params, prior,
                                          self.board.next_version(symbol))
        except LiqBotError as exc:
            metrics.error("recompute")
            log.warning("recompute %s failed: %s", symbol, exc)
            self.board.fail(symbol, str(exc))
            return
        self.board.put(est)
        self._last_done[symbol] = time.monotonic()
        self.store.save_clusters(symbol, est.clusters, est.computed_ms, price=est.price,
                                 oi_usd=latest_oi(est))  # for /top in other processes
        self._audit(est)
        metrics.recomputed(symbol, time.monotonic() - t0)
        log.info("recompute %s: %d clusters, %.0f ms%s", symbol, len(est.clusters),
                 est.compute_s * 1000, " (stale data)" if snapshot.stale else "")

    @metrics.timed_tick
    async def price_tick(self, symbol: str) -> TickResult:
        """Run the threshold engine on the latest price; events go to the outbox atomically."""
        result = TickResult(symbol)
        if self.leases is not None and not self.leases.holds(symbol, now_ms()):
            result.skipped = "lease not held"
            return result
        est = self.board.get(symbol)
        if est is None:
            result.skipped = "no estimate yet"
            return result
        state = self._state(symbol)
        try:
            # The range since the engine's last tick (stored, so a restart does not lose what
            # traded while the bot was down); none needed when there is no previous price.
            since = state.last_ms if state.last_price is not None else None
            pt = await self.source.last_price(symbol, since_ms=since)
        except LiqBotError as exc:
            # No price, no tick: nothing is evaluated. The estimate itself is still good, so
            # this does not pause alerts beyond this tick (a failed recompute does).
            metrics.error("price")
            log.warning("price %s failed: %s", symbol, exc)
            result.skipped = "price unavailable"
            return result
        status = self.board.status(symbol)
        stale = est.snapshot.stale or status.last_error is not None
        watch = await self._watch(symbol)
        if self.leases is not None and not self.leases.holds(symbol, now_ms()):
            # The lease ran out while this tick waited for its price: another worker may own
            # the symbol now. Everything below is written without awaiting (commit_tick
            # fenced), so nothing is written at all.
            result.skipped = "lease not held"
            return result
        events, new_state = evaluate(state, symbol, Tick(pt.price, pt.high, pt.low, pt.timestamp),
                                     est.clusters, watch, stale=stale, oi_mix=est.oi_mix,
                                     config=self.engine)
        if self.tape is not None and any(e.kind is EventKind.BREAK for e in events):
            events = self._with_tape(events, symbol, state.last_ms, pt.timestamp)
            # Before the break's row: a crash in between leaves a receipt whose break is
            # not queued, which waits for it (the re-played tick queues the same break).
            self.store.add_receipts_due(
                receipts.due_from_break(e, state.last_price or pt.price,
                                        state.last_ms if state.last_ms is not None
                                        else pt.timestamp, self.cfg.tape.receipt_minutes,
                                        est.proxy)
                for e in events if e.kind is EventKind.BREAK and e.side)
        confirmed = self._confirmed_view(symbol, est, pt.price, pt.timestamp)
        if self.tape is not None and confirmed is not None:
            # Confirmed clusters this tick broke ask for their receipts, before the tick
            # commits (a crash in between re-runs the tick: the same rows, ignored).
            self.store.add_receipts_due(confirmed_breaks(
                *confirmed, symbol, state.last_price, max(pt.high, pt.price),
                min(pt.low, pt.price), state.last_ms if state.last_ms is not None
                else pt.timestamp, pt.timestamp, est.book.grid, self.cfg.tape.receipt_minutes))
        # Receipts due by this tick, before the tick commits: a crash in between re-runs the
        # tick, which finds them done, so a replay queues each receipt at the same tick.
        if self.tape is not None:
            result.queued += self._receipts(symbol, pt.timestamp, pt.price)
        # Outbox rows are stamped with the dispatcher's (wall) clock, which drives retries and
        # give-up; the tick's own time (virtual in replay) only drives the engine's cooldown.
        try:
            result.queued += self.store.commit_tick(
                symbol, new_state, None, events, now=self.dispatcher.clock(),
                digest_hours=self.cfg.alerts.digest_hours,
                lease_owner=self.leases.worker if self.leases is not None else None)
        except LeaseLostError as exc:  # another worker took the symbol over: its tick now
            metrics.error("lease_lost")
            log.warning("%s", exc)
            assert self.leases is not None
            self.leases.release([symbol])
            await self._apply_leases(LeaseChange(
                tuple(s for s in self.board.symbols if s != symbol), (), (symbol,)))
            result.skipped = "lease lost"
            return result
        if not stale:  # /mypos watches: their own rows, arming state committed with them
            result.queued += tick_watches(self.store, symbol, state.last_price, pt.price,
                                          pt.high, pt.low, pt.timestamp, est.clusters,
                                          now=self.dispatcher.clock())
        if confirmed is not None:  # real positions: alerts even when the estimate is stale
            events_hl = confirmed_events(*confirmed, symbol, pt.price, pt.timestamp,
                                         est.book.grid)
            if events_hl:
                result.queued += self.store.commit_confirmed(events_hl, self.dispatcher.clock())
        self._states[symbol] = new_state
        result.events = events
        if stale:
            result.skipped = "stale data: no alerts"
        return result

    def _confirmed_view(self, symbol: str, est: Estimate, price: float, t_ms: int
                        ) -> tuple[list[ConfirmedSubscription], ConfirmedView] | None:
        """The chats following ``symbol``'s confirmed clusters (real Hyperliquid positions)
        and the book at the tick's time; None without the layer or followers. Its clusters
        near price alert once per chat and cluster, broken ones ask for a receipt
        (bot.hyperliquid.alerts)."""
        if self.positions is None:
            return None
        subs = self.store.confirmed_subscriptions(symbol)
        if not subs:
            return None
        return subs, self.positions.view(symbol, t_ms, price, est.book.grid)

    def _with_tape(self, events: list[AlertEvent], symbol: str, last_ms: int | None,
                   now: int) -> list[AlertEvent]:
        """Break alerts name the real liquidations the tape saw inside the broken cluster
        since the previous tick (one tape window earlier, for events stamped before it)."""
        assert self.tape is not None
        self.tape.ingest(now)
        since = (last_ms if last_ms is not None else now) - self.tape.window_ms
        recent = self.tape.recent(symbol, since, now + 1)
        out = []
        for e in events:
            if e.kind is EventKind.BREAK and e.side and e.low is not None and e.high is not None:
                usd, n = seen_in(recent, e.side, e.low, e.high)
                e = e._replace(tape_usd=usd, tape_count=n) if n else e
            out.append(e)
        return out

    def _receipts(self, symbol: str, now: int, price: float) -> int:
        """Queue the receipts due by ``now`` (tick clock) from the stored tape."""
        assert self.tape is not None
        due = self.store.receipts_due(symbol, now)
        if not due:
            return 0
        self.tape.ingest(now)
        tape = self.tape.recent(symbol, min(r.since_ms for r in due), now + 1)
        return self.store.commit_receipts([receipts.receipt_event(r, tape, price) for r in due],
                                          self.dispatcher.clock())

    def _audit(self, est: Estimate, record: bool = True) -> None:
        """Record the estimate as an evaluation (``record``; else only its candles) and score
        those whose horizon has passed (:mod:`bot.audit.evaluations`); never stops a
        recompute."""
        acc = self.cfg.accuracy
        if not acc.enabled:
            return
        try:
            replay = self.replay
            step = replay.step_ms if replay is not None else timeframe_ms(est.snapshot.timeframe)
            settings = evaluations.Settings.of(acc, step)
            interval = (self._recompute_every * replay.candles_per_tick * step
                        if replay is not None else int(self.cfg.schedule.recompute_seconds * 1000))
            if record:
                evaluations.record(self.store, est, settings, max(settings.every_ms, interval))
            else:
                evaluations.record_path(self.store, est.symbol, est.snapshot.candles)
            if self.tape is not None:
                self.tape.ingest(est.snapshot.now_ms)
            evaluations.score_due(self.store, est.symbol, settings, est.snapshot.now_ms,
                                  self.tape is not None)
        except Exception:  # the scoreboard must never cost an estimate
            log.exception("accuracy: recording %s failed", est.symbol)

    async def _audit_tail(self, symbol: str) -> None:
        """End of a replay: the candles after the last recompute complete the horizons of
        the last evaluations; store them and score what is due."""
        est = self.board.get(symbol)
        if not self.cfg.accuracy.enabled or est is None or self.replay is None:
            return
        snapshot = await self.source.fetch(symbol)
        self._audit(replace(est, snapshot=snapshot), record=False)

    async def tape_job(self) -> int:
        """Live tape: store new liquidations, alert the windows that closed."""
        assert self.tape is not None
        if not self._market_wide():  # another market worker alerts the windows
            self.tape.ingest(self.dispatcher.clock())
            return 0
        return self.tape.flush(self.dispatcher.clock())

    async def dispatch(self) -> int:
        """One dispatch pass; on PostgreSQL, until the next run of the job, one more each
        time new outbox rows are notified (so a new alert goes out at once, not at the next
        interval). Returns the rows sent."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.cfg.schedule.dispatch_seconds * 0.9
        sent = 0
        while True:
            stats = await self.dispatcher.run_once()
            metrics.dispatched(stats.retried, stats.failed)
            sent += stats.sent
            if self._waiter is None:
                return sent
            while not self._stopping and (left := end - loop.time()) > 0:
                if await self._waiter.wait(min(left, WAKE_SLICE_S)):
                    break  # new rows: another pass
            else:
                return sent

    def _state(self, symbol: str) -> SymbolState:
        if symbol not in self._states:
            self._states[symbol] = self.store.load_state(symbol)
        return self._states[symbol]

    async def _watch(self, symbol: str) -> SymbolWatch:
        version = self.store.watch_version()
        if version != self._watch_version:
            # Sorting 100k levels takes ~1 s: off the loop, so chats stay responsive. The rows
            # are read here, on the loop thread that owns the store.
            subs, levels = self.store.active_subscriptions(), self.store.active_levels()
            self._watches = await asyncio.to_thread(SymbolWatch.build_all, subs, levels)
            self._watch_version = version
        return self._watches.get(symbol) or SymbolWatch(symbol)

    # --- scheduling ---------------------------------------------------------------------------
    async def price_job(self) -> None:
        """Advance the replay clock (if replaying, recomputing on its schedule), then tick
        every symbol."""
        replay = self.replay
        if (replay is not None and self.leases is not None
                and not self.leases.holds(replay.symbol, now_ms())):
            return  # another market worker plays this replay
        if replay is not None and not await self._advance_replay(replay):
            if not self.replay_done.is_set():
                log.info("replay finished: every candle has been played")
                for symbol in self.cfg.bot.symbols:
                    await self._audit_tail(symbol)
                self.replay_done.set()
            return
        if replay is not None and self.tape is not None:
            self.tape.flush(replay.now_ms)
        for symbol in self.board.symbols:
            await self.price_tick(symbol)

    async def _advance_replay(self, replay: ReplaySource) -> bool:
        """One virtual tick; every ``_recompute_every``-th one recomputes every symbol.
        False at the end of the data."""
        if not replay.advance():
            return False
        self._replay_ticks += 1
        if self._replay_ticks % self._recompute_every == 0:
            for symbol in self.cfg.bot.symbols:
                await self.recompute(symbol)
        return True

    async def _resume_replay(self, replay: ReplaySource) -> int:
        """After a restart: re-play (recomputes only, no ticks) up to the last virtual tick
        the stored engine state committed, so the estimates, cluster ids and id memory are
        those of an uninterrupted run. Returns the number of ticks skipped."""
        last_ms = self.store.load_state(replay.symbol).last_ms
        if last_ms is None:
            return 0
        skipped = 0
        while (nxt := replay.next_ms) is not None and nxt <= last_ms:
            await self._advance_replay(replay)
            skipped += 1
        if skipped:
            log.info("replay resumed after %d already-processed tick(s)", skipped)
        return skipped

    def _guard(self, name: str, job: Callable[[], Any]) -> Callable[[], Any]:
        """Wrap a job: track it for clean shutdown, log (not raise) its errors."""

        async def run() -> None:
            if self._stopping:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                metrics.error("job")
                log.exception("job %s failed", name)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.info("job %s cut off by stop", name)  # its sends went back to pending
            finally:
                self._running.discard(task)
                metrics.job_done(name)

        return run

    async def start(self) -> None:
        """Recover the outbox, compute every symbol once, then start the scheduler; only
        the jobs of this process's role (module docstring)."""
        if self.role == "all":  # alone on the store: every 'sending' row is from a crash
            n = self.dispatcher.recover()
            if n:
                log.info("recovered %d in-flight alert(s)", n)
        if self.role == "chat":
            return
        sch = AsyncIOScheduler(timezone="UTC")
        self.scheduler = sch
        if self.role in ("all", "market"):
            await self._start_market(sch)
        if self.role in ("all", "dispatch"):
            first = None  # SQLite: the first pass one interval after the start, as ever
            if self.store.db.dialect == "postgresql":  # a pass now, then wake on new rows
                self._waiter = self.store.outbox_waiter()
                first = datetime.now(UTC)
            sch.add_job(self._guard("dispatch", self.dispatch), "interval",
                        seconds=self.cfg.schedule.dispatch_seconds, id="dispatch",
                        max_instances=1, coalesce=True, misfire_grace_time=30,
                        **({"next_run_time": first} if first is not None else {}))
        if not sch.running:
            sch.start()

    async def _start_market(self, sch: AsyncIOScheduler) -> None:
        """The market jobs: recompute (per symbol), price ticks, tracking, tape, positions,
        prune; with leases (market role), for the symbols this worker holds."""
        replay = self.replay
        if replay is None:
            self.board.symbols = plan_tracked(
                self.board.symbols, self.cfg.bot.symbols, self.store.subscriber_counts(),
                self.cfg.limits.tracked_symbols, {}, time.monotonic()).tracked
        if self.leases is not None:
            self._universe = self.board.symbols
            held = set(self._lease_round().held)
            self.board.symbols = tuple(s for s in self._universe if s in held)
            # Renewals run from now on: a start-up computing many symbols outlasts a lease.
            sch.add_job(self._guard("leases", self.lease_job), "interval",
                        seconds=self.leases.ttl_ms / 3000, id="leases", max_instances=1,
                        coalesce=True, misfire_grace_time=30)
            sch.start()
        await self.recompute_all(self.board.symbols)
        if replay is not None and replay.symbol in self.board.symbols:
            await self._resume_replay(replay)
        s = self.cfg.schedule
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
        if replay is None:
            # Phases from the end of the start-up, in the order the symbols were computed: the
            # first one computed runs first, so none waits much longer than an interval (with
            # a start-up shorter than the interval, none waits longer).
            self._epoch = datetime.now(UTC)
            tracked = tuple(sorted(self.board.symbols,
                                   key=lambda sym: self._last_done.get(sym, 0.0)))
            for symbol, phase in zip(tracked, even_phases(len(tracked), s.recompute_seconds),
                                     strict=True):
                self._schedule_recompute(symbol, phase)
            sch.add_job(self._guard("track", self.sync_tracked), "interval", seconds=30,
                        id="track", **common)
        sch.add_job(self._guard("price", self.price_job), "interval", seconds=s.price_seconds,
                    id="price", **common)
        sch.add_job(self._guard("prune", self.prune), "interval", hours=1, id="prune", **common)
        sch.add_job(self._guard("top_digest", self.top_digest_job), "interval", minutes=1,
                    id="top_digest", **common)
        if self.tape is not None:
            await self.tape.feed.start()
            if replay is None:
                sch.add_job(self._guard("tape", self.tape_job), "interval",
                            seconds=self.cfg.tape.flush_seconds, id="tape", **common)
        if self.positions is not None and self.positions.live:
            await self.positions.start()  # wallet discovery from the coins' trades
            sch.add_job(self._guard("positions", self.positions_job), "interval",
                        seconds=self.cfg.positions.scan_seconds, id="positions", **common)

    # --- leases (market role) ------------------------------------------------------------------
    def _market_wide(self) -> bool:
        """Whether this process runs the market-wide jobs (tape alerts, Hyperliquid scan,
        prune): always alone, else while it holds the ``job:market`` lease."""
        return self.leases is None or self.leases.holds(MARKET_JOBS, now_ms())

    def _lease_round(self) -> LeaseChange:
        """One :meth:`SymbolLeases.balance` round over the tracked symbols, and the
        market-wide jobs' lease when free."""
        assert self.leases is not None
        now = now_ms()
        change = self.leases.balance(self._universe, now)
        if not self.leases.holds(MARKET_JOBS, now):
            self.leases.try_take(MARKET_JOBS, now)
        metrics.leases_held(len(change.held))
        return change

    async def lease_job(self) -> LeaseChange:
        """Every third of the lease time: renew, then start the jobs of the symbols taken
        and stop those of the symbols lost."""
        change = self._lease_round()
        await self._apply_leases(change)
        return change

    async def _apply_leases(self, change: LeaseChange) -> None:
        """Jobs follow the leases: a lost symbol's recompute job goes; a taken one starts
        from the engine state its last owner committed (read again, never a cached one)."""
        held = set(change.held)
        self.board.symbols = tuple(s for s in self._universe if s in held)
        for symbol in change.lost:
            self._states.pop(symbol, None)
            self._phase.pop(symbol, None)
            if self.scheduler is not None and self.scheduler.get_job(f"recompute:{symbol}"):
                self.scheduler.remove_job(f"recompute:{symbol}")
        replay = self.replay
        for symbol in change.acquired:
            self._states.pop(symbol, None)
            if replay is not None or self.scheduler is None:
                await self.recompute(symbol)
                if replay is not None:  # up to the tick the last owner committed
                    await self._resume_replay(replay)
                continue
            self._schedule_recompute(symbol, free_phase(
                list(self._phase.values()), self.cfg.schedule.recompute_seconds))
            # Its first estimate now, as a job of its own: a takeover of many symbols must not
            # hold up this job, which renews the leases already held.
            self.scheduler.add_job(self._guard(f"take:{symbol}", partial(self.recompute, symbol)),
                                   id=f"take:{symbol}", replace_existing=True,
                                   misfire_grace_time=30)

    async def positions_job(self) -> None:
        """The Hyperliquid scan, in one process (:meth:`_market_wide`)."""
        if self.positions is not None and self._market_wide():
            await self.positions.job()

    async def recompute_all(self, symbols: tuple[str, ...], concurrency: int = 4) -> None:
        """Recompute ``symbols`` once (start-up): in order in replay (deterministic), else a
        few at a time (the exchange's rate limiter paces the requests)."""
        if self.replay is not None:
            for symbol in symbols:
                await self.recompute(symbol)
            return
        gate = asyncio.Semaphore(concurrency)

        async def one(symbol: str) -> None:
            async with gate:
                await self.recompute(symbol)
        await asyncio.gather(*(one(sym) for sym in symbols))

    def _schedule_recompute(self, symbol: str, phase: float) -> None:
        """Every ``recompute_seconds``, at ``phase`` seconds into each interval (counted from
        the scheduler's start): recomputes are spread out, never all at once."""
        assert self.scheduler is not None
        interval = self.cfg.schedule.recompute_seconds
        elapsed = (datetime.now(UTC) - self._epoch).total_seconds()
        # The next occurrence; one just passed (by a moment, e.g. phase 0 at start) runs now.
        k = max(0, math.ceil((elapsed - phase - 1.0) / interval))
        first = self._epoch + timedelta(seconds=phase + k * interval)
        self._phase[symbol] = phase
        self.scheduler.add_job(self._guard(f"recompute:{symbol}", partial(self.recompute, symbol)),
                               "interval", seconds=interval, id=f"recompute:{symbol}",
                               next_run_time=first, max_instances=1, coalesce=True,
                               misfire_grace_time=30, replace_existing=True)

    async def sync_tracked(self, now_s: float | None = None) -> tuple[str, ...]:
        """Track what chats subscribe to (up to ``[limits] tracked_symbols``); drop a symbol
        ``track_grace_s`` after its last subscriber left. Returns the tracked symbols."""
        if self.replay is not None:
            return self.board.symbols
        now = time.monotonic() if now_s is None else now_s
        if self.leases is not None:  # the lease job starts and stops the symbols' jobs
            plan = plan_tracked(self._universe, self.cfg.bot.symbols,
                                self.store.subscriber_counts(), self.cfg.limits.tracked_symbols,
                                self._leaving, now, self.track_grace_s)
            self._leaving = plan.leaving
            self._universe = plan.tracked
            return plan.tracked
        plan = plan_tracked(self.board.symbols, self.cfg.bot.symbols,
                            self.store.subscriber_counts(), self.cfg.limits.tracked_symbols,
                            self._leaving, now, self.track_grace_s)
        self._leaving = plan.leaving
        self.board.symbols = plan.tracked
        for symbol in plan.dropped:
            self._phase.pop(symbol, None)
            if self.scheduler is not None and self.scheduler.get_job(f"recompute:{symbol}"):
                self.scheduler.remove_job(f"recompute:{symbol}")
            log.info("tracking: dropped %s (no subscriber for %.0f s)", symbol,
                     self.track_grace_s)
        for symbol in plan.added:
            seed = self.ondemand.take(symbol) if self.ondemand is not None else None
            if seed is not None:
                self.board.put(seed)  # asked for on demand a moment ago: no refetch
            else:
                await self.recompute(symbol)
            if self.scheduler is not None:
                self._schedule_recompute(symbol, free_phase(
                    list(self._phase.values()), self.cfg.schedule.recompute_seconds))
            log.info("tracking: added %s (subscribed)", symbol)
        return plan.tracked

    async def top_digest_job(self, now: int | None = None) -> int:
        """Queue the daily /top digests while their hour is under way; once per chat and day
        whatever restarts (:mod:`bot.alerts.top_digest`). Returns the rows queued."""
        t, hour = self.dispatcher.clock() if now is None else now, self.cfg.alerts.top_digest_hour
        if not self._market_wide() or top_digest.due_day(t, hour) is None:
            return 0  # (the summaries are read only during the hour)
        # With leases, the other workers' symbols come from the store (their summaries).
        shared = self.leases is not None
        tops = tracked_summaries(self.store, self.board,
                                 self._universe if shared else self.board.symbols,
                                 self.cfg.schedule.recompute_seconds, now_ms(), shared)
        return top_digest.queue_due(self.store, tops, hour, t)

    async def prune(self) -> None:
        if not self._market_wide():
            return
        n = self.store.prune_outbox(self.dispatcher.clock() - OUTBOX_KEEP_MS)
        self.store.prune_threads(self.dispatcher.clock() - THREAD_KEEP_MS)
        if n:
            log.info("pruned %d old outbox rows", n)
        replay = self.replay
        data_now = replay.now_ms if replay is not None else self.dispatcher.clock()
        if self.tape is not None:
            self.tape.prune(data_now)
        self.store.prune_audit(data_now - int(self.cfg.accuracy.keep_days * 86_400_000))

    async def _last_dispatch(self) -> None:
        try:
            await self.dispatch()
        except Exception:
            log.exception("final dispatch failed; pending alerts stay in the outbox")
        except asyncio.CancelledError:
            log.info("final dispatch cut off by stop")  # its sends went back to pending

    async def stop(self) -> None:
        """Stop within :data:`STOP_BUDGET_S` whatever the platforms are doing: stop scheduling,
        let running jobs finish and deliver what is due once more while the budget lasts; then
        no new send starts, sends in flight get :data:`SEND_GRACE_S`, and whatever still runs
        is cancelled — a cancelled send's row goes back to 'pending' for the next start."""
        loop = asyncio.get_running_loop()
        end = loop.time() + STOP_BUDGET_S
        sends_end = end - SEND_GRACE_S
        self._stopping = True
        if self.scheduler is not None:
            # Pause, not shut down, while jobs finish: the asyncio executor's shutdown cancels
            # running jobs at once, cutting sends off that were about to complete.
            self.scheduler.pause()
        jobs = set(self._running)
        if jobs:
            await asyncio.wait(jobs, timeout=max(0.0, sends_end - loop.time()))
        market = self.role in ("all", "market")  # else the tape and scanner never started
        if self.tape is not None and market:
            try:
                await asyncio.wait_for(self.tape.feed.stop(), max(0.01, sends_end - loop.time()))
            except (TimeoutError, Exception):  # an exchange that does not close must not block
                log.warning("stop: the liquidation tape did not close in time")
            if self.replay is None and self._market_wide():
                self.tape.flush(self.dispatcher.clock())  # keep what arrived; alert closed
        if self.positions is not None and market:
            try:
                await asyncio.wait_for(self.positions.stop(), max(0.01, sends_end - loop.time()))
            except (TimeoutError, Exception):  # an exchange that does not close must not block
                log.warning("stop: the Hyperliquid scanner did not close in time")
        if self.leases is not None and all(j.done() for j in jobs):
            self.leases.release_all()  # the other market workers take the symbols at once
        if (self.role in ("all", "dispatch") and all(j.done() for j in jobs)
                and loop.time() < sends_end):
            last = asyncio.create_task(self._last_dispatch())
            jobs.add(last)
            await asyncio.wait({last}, timeout=max(0.0, sends_end - loop.time()))
        self.dispatcher.close()  # no new send; those in flight may finish
        if self._waiter is not None:
            await self._waiter.close()
            self._waiter = None
        running = {j for j in jobs if not j.done()}
        if running:
            await asyncio.wait(running, timeout=max(0.0, end - loop.time()))
            late = {j for j in running if not j.done()}
            for job in late:
                job.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("stop: %d job(s) cut off after %.0f s; alerts in flight stay "
                            "pending for the next start", len(late), STOP_BUDGET_S)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
