"""The transport-agnostic command core: text in, :class:`Reply` out.

Adapters call :meth:`CommandCore.handle`; it parses, checks permissions and rate limits,
runs the handler from the command table and turns every refusal into a short, specific
message with a usage line. Unexpected errors are logged and answered with an apology — never
a traceback.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.charts.cache import ChartCache
from bot.commands.parse import split_command
from bot.commands.reply import Caller, Reply
from bot.config import Config
from bot.errors import BadSymbolError, LimitExceededError, UserInputError
from bot.estimates import EstimateBoard
from bot.market.base import MarketSource
from bot.store import Store
from bot.tape.feed import TapeDesk

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. Please try again in a minute."


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

    def __post_init__(self) -> None:
        self.chart_limiter = RateLimiter(self.config.limits.charts_per_minute, self.clock)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.board.symbols

    def is_bot_admin(self, caller: Caller) -> bool:
        return caller.user_id in self.config.bot.admins

    async def resolve_symbol(self, text: str | None) -> str:
        """A tracked unified symbol for user text (default: the first tracked symbol)."""
        if text is None:
            return self.symbols[0]
        try:
            symbol = await self.source.normalise(text)
        except BadSymbolError as exc:
            raise UserInputError(str(exc)) from exc
        if symbol not in self.symbols:
            raise UserInputError(f"{symbol} is not tracked here. Tracked: "
                                 f"{', '.join(self.symbols)} (/symbols).")
        return symbol

    async def handle(self, text: str, caller: Caller) -> Reply | None:
        """Answer one command line; None when ``text`` is not a command we know."""
        from bot.commands.table import BY_NAME  # the table imports the handlers, which use us

        try:
            parsed = split_command(text)
        except UserInputError as exc:
            return Reply(str(exc), error=True)
        if parsed is None:
            return None
        command = BY_NAME.get(parsed.name)
        if command is None:
            return Reply(f"Unknown command /{parsed.name[:32]}. Send /help for the list.",
                         error=True)
        try:
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
            usage = exc.usage or command.usage
            return Reply(f"{exc}\nUsage: {usage}", error=True)
        except Exception:
            log.exception("command /%s failed (platform=%s chat=%s)", command.name,
                          caller.platform, caller.chat_id)
            return Reply(APOLOGY, error=True)
