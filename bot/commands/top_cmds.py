"""/top [N] [long|short]: the largest estimated clusters near price across tracked symbols.

Ranked by the cluster's size relative to the symbol's open interest, so a small cap's cluster
that is 3 % of its OI outranks a BTC cluster that is 0.5 % of a much larger OI.

A symbol whose estimate this process does not hold (a chat-role process, another market
worker's symbol) is ranked from the summary its market worker stored, labelled with its age;
a stale one is named, not ranked (:mod:`bot.estimate_summaries`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands.reply import Caller, Reply
from bot.errors import UserInputError
from bot.estimate_summaries import (
    EstimateSummary,
    TrackedSummaries,
    age_text,
    summary_of,
    tracked_summaries,
)
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
    age_ms: int | None = None  # a stored estimate's age; None: held by this process

    @property
    def share(self) -> float:
        return self.notional_usd / self.oi_usd

    def line(self) -> str:
        """``SOL long 182.40–183.90 $41.0M = 3.1 % of OI, -1.2 %`` (+ ``, estimate 2 min
        old`` when it comes from the store)."""
        age = "" if self.age_ms is None else f", estimate {age_text(self.age_ms)} old"
        return (f"{short_name(self.symbol)} {self.side} {price_text(self.low)}–"
                f"{price_text(self.high)} {money(self.notional_usd)} = "
                f"{self.share * 100:.1f} % of OI, {self.distance_pct:+.1f} %{age}")


def top_rows(estimates: Iterable[Estimate | EstimateSummary], n: int, side: str | None = None,
             near_pct: float = NEAR_PCT, now: int | None = None) -> list[TopRow]:
    """The ``n`` clusters (touching ones merged, as /levels shows them) within ``near_pct`` of
    price with the largest notional / open interest. Estimates without OI (the volume proxy)
    cannot be ranked this way and are left out. Stored summaries' rows carry their age at
    ``now``."""
    rows = []
    t = now if now is not None else now_ms()
    for item in estimates:
        est = summary_of(item) if isinstance(item, Estimate) else item
        if est.oi_usd is None:
            continue
        age = None if est.written_ms is None else est.age_ms(t)
        for c in merge_touching(est.clusters):
            if (side is None or c.side == side) and abs(c.distance_pct) <= near_pct:
                rows.append(TopRow(est.symbol, c.side, c.low, c.high, c.notional_usd,
                                   est.oi_usd, c.distance_pct, age))
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


def top_text(rows: list[TopRow], n_symbols: int, side: str | None,
             stale_line: str | None = None) -> str:
    """The /top answer (and the daily digest's body): a heading, then one line per row, then
    the stale symbols left out (``stale_line``)."""
    what = f"{side} clusters" if side else "clusters"
    head = (f"Largest estimated {what} within ±{NEAR_PCT:g} % of price across "
            f"{n_symbols} tracked symbol(s), by share of open interest · estimate from a "
            "model, not exchange data")
    lines = [head, *(r.line() for r in rows)] if rows else [
        head + "\nNo cluster within ±5 % of price (or no open interest data yet)."]
    return "\n".join([*lines, *([stale_line] if stale_line else [])])


def top_answer(tops: TrackedSummaries, n: int, side: str | None) -> tuple[int, str]:
    """The number of rows and the text of /top (and a digest) over ``tops``."""
    rows = top_rows(tops.fresh, n, side, now=tops.now)
    return len(rows), top_text(rows, len(tops.fresh) + len(tops.stale), side,
                               tops.stale_line())


def tracked_tops(core: CommandCore, now: int) -> TrackedSummaries:
    """The tracked symbols' estimates: held here, else stored by the market worker leasing
    them (a chat-role process holds none: every tracked symbol, and those the market
    workers track besides the configured ones)."""
    return tracked_summaries(core.store, core.board, core.symbols,
                             core.config.schedule.recompute_seconds, now,
                             shared=core.on_request_only)


async def top(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/top [N] [long|short]."""
    if len(args) > 2:
        raise UserInputError("Too many arguments.")
    n, side = parse_top_args(args)
    return Reply(top_answer(tracked_tops(core, now_ms()), n, side)[1])


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
