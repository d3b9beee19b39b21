"""/accuracy [SYM] [7d|30d|all]: the bot's own scoreboard (:mod:`bot.audit.scoreboard`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.audit import scoreboard
from bot.commands.reply import Caller, Reply
from bot.errors import UserInputError

if TYPE_CHECKING:
    from bot.commands.core import CommandCore

DEFAULT_WINDOW = "30d"


async def accuracy(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """The scoreboard of one symbol over a window (default: the first symbol, 30 days)."""
    rest = list(args)
    window = DEFAULT_WINDOW
    if rest and rest[-1].lower() in scoreboard.WINDOWS:
        window = rest.pop().lower()
    if len(rest) > 1:
        raise UserInputError(f"Usage: /accuracy [SYM] [{'|'.join(scoreboard.WINDOWS)}] "
                             f"(got {' '.join(args)[:40]!r})")
    symbol = await core.resolve_symbol(rest[0] if rest else None)
    if core.store is None:
        raise UserInputError("The scoreboard needs the store (liqbot run).")
    boards = scoreboard.for_config(core.store, core.config.accuracy, symbol, window)
    return Reply(scoreboard.text(boards, core.config.accuracy.min_evaluations))


def status_line(core: CommandCore, symbol: str) -> str | None:
    """``/status``'s one-line summary for ``symbol`` over the last 30 days."""
    if core.store is None or not core.config.accuracy.enabled:
        return None
    boards = scoreboard.for_config(core.store, core.config.accuracy, symbol, DEFAULT_WINDOW)
    return scoreboard.summary(boards, core.config.accuracy.min_evaluations)
