"""How numbers and times read everywhere (replies, alerts, charts): one home for the formats.

Amounts in USD, prices in quote currency, percentages already × 100, times in unix ms.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def money(usd: float) -> str:
    """Human USD amount: 1.04e9 → "$1.0B", 6.41e8 → "$641M", 12_300 → "$12.3K", 950 → "$950"."""
    if not math.isfinite(usd):
        return "n/a"
    sign, v = ("-" if usd < 0 else ""), abs(usd)
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= div * 0.9995:  # 999.6M prints as "$1.0B", never "$1000M"
            s = v / div
            return f"{sign}${s:.0f}{unit}" if s >= 99.95 else f"{sign}${s:.1f}{unit}"
    return f"{sign}${v:.0f}"


def price_text(price: float) -> str:
    """A price with thousands separators and decimals only where the magnitude needs them:
    94000 → "94,000", 3.14159 → "3.14", 0.000123456 → "0.000123"."""
    if price >= 1000:
        return f"{price:,.0f}"
    if price >= 1:
        return f"{price:,.2f}"
    return f"{price:.3g}"


def pct_text(pct: float) -> str:
    """Signed percentage with one decimal: ``+1.2 %``."""
    return f"{pct:+.1f} %"


def utc_text(ms: int) -> str:
    """Unix ms → "2019-10-17 09:00" (UTC, no zone suffix)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def time_text(ms: int, tz: str = "UTC") -> str:
    """``2026-11-25 12:00 UTC`` in the zone ``tz`` (unknown zones fall back to UTC)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    t = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)
    return t.strftime("%Y-%m-%d %H:%M ") + (t.tzname() or "UTC")
