"""Starting the chat adapters of ``liqbot run`` when a platform is down or refuses the token.

A platform that cannot be reached at start (:class:`~bot.errors.PlatformUnreachableError`:
connection refused, timeout, 5xx) does not stop the bot: the rest of it (jobs, the other
adapters) runs, alerts for that platform wait in the outbox, and the start is tried again
after :data:`START_RETRY`'s delays (1, 2, 4 … s, at most 30 s apart; the project's one
:class:`~bot.market.errors.RetryPolicy`) until the platform answers — as long as the bot runs,
like the platforms' own clients once connected. One log line per failed attempt.

A rejected token (:class:`~bot.errors.ConfigError` from the adapter, naming the variable, never
the token) stops ``liqbot run`` with that one line and exit code 2, at the first attempt or at a
later one (the platform was down at start, then refused the token).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.adapters import ChatAdapter
from bot.config import DiscordSection, TelegramSection
from bot.errors import PlatformUnreachableError
from bot.market.errors import RetryPolicy
from bot.redact import redact

log = logging.getLogger(__name__)

# Only its delays are used: a chat platform is waited for as long as the bot runs.
START_RETRY = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0)
Starter = Callable[[ChatAdapter], Awaitable[None]]


def token_source(section: TelegramSection | DiscordSection, name: str) -> str:
    """Where the ``[name]`` token came from, for an error line (never the token itself)."""
    if section.token_file:
        return f"the file {section.token_file} ({name}.token_file)"
    return f"the environment variable {section.token_env} ({name}.token_env)"


class AdapterStarter:
    """Starts adapters; one whose platform is unreachable is retried in a background task.

    ``stop`` is set when a retried start fails otherwise (the token rejected: ConfigError);
    :attr:`fatal` holds that error and ``liqbot run`` raises it once everything is stopped."""

    def __init__(self, stop: asyncio.Event, policy: RetryPolicy = START_RETRY) -> None:
        self.stop = stop
        self.policy = policy
        self.started: list[ChatAdapter] = []
        self.pending: list[ChatAdapter] = []  # being retried
        self.fatal: Exception | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def attempted(self) -> list[ChatAdapter]:
        """Every adapter to stop: started, or being retried (it may hold half a connection)."""
        return self.started + self.pending

    async def start(self, adapter: ChatAdapter, starter: Starter) -> None:
        """``await starter(adapter)``; unreachable → logged, retried in the background. A
        rejected token (ConfigError) is raised."""
        try:
            await starter(adapter)
        except PlatformUnreachableError as exc:
            self._failed(adapter, 0, exc)
            self.pending.append(adapter)
            self._tasks.append(asyncio.create_task(self._retry(adapter, starter),
                                                   name=f"start-{adapter.platform}"))
            return
        self.started.append(adapter)

    async def _retry(self, adapter: ChatAdapter, starter: Starter) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(self.policy.delay(attempt, None))
            attempt += 1
            try:
                await starter(adapter)
            except PlatformUnreachableError as exc:
                self._failed(adapter, attempt, exc)
                continue
            except Exception as exc:  # e.g. the token refused once the platform answered
                self.fatal = exc
                self.stop.set()
                return
            self.pending.remove(adapter)
            self.started.append(adapter)
            log.info("%s: connected (start attempt %d)", adapter.platform, attempt + 1)
            return

    def _failed(self, adapter: ChatAdapter, attempt: int, exc: Exception) -> None:
        log.warning("%s (start attempt %d); retrying in %.0f s, the rest of the bot runs "
                    "(%s alerts wait in the outbox)", redact(str(exc)), attempt + 1,
                    self.policy.delay(attempt, None), adapter.platform)

    async def cancel(self) -> None:
        """Stop retrying (at stop); a start cut off midway is left to the adapter's stop."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()
