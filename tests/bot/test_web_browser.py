"""The web view in a real headless Chromium (tests/bot/browser.py): the page loaded from a
replay draws a non-blank heatmap, hovering a bucket shows the API's value, the window
selector changes the time axis, the levels table is the API's, and no CSP violation or
script error happens on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Config
from bot.web.server import WebView, replay_view
from tests.bot.browser import PageLog, chromium, open_page


@pytest.fixture
async def base() -> AsyncIterator[str]:
    view: WebView = await replay_view(Config(), None, "BTC/USDT:USDT")
    urls = await view.start("127.0.0.1", 0)
    try:
        yield urls[0]
    finally:
        await view.stop()
        view.core.store.close()


async def api(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        return dict(await r.json())


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


async def test_heatmap_canvas_is_drawn_and_nothing_is_refused(base: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1400})
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        log = PageLog(page)
        await page.goto(f"{base}/s/BTC?window=7d")
        await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        stats = await page.evaluate("""(() => {
            const c = document.querySelector('#heatmap canvas');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const colours = new Set(); let lit = 0;
            for (let i = 0; i < px.length; i += 4) {
                colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
                if (px[i] + px[i + 1] + px[i + 2] > 150) lit++;
            }
            return {colours: colours.size, lit: lit / (px.length / 4)};
        })()""")
        assert stats["colours"] > 200 and stats["lit"] > 0.3, stats
        bars = await page.evaluate("""(() => {
            const c = document.querySelector('#map canvas');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const colours = new Set();
            for (let i = 0; i < px.length; i += 4)
                colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
            return colours.size; })()""")
        assert bars > 20  # the liquidation map's leverage bands are drawn too
        assert "not exchange data" in await page.inner_text("header")
        assert log.errors == []
    assert {u.split("/")[2] for u in requested if not u.startswith("data:")} \
        == {base.split("/")[2]}  # everything from this server: no CDN
    assert any(u.endswith("/static/echarts.min.js") for u in requested)


async def test_hovering_a_bucket_shows_the_apis_value(base: str) -> None:
    d = await api(f"{base}/api/v1/heatmap?symbol=BTC&window=7d")
    nt, npr = d["shape"]
    t = nt * 2 // 3
    column = d["values"][t * npr:(t + 1) * npr]
    close = d["close"][t]
    frm = min(range(npr), key=lambda k: abs(d["prices"][k] - close))
    below = max(range(frm), key=column.__getitem__)  # the column's biggest bucket each side
    above = max(range(frm + 1, npr), key=column.__getitem__)
    async with chromium() as browser:
        page, log = await open_page(browser, f"{base}/s/BTC?window=7d")
        box = await page.locator("#heatmap").bounding_box()
        for j in (below, above):
            price = d["prices"][j]
            x, y = await page.evaluate(
                f"liqbot.heatmap.convertToPixel({{gridIndex: 0}}, [{t}, {j}])")
            await page.mouse.move(box["x"] + x, box["y"] + y)
            await page.wait_for_selector(f"#tip[data-j='{j}']:not([hidden])")
            text = await page.inner_text("#tip")
            assert f"Bucket: ${column[j]:,}" in text
            assert f"Distance from price: {(price / close - 1) * 100:+.1f} %" in text
            cumulative = sum(column[min(frm, j):max(frm, j) + 1])
            assert f"Cumulative to this price: ${cumulative:,}" in text
            assert text.startswith(f"{utc(d['time_ms'][t])} UTC · {price:,.2f}")
    assert log.errors == []


async def test_window_selector_changes_the_time_axis(base: str) -> None:
    week = await api(f"{base}/api/v1/heatmap?symbol=BTC&window=7d")
    half = await api(f"{base}/api/v1/heatmap?symbol=BTC&window=12h")
    axis = "liqbot.heatmap.getOption().xAxis[0].data"
    async with chromium() as browser:
        page, log = await open_page(browser, f"{base}/s/BTC?window=7d")
        assert await page.evaluate(axis) == [utc(ms) for ms in week["time_ms"]]
        await page.select_option("#window", "12h")
        await page.wait_for_selector("#heatmap[data-window='12h']")
        assert await page.evaluate(axis) == [utc(ms) for ms in half["time_ms"]]
        assert len(half["time_ms"]) < len(week["time_ms"])
        assert (await page.inner_text("#range")).startswith(f"12h · {utc(half['time_ms'][0])}")
    assert log.errors == []


async def test_levels_table_is_the_apis(base: str) -> None:
    levels = (await api(f"{base}/api/v1/levels?symbol=BTC"))["levels"]
    async with chromium() as browser:
        page, _ = await open_page(browser, f"{base}/s/BTC")
        rows = await page.eval_on_selector_all(
            "#levels tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
    assert rows == [[r["side"], f"{r['low']:,.2f}", f"{r['high']:,.2f}", f"{r['price']:,.2f}",
                     f"${r['notional_usd']:,.0f}", f"{r['distance_pct']:+.1f} %", r["id"]]
                    for r in levels]
    assert len(rows) == 10


async def test_an_untracked_symbol_page_is_a_404_without_script(base: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        resp = await page.goto(f"{base}/s/ETH")
        assert resp.status == 404
        assert "not available in replay" in await page.inner_text("body")
        assert await page.evaluate("typeof window.liqbot") == "undefined"


async def test_without_chromium_browser_tests_skip_unless_ci_requires_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQBOT_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("LIQBOT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="does not start"):
        async with chromium():
            pass
    monkeypatch.setenv("LIQBOT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="LIQBOT_REQUIRE_BROWSER=1 but chromium"):
        async with chromium():
            pass


async def test_real_liquidations_are_a_layer_when_the_tape_is_on(tmp_path: Path) -> None:
    from bot.estimates import WINDOWS_H
    from tests.bot.helpers import SYMBOL, started_service, tape_config, write_liqs

    service, core, store = await started_service()  # where the replay's clock and price are
    est = core.board.get(SYMBOL)
    assert est is not None and core.tape is None
    now, price = est.snapshot.now_ms, est.price
    await service.source.close()
    store.close()
    rows = [(now - 3 * 3_600_000, "long", price * 0.99, 2_500_000.0),
            (now - 2 * 3_600_000, "short", price * 1.01, 1_200_000.0),
            (now - int(WINDOWS_H["24h"] * 3_600_000) - 60_000, "long", price, 9e6)]
    service, core, store = await started_service(
        tape_config(write_liqs(tmp_path / "liqs.csv", sorted(rows))))
    view = WebView(core)
    base = (await view.start("127.0.0.1", 0))[0]
    try:
        d = await api(f"{base}/api/v1/heatmap?symbol=BTC&window=24h")
        assert d["tape"] == [[t, p, u, s] for t, s, p, u in rows[:2]]  # the window's only
        async with chromium() as browser:
            page, log = await open_page(browser, f"{base}/s/BTC?window=24h")
            names = await page.evaluate("liqbot.heatmap.getOption().series.map(s => s.name)")
            assert names == ["Estimate", "Price", "Real liquidations"]
            points = await page.evaluate("liqbot.heatmap.getOption().series[2].data.length")
            assert points == 2 and log.errors == []
    finally:
        await view.stop()
        await service.source.close()
        store.close()


async def test_wheel_zooms_drag_pans_and_the_legend_toggles_a_layer(base: str) -> None:
    zoom = ("(() => { const z = liqbot.heatmap.getOption().dataZoom[0]; "
            "return [z.start, z.end]; })()")
    lit = """(() => {
        const c = document.querySelector('#heatmap canvas');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 150) n++;
        return n / (px.length / 4); })()"""
    async with chromium() as browser:
        page, log = await open_page(browser, f"{base}/s/BTC?window=7d")
        box = await page.locator("#heatmap").bounding_box()
        assert await page.evaluate(zoom) == [0, 100]
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.wheel(0, -600)  # wheel up: zoom in around the pointer
        await page.wait_for_timeout(300)
        start, end = await page.evaluate(zoom)
        assert 0 < start < end < 100
        await page.mouse.down()
        await page.mouse.move(box["x"] + box["width"] / 2 + 150, box["y"] + box["height"] / 2,
                              steps=5)
        await page.mouse.up()
        await page.wait_for_timeout(300)
        start2, end2 = await page.evaluate(zoom)
        assert start2 < start and abs((end2 - start2) - (end - start)) < 1e-6  # panned left
        before = await page.evaluate(lit)
        selected = "liqbot.heatmap.getOption().legend[0].selected.Estimate !== false"
        cx = box["x"] + box["width"] / 2
        for dx in range(-150, 0, 8):  # click along the legend row until 'Estimate' toggles
            await page.mouse.click(cx + dx, box["y"] + 16)
            if not await page.evaluate(selected):
                break
        assert not await page.evaluate(selected)
        await page.wait_for_timeout(200)
        assert await page.evaluate(lit) < before / 3  # the heatmap layer is gone
        assert log.errors == []
