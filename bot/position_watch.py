"""The /mypos watch: a user's position, watched in their private chat.

Two alerts per watch, through the outbox like every alert:

- *near*: the tick's range came within ``within_pct`` % of the liquidation price (the low for a
  long, the high for a short). Once per arming; it re-arms when price is back more than twice
  that distance away (a new arming epoch, so a new dedupe key).
- *cluster*: an estimated cluster that lay between the previous price and the liquidation was
  traded through (its far edge reached). Once per (watch, cluster id).

Events are deterministic in (watch, tick), so a tick replayed after a crash inserts nothing
new (the outbox ignores a known key). The table (schema v4 in :data:`bot.store.MIGRATIONS`) is
mixed into :class:`bot.store.Store`; :meth:`PositionWatchTables.commit_watches` writes the
arming state and the outbox rows in ONE transaction. Nothing here logs: a position is private.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.alerts.events import AlertEvent, EventKind
from bot.errors import LimitExceededError, UserInputError
from bot.fmt import money, price_text
from estimator import Cluster

if TYPE_CHECKING:
    from bot.db import Database

MAX_WATCHES = 10  # per chat
DEFAULT_WITHIN_PCT = 2.0
REARM_FACTOR = 2.0  # re-armed when price is back more than this × within_pct away
DISCLAIMER = "estimate, not exchange data"


@dataclass(frozen=True)
class PositionWatch:
    """One watched position. ``near_epoch``: arming epoch of the near alert (ms);
    ``near_fired``: it fired in that epoch (disarmed until price moves away)."""

    id: int
    chat: int
    symbol: str
    side: str  # "long" | "short"
    entry: float
    leverage: float
    size_usd: float | None
    liq_price: float
    within_pct: float
    near_epoch: int
    near_fired: bool


def distance_pct(price: float, liq: float) -> float:
    """How far (in % of ``price``) price is from the liquidation, positive while safe."""
    return abs(price - liq) / price * 100.0


def watch_events(w: PositionWatch, prev_price: float | None, price: float, high: float,
                 low: float, ts_ms: int, clusters: Sequence[Cluster]
                 ) -> tuple[list[AlertEvent], PositionWatch]:
    """The alerts one tick raises for ``w`` and its new arming state (pure)."""
    events: list[AlertEvent] = []
    extreme = low if w.side == "long" else high
    near = (extreme <= w.liq_price * (1 + w.within_pct / 100) if w.side == "long"
            else extreme >= w.liq_price * (1 - w.within_pct / 100))
    new = w
    if near and not w.near_fired:
        events.append(_event(w, "near", w.near_epoch, price, ts_ms,
                             distance_pct=distance_pct(price, w.liq_price)))
        new = replace(w, near_fired=True)
    elif w.near_fired and distance_pct(price, w.liq_price) > REARM_FACTOR * w.within_pct:
        new = replace(w, near_fired=False, near_epoch=ts_ms)
    if prev_price is not None:
        for c in clusters:
            if c.side != w.side:
                continue
            if w.side == "long":
                between = w.liq_price < c.low and c.high <= prev_price
                broke = low <= c.low
            else:
                between = prev_price <= c.low and c.high < w.liq_price
                broke = high >= c.high
            if between and broke:
                events.append(_event(w, c.id, 0, price, ts_ms, cluster=c))
    return events, new


def _event(w: PositionWatch, what: str, epoch: int, price: float, ts_ms: int,
           distance_pct: float | None = None, cluster: Cluster | None = None) -> AlertEvent:
    return AlertEvent(
        kind=EventKind.POSITION, chat=w.chat, symbol=w.symbol, ref=f"pos:{w.id}:{what}",
        epoch=epoch, price=price, ts_ms=ts_ms, side=w.side,
        low=cluster.low if cluster else None, high=cluster.high if cluster else None,
        notional_usd=cluster.notional_usd if cluster else None, distance_pct=distance_pct,
        level_price=w.liq_price, note=f"watch #w{w.id}")


def watch_text(event: AlertEvent) -> str:
    """The alert's words (without the price/time tail the caller adds)."""
    liq = f"your {event.side} liquidation at {price_text(event.level_price or 0.0)}"
    if event.low is None:
        return (f"🛡 {event.symbol} is within {event.distance_pct or 0.0:.1f} % of {liq} "
                f"({event.note})")
    return (f"🛡 {event.symbol} broke the {money(event.notional_usd or 0.0)} {event.side} "
            f"cluster {price_text(event.low)}–{price_text(event.high or 0.0)} between price and "
            f"{liq} ({event.note}) · {DISCLAIMER}")


