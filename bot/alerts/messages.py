"""Neutral wording of an alert as plain text; adapters add platform formatting, not words.

Example: ``⚠️ BTC/USDT:USDT approaching $1.0B short cluster 94,000–94,400 (+1.2 %) — price
92,900 · 2026-11-25 12:00 UTC · estimate, not exchange data``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.alerts.events import AlertEvent, EventKind

DISCLAIMER = "estimate, not exchange data"


def usd(amount: float) -> str:
    """Compact USD: $1.0B, $641M, $12.3M, $950k, $420."""
    a = abs(amount)
    sign = "-" if amount < 0 else ""
    if a >= 1e9:
        return f"{sign}${a / 1e9:.1f}B"
    if a >= 100e6:
        return f"{sign}${a / 1e6:.0f}M"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.1f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:.0f}k"
    return f"{sign}${a:.0f}"


def price_text(p: float) -> str:
    """Price with thousands separators; decimals only where the magnitude needs them."""
    if p >= 1000:
        return f"{p:,.0f}"
    if p >= 1:
        return f"{p:,.2f}"
    return f"{p:.6g}"


def pct_text(pct: float) -> str:
    """Signed percentage with one decimal: ``+1.2 %``."""
    return f"{pct:+.1f} %"


def time_text(ts_ms: int, tz: str = "UTC") -> str:
    """``2026-11-25 12:00 UTC`` in the chat's time zone (unknown zones fall back to UTC)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    t = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(zone)
    return t.strftime("%Y-%m-%d %H:%M ") + (t.tzname() or "UTC")


def render(event: AlertEvent, tz: str = "UTC") -> str:
    """One line of plain text for ``event``; times in the chat's zone ``tz``."""
    when = time_text(event.ts_ms, tz)
    tail = f"— price {price_text(event.price)} · {when}"
    if event.kind is EventKind.LEVEL_CROSS:
        arrow = "↑" if event.direction == "up" else "↓"
        note = f" ({event.note})" if event.note else ""
        return (f"🔔 {event.symbol} crossed your level {price_text(event.level_price or 0.0)} "
                f"{arrow}{note} {tail}")
    size = usd(event.notional_usd or 0.0)
    rng = f"{price_text(event.low or 0.0)}–{price_text(event.high or 0.0)}"
    dist = pct_text(event.distance_pct or 0.0)
    if event.kind is EventKind.APPROACH:
        head = f"⚠️ {event.symbol} approaching {size} {event.side} cluster {rng} ({dist})"
    elif event.kind is EventKind.BREAK:
        head = f"💥 {event.symbol} broke through {size} {event.side} cluster {rng}"
    elif event.grown_from_usd:
        factor = (event.notional_usd or 0.0) / event.grown_from_usd
        head = (f"📈 {event.symbol} {event.side} cluster {rng} grew to {size} "
                f"(×{factor:.1f} from {usd(event.grown_from_usd)}, {dist})")
    else:
        head = f"🆕 {event.symbol} new {size} {event.side} cluster {rng} ({dist})"
    return f"{head} {tail} · {DISCLAIMER}"
