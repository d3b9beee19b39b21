"""Trader questions about a price path: /ifbreak (what a move to PRICE would liquidate) and
/mypos (what sits between price and my own liquidation). Wording only; the arithmetic is
:mod:`estimator.cascade` and :func:`estimator.liquidation_price`.

Nothing here logs arguments: a position is the user's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.commands.parse import clip, parse_amount, parse_percent
from bot.commands.reply import Button, Caller, Reply
from bot.errors import UserInputError
from bot.fmt import money, price_text
from bot.position_watch import DEFAULT_WITHIN_PCT
from estimator import BINANCE_BTCUSDT, MAX_DISTANCE_PCT, Cascade, Tier, TierTable, cascade_path
from estimator.cascade import side_for

if TYPE_CHECKING:
    from bot.commands.core import CommandCore
    from bot.estimates import Estimate

ESTIMATE = "estimate, not exchange data"
PROXY_NOTE = ("volume proxy (no open interest): $ sizes are proxy units, not market "
              "positions")
MAX_BANDS = 8  # clusters listed in a reply; the rest are summed on one line
_LEVERAGE = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,2})?)x?$", re.IGNORECASE)


def path_of(est: Estimate, target: float) -> Cascade:
    """The cascade of an estimate to ``target``; a bad target is a UserInputError."""
    try:
        return cascade_path(est.book, est.clusters, target)
    except ValueError as exc:
        raise UserInputError(f"{price_text(target)}: {exc}.") from exc


def _side_words(side: str) -> str:
    return "longs" if side == "long" else "shorts"


def band_lines(cas: Cascade, limit: int = MAX_BANDS) -> list[str]:
    """The clusters passed, in order, with the running sum: ``94,010–94,420  $1.0B  → $1.0B``."""
    if not cas.bands:
        return ["  no cluster stands out on the way (the sum is spread thin)"]
    lines = [f"  {price_text(b.low)}–{price_text(b.high)}  {money(b.notional_usd)}  "
             f"(running {money(b.cumulative_usd)})" for b in cas.bands[:limit]]
    if len(cas.bands) > limit:
        rest = cas.bands[limit:]
        lines.append(f"  … {len(rest)} more clusters, "
                     f"{money(sum(b.notional_usd for b in rest))}")
    return lines


def footer(cas: Cascade, source: str) -> str:
    line = f"As of {datetime.fromtimestamp(cas.timestamp / 1000, UTC):%Y-%m-%d %H:%M} UTC · " \
           f"{ESTIMATE} · {source}"
    if cas.proxy:
        line += f"\n{PROXY_NOTE}"
    return line


def cascade_text(symbol: str, cas: Cascade, source: str,
                 confirmed_usd: float | None = None) -> str:
    """The /ifbreak answer. ``confirmed_usd``: the confirmed (Hyperliquid) layer's sum over
    the same range, shown apart when such a layer exists (None: there is none)."""
    arrow = "↓" if cas.side == "long" else "↑"
    lines = [
        f"{symbol}: if price breaks {price_text(cas.target)} {arrow} (now "
        f"{price_text(cas.price)}, {abs(cas.distance_pct):.1f} % "
        f"{'below' if cas.side == 'long' else 'above'}):",
        f"≈ {money(cas.cumulative_usd)} of {_side_words(cas.side)} would be liquidated on the "
        f"way ({ESTIMATE}). Clusters passed, in order:",
        *band_lines(cas),
    ]
    if confirmed_usd is not None:  # apart from the estimate, never added to it
        lines.append(f"Confirmed on Hyperliquid (real positions' liquidation prices, a sample "
                     f"of wallets on one venue; not in the estimate): {money(confirmed_usd)} "
                     f"of {_side_words(cas.side)} in this range")
    lines.append(footer(cas, source))
    return "\n".join(lines)


def cascade_json(symbol: str, cas: Cascade,
                 confirmed_usd: float | None = None) -> dict[str, object]:
    """The ``liqbot ifbreak --json`` object (exactly the issue's fields); with the confirmed
    layer (``--positions``), ``confirmed_usd`` apart from the estimate's ``cumulative_usd``."""
    extra: dict[str, object] = {} if confirmed_usd is None else {"confirmed_usd": confirmed_usd}
    return {
        "symbol": symbol, "price": cas.price, "target": cas.target, "side": cas.side,
        "cumulative_usd": cas.cumulative_usd,
        "clusters": [{"low": b.low, "high": b.high, "notional_usd": b.notional_usd,
                      "cumulative_usd": b.cumulative_usd} for b in cas.bands],
        "proxy": cas.proxy,
        "as_of": datetime.fromtimestamp(cas.timestamp / 1000, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
    } | extra


async def _estimate(core: CommandCore, symbol: str) -> Estimate:
    return await core.estimate(symbol)


async def ifbreak(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/ifbreak SYM PRICE."""
    from bot.commands.market_cmds import confirmed_view, source_label

    if len(args) != 2:
        raise UserInputError("Give a symbol and a price, e.g. /ifbreak BTC 90k"
                             if len(args) < 2 else "Too many arguments.")
    symbol = await core.resolve_symbol(args[0], untracked=True)
    target = parse_amount(args[1], "price")
    est = await _estimate(core, symbol)
    cas = path_of(est, target)
    view = confirmed_view(core, est)  # the confirmed layer ([positions]), shown apart
    text = cascade_text(symbol, cas, source_label(est),
                        confirmed_usd=None if view is None else view.between(cas.price,
                                                                             cas.target))
    short = symbol.split("/")[0]
    return Reply(text, buttons=(Button("Chart", f"/map {short} {target:.10g}"),))


# --- /mypos -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Position:
    side: str
    entry: float
    leverage: float
    size_usd: float | None
    watch_pct: float | None = None  # "watch [PCT]": alert within PCT % of the liquidation


def parse_position(args: tuple[str, ...]) -> Position:
    """``long|short ENTRY LEVERAGE [SIZE_USD] [watch [PCT]]`` (after the symbol)."""
    if len(args) < 3:
        raise UserInputError("Give side, entry and leverage, e.g. /mypos BTC long 95k 10x")
    rest = list(args[3:])
    size_text = rest.pop(0) if rest and rest[0].lower() != "watch" else None
    watch_pct = None
    if rest:
        if rest[0].lower() != "watch" or len(rest) > 2:
            raise UserInputError("Too many arguments.")
        watch_pct = (parse_percent(rest[1], "watch distance", 0.1, 20.0) if len(rest) == 2
                     else DEFAULT_WITHIN_PCT)
    side = args[0].lower()
    if side not in ("long", "short"):
        raise UserInputError(f"'{clip(args[0])}' is not a side: long or short.")
    entry = parse_amount(args[1], "entry price")
    m = _LEVERAGE.match(args[2].strip())
    if not m or not 1 <= float(m.group(1)) <= 125:
        raise UserInputError(f"'{clip(args[2])}' is not a leverage (1x to 125x, e.g. 10x).")
    size = parse_amount(size_text, "position size") if size_text is not None else None
    return Position(side, entry, float(m.group(1)), size, watch_pct)


def tier_for(pos: Position, table: TierTable) -> Tier:
    """The tier the exchange applies: by the size when given, else the smallest that allows
    the leverage (what :func:`estimator.liquidation_price` does without a notional)."""
    try:
        tier = (table.for_notional(pos.size_usd) if pos.size_usd is not None
                else table.smallest_for_leverage(pos.leverage))
    except ValueError as exc:
        raise UserInputError(f"No tier for this position: {exc}.") from exc
    if pos.leverage > tier.max_leverage:
        raise UserInputError(f"{pos.leverage:g}x is above the {tier.max_leverage:g}x maximum "
                             f"for a {money(pos.size_usd or 0)} position.")
    return tier


def position_liquidation(pos: Position, table: TierTable) -> tuple[float, Tier]:
    from estimator import liquidation_price

    tier = tier_for(pos, table)
    try:
        lp = liquidation_price(pos.entry, pos.leverage, pos.side, pos.size_usd, table)
    except ValueError as exc:
        raise UserInputError(f"Cannot compute the liquidation price: {exc}.") from exc
    if not lp > 0:  # 1x long: the formula goes to (or below) zero
        raise UserInputError(f"At {pos.leverage:g}x a {pos.side} has no liquidation price "
                             "above zero.")
    return lp, tier


def mypos_text(symbol: str, pos: Position, lp: float, tier: Tier, tiers_label: str,
               est: Estimate, source: str) -> str:
    price = est.price
    size = f", {money(pos.size_usd)}" if pos.size_usd is not None else ""
    lines = [f"{symbol} {pos.side} from {price_text(pos.entry)} at {pos.leverage:g}x{size}: "
             f"liquidation ≈ {price_text(lp)} (isolated margin, exact formula; tier up to "
             f"{tier.max_leverage:g}x, maintenance {tier.mmr * 100:.2f} %, {tiers_label}).",]
    past = lp >= price if pos.side == "long" else lp <= price
    if past:
        lines.append(f"Price {price_text(price)} is already past it: this position would be "
                     "liquidated.")
        return "\n".join(lines)
    target, note = lp, ""
    try:
        side_for(price, lp)
    except ValueError:  # farther than the estimate covers: read the path to its edge
        edge = MAX_DISTANCE_PCT / 100
        target = price * (1 - edge) if pos.side == "long" else price * (1 + edge)
        note = f" (only the first {MAX_DISTANCE_PCT:g} % of the way: the estimate ends there)"
    cas = cascade_path(est.book, est.clusters, target)
    biggest = max(cas.bands, key=lambda b: b.notional_usd, default=None)
    lines.append(f"{money(cas.cumulative_usd)} of {_side_words(cas.side)} sit between price "
                 f"{price_text(price)} and your liquidation at {price_text(lp)}{note}"
                 + (f"; the largest band {price_text(biggest.low)}–{price_text(biggest.high)} "
                    f"{money(biggest.notional_usd)}." if biggest else "."))
    lines.append("Clusters on the way, in order:")
    lines += band_lines(cas)
    lines.append(footer(cas, source))
    return "\n".join(lines)


async def mypos(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/mypos SYM long|short ENTRY LEVERAGE [SIZE_USD] — private chats only."""
    from bot.commands.market_cmds import source_label

    if caller.is_group:
        raise UserInputError("Send /mypos to me in a private chat: positions are never shown "
                             "in groups.")
    if not args:
        raise UserInputError("Give a symbol, side, entry and leverage, e.g. "
                             "/mypos BTC long 95k 10x")
    symbol = await core.resolve_symbol(args[0])
    pos = parse_position(args[1:])
    est = await _estimate(core, symbol)
    table = est.snapshot.tiers or BINANCE_BTCUSDT
    label = (est.snapshot.tiers_source if est.snapshot.tiers is not None
             and est.snapshot.tiers_source != "default table" else "Binance BTCUSDT default table")
    lp, tier = position_liquidation(pos, table)
    text = mypos_text(symbol, pos, lp, tier, label, est, source_label(est))
    if pos.watch_pct is not None:
        return _watch(core, caller, symbol, pos, lp, text)
    line = (f"/mypos {symbol.split('/')[0]} {pos.side} {pos.entry:.10g} {pos.leverage:g}"
            + (f" {pos.size_usd:.10g}" if pos.size_usd is not None else "") + " watch")
    buttons = (Button(f"Watch it (alert within {DEFAULT_WITHIN_PCT:g} %)", line),) if (
        len(line.encode()) <= 64) else ()  # Telegram's callback_data limit
    return Reply(text, buttons=buttons)


def _watch(core: CommandCore, caller: Caller, symbol: str, pos: Position, lp: float,
           text: str) -> Reply:
    """Store the watch (private chats only: the caller checked) and say how to stop it."""
    from bot.commands.alert_cmds import _chat
    from bot.store import now_ms

    assert pos.watch_pct is not None
    chat = _chat(core, caller)
    w = core.store.add_position_watch(chat.id, symbol, pos.side, pos.entry, pos.leverage,
                                      pos.size_usd, lp, pos.watch_pct, now=now_ms())
    return Reply(f"{text}\nWatching it as #w{w.id} (this private chat only): an alert when "
                 f"price comes within {w.within_pct:g} % of your liquidation at "
                 f"{price_text(lp)}, and when an estimated cluster between price and it "
                 f"breaks. /alerts lists it; /unlevel w{w.id} removes it.",
                 buttons=(Button("Stop watching", f"/unlevel w{w.id}"),))
