"""The web view's confirmed layer (issues 23 + 17): ``/api/v1/levels``, ``/heatmap`` and ``/map``
carry a separate ``confirmed`` field (real Hyperliquid positions from the replayed SYNTHETIC
snapshot file, recomputed here from the raw lines; the estimate's numbers untouched, null
without the layer), and the page shows it as its own toggleable layer, checked in a real
headless Chromium (tests/bot/browser.py)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Config
from bot.web.server import WebView, replay_view
from tests.bot.browser import chromium, open_page

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid"
CANDLES = FIX / "synthetic_btc_1h.csv"
SNAPS = FIX / "synthetic_positions.jsonl"
LABEL = "confirmed: real positions (Hyperliquid)"
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, str, WebView]]:
    """(with the layer, without it, the first view) on the same candles."""
    on = await replay_view(Config(), str(CANDLES), SYMBOL, str(SNAPS))
    off = await replay_view(Config(), str(CANDLES), SYMBOL)
    try:
        yield (await on.start("127.0.0.1", 0))[0], (await off.start("127.0.0.1", 0))[0], on
    finally:
        for v in (on, off):
            await v.stop()
            v.core.store.close()


async def api(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        return dict(await r.json())


def raw_positions(t_ms: int) -> list[dict[str, Any]]:
    """BTC positions with a liquidationPx in each wallet's latest line at or before ``t_ms``,
    straight from the file."""
    latest: dict[str, dict[str, Any]] = {}
    for line in SNAPS.read_text().splitlines():
        row = json.loads(line)
        if row["time"] <= t_ms and (row["user"] not in latest
                                    or row["time"] >= latest[row["user"]]["time"]):
            latest[row["user"]] = row
    return [entry["position"] | {"user": user} for user, row in latest.items()
            for entry in row["state"]["assetPositions"]
            if entry["position"]["coin"] == "BTC" and entry["position"]["liquidationPx"]
            is not None and float(entry["position"]["szi"]) != 0]


def usd(p: dict[str, Any]) -> float:
    return abs(float(p["positionValue"]))


async def test_levels_confirmed_field_exact_and_apart(served) -> None:
    on, off, view = served
    est = view.core.board.get(SYMBOL)
    assert est is not None
    with_layer = await api(f"{on}/api/v1/levels?symbol=BTC&top=3")
    plain = await api(f"{off}/api/v1/levels?symbol=BTC&top=3")
    assert plain["confirmed"] is None  # no [positions]: the field says so
    assert {k: v for k, v in with_layer.items() if k != "confirmed"} == \
        {k: v for k, v in plain.items() if k != "confirmed"}  # the estimate untouched
    c = with_layer["confirmed"]
    assert c["label"] == LABEL and "sample of wallets" in c["caveat"]
    raw = raw_positions(est.snapshot.now_ms)
    assert len(raw) > 20
    assert c["totals"] == {
        "long_usd": math.fsum(usd(p) for p in raw if float(p["szi"]) > 0),
        "short_usd": math.fsum(usd(p) for p in raw if float(p["szi"]) < 0),
        "positions": len(raw), "wallets": len({p["user"] for p in raw})}
    assert 0 < len(c["levels"]) <= 6
    for row in c["levels"]:  # each cluster: the raw positions liquidating inside it
        inside = [p for p in raw if (float(p["szi"]) > 0) == (row["side"] == "long")
                  and row["low"] <= float(p["liquidationPx"]) < row["high"]]
        assert row["notional_usd"] == math.fsum(usd(p) for p in inside)
        assert row["wallets"] == len({p["user"] for p in inside})


async def test_map_and_heatmap_confirmed_fields_exact_and_apart(served) -> None:
    on, off, view = served
    est = view.core.board.get(SYMBOL)
    assert est is not None
    m, plain = await api(f"{on}/api/v1/map?symbol=BTC"), await api(f"{off}/api/v1/map?symbol=BTC")
    assert plain["confirmed"] is None
    for key in ("prices", "long", "short", "leverage"):
        assert m[key] == plain[key]  # estimate numbers identical, confirmed not added in
    c = m["confirmed"]
    assert c["label"] == LABEL
    raw = raw_positions(est.snapshot.now_ms)
    book, n = est.book, len(m["prices"])
    per: dict[tuple[str, int], list[float]] = defaultdict(list)
    outside: list[float] = []
    for p in raw:
        j = int(book.grid.index(float(p["liquidationPx"]))) - book.k0
        side = "long" if float(p["szi"]) > 0 else "short"
        (per[(side, j)] if 0 <= j < n else outside).append(usd(p))
    for side in ("long", "short"):
        assert c[side] == [math.fsum(per.get((side, j), [])) for j in range(n)]
    assert c["outside_usd"] == math.fsum(outside)
    assert sum(c["long"]) > 0 and sum(c["short"]) > 0
    assert math.isclose(sum(c["long"]) + sum(c["short"]) + c["outside_usd"],
                        c["totals"]["long_usd"] + c["totals"]["short_usd"], rel_tol=1e-12)

    h = await api(f"{on}/api/v1/heatmap?symbol=BTC&window=7d")
    hp = await api(f"{off}/api/v1/heatmap?symbol=BTC&window=7d")
    assert hp["confirmed"] is None
    assert {k: v for k, v in h.items() if k != "confirmed"} == \
        {k: v for k, v in hp.items() if k != "confirmed"}
    levels = h["confirmed"]["levels"]  # every confirmed cluster: together, the whole book
    for side in ("long", "short"):
        assert math.isclose(math.fsum(x["notional_usd"] for x in levels if x["side"] == side),
                            h["confirmed"]["totals"][f"{side}_usd"], rel_tol=1e-12)


CONFIRMED_PIXELS = """((sel) => {
    const c = document.querySelector(sel + ' canvas');
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;  // the layer's magenta (#ff4df2): no estimate colour is near it
    for (let i = 0; i < px.length; i += 4)
        if (px[i] > 200 && px[i + 1] < 110 && px[i + 2] > 200) n++;
    return n; })"""


async def test_browser_confirmed_layer_toggle_hides_and_shows_it(served) -> None:
    on, off, _ = served
    levels = (await api(f"{on}/api/v1/levels?symbol=BTC"))["confirmed"]["levels"]
    async with chromium() as browser:
        page, log = await open_page(browser, f"{on}/s/BTC?window=7d")
        toggle = page.locator("#confirmed-toggle")
        assert await toggle.is_visible() and (await toggle.inner_text()).strip() == LABEL
        assert await page.is_checked("#confirmed")

        async def pixels() -> tuple[int, int]:
            return (await page.evaluate(CONFIRMED_PIXELS, "#heatmap"),
                    await page.evaluate(CONFIRMED_PIXELS, "#map"))

        shown = await pixels()
        assert shown[0] > 50 and shown[1] > 50, shown  # outlines on the heatmap and the map
        rows = await page.locator("#confirmed-levels tbody tr").all_inner_texts()
        assert len(rows) == len(levels) > 0
        assert [r.split("\t")[3] for r in rows] == [  # the page rounds half up (toLocaleString)
        f"${math.floor(x['notional_usd'] + 0.5):,}" for x in levels]
        assert await page.locator("#confirmed-section").is_visible()

        await page.uncheck("#confirmed")
        await page.wait_for_selector("body[data-confirmed='hidden']")
        assert await pixels() == (0, 0)
        assert not await page.locator("#confirmed-section").is_visible()
        await page.select_option("#window", "3d")  # a new window keeps it hidden
        await page.wait_for_selector("#heatmap[data-window='3d']")
        assert await pixels() == (0, 0)

        await page.check("#confirmed")
        await page.wait_for_selector("body[data-confirmed='shown']")
        again = await pixels()
        assert again[0] > 50 and again[1] > 50, again
        assert await page.locator("#confirmed-section").is_visible()
        assert log.errors == []

        page2, log2 = await open_page(browser, f"{off}/s/BTC")  # no layer: no toggle
        assert not await page2.locator("#confirmed-toggle").is_visible()
        assert not await page2.locator("#confirmed-section").is_visible()
        assert await page2.evaluate(CONFIRMED_PIXELS, "#map") == 0
        assert log2.errors == []
