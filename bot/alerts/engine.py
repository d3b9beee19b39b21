"""Threshold engine: (state, price tick, clusters, watchers) → (alert events, new state).

Pure: no I/O, no clock, no randomness; the same inputs always give the same events, which is
what makes the outbox dedupe key meaningful after a crash. Prices in USD, distances in %,
times in ms.

Semantics (one symbol per call):

- ``approach``: the last price is within a subscription's ``approach_pct`` of a cluster's near
  edge (0 inside it) and the cluster is ≥ the subscription's ``min_usd``. Fires on *entering*
  the zone; the zone re-arms once the price is more than ``approach_pct + rearm_pct`` away.
  Zone state is kept per (cluster, approach %), shared by every subscription with that %.
- ``inside``: the last price is inside a cluster (between its edges) whose approach zone is
  already in for a subscription's % (the approach fired on an earlier tick). Fires once per
  visit; re-arms once the price is more than ``rearm_pct`` outside the cluster. Delivered as an
  edit of the approach message (:mod:`bot.alerts.lifecycle`).
- ``break``: the traded range crossed the cluster's far edge coming from its near side (short
  cluster: high ≥ cluster high after a previous price below it; long: low ≤ cluster low).
  Re-arms when the price is back on the near side by ``rearm_pct`` beyond the near edge.
- ``new_cluster``: a cluster first seen with notional ≥ ``min_usd`` (per subscription), a
  cluster whose peak notional rises past a subscription's ``min_usd``, or one that grows to
  ≥ ``growth`` × the notional it was last announced at. Clusters present on the very first
  evaluation of a symbol are a silent baseline (no start-up flood).
  Sizes are only compared within one OI composition (``oi_mix``: which exchanges' open
  interest fed the estimate). When it changes (an exchange drops out or comes back, every
  cluster is rescaled) every remembered size is re-based silently when its cluster is next
  seen, and clusters first seen on that tick are a silent baseline too: no "grew ×1.5" for
  an exchange's return.
- ``level_cross``: a user level strictly between the previous price and the tick's traded
  extreme ('up': prev < level ≤ high; 'down': low ≤ level < prev; 'any': either). Re-arms only
  after a real move away: a later tick whose price is ≥ ``level_rearm_pct`` beyond the level
  on the side it was crossed to (price really went through), or ≥ ``level_away_pct`` from it
  on either side. A wick through the level while price stays on its side (high touched it,
  price back below) therefore alerts once, not on every wick, until price has moved 1 % away
  or really crossed. Its epoch is the
  firing tick's time (ms): unique per fire without any per-level memory, so the state holds
  only the levels disarmed now (a deleted level leaves nothing behind).

No approach fires for a cluster whose break has not re-armed. Every fire is also subject to
a cooldown per (chat, kind, ref). A stale tick produces nothing and forgets the previous
price, so no crossing is inferred across the gap. A tick not newer than the last one
processed is a no-op (replays after a crash are harmless; new clusters from a recompute are
evaluated with the next newer tick).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np

from bot.alerts.events import AlertEvent, EventKind
from estimator import Cluster

_DIRECTIONS = {"any": 0, "up": 1, "down": 2}


@dataclass(frozen=True)
class EngineConfig:
    """Defaults and margins. USD, %, ms."""

    approach_pct: float = 0.5  # default subscription distance to a cluster edge, %
    min_usd: float = 100e6  # default subscription cluster size, USD
    cooldown_ms: int = 60 * 60_000  # per (chat, kind, ref)
    growth: float = 1.5  # re-announce a cluster that grew by this factor
    rearm_pct: float = 0.25  # extra distance (%) before approach/break re-arm
    level_rearm_pct: float = 0.1  # beyond a user level, on the side crossed to, to re-arm (%)
    level_away_pct: float = 1.0  # or this far from it on either side (%)
    new_cluster_range_pct: float = 10.0  # new/growth news only within this distance of price
    forget_after_ms: int = 72 * 3_600_000  # drop a vanished cluster's memory (> 48 h id memory)


DEFAULT_CONFIG = EngineConfig()


@dataclass(frozen=True)
class Tick:
    """Last price and the high/low traded since the previous tick (USD), at ``ts_ms``."""

    price: float
    high: float
    low: float
    ts_ms: int

    def __post_init__(self) -> None:
        if not (self.price > 0 and self.low <= self.high):
            raise ValueError(f"bad tick: price={self.price} low={self.low} high={self.high}")


@dataclass(frozen=True)
class Subscription:
    """A chat watching a symbol's clusters ≥ ``min_usd`` (USD), approach at ``approach_pct`` %."""

    chat: int
    symbol: str
    min_usd: float = DEFAULT_CONFIG.min_usd
    approach_pct: float = DEFAULT_CONFIG.approach_pct


