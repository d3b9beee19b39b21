"""RetryPolicy: our backoff is capped, the server's Retry-After is honoured (a Binance 418 ban is
waited out, not hit again), only an absurd Retry-After (> 1 h) is cut and logged."""

from __future__ import annotations

import logging
import time

import pytest

from bot.market.ccxt_source import CcxtSource, binance_factory
from bot.market.errors import RetryPolicy
from tests.bot.fake_binance import FakeBinance

SYM = "BTC/USDT:USDT"
KLINES = "/fapi/v1/klines"


def test_server_retry_after_beats_the_backoff_cap() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, 120) == 120
    assert policy.delay(0, None) == 1.0
    assert policy.delay(10, None) == 30.0  # our own backoff stays capped
    assert policy.delay(10, 45) == 45


def test_absurd_retry_after_is_cut_to_an_hour_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.market.errors"):
        assert RetryPolicy().delay(0, 86_400) == 3600
    assert "Retry-After 86400 s is absurd" in caplog.text


async def test_418_ban_is_waited_out_against_the_fake_exchange() -> None:
    """The fake's 418 says Retry-After: 2. With a 50 ms backoff cap, the retry must still wait
    the 2 s (before the fix it came after 50 ms, inside the ban)."""
    async with FakeBinance() as fake:
        binance = binance_factory(fake.url, timeout_ms=1000, rateLimit=2)
        src = CcxtSource(exchange_factory=binance, exchanges=("binanceusdm",),
                         retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05),
                         clock=lambda: fake.now_ms, lookback_days=1, page_limit=1500)
        fake.inject(KLINES, "418")
        t0 = time.monotonic()
        try:
            await src.fetch(SYM)
        finally:
            await src.close()
        waited = time.monotonic() - t0
    assert fake.count(KLINES) == 2  # the banned request and one retry after the ban
    assert waited >= 2.0
