"""Typed alert events: what the threshold engine emits and the outbox stores.

Prices in USD, distances in % of the price, times in ms since the Unix epoch (UTC).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class EventKind(StrEnum):
    """The alert kinds of the threshold engine (DESIGN.md), real liquidations from the tape
    (:mod:`bot.tape.alerts`), and the quiet digest (:mod:`bot.alerts.digest`)."""

    APPROACH = "approach"
    INSIDE = "inside"  # price entered a cluster it had approached: an edit of that message
    BREAK = "break"
    NEW_CLUSTER = "new_cluster"
    LEVEL_CROSS = "level_cross"
    LIQUIDATIONS = "liquidations"
    DIGEST = "digest"  # a quiet subscription's bundled news (bot.alerts.digest)
    POSITION = "position"  # a /mypos watch (bot.position_watch): private chats only
    RECEIPT = "receipt"  # what the tape saw in a broken cluster (bot.audit.receipts)
    CONFIRMED = "confirmed"  # real Hyperliquid positions near price (bot.hyperliquid.alerts)
    TOP_DIGEST = "top_digest"  # the daily /top of a /subscribe_top chat (bot.alerts.top_digest)


class AlertEvent(NamedTuple):
    """One alert for one chat (immutable; a NamedTuple because ticks can fan out to thousands
    of chats and a frozen dataclass costs ~5× more per event).

    ``ref`` is the cluster id, or ``"level:<id>"`` for a user level. ``epoch`` is the arming
    epoch of that watch (for a level cross: the firing tick's time, ms): (chat, kind, ref,
    epoch) is unique for every alert that may be sent, so a repeated tick can never produce a
    second row.

    Cluster fields (``side``, ``low``, ``high``, ``notional_usd``, ``distance_pct``) are set for
    cluster kinds; ``level_price``, ``direction`` ('up'|'down') and ``note`` for level crosses;
    ``grown_from_usd`` when a new_cluster event is a growth (≥ growth factor) announcement.
    ``distance_pct`` is signed: (near edge − price) / price × 100.

    Real liquidations: ``tape_usd`` / ``tape_count`` on a break are the liquidations the tape
    saw inside the broken cluster while price crossed it. A ``liquidations`` event (ref
    ``<symbol>@<window start ms>``) is one window of the tape: ``tape_count`` events, ``long_usd``
    / ``short_usd`` per side, ``low``–``high`` their prices, ``notional_usd`` / ``level_price``
    / ``side`` the largest one, ``note`` the exchanges.

    Digest (ref ``digest:<symbol>``, epoch = its slot's start ms, ``ts_ms`` its end): ``items``
    are the bundled news events, as :meth:`to_dict` dicts (:mod:`bot.alerts.digest`). A level
    cross also carries the tick's ``low`` / ``high`` (a wick is worded as one).

    Receipt (:mod:`bot.audit.receipts`; the ref and epoch of the break it answers):
    ``tape_usd`` / ``tape_count`` inside the cluster, ``control_usd`` inside the control band,
    ``since_ms`` the break's time, ``level_price`` the pre-break price, ``note`` the estimate's
    units ("proxy" or "usd").
    """

    kind: EventKind
    chat: int
    symbol: str
    ref: str
    epoch: int
    price: float
    ts_ms: int
    side: str | None = None
    low: float | None = None
    high: float | None = None
    notional_usd: float | None = None
    distance_pct: float | None = None
    level_price: float | None = None
    direction: str | None = None
    note: str | None = None
    grown_from_usd: float | None = None
    tape_usd: float | None = None
    tape_count: int | None = None
    long_usd: float | None = None
    short_usd: float | None = None
    items: list[dict[str, object]] | None = None
    control_usd: float | None = None
    since_ms: int | None = None
    positions: int | None = None  # confirmed: the real positions in the cluster

    @property
    def dedupe_key(self) -> str:
        """Deterministic key (chat, kind, ref, epoch) as one string, given to notifiers."""
        return f"{self.chat}|{self.kind.value}|{self.ref}|{self.epoch}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (the outbox payload)."""
        d: dict[str, object] = self._asdict()
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AlertEvent:
        fields = dict(d)
        fields["kind"] = EventKind(str(fields["kind"]))
        return cls(**fields)  # type: ignore[arg-type]
