"""Neutral wording of an alert as plain text; adapters add platform formatting, not words.

Example: ``⚠️ BTC/USDT:USDT approaching $1.0B short cluster 94,000–94,400 (1.2 % above price)
— price 92,900 · 2026-11-25 12:00 UTC · estimate, not exchange data``. Distances are labelled
("above price" / "below price"), never a bare signed %, which reads like growth.
"""

from __future__ import annotations

from bot.alerts.events import AlertEvent, EventKind
from bot.fmt import money, price_text, time_text

DISCLAIMER = "estimate, not exchange data"
TAPE_SOURCE = "exchange data (liquidation tape)"


def render(event: AlertEvent, tz: str = "UTC") -> str:
    """One line of plain text for ``event``; times in the chat's zone ``tz``."""
    when = time_text(event.ts_ms, tz)
    tail = f"— price {price_text(event.price)} · {when}"
    if event.kind is EventKind.LEVEL_CROSS:
        return level_text(event, when, tail)
    if event.kind is EventKind.LIQUIDATIONS:
        return f"{tape_text(event)} {tail} · {TAPE_SOURCE}"
    if event.kind is EventKind.DIGEST:
        return digest_text(event, tz)
    if event.kind is EventKind.TOP_DIGEST:
        from bot.alerts import top_digest

        return top_digest.digest_text(event, tz)
    if event.kind is EventKind.RECEIPT:
        from bot.audit.receipts import receipt_text

        return receipt_text(event, tz)
    if event.kind is EventKind.CONFIRMED:  # real positions: never worded as an estimate
        from bot.hyperliquid.alerts import SOURCE, confirmed_text

        return f"{confirmed_text(event)} {tail} · {SOURCE}"
    if event.kind is EventKind.POSITION:
        from bot.position_watch import watch_text

        return f"{watch_text(event)} {tail}"
    size = money(event.notional_usd or 0.0)
    rng = f"{price_text(event.low or 0.0)}–{price_text(event.high or 0.0)}"
    dist = distance_text(event.distance_pct or 0.0)
    if event.kind is EventKind.INSIDE or (event.kind is EventKind.APPROACH
                                          and not event.distance_pct):
        head = f"⚠️ {event.symbol} price is inside a {size} {event.side} cluster {rng}"
    elif event.kind is EventKind.APPROACH:
        head = f"⚠️ {event.symbol} approaching {size} {event.side} cluster {rng} ({dist})"
    elif event.kind is EventKind.BREAK:
        head = f"💥 {event.symbol} broke through {size} {event.side} cluster {rng}"
        if event.tape_count:
            head += (f"; the tape saw {money(event.tape_usd or 0.0)} of real {event.side} "
                     f"liquidations in it ({event.tape_count})")
    elif event.grown_from_usd:
        factor = (event.notional_usd or 0.0) / event.grown_from_usd
        head = (f"📈 {event.symbol} {event.side} cluster {rng} grew to {size} "
                f"(×{factor:.1f} from {money(event.grown_from_usd)}; {dist})")
    else:
        head = f"🆕 {event.symbol} new {size} {event.side} cluster {rng} ({dist})"
    return f"{head} {tail} · {DISCLAIMER}"


def level_text(event: AlertEvent, when: str, tail: str) -> str:
    """A level crossing; a wick (the extreme touched it, price is back on the side it came
    from) says so: ``low 60,790 touched your level 60,853 ↓; price back at 60,963``."""
    level = event.level_price or 0.0
    arrow = "↑" if event.direction == "up" else "↓"
    note = f" ({event.note})" if event.note else ""
    up = event.direction == "up"
    extreme = event.high if up else event.low
    wick = extreme is not None and (event.price < level if up else event.price > level)
    if wick:
        return (f"🔔 {event.symbol} {'high' if up else 'low'} {price_text(extreme or 0.0)} "
                f"touched your level {price_text(level)} {arrow}{note}; price back at "
                f"{price_text(event.price)} · {when}")
    return f"🔔 {event.symbol} crossed your level {price_text(level)} {arrow}{note} {tail}"


def distance_text(pct: float) -> str:
    """A signed distance (% of price, + = above) as words: ``1.2 % above price``."""
    if round(abs(pct), 1) == 0:
        return "at price"
    return f"{abs(pct):.1f} % {'above' if pct > 0 else 'below'} price"


def tape_text(event: AlertEvent) -> str:
    """A window of real liquidations: one event, or a burst summary of many."""
    where = f" on {event.note}" if event.note else ""
    largest = (f"{money(event.notional_usd or 0.0)} {event.side} liquidated at "
               f"{price_text(event.level_price or 0.0)}")
    if (event.tape_count or 0) <= 1:
        return f"🔥 {event.symbol} {largest}{where}"
    sides = ", ".join(f"{money(usd)} of {side}s" for side, usd in
                      (("long", event.long_usd or 0.0), ("short", event.short_usd or 0.0))
                      if usd > 0)
    return (f"🔥 {event.symbol} {event.tape_count} liquidations{where}: {sides} between "
            f"{price_text(event.low or 0.0)} and {price_text(event.high or 0.0)}; largest "
            f"{largest}")


DIGEST_LINES = 10  # news listed in one digest; the rest are counted


def digest_text(event: AlertEvent, tz: str = "UTC") -> str:
    """A quiet subscription's digest: a header, one line per bundled news (oldest first),
    the price at the end of the slot."""
    items = [AlertEvent.from_dict(d) for d in event.items or []]
    start, end = time_text(event.epoch, tz), time_text(event.ts_ms, tz)
    n = len(items)
    lines = [f"🗞 {event.symbol} digest {start[:16]}–{end[11:]}: {n} cluster "
             f"update{'s' if n != 1 else ''}"]
    for item in items[:DIGEST_LINES]:
        head = render(item, tz).split(" — price ")[0]
        lines.append(f"• {time_text(item.ts_ms, tz)[11:16]} {head.split(' ', 2)[2]}")
    if n > DIGEST_LINES:
        lines.append(f"• … and {n - DIGEST_LINES} more")
    lines.append(f"price {price_text(event.price)} · {DISCLAIMER}")
    return "\n".join(lines)