@dataclass(frozen=True)
class UserLevel:
    """A chat's own price level (USD); ``direction`` is 'up', 'down' or 'any'."""

    id: int
    chat: int
    symbol: str
    price: float
    direction: str = "any"
    note: str = ""


class SymbolWatch:
    """Subscriptions and user levels of one symbol, as sorted numpy arrays.

    Building is O(n log n); build once when subscriptions/levels change and reuse it for every
    tick (the engine's per-tick cost then depends on what moved, not on how many rows exist).
    """

    def __init__(self, symbol: str, subscriptions: Iterable[Subscription] = (),
                 levels: Iterable[UserLevel] = ()) -> None:
        self.symbol = symbol
        subs = sorted((s for s in subscriptions if s.symbol == symbol),
                      key=lambda s: (s.approach_pct, s.min_usd, s.chat))
        self.subscriptions = subs
        mins = np.array([s.min_usd for s in subs], dtype=np.float64)
        chats = np.array([s.chat for s in subs], dtype=np.int64)
        pcts = np.array([s.approach_pct for s in subs], dtype=np.float64)
        # All subscriptions by min USD (break / new_cluster fan-out) ...
        order = np.argsort(mins, kind="stable")
        self.sub_min = mins[order]
        self.sub_chat = chats[order]
        # ... and per approach % group (approach fan-out), each group sorted by min USD.
        self.groups: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for pct in np.unique(pcts):
            sel = pcts == pct
            g_order = np.argsort(mins[sel], kind="stable")
            self.groups[float(pct)] = (mins[sel][g_order], chats[sel][g_order])
        self.pcts = np.array(sorted(self.groups), dtype=np.float64)

        lv = sorted((x for x in levels if x.symbol == symbol), key=lambda x: (x.price, x.id))
        for x in lv:
            if x.direction not in _DIRECTIONS:
                raise ValueError(
                    f"level {x.id}: direction must be up/down/any, not {x.direction!r}")
        self.lv_price = np.array([x.price for x in lv], dtype=np.float64)
        self.lv_id = np.array([x.id for x in lv], dtype=np.int64)
        self.lv_chat = np.array([x.chat for x in lv], dtype=np.int64)
        self.lv_dir = np.array([_DIRECTIONS[x.direction] for x in lv], dtype=np.int8)
        self.lv_note = [x.note for x in lv]
        self.lv_sid = [str(x.id) for x in lv]  # state keys are strings (JSON)
        self.level_ids = set(self.lv_sid)

    @classmethod
    def build_all(cls, subscriptions: Sequence[Subscription],
                  levels: Sequence[UserLevel]) -> dict[str, SymbolWatch]:
        """One watch per symbol that has any subscription or level."""
        symbols = {s.symbol for s in subscriptions} | {x.symbol for x in levels}
        by_sub: dict[str, list[Subscription]] = {s: [] for s in symbols}
        by_lv: dict[str, list[UserLevel]] = {s: [] for s in symbols}
        for s in subscriptions:
            by_sub[s.symbol].append(s)
        for x in levels:
            by_lv[x.symbol].append(x)
        return {s: cls(s, by_sub[s], by_lv[s]) for s in sorted(symbols)}


