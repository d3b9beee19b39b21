"""``[source] rest_url``: the live source's binanceusdm behind another base URL (a relay, the
tests' loopback fake) — what lets a ``liqbot run`` subprocess trade against FakeBinance."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigError
from bot.wiring import make_source
from tests.bot.fake_binance import FakeBinance

CONFIG = """
[bot]
store = "{store}"
symbols = ["BTC/USDT:USDT"]
[source]
kind = "live"
exchanges = {exchanges}
lookback_days = 1
rest_url = "{url}"
"""


async def test_live_source_fetches_from_rest_url(tmp_path: Path) -> None:
    async with FakeBinance() as fake:
        cfg_path = tmp_path / "config.toml"
        cfg_path.write_text(CONFIG.format(store=tmp_path / "bot.db", exchanges='["binanceusdm"]',
                                          url=fake.url))
        source = make_source(load_config(cfg_path))
        try:
            tick = await source.last_price("BTC/USDT:USDT")
        finally:
            await source.close()
        assert fake.count("/fapi/v1/klines") >= 1
        assert tick.price > 0


@pytest.mark.parametrize(("exchanges", "url", "message"), [
    ('["bybit"]', "http://127.0.0.1:1", "line 9: source.rest_url is for exchanges = "
     "['binanceusdm'] alone"),
    ('["binanceusdm"]', "ftp://x", "line 9: source.rest_url 'ftp://x' is not an http(s) URL"),
])
def test_rest_url_bad_values_name_the_line(tmp_path: Path, exchanges: str, url: str,
                                           message: str) -> None:
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(CONFIG.format(store=tmp_path / "bot.db", exchanges=exchanges, url=url))
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    assert message in str(err.value)