class PositionWatchTables:
    """The store's position_watches table (mixed into :class:`bot.store.Store`)."""

    db: Database
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    def add_position_watch(self, chat: int, symbol: str, side: str, entry: float,
                           leverage: float, size_usd: float | None, liq_price: float,
                           within_pct: float, now: int) -> PositionWatch:
        """Watch a position in ``chat`` (at most :data:`MAX_WATCHES` per chat)."""
        if side not in ("long", "short") or not (entry > 0 and leverage > 0 and liq_price > 0
                                                 and within_pct > 0):
            raise UserInputError("a position watch needs a side, a positive entry, leverage, "
                                 "liquidation price and distance")
        with self.db.atomic():
            n = self.db.execute("SELECT COUNT(*) FROM position_watches WHERE chat = ?",
                                (chat,)).fetchone()[0]
            if n >= MAX_WATCHES:
                raise LimitExceededError(
                    f"this chat already watches {MAX_WATCHES} positions (the maximum); remove "
                    "one with /unlevel wID first")
            watch_id = int(self.db.execute(
                "INSERT INTO position_watches (chat, symbol, side, entry, leverage, size_usd,"
                " liq_price, within_pct, near_epoch, near_fired, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id",
                (chat, symbol, side, float(entry), float(leverage), size_usd,
                 float(liq_price), float(within_pct), now, now)).fetchone()[0])
        return PositionWatch(watch_id, chat, symbol, side, float(entry),
                             float(leverage), size_usd, float(liq_price), float(within_pct),
                             now, False)

    def remove_position_watch(self, chat: int, watch_id: int) -> bool:
        cur = self.db.execute("DELETE FROM position_watches WHERE id = ? AND chat = ?",
                              (watch_id, chat))
        return cur.rowcount > 0

    def list_position_watches(self, chat: int) -> list[PositionWatch]:
        return [_watch(r) for r in self.db.query(
            "SELECT * FROM position_watches WHERE chat = ? ORDER BY id", (chat,))]

    def active_position_watches(self, symbol: str) -> list[PositionWatch]:
        """Watches of ``symbol`` in active chats."""
        return [_watch(r) for r in self.db.query(
            "SELECT w.* FROM position_watches w JOIN chats c ON c.id = w.chat"
            " WHERE c.active = 1 AND w.symbol = ? ORDER BY w.id", (symbol,))]

    def commit_watches(self, changed: Iterable[PositionWatch], events: Iterable[AlertEvent],
                       now: int) -> int:
        """The watches' new arming state and their outbox rows in ONE transaction; returns
        the number of new rows (a known dedupe key inserts nothing)."""
        with self.db.atomic():
            self.db.executemany(
                "UPDATE position_watches SET near_epoch = ?, near_fired = ? WHERE id = ?",
                [(w.near_epoch, int(w.near_fired), w.id) for w in changed])
            return self._insert_outbox(events, now)


def _watch(r: dict[str, Any]) -> PositionWatch:
    return PositionWatch(r["id"], r["chat"], r["symbol"], r["side"], r["entry"], r["leverage"],
                         r["size_usd"], r["liq_price"], r["within_pct"], r["near_epoch"],
                         bool(r["near_fired"]))


MIGRATION = (
    """CREATE TABLE position_watches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('long', 'short')),
        entry REAL NOT NULL CHECK (entry > 0),
        leverage REAL NOT NULL CHECK (leverage > 0),
        size_usd REAL,
        liq_price REAL NOT NULL CHECK (liq_price > 0),
        within_pct REAL NOT NULL CHECK (within_pct > 0),
        near_epoch INTEGER NOT NULL,
        near_fired INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL)""",
    "CREATE INDEX position_watches_symbol ON position_watches(symbol)",
)


def tick_watches(store: PositionWatchTables, symbol: str, prev_price: float | None,
                 price: float, high: float, low: float, ts_ms: int,
                 clusters: Sequence[Cluster], now: int) -> int:
    """Evaluate every watch of ``symbol`` on one tick and commit; returns new outbox rows."""
    events: list[AlertEvent] = []
    changed: list[PositionWatch] = []
    for w in store.active_position_watches(symbol):
        evs, new = watch_events(w, prev_price, price, high, low, ts_ms, clusters)
        events += evs
        if new != w:
            changed.append(new)
    if not events and not changed:
        return 0
    return store.commit_watches(changed, events, now)
