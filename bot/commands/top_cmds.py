"""/top [N] [long|short]: the largest estimated clusters near price across tracked symbols.

Ranked by the cluster's size relative to the symbol's open interest, so a small cap's cluster
that is 3 % of its OI outranks a BTC cluster that is 0.5 % of a much larger OI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands.reply import Caller, Reply
from bot.errors import UserInputError
from bot.estimates import Estimate
from bot.fmt import money, price_text
from bot.market.symbols import short_name
from bot.store import now_ms
from estimator.clusters import merge_touching

if TYPE_CHECKING:
    from bot.commands.core import CommandCore

NEAR_PCT = 5.0  # only clusters within ±5 % of price
DEFAULT_N, MAX_N = 5, 25


@dataclass(frozen=True)
class TopRow:
    symbol: str
    side: str
    low: float
    high: float
    notional_usd: float
    oi_usd: float
    distance_pct: float

    @property
    def share(self) -> float:
        return self.notional_usd / self.oi_usd

    def line(self) -> str:
        """``SOL long 182.40–183.90 $41.0M = 3.1 % of OI, -1.2 %``."""
        return (f"{short_name(self.symbol)} {self.side} {price_text(self.low)}–"
                f"{price_text(self.high)} {money(self.notional_usd)} = "
                f"{self.share * 100:.1f} % of OI, {self.distance_pct:+.1f} %")


def top_rows(estimates: Iterable[Estimate], n: int, side: str | None = None,
             near_pct: float = NEAR_PCT) -> list[TopRow]:
    """The ``n`` clusters (touching ones merged, as /levels shows them) within ``near_pct`` of
    price with the largest notional / open interest. Estimates without OI (the volume proxy)
    cannot be ranked this way and are left out."""
    rows = []
    for est in estimates:
        oi = est.snapshot.candles.open_interest_usd
        if oi is None or not len(oi) or not float(oi[-1]) > 0:
            continue
        for c in merge_touching(est.clusters):
            if (side is None or c.side == side) and abs(c.distance_pct) <= near_pct:
                rows.append(TopRow(est.symbol, c.side, c.low, c.high, c.notional_usd,
                                   float(oi[-1]), c.distance_pct))
    rows.sort(key=lambda r: (-r.share, r.symbol, r.low))
    return rows[:n]


def parse_top_args(args: tuple[str, ...]) -> tuple[int, str | None]:
    n, side = DEFAULT_N, None
    for arg in args:
        low = arg.lower()
        if low in ("long", "short", "longs", "shorts"):
            side = low.rstrip("s")
        elif low.isascii() and low.isdigit() and 1 <= int(low) <= MAX_N:
            n = int(low)
        else:
            raise UserInputError(f"'{arg[:20]}' is neither a count (1–{MAX_N}) nor long/short.")
    return n, side


def top_text(rows: list[TopRow], n_symbols: int, side: str | None) -> str:
    """The /top answer (and the daily digest's body): a heading, then one line per row."""
    what = f"{side} clusters" if side else "clusters"
    head = (f"Largest estimated {what} within ±{NEAR_PCT:g} % of price across "
            f"{n_symbols} tracked symbol(s), by share of open interest · estimate from a "
            "model, not exchange data")
    if not rows:
        return head + "\nNo cluster within ±5 % of price (or no open interest data yet)."
    return "\n".join([head, *(r.line() for r in rows)])


def tracked_estimates(core: CommandCore) -> list[Estimate]:
    return [e for s in core.symbols if (e := core.board.get(s)) is not None]


async def top(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/top [N] [long|short]."""
    if len(args) > 2:
        raise UserInputError("Too many arguments.")
    n, side = parse_top_args(args)
    estimates = tracked_estimates(core)
    return Reply(top_text(top_rows(estimates, n, side), len(estimates), side))


async def subscribe_top(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/subscribe_top [N] [long|short]: /top once a day, at ``[alerts] top_digest_hour`` UTC."""
    if len(args) > 2:
        raise UserInputError("Too many arguments.")
    n, side = parse_top_args(args)
    chat = core.store.upsert_chat(caller.platform, caller.chat_id, thread_id=caller.thread_id,
                                  is_group=caller.is_group, timezone=core.config.bot.timezone)
    core.store.subscribe_top(chat.id, n, side, now_ms())
    hour = core.config.alerts.top_digest_hour
    what = f"{side} clusters" if side else "clusters"
    return Reply(f"Daily /top digest on: the {n} largest estimated {what} near price, every day "
                 f"at {hour:02d}:00 UTC (from now if that hour is under way). "
                 "/unsubscribe_top stops it.")


async def unsubscribe_top(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/unsubscribe_top: no more daily digest in this chat."""
    if args:
        raise UserInputError("/unsubscribe_top takes no arguments.")
    chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
    if chat is None or not core.store.unsubscribe_top(chat.id):
        return Reply("This chat has no daily /top digest (/subscribe_top starts one).",
                     error=True)
    return Reply("Daily /top digest off.")
