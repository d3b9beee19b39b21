"""The transport-agnostic command core: text in, :class:`Reply` out.

Adapters call :meth:`CommandCore.handle`; it parses, checks permissions and rate limits,
runs the handler from the command table and turns every refusal into a short, specific
message with a usage line. Unexpected errors are logged and answered with an apology — never
a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bot.charts.cache import ChartCache, ChartKey
from bot.commands.parse import split_command
from bot.commands.reply import Caller, Reply
from bot.config import Config
from bot.errors import BadSymbolError, LimitExceededError, UserInputError
from bot.estimates import Estimate, EstimateBoard
from bot.hyperliquid.desk import PositionsDesk
from bot.market.base import MarketSource
from bot.ondemand import OnDemandEstimates
from bot.store import Store
from bot.tape.feed import TapeDesk

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. Please try again in a minute."
OFFLINE = ("This bot was offline when you sent /{name} ({age} ago), so it did nothing. "
           "Please send it again if you still want it.")

# What the adapter wants done once a chart command's arguments are checked and the slow part
# (rendering) begins: Discord defers the interaction there, so every error comes before it.
_BEFORE_RENDER: ContextVar[Callable[[], Awaitable[object]] | None] = ContextVar(
    "before_render", default=None)
# What the adapter wants done before an untracked symbol is fetched (a cold on-demand request,
# seconds): Telegram posts "computing SYM…" then, and edits it into the answer.
_BEFORE_FETCH: ContextVar[Callable[[str], Awaitable[object]] | None] = ContextVar(
    "before_fetch", default=None)


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 s window (sliding log)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._log: dict[Any, deque[float]] = {}

    def check(self, key: Any) -> float:
        """Record an event for ``key``; returns 0 if allowed, else seconds until allowed."""
        now = self._clock()
        q = self._log.setdefault(key, deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        if len(q) >= self.per_minute:
            return 60.0 - (now - q[0])
        q.append(now)
        if len(self._log) > 10_000:  # forget idle users so memory stays bounded
            for k in [k for k, v in self._log.items() if not v or now - v[-1] >= 60.0]:
                del self._log[k]
        return 0.0


@dataclass
class CommandCore:
    """Everything a command needs, passed in (no globals)."""

    config: Config
    board: EstimateBoard
    source: MarketSource
    store: Store
    charts: ChartCache
    clock: Callable[[], float] = time.monotonic
    tape: TapeDesk | None = None  # real liquidations, when the config enables the tape
    positions: PositionsDesk | None = None  # real Hyperliquid positions ([positions])
    ondemand: OnDemandEstimates | None = None  # untracked symbols on request (live sources)
    # liqbot run --role chat: no recompute job here, so tracked symbols are estimated on request
    # too (the market workers' estimates live in their own processes).
    on_request_only: bool = False

    def __post_init__(self) -> None:
        self.chart_limiter = RateLimiter(self.config.limits.charts_per_minute, self.clock)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.board.symbols

    def is_bot_admin(self, caller: Caller) -> bool:
        return caller.user_id in self.config.bot.admins

    async def resolve_symbol(self, text: str | None, *, untracked: bool = False) -> str:
        """A unified symbol for user text (default: the first tracked symbol). Tracked ones
        always; with ``untracked`` (commands that estimate on request, /subscribe) any linear
        perpetual the exchange lists, when this bot answers for untracked symbols (live
        sources; a replay file holds one symbol)."""
        if text is None:
            return self.symbols[0]
        try:
            symbol = await self.source.normalise(text)
        except BadSymbolError as exc:
            raise UserInputError(str(exc)) from exc
        if symbol not in self.symbols and not (untracked and self.ondemand is not None):
            raise UserInputError(f"{symbol} is not tracked here. Tracked: "
                                 f"{', '.join(self.symbols)} (/symbols).")
        return symbol

    async def estimate(self, symbol: str) -> Estimate:
        """The latest estimate: the board's for a tracked symbol, else on request (the first
        one fetches; the adapter's ``before_render`` runs first, so Discord defers then)."""
        if (symbol in self.symbols and not self.on_request_only) or self.ondemand is None:
            est = self.board.get(symbol)
            if est is None:
                raise UserInputError(f"No estimate for {symbol} yet: the first recompute is "
                                     "still running. Try again in a minute.")
            return est
        if (est := self.ondemand.fresh(symbol)) is not None:
            return est
        fetching = _BEFORE_FETCH.get()
        if fetching is not None:
            _BEFORE_FETCH.set(None)  # once per command
            await fetching(symbol)
        hook = _BEFORE_RENDER.get()
        if hook is not None:
            _BEFORE_RENDER.set(None)  # once per command
            await hook()
        return await self.ondemand.get(symbol)

    def check_track_room(self, symbol: str) -> None:
        """Refuse to start tracking one more symbol past ``[limits] tracked_symbols``."""
        cap = self.config.limits.tracked_symbols
        tracked = set(self.symbols) | set(self.store.subscriber_counts())
        if symbol not in tracked and len(tracked) >= cap:
            raise LimitExceededError(
                f"This bot already tracks {len(tracked)} symbols, its limit ([limits] "
                f"tracked_symbols = {cap}): {symbol} can still be asked for (/levels) but not "
                "subscribed to until a symbol loses its last subscriber.")

    def reactivate(self, caller: Caller) -> None:
        """Any command from a chat the bot had given up on (blocked, kicked) re-activates it:
        the command arrived, so the chat is reachable again. Chats never seen stay unknown."""
        chat = self.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
        if chat is not None and not chat.active:
            self.store.upsert_chat(caller.platform, caller.chat_id, thread_id=caller.thread_id,
                                   is_group=caller.is_group)
            log.info("%s chat %s re-activated by a command", caller.platform, caller.chat_id)

    async def render(self, key: ChartKey, draw: Callable[[], bytes]) -> bytes:
        """A chart PNG from the cache, or drawn in a worker thread. Chart handlers call this
        after checking their arguments; it first runs the adapter's ``before_render``."""
        hook = _BEFORE_RENDER.get()
        if hook is not None:
            _BEFORE_RENDER.set(None)  # once per command
            await hook()
        return await asyncio.to_thread(self.charts.get_or_render, key, draw)

    def stale(self, text: str, caller: Caller, age_s: float) -> Reply | None:
        """The answer to a command that waited ``age_s`` seconds while the bot was down:
        nothing is done (the intent may be stale) except re-activating the chat."""
        try:
            parsed = split_command(text)
        except UserInputError:
            return None
        if parsed is None:
            return None
        self.reactivate(caller)
        age = f"{age_s / 60:.0f} min" if age_s < 5_400 else f"{age_s / 3600:.1f} h"
        return Reply(OFFLINE.format(name=parsed.name[:32], age=age), error=True)

    async def handle(self, text: str, caller: Caller, *,
                     before_render: Callable[[], Awaitable[object]] | None = None,
                     before_fetch: Callable[[str], Awaitable[object]] | None = None
                     ) -> Reply | None:
        """Answer one command line; None when ``text`` is not a command we know.
        ``before_render``: awaited once when a chart command starts rendering (or a cold
        on-demand fetch starts). ``before_fetch``: awaited once with the symbol when an
        untracked symbol must be fetched first (not for kept or tracked ones)."""
        token = _BEFORE_RENDER.set(before_render)
        fetch_token = _BEFORE_FETCH.set(before_fetch)
        try:
            return await self._handle(text, caller)
        finally:
            _BEFORE_FETCH.reset(fetch_token)
            _BEFORE_RENDER.reset(token)

    async def _handle(self, text: str, caller: Caller) -> Reply | None:
        from bot.commands.table import BY_NAME  # the table imports the handlers, which use us

        try:
            parsed = split_command(text)
        except UserInputError as exc:
            return Reply(str(exc), error=True)
        if parsed is None:
            return None
        command = BY_NAME.get(parsed.name)
        name = parsed.name[:32]
        try:
            self.reactivate(caller)
            if command is None:
                return Reply(f"Unknown command /{name}. Send /help for the list.", error=True)
            if command.admin_in_groups and caller.is_group and not (
                caller.is_admin or self.is_bot_admin(caller)
            ):
                return Reply(f"Only chat admins can use /{command.name} in a group.", error=True)
            if command.chart:
                wait = self.chart_limiter.check((caller.platform, caller.user_id))
                if wait > 0:
                    raise LimitExceededError(
                        f"Chart limit reached ({self.chart_limiter.per_minute} per minute). "
                        f"Try again in {wait:.0f} s.")
            return await command.handler(self, caller, parsed.args)
        except LimitExceededError as exc:
            return Reply(str(exc), error=True)
        except UserInputError as exc:
            usage = exc.usage or (command.usage if command else "/help")
            return Reply(f"{exc}\nUsage: {usage}", error=True)
        except Exception:
            log.exception("command /%s failed (platform=%s chat=%s)", name,
                          caller.platform, caller.chat_id)
            return Reply(APOLOGY, error=True)
