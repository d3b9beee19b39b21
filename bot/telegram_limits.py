"""Telegram's flood limits for python-telegram-bot, with a 429 that holds only its own chat.

PTB's ``AIORateLimiter`` pauses *every* request for a 429's ``retry_after`` (its docs say so),
so one throttled group stalled every other chat's alerts. :class:`ChatRateLimiter` is a
``BaseRateLimiter`` (PTB's extension point) on the same aiolimiter buckets — 30 requests/s
overall, 20/min per group or channel (negative or ``@name`` chat ids) — but a ``RetryAfter``
holds only the chat it came from.

Command replies are retried ``max_retries`` times on a 429 (later replies to that chat wait
with them). Outbox alerts pass ``rate_limit_args=ALERT`` (PTB's per-call argument): no retry
here, their ``RetryAfter`` goes straight to the dispatcher, which holds that chat on its own
clock and moves on. :meth:`ChatRateLimiter.wait_s`
tells the dispatcher when a group has used up its 20 msg/min, so it skips that chat instead of
parking a send behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

ChatKey = int | str
ALERT = "alert"  # rate_limit_args of an outbox alert: a 429 is raised at once, not waited out


def retry_after_s(exc: RetryAfter) -> float:
    """Seconds from a RetryAfter (an int or a timedelta, depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def chat_key(chat_id: object) -> ChatKey | None:
    """The chat a request goes to (``None``: not a chat request, e.g. getMe)."""
    if chat_id is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return int(chat_id)  # type: ignore[call-overload, no-any-return]
    return str(chat_id)


def is_group(key: ChatKey) -> bool:
    """Groups, supergroups and channels have negative ids (or an ``@name``)."""
    return isinstance(key, str) or key < 0


class ChatRateLimiter(BaseRateLimiter[str]):
    """Overall and per-group buckets; a 429 holds its chat only (see the module docstring)."""

    def __init__(self, overall_max_rate: float = 30, overall_time_period: float = 1,
                 group_max_rate: float = 20, group_time_period: float = 60,
                 max_retries: int = 0) -> None:
        # A bucket of a tenth of the rate: at most 3 messages at once, so ≤ 33 in any second
        # (a full bucket of 30 let ~60 out in the first second), yet a late wake-up can catch up.
        self._overall = AsyncLimiter(overall_max_rate / 10, overall_time_period / 10)
        self._group_rate = (group_max_rate, group_time_period)
        self._groups: dict[ChatKey, AsyncLimiter] = {}
        self._held: dict[ChatKey, float] = {}  # chat → time.monotonic() its 429 ends
        self.max_retries = max_retries

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def wait_s(self, chat_id: object) -> float:
        """Seconds before a message to ``chat_id`` would go out without waiting for its
        group's 20 msg/min (0 = now; else one bucket step, then ask again)."""
        key = chat_key(chat_id)
        if key is None:
            return 0.0
        group = self._groups.get(key)
        if group is not None and not group.has_capacity():
            return group.time_period / group.max_rate
        return 0.0

    def _hold(self, key: ChatKey, seconds: float) -> None:
        now = time.monotonic()
        if len(self._held) > 512:  # forget holds that are over
            self._held = {k: t for k, t in self._held.items() if t > now}
        self._held[key] = max(self._held.get(key, 0.0), now + seconds)

    def _group(self, key: ChatKey) -> AsyncLimiter:
        if len(self._groups) > 512:  # forget groups whose bucket has fully drained
            self._groups = {k: g for k, g in self._groups.items()
                            if k == key or not g.has_capacity(g.max_rate)}
        if key not in self._groups:
            self._groups[key] = AsyncLimiter(*self._group_rate)
        return self._groups[key]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        retries = 0 if rate_limit_args == ALERT else self.max_retries
        key = chat_key(data.get("chat_id"))
        attempt = 0
        while True:
            while retries and key is not None and (
                    wait := self._held.get(key, 0.0) - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # this chat's 429 (another request may extend it)
            try:
                if key is None:
                    return await callback(*args, **kwargs)
                group = self._group(key) if is_group(key) else contextlib.nullcontext()
                async with group, self._overall:
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if key is not None:
                    self._hold(key, retry_after_s(exc))
                if attempt >= retries:
                    raise
                attempt += 1
                log.info("telegram: %s to chat %s: flood control, retrying in %.1f s",
                         endpoint, key, retry_after_s(exc))
