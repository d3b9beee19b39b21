"""The Telegram Mini App (issue 23) against the Bot API fake: a chart reply carries a web_app
button opening ``/s/{symbol}`` (a plain link in groups, where Telegram allows no web_app
buttons), none when [web] is off; the page opened the way Telegram opens it (signed launch
data in the URL fragment) loads through initData validation in a real Chromium, and launch
data signed with another token is refused on the page."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from bot.charts import ChartCache
from bot.commands.core import CommandCore
from bot.config import WebSection
from bot.service import Service
from bot.store import Store
from bot.telegram_adapter import TelegramAdapter
from bot.web.initdata import sign
from bot.web.server import WebView, bot_token
from bot.wiring import make_source
from tests.bot.browser import chromium, open_page
from tests.bot.fake_telegram import ANN, GROUP, PRIVATE, FakeTelegram
from tests.bot.test_telegram import telegram_config

PUBLIC = "https://liq.example.org"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # as tests/bot/test_telegram.py


@asynccontextmanager
async def bot(web: bool) -> AsyncIterator[tuple[FakeTelegram, WebView]]:
    async with FakeTelegram(max_poll_s=0.2) as fake:
        cfg = telegram_config(fake.base_url, fake.token)
        cfg = replace(cfg, web=WebSection(enabled=web, public_url=PUBLIC))
        store = Store(memory=True)
        source = make_source(cfg)
        adapter = TelegramAdapter(cfg.telegram, poll_timeout_s=1)
        service = Service(cfg, source, store, {adapter.platform: adapter.notifier})
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        await service.recompute(cfg.bot.symbols[0])
        await adapter.start(core)
        view = WebView(core, bot_token(cfg))  # as `liqbot run` builds it
        try:
            yield fake, view
        finally:
            await adapter.stop()
            store.close()


async def ask(fake: FakeTelegram, chat: dict[str, Any], text: str) -> dict[str, Any]:
    n = len(fake.sent)
    fake.command(chat, ANN, text)
    return (await fake.wait_sent(n + 1))[n]


def extra_buttons(reply: dict[str, Any]) -> list[dict[str, Any]]:
    row = (reply["reply_markup"] or {"inline_keyboard": [[]]})["inline_keyboard"][0]
    return [b for b in row if "callback_data" not in b]


async def test_chart_replies_carry_the_mini_app_button() -> None:
    async with bot(web=True) as (fake, _):
        heat = await ask(fake, PRIVATE, "/heatmap BTC 7d")
        assert "photo" in heat
        assert extra_buttons(heat) == [{"text": "Interactive chart", "web_app": {
            "url": f"{PUBLIC}/s/BTCUSDT?window=7d"}}]
        chart = await ask(fake, PRIVATE, "/map")
        assert extra_buttons(chart) == [{"text": "Interactive chart", "web_app": {
            "url": f"{PUBLIC}/s/BTCUSDT"}}]
        group = await ask(fake, GROUP, "/heatmap BTC 24h")
        assert extra_buttons(group) == [{"text": "Interactive chart",
                                         "url": f"{PUBLIC}/s/BTCUSDT?window=24h"}]
        levels = await ask(fake, PRIVATE, "/levels")
        assert extra_buttons(levels) == []  # charts only


async def test_no_button_when_the_web_view_is_off() -> None:
    async with bot(web=False) as (fake, _):
        heat = await ask(fake, PRIVATE, "/heatmap BTC 24h")
        assert "photo" in heat and extra_buttons(heat) == []


async def test_the_mini_app_opens_the_page_through_init_data_validation() -> None:
    async with bot(web=True) as (fake, view):
        heat = await ask(fake, PRIVATE, "/heatmap BTC 24h")
        url = urlsplit(extra_buttons(heat)[0]["web_app"]["url"])
        base = (await view.start("127.0.0.1", 0))[0]
        seen: list[str | None] = []
        try:
            async with chromium() as browser:
                for token, ok in ((fake.token, True), ("654321:another-bot", False)):
                    launch = sign({"user": json.dumps({"id": ANN["id"]}),
                                   "auth_date": str(int(time.time()))}, token)
                    page, log = await open_page(
                        browser, f"{base}{url.path}?{url.query}#tgWebAppData={quote(launch)}"
                        "&tgWebAppVersion=8.0&tgWebAppPlatform=tdesktop", ready=ok)
                    page.on("request", lambda r: seen.append(
                        r.headers.get("x-telegram-init-data")) if "/api/" in r.url else None)
                    if ok:
                        assert await page.eval_on_selector_all("#levels tbody tr",
                                                               "trs => trs.length") == 10
                        assert await page.input_value("#window") == "24h"
                        assert log.errors == []
                    else:
                        await page.wait_for_selector("#error:not([hidden])")
                        assert "signature does not match" in await page.inner_text("#error")
                        assert await page.eval_on_selector_all("#levels tbody tr",
                                                               "trs => trs.length") == 0
                    await page.select_option("#window", "12h")  # more API requests, seen
                    await page.wait_for_timeout(300)
        finally:
            await view.stop()
        assert seen and all(h for h in seen)  # every API request carried initData
