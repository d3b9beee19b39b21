"""Sweep receipts, without I/O: ``receipt_minutes`` after a break, what the real liquidation
tape saw inside the broken cluster, next to what the estimate said and a control band.

The control band has the cluster's width and sits at the same distance on the other side of the
pre-break price P: [2P − high, 2P − low], moved out to the cluster's edge when it would overlap
it. Both bands count liquidations of the cluster's side (the same measurement, mirrored), with
the tape's usual slack (:func:`bot.tape.alerts.seen_in`).
Tape figures are exchange data; the cluster's size is the estimate (USD, or proxy units) —
or, for a confirmed cluster (real Hyperliquid positions, :mod:`bot.hyperliquid.alerts`), its
confirmed size ("confirmed: N real positions on Hyperliquid, $X"), never called an estimate.

Example: ``🧾 Receipt BTC/USDT:USDT 91,000–91,400 long (broke 14:05): tape saw $3.0M of long
liquidations (41) in 15 min; estimate $120M (proxy units); control band above: $0.2M · tape =
exchange data; estimate = …``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.alerts.events import AlertEvent, EventKind
from bot.fmt import money, price_text, time_text
from bot.tape.alerts import seen_in
from bot.tape.events import Liquidation

TAPE_LABEL = "tape = exchange data"
ESTIMATE_LABEL = "estimate = the model's estimate, not exchange data"
UNDER_REPORTS = "Liquidation streams under-report (Binance sends at most one per second)."


@dataclass(frozen=True)
class DueReceipt:
    """A break waiting for its receipt (one per chat and break: the break's chat, ref, epoch).

    ``since_ms``: tape events from here count (the tick before the break); ``due_ms``: when the
    receipt is due (break time + receipt minutes), on the tick clock."""

    chat: int
    ref: str
    epoch: int
    symbol: str
    side: str
    low: float
    high: float
    pre_price: float
    break_ms: int
    since_ms: int
    due_ms: int
    estimate_usd: float  # a confirmed cluster: its real positions' USD
    proxy: bool
    positions: int | None = None  # a confirmed cluster: its real positions (else None)


def due_from_break(e: AlertEvent, pre_price: float, since_ms: int, minutes: float,
                   proxy: bool) -> DueReceipt:
    """The receipt a break event asks for."""
    assert e.kind is EventKind.BREAK and e.side and e.low is not None and e.high is not None
    return DueReceipt(e.chat, e.ref, e.epoch, e.symbol, e.side, e.low, e.high, pre_price,
                      e.ts_ms, since_ms, e.ts_ms + int(round(minutes * 60_000)),
                      float(e.notional_usd or 0.0), proxy)


def control_band(low: float, high: float, pre_price: float,
                 side: str | None = None) -> tuple[float, float]:
    """The same-width band at the same distance on the other side of ``pre_price``: the
    mirror [2P − high, 2P − low], moved out so it never overlaps the cluster (when P was inside
    the cluster it starts at the cluster's edge). Long clusters lie below price, short above."""
    width = high - low
    if side == "long" if side else high <= pre_price:
        start = max(2 * pre_price - high, high)
        return start, start + width
    end = min(2 * pre_price - low, low)
    return end - width, end


def receipt_event(r: DueReceipt, events: Iterable[Liquidation], price: float) -> AlertEvent:
    """The receipt alert for ``r`` from the tape ``events`` of its symbol between its
    ``since_ms`` and ``due_ms``. ``tape_usd``/``tape_count``: inside the cluster;
    ``control_usd``: inside the control band."""
    evs = [e for e in events if r.since_ms <= e.timestamp < r.due_ms]
    usd, n = seen_in(evs, r.side, r.low, r.high)
    c_lo, c_hi = control_band(r.low, r.high, r.pre_price, r.side)
    control, _ = seen_in(evs, r.side, c_lo, c_hi)
    return AlertEvent(EventKind.RECEIPT, r.chat, r.symbol, r.ref, r.epoch, price=price,
                      ts_ms=r.due_ms, side=r.side, low=r.low, high=r.high,
                      notional_usd=r.estimate_usd, tape_usd=usd, tape_count=n,
                      level_price=r.pre_price, control_usd=control, since_ms=r.break_ms,
                      note="confirmed" if r.positions is not None else
                      "proxy" if r.proxy else "usd", positions=r.positions)


def receipt_text(e: AlertEvent, tz: str = "UTC") -> str:
    """The receipt's wording (see the module docstring)."""
    rng = f"{price_text(e.low or 0.0)}–{price_text(e.high or 0.0)}"
    broke = time_text(e.since_ms or e.ts_ms, tz)[11:16]
    minutes = round((e.ts_ms - (e.since_ms or e.ts_ms)) / 60_000)
    where = "above" if e.side == "long" else "below"
    if e.positions is not None:  # a confirmed cluster: real positions, never an estimate
        from bot.hyperliquid.alerts import SOURCE, confirmed_size

        size = confirmed_size(e.positions, e.notional_usd or 0.0)
        label = f"confirmed = {SOURCE}"
    else:
        units = "proxy units" if e.note == "proxy" else "USD"
        size, label = f"estimate {money(e.notional_usd or 0.0)} ({units})", ESTIMATE_LABEL
    return (f"🧾 Receipt {e.symbol} {rng} {e.side} (broke {broke}): tape saw "
            f"{money(e.tape_usd or 0.0)} of {e.side} liquidations ({e.tape_count or 0}) in "
            f"{minutes} min; {size}; control band {where}: {money(e.control_usd or 0.0)} · "
            f"{TAPE_LABEL}; {label}. {UNDER_REPORTS}")
