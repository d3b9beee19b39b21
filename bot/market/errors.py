"""The one place ccxt exceptions become liqbot's, and the retry loop that decides which to retry.

Retried: ccxt ``NetworkError`` (covers ``DDoSProtection``, ``RateLimitExceeded``,
``RequestTimeout``, ``ExchangeNotAvailable``), ``BadResponse`` and :class:`MalformedResponse`
(bodies we could not use, e.g. truncated JSON or an empty page in the middle of a range).
Not retried: ``BadSymbol`` (→ BadSymbolError) and other exchange errors (→ MarketDataError).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import ccxt.async_support as ccxt

from bot.errors import BadSymbolError, MarketDataError, MarketUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")


class MalformedResponse(Exception):  # noqa: N818 - internal signal, never leaves this package
    """A response arrived but could not be used (wrong shape, non-numeric, empty mid-range)."""


RETRYABLE = (ccxt.NetworkError, ccxt.BadResponse, MalformedResponse)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``base_delay_s`` × 2^i (at most ``max_delay_s``), or
    the server's Retry-After when that is longer: a Binance 418 ban must be waited out, not hit
    again. Only an absurd Retry-After (over ``max_retry_after_s``, 1 h) is cut, with a warning."""

    attempts: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0  # caps our own backoff, never the server's Retry-After
    max_retry_after_s: float = 3600.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        backoff = min(self.base_delay_s * float(2**attempt), self.max_delay_s)
        server = retry_after_s or 0.0
        if server > self.max_retry_after_s:
            log.warning("Retry-After %.0f s is absurd; waiting %.0f s instead", server,
                        self.max_retry_after_s)
            server = self.max_retry_after_s
        return max(backoff, server)


def map_exception(exc: Exception, what: str) -> MarketDataError:
    """Our exception for a ccxt (or malformed-response) failure while doing ``what``."""
    if isinstance(exc, ccxt.BadSymbol):
        return BadSymbolError(f"{what}: the exchange does not list this symbol.")
    if isinstance(exc, ccxt.NetworkError):
        kind = {
            ccxt.RateLimitExceeded: "rate limited",
            ccxt.DDoSProtection: "rate limited / IP banned (HTTP 418/429)",
            ccxt.RequestTimeout: "timed out",
        }.get(type(exc), "network error")
        return MarketUnavailableError(f"{what}: {kind}: {_short(exc)}")
    if isinstance(exc, ccxt.BadResponse | MalformedResponse):
        return MarketUnavailableError(f"{what}: malformed response: {_short(exc)}")
    return MarketDataError(f"{what}: {type(exc).__name__}: {_short(exc)}")


def _short(exc: Exception, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (case-insensitive), None when absent/unparsable."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                return None
    return None


async def with_retry(what: str, call: Callable[[], Awaitable[T]], policy: RetryPolicy,
                     headers: Callable[[], Mapping[str, str] | None] = lambda: None) -> T:
    """Await ``call()`` with retries on transient failures; raise our error ``from`` ccxt's.

    ``headers`` returns the last response headers (for Retry-After).
    """
    for attempt in range(policy.attempts):
        try:
            return await call()
        except RETRYABLE as exc:
            if attempt + 1 >= policy.attempts:
                raise map_exception(exc, what) from exc
            wait = policy.delay(attempt, retry_after_s(headers()))
            log.warning("%s: %s (%s); retry %d/%d in %.2f s", what, type(exc).__name__,
                        _short(exc, 120), attempt + 1, policy.attempts - 1, wait)
            await asyncio.sleep(wait)
        except ccxt.BaseError as exc:
            raise map_exception(exc, what) from exc
    raise AssertionError("unreachable")  # pragma: no cover
