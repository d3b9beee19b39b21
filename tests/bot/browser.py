"""Headless Chromium for the web view tests: Debian's ``chromium`` driven by Playwright with
the system browser's path (``playwright install`` is never used).

Without a usable Chromium the browser tests skip with one line saying why — unless
``LIQBOT_REQUIRE_BROWSER=1`` (``.ci/run`` sets it), where they fail instead.

``python -m tests.bot.browser docs/webview.png`` renders the README's screenshot of
``liqbot serve`` on the bundled data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    return os.environ.get("LIQBOT_CHROMIUM") or shutil.which("chromium")


def _unavailable(reason: str) -> None:
    if os.environ.get("LIQBOT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LIQBOT_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A Playwright Browser on the system Chromium (skips/fails when there is none)."""
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    async with async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        except Error as exc:
            _unavailable(f"chromium at {path} does not start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            await browser.close()


class PageLog:
    """Console errors and page errors (a CSP violation is one) seen by a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


async def open_page(browser: Any, url: str, ready: bool = True) -> tuple[Any, PageLog]:
    page = await browser.new_page(viewport={"width": 1200, "height": 1400})
    log = PageLog(page)
    await page.goto(url)
    if ready:
        await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, log


async def _screenshot(out: str) -> None:
    from bot.config import Config
    from bot.web.server import replay_view

    view = await replay_view(Config(), None, "BTC/USDT:USDT")
    base = (await view.start("127.0.0.1", 0))[0]
    try:
        async with chromium() as browser:
            page, log = await open_page(browser, f"{base}/s/BTC?window=7d")
            box = await page.locator("#heatmap").bounding_box()
            at = await page.evaluate("(() => { const d = liqbot.heatmapData; const [nt, np] ="
                                     " d.shape; return liqbot.heatmap.convertToPixel("
                                     "{gridIndex: 0}, [Math.round(nt * 0.7), Math.round(np *"
                                     " 0.62)]); })()")
            await page.mouse.move(box["x"] + at[0], box["y"] + at[1])
            await page.wait_for_selector("#tip:not([hidden])")
            await page.screenshot(path=out, full_page=True)
            assert not log.errors, log.errors
    finally:
        await view.stop()
        view.core.store.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(_screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/webview.png"))
