"""Confirmed-cluster alerts (issue 17): a subscription follows estimated clusters, confirmed
ones (real Hyperliquid positions), or both — ``/subscribe BTC 100m 0.5 confirmed``.

The estimate's subscriptions stay in ``subscriptions``; following confirmed clusters is a row
of ``confirmed_subscriptions`` (:data:`MIGRATION`, schema v8) with its own threshold and
distance. Rule: on each tick, every confirmed cluster of at least ``min_usd`` whose near edge
is within ``approach_pct`` % of price (or that price is inside) alerts each following chat
ONCE — ref ``hl:<side>:<first bucket>``, epoch 0, so the outbox's unique key makes a repeated
tick or a restart a no-op. Wording: "confirmed: N real positions on Hyperliquid, $X", never
"estimate".

Break (issue 18): with the tape on, a confirmed cluster of at least a chat's ``min_usd`` that
the tick's traded range crosses by the estimate's break rule
(:func:`bot.alerts.engine.broke_through`) asks for that chat's sweep receipt: the same
receipts as estimated breaks (:mod:`bot.audit.receipts`), once per chat and cluster ref (epoch
0, like the alert), replying to the chat's confirmed alert on that cluster when it got one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.engine import broke_through
from bot.alerts.events import AlertEvent, EventKind
from bot.audit.receipts import DueReceipt
from bot.errors import UserInputError
from bot.fmt import money, price_text

if TYPE_CHECKING:
    from bot.db import Database
    from bot.hyperliquid.confirmed import ConfirmedView
    from bot.hyperliquid.positions import ConfirmedCluster
    from estimator.grid import PriceGrid

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE confirmed_subscriptions (
        chat INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        symbol TEXT NOT NULL,
        min_usd REAL NOT NULL CHECK (min_usd > 0),
        approach_pct REAL NOT NULL CHECK (approach_pct > 0),
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (chat, symbol))""",
)
LAYERS = ("estimate", "confirmed", "both")
SOURCE = "exchange data: real positions on Hyperliquid, a sample of wallets"


@dataclass(frozen=True)
class ConfirmedSubscription:
    chat: int
    symbol: str
    min_usd: float
    approach_pct: float


class ConfirmedAlertTables:
    db: Database
    if TYPE_CHECKING:
        def _insert_outbox(self, events: Iterable[AlertEvent], t: int) -> int: ...

    def subscribe_confirmed(self, chat: int, symbol: str, min_usd: float, approach_pct: float,
                            now: int) -> ConfirmedSubscription:
        if not (min_usd > 0 and approach_pct > 0):
            raise UserInputError("thresholds must be > 0")
        self.db.execute(
            "INSERT INTO confirmed_subscriptions (chat, symbol, min_usd, approach_pct,"
            " created_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat, symbol) DO UPDATE SET"
            " min_usd = excluded.min_usd, approach_pct = excluded.approach_pct",
            (chat, symbol, float(min_usd), float(approach_pct), now))
        return ConfirmedSubscription(chat, symbol, float(min_usd), float(approach_pct))

    def unsubscribe_confirmed(self, chat: int, symbol: str) -> bool:
        cur = self.db.execute("DELETE FROM confirmed_subscriptions WHERE chat = ? AND symbol = ?",
                              (chat, symbol))
        return cur.rowcount > 0

    def confirmed_subscriptions(self, symbol: str | None = None,
                                chat: int | None = None) -> list[ConfirmedSubscription]:
        """Of active chats; one symbol and/or one chat when given."""
        rows = self.db.execute(
            "SELECT s.chat, s.symbol, s.min_usd, s.approach_pct FROM confirmed_subscriptions s"
            " JOIN chats c ON c.id = s.chat WHERE c.active = 1 AND (? IS NULL OR s.symbol = ?)"
            " AND (? IS NULL OR s.chat = ?) ORDER BY s.chat, s.symbol",
            (symbol, symbol, chat, chat)).fetchall()
        return [ConfirmedSubscription(int(r[0]), r[1], float(r[2]), float(r[3])) for r in rows]

    def commit_confirmed(self, events: Sequence[AlertEvent], t: int) -> int:
        with self.db.atomic():
            return self._insert_outbox(events, t)


def cluster_ref(c: ConfirmedCluster, grid: PriceGrid) -> str:
    """``hl:<side>:<first bucket>``: a confirmed cluster's alert (and receipt) ref."""
    return f"hl:{c.side}:{int(grid.index(c.low * (1 + 1e-12)))}"


def confirmed_breaks(subs: Sequence[ConfirmedSubscription], view: ConfirmedView, symbol: str,
                     prev: float | None, hi: float, lo: float, since_ms: int, ts_ms: int,
                     grid: PriceGrid, minutes: float) -> list[DueReceipt]:
    """The receipts asked for by confirmed clusters the tick [``lo``, ``hi``] broke, coming
    from the previous price ``prev`` (at ``since_ms``): one per following chat whose
    ``min_usd`` the cluster reaches, due ``minutes`` after ``ts_ms``, with the cluster's
    confirmed size (its real positions' USD and count)."""
    due = []
    for c in view.clusters:
        if prev is None or not broke_through(c.side, c.low, c.high, prev, hi, lo):
            continue
        ref = cluster_ref(c, grid)
        due += [DueReceipt(s.chat, ref, 0, symbol, c.side, c.low, c.high, prev, ts_ms, since_ms,
                           ts_ms + int(round(minutes * 60_000)), c.notional_usd, False,
                           positions=c.positions)
                for s in subs if c.notional_usd >= s.min_usd]
    return due


def confirmed_events(subs: Sequence[ConfirmedSubscription], view: ConfirmedView,
                     symbol: str, price: float, ts_ms: int, grid: PriceGrid) -> list[AlertEvent]:
    events = []
    for c in view.clusters:
        if c.low <= price <= c.high:
            dist = 0.0
        else:
            near = c.high if c.high < price else c.low
            dist = (near - price) / price * 100.0
        ref = cluster_ref(c, grid)
        for s in subs:
            if c.notional_usd >= s.min_usd and abs(dist) <= s.approach_pct:
                events.append(AlertEvent(
                    EventKind.CONFIRMED, s.chat, symbol, ref, 0, price, ts_ms, side=c.side,
                    low=c.low, high=c.high, notional_usd=c.notional_usd, distance_pct=dist,
                    positions=c.positions))
    return events


def confirmed_text(e: AlertEvent) -> str:
    """``🟦 BTC confirmed: 4 real positions on Hyperliquid, $1.2M, liquidate at
    95,900–96,000 (1.2 % below price)``."""
    dist = e.distance_pct or 0.0
    where = "price is inside" if dist == 0 else \
        f"{abs(dist):.1f} % {'above' if dist > 0 else 'below'} price"
    return (f"🟦 {e.symbol} {confirmed_size(e.positions or 0, e.notional_usd or 0.0)}, "
            f"{e.side}s liquidate at "
            f"{price_text(e.low or 0.0)}–{price_text(e.high or 0.0)} ({where})")


def confirmed_size(n: int, usd: float) -> str:
    """``confirmed: 4 real positions on Hyperliquid, $1.2M`` (alerts and receipts)."""
    return (f"confirmed: {n} real {'position' if n == 1 else 'positions'} on Hyperliquid, "
            f"{money(usd)}")


def layer_of(args: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """Split a trailing layer word (estimate | confirmed | both) off /subscribe's arguments;
    None when there is none."""
    if len(args) > 1 and args[-1].lower() in LAYERS:
        return tuple(args[:-1]), args[-1].lower()
    return tuple(args), None
