"""The chat-adapter seam: what ``liqbot run`` starts, feeds and stops for each platform.

An adapter translates platform updates → :meth:`CommandCore.handle` and :class:`Reply` →
platform messages, and provides the dispatcher's :class:`~bot.dispatcher.Notifier` for its
platform. It runs inside the service's asyncio loop: no threads or loops of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.commands.core import CommandCore
    from bot.dispatcher import Notifier


class ChatAdapter(Protocol):
    """One chat platform (Telegram, Discord, console)."""

    platform: str  # the store's chats.platform value ("telegram", "discord", "console")

    @property
    def notifier(self) -> Notifier:
        """Sends outbox alerts to this platform's chats."""
        ...

    async def start(self, core: CommandCore) -> None:
        """Connect and start answering commands through ``core`` (returns once running).
        A rejected token raises ConfigError (naming its env var, never the token); a platform
        that cannot be reached raises PlatformUnreachableError with nothing left open, and
        ``liqbot run`` calls ``start`` again later (:mod:`bot.platform_start`); the same for
        :meth:`start_notifier`."""
        ...

    async def start_notifier(self, core: CommandCore) -> None:
        """Connect for sending alerts only (``liqbot run --role dispatch``): no command is
        received; ``core`` serves what alerts attach (charts)."""
        ...

    async def stop(self) -> None:
        """Stop receiving updates and close connections (idempotent)."""
        ...