@dataclass
class SymbolState:
    """Engine memory for one symbol; plain JSON-serialisable values (string keys).

    Values are never mutated in place, only replaced, so the engine can return a new state
    sharing untouched parts with the old one.
    """

    last_ms: int | None = None
    last_price: float | None = None
    baselined: bool = False  # clusters of the first evaluation were recorded silently
    zones: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # cid → pct → [in, epoch]
    zone_seq: dict[str, int] = field(default_factory=dict)  # cid → next approach epoch
    breaks: dict[str, list[int]] = field(default_factory=dict)  # cid → [armed, epoch]
    inside: dict[str, list[int]] = field(default_factory=dict)  # cid → [in, next epoch]
    # cid → [peak, base, epoch]; peak = base = -1: re-base when next seen (OI mix changed)
    sizes: dict[str, list[float]] = field(default_factory=dict)
    oi_mix: str | None = None  # OI composition the sizes were measured under (None: unknown)
    # disarmed level id → [price, +1 crossed up / -1 down] (a bare price: either side, old state)
    levels_off: dict[str, list[float] | float] = field(default_factory=dict)
    cooldown: dict[str, int] = field(default_factory=dict)  # "chat|kind|ref" → last fire ms
    seen: dict[str, int] = field(default_factory=dict)  # cid → last tick ms it was present
    pruned_ms: int = 0

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies every value, ~100× slower on big states.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps(d, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> SymbolState:
        if not text:
            return cls()
        known = {f.name for f in fields(cls)}
        # Unknown keys (written by a newer liqbot) are dropped rather than fatal.
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def broke_through(side: str, low: float, high: float, prev: float | None, hi: float,
                  lo: float) -> bool:
    """The break rule (module docstring): the traded range [``lo``, ``hi``] crossed the
    cluster's far edge coming from the previous price ``prev`` on its near side. Also the
    break of a confirmed cluster (:mod:`bot.hyperliquid.alerts`)."""
    if prev is None:
        return False
    return prev < high <= hi if side == "short" else prev > low >= lo


def near_distance_pct(c: Cluster, price: float) -> float:
    """Signed distance (%) from ``price`` to the cluster's nearest edge; 0 inside it."""
    if price < c.low:
        return (c.low - price) / price * 100.0
    if price > c.high:
        return (c.high - price) / price * 100.0
    return 0.0


class _Emitter:
    """Collects events, applying the per (chat, kind, ref) cooldown."""

    def __init__(self, symbol: str, tick: Tick, now_ms: int, cooldown: dict[str, int],
                 cooldown_ms: int) -> None:
        self.symbol, self.tick, self.now = symbol, tick, now_ms
        self.cooldown, self.cooldown_ms = cooldown, cooldown_ms
        self.events: list[AlertEvent] = []

    def cluster(self, kind: EventKind, chats: np.ndarray, c: Cluster, epoch: int,
                grown_from: float | None = None) -> None:
        if not len(chats):
            return
        price, ts, symbol, events = self.tick.price, self.tick.ts_ms, self.symbol, self.events
        dist = near_distance_pct(c, price)
        suffix = f"|{kind.value}|{c.id}"
        for chat in chats.tolist():
            if self._cooled(f"{chat}{suffix}"):
                events.append(AlertEvent(
                    kind=kind, chat=chat, symbol=symbol, ref=c.id, epoch=epoch, price=price,
                    ts_ms=ts, side=c.side, low=c.low, high=c.high, notional_usd=c.notional_usd,
                    distance_pct=dist, grown_from_usd=grown_from))

    def level(self, chat: int, level_id: str, level_price: float, direction: str, note: str,
              epoch: int) -> None:
        ref = f"level:{level_id}"
        if self._cooled(f"{chat}|level_cross|{ref}"):
            price = self.tick.price
            self.events.append(AlertEvent(
                kind=EventKind.LEVEL_CROSS, chat=chat, symbol=self.symbol, ref=ref, epoch=epoch,
                price=price, ts_ms=self.tick.ts_ms, level_price=level_price,
                direction=direction, note=note or None, low=self.tick.low, high=self.tick.high,
                distance_pct=(level_price - price) / price * 100.0))

    def _cooled(self, key: str) -> bool:
        """True (and the cooldown restarts) unless ``key`` fired within the cooldown."""
        last = self.cooldown.get(key)
        if last is not None and self.now - last < self.cooldown_ms:
            return False
        self.cooldown[key] = self.now
        return True


def evaluate(state: SymbolState, symbol: str, tick: Tick, clusters: Sequence[Cluster],
             watch: SymbolWatch, *, now_ms: int | None = None, stale: bool = False,
             oi_mix: str | None = None,
             config: EngineConfig = DEFAULT_CONFIG) -> tuple[list[AlertEvent], SymbolState]:
    """Events for one symbol's tick and the new state (``state`` is not modified).

    ``clusters`` are the symbol's current clusters (stable ids); ``watch`` its subscriptions
    and levels (:class:`SymbolWatch`); ``now_ms`` defaults to ``tick.ts_ms`` and drives the
    cooldown. With ``stale`` the data is not trusted: no events, previous price forgotten.
    ``oi_mix`` names the OI composition of ``clusters`` (e.g. "binanceusdm+bybit", "" for
    the volume proxy; None = unknown, keep the last one): growth is compared only within one.
    """
    if stale:
        return [], replace(state, last_price=None)
    if state.last_ms is not None and tick.ts_ms <= state.last_ms:
        # Already processed (a replay after a crash, or a price source that did not move
        # on): re-evaluating it with a partial picture could fire what the first pass
        # suppressed, so it is a no-op.
        return [], state
    now = tick.ts_ms if now_ms is None else now_ms
    price = tick.price
    hi, lo = max(tick.high, price), min(tick.low, price)
    prev = state.last_price

    cooldown = dict(state.cooldown)
    seen = dict(state.seen)
    for c in clusters:
        seen[c.id] = tick.ts_ms
    sizes, breaks, zones = dict(state.sizes), dict(state.breaks), dict(state.zones)
    insides = dict(state.inside)
    # A new OI composition rescales every cluster: sizes measured under the old one are not
    # comparable (an unknown old one, from a state written before this was kept, is adopted).
    remix = oi_mix is not None and state.oi_mix is not None and oi_mix != state.oi_mix
    if remix:
        sizes = {cid: [-1.0, -1.0, int(rec[2])] for cid, rec in sizes.items()}
    announce = state.baselined and not remix
    zone_seq = dict(state.zone_seq)
    pruned_ms = state.pruned_ms
    if now - pruned_ms >= config.cooldown_ms:
        # Pruning is O(entries): do it once per cooldown period, not per tick.
        cooldown = {k: v for k, v in cooldown.items() if now - v < config.cooldown_ms}
        # A vanished cluster may come back under its old id (the estimator remembers ids for
        # 48 h); its epochs must continue then, or new alerts would reuse old dedupe keys.
        gone = [k for k, v in seen.items() if tick.ts_ms - v > config.forget_after_ms]
        for cid in gone:
            for table in (seen, sizes, breaks, zones, zone_seq, insides):
                table.pop(cid, None)
        pruned_ms = now
    emit = _Emitter(symbol, tick, now, cooldown, config.cooldown_ms)

    for c in clusters:
        n = c.notional_usd
        # --- new_cluster ---------------------------------------------------------------
        rec = sizes.get(c.id)
        if rec is not None and rec[1] < 0:
            sizes[c.id] = [n, n, int(rec[2])]  # re-based under the new OI composition
        elif abs(near_distance_pct(c, price)) > config.new_cluster_range_pct:
            # Tracked silently: cluster news is about clusters near enough to matter. The base
            # stays, so growth is announced (from that base) once the cluster is in range.
            sizes[c.id] = [n, n, 0] if rec is None else [max(rec[0], n), rec[1], int(rec[2])]
        elif rec is None:
            sizes[c.id] = [n, n, 0]
            if announce:
                k = int(np.searchsorted(watch.sub_min, n, side="right"))
                emit.cluster(EventKind.NEW_CLUSTER, watch.sub_chat[:k], c, 0)
        else:
            peak, base, epoch = rec[0], rec[1], int(rec[2])
            if n >= config.growth * base:
                # Growth news for chats that knew the cluster (and whose minimum it still
                # meets); first news for the others.
                k0 = int(np.searchsorted(watch.sub_min, min(peak, n), side="right"))
                k1 = int(np.searchsorted(watch.sub_min, n, side="right"))
                emit.cluster(EventKind.NEW_CLUSTER, watch.sub_chat[:k0], c, epoch + 1,
                             grown_from=base)
                emit.cluster(EventKind.NEW_CLUSTER, watch.sub_chat[k0:k1], c, epoch + 1)
                sizes[c.id] = [max(peak, n), n, epoch + 1]
            elif n > peak:
                # Subscribers whose min USD the cluster just reached for the first time.
                k0 = int(np.searchsorted(watch.sub_min, peak, side="right"))
                k1 = int(np.searchsorted(watch.sub_min, n, side="right"))
                emit.cluster(EventKind.NEW_CLUSTER, watch.sub_chat[k0:k1], c, epoch)
                sizes[c.id] = [n, base, epoch]

        # --- break ------------------------------------------------------------------------
        armed, b_epoch = breaks.get(c.id, [1, 0])
        crossed = broke_through(c.side, c.low, c.high, prev, hi, lo)
        if c.side == "short":
            back = price < c.low * (1 - config.rearm_pct / 100.0)
        else:
            back = price > c.high * (1 + config.rearm_pct / 100.0)
        if armed and crossed:
            k = int(np.searchsorted(watch.sub_min, n, side="right"))
            emit.cluster(EventKind.BREAK, watch.sub_chat[:k], c, b_epoch)
            breaks[c.id] = [0, b_epoch]
            armed = 0
        elif not armed and back:
            breaks[c.id] = [1, b_epoch + 1]
            armed = 1

        # --- approach -------------------------------------------------------------------
        if len(watch.pcts) == 0 and c.id not in zones:
            continue
        d = abs(near_distance_pct(c, price))
        beyond = price > c.high if c.side == "short" else price < c.low
        zc = zones.get(c.id, {})
        new_zc = dict(zc)
        # Re-arm zones the price has left by the margin.
        for pct_key, (inside, z_epoch) in zc.items():
            if inside and d > float(pct_key) + config.rearm_pct:
                new_zc[pct_key] = [0, z_epoch]
        # No "approaching" a cluster price has just broken, until the break re-arms.
        if armed and not beyond:
            first = int(np.searchsorted(watch.pcts, d, side="left"))
            for pct in watch.pcts[first:].tolist():
                pct_key = f"{pct:g}"
                if new_zc.get(pct_key, (0, 0))[0]:
                    continue
                # Approach epochs come from one counter per cluster, not per % group: a chat
                # that changes its approach % must never meet an epoch it already used.
                z_epoch = zone_seq.get(c.id, 0)
                zone_seq[c.id] = z_epoch + 1
                new_zc[pct_key] = [1, z_epoch]
                mins, chats = watch.groups[pct]
                k = int(np.searchsorted(mins, n, side="right"))
                emit.cluster(EventKind.APPROACH, chats[:k], c, z_epoch)
        if new_zc:
            zones[c.id] = new_zc
        # --- inside (an update of the approach message) ------------------------------------
        was_in, i_epoch = insides.get(c.id, [0, 0])
        if was_in and d > config.rearm_pct:
            insides[c.id] = [0, i_epoch]
        elif not was_in and d == 0 and armed:
            # Only groups whose zone was in before this tick: the others' approach, fired
            # now, already says "inside".
            insides[c.id] = [1, i_epoch + 1]
            for pct_key, (z_in, _) in sorted(zc.items(), key=lambda kv: float(kv[0])):
                if z_in and float(pct_key) in watch.groups:
                    mins, chats = watch.groups[float(pct_key)]
                    k = int(np.searchsorted(mins, n, side="right"))
                    emit.cluster(EventKind.INSIDE, chats[:k], c, i_epoch)

    # --- level_cross ------------------------------------------------------------------------
    levels_off = dict(state.levels_off)
    fired: set[str] = set()
    if prev is not None and len(watch.lv_price):
        p = watch.lv_price
        up = np.arange(int(np.searchsorted(p, prev, side="right")),
                       int(np.searchsorted(p, hi, side="right")))
        down = np.arange(int(np.searchsorted(p, lo, side="left")),
                         int(np.searchsorted(p, prev, side="left")))
        up = up[watch.lv_dir[up] != 2]
        down = down[watch.lv_dir[down] != 1]
        sid, notes = watch.lv_sid, watch.lv_note
        for idx, direction in ((up, "up"), (down, "down")):
            for i, lp, chat in zip(idx.tolist(), p[idx].tolist(), watch.lv_chat[idx].tolist(),
                                   strict=True):
                lid = sid[i]
                if lid in levels_off:
                    continue  # disarmed: fired before, price has not moved away yet
                levels_off[lid] = [lp, 1.0 if direction == "up" else -1.0]
                fired.add(lid)
                # Epoch = this tick's time: a returning level (chat re-activated) or a
                # re-armed one can never meet a dedupe key it already used.
                emit.level(chat, lid, lp, direction, notes[i], tick.ts_ms)
    if levels_off:
        rearm, away = config.level_rearm_pct / 100.0, config.level_away_pct / 100.0
        for lid, off in list(levels_off.items()):
            lp, side = (off, 0.0) if isinstance(off, (int, float)) else (off[0], off[1])
            moved = (price - lp) / lp  # + above the level
            through = moved * side >= rearm if side else abs(moved) >= rearm
            if lid not in watch.level_ids:
                del levels_off[lid]  # deleted, or its chat deactivated: stop tracking
            elif lid not in fired and (through or abs(moved) >= away):
                del levels_off[lid]

    new_state = SymbolState(
        last_ms=max(tick.ts_ms, state.last_ms or tick.ts_ms), last_price=price, baselined=True,
        oi_mix=state.oi_mix if oi_mix is None else oi_mix, zones=zones, breaks=breaks,
        inside=insides,
        sizes=sizes, levels_off=levels_off, cooldown=cooldown, seen=seen, zone_seq=zone_seq,
        pruned_ms=pruned_ms)
    return emit.events, new_state


def clusters_from_dicts(items: Iterable[Mapping[str, object]]) -> list[Cluster]:
    """Clusters back from ``Cluster.as_dict()`` rows (the store keeps them as JSON)."""
    return [Cluster(**dict(x)) for x in items]  # type: ignore[arg-type]
