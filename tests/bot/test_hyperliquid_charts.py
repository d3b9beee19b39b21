"""Confirmed levels on the charts: /map draws real positions as hatched outlines over the
estimated bars (never stacked into them), /heatmap marks them at the right edge; both legends
say which is which; the chart cache follows the confirmed book."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection, PolyCollection

from bot.charts import heatmap_figure, map_figure
from bot.hyperliquid.snapshots import SnapshotReplay
from tests.bot.helpers import SYMBOL, private, started_service
from tests.bot.test_hyperliquid_service import SNAPS, positions_config

LABEL = "confirmed: real positions (Hyperliquid)"


def by_gid(fig, gid: str) -> list:
    return [a for ax in fig.axes for a in [*ax.collections, *ax.texts] if a.get_gid() == gid]


async def test_map_draws_confirmed_outlines_with_the_exact_visible_usd() -> None:
    service, core, store = await started_service(positions_config())
    est = core.board.get(SYMBOL)
    assert est is not None
    desk = core.positions
    assert desk is not None
    view = desk.view(SYMBOL, est.snapshot.now_ms, est.price, est.book.grid)
    prices, usd = view.liquidation_prices()
    plain = map_figure(est.book, est.clusters, symbol=SYMBOL, exchange="x", timeframe="1h")
    fig = map_figure(est.book, est.clusters, symbol=SYMBOL, exchange="x", timeframe="1h",
                     confirmed=(prices, usd))
    assert by_gid(plain, "confirmed") == []
    [bars] = by_gid(fig, "confirmed")
    assert isinstance(bars, PolyCollection) and bars.get_hatch() == "///"
    assert len(bars.get_facecolors()) == 0 or bars.get_facecolors()[0][3] == 0  # outline only
    heights = [p.vertices[:, 1].max() for p in bars.get_paths()]
    lo, hi = fig.axes[0].get_xlim()
    visible = (prices >= lo) & (prices <= hi)
    assert np.isclose(sum(heights), usd[visible].sum(), rtol=0, atol=1e-3 * usd.sum())
    # the estimated bars are the same as without the confirmed layer
    est_bars = [c for c in fig.axes[0].collections if c.get_gid() != "confirmed"
                and isinstance(c, PolyCollection)]
    plain_bars = [c for c in plain.axes[0].collections if isinstance(c, PolyCollection)]
    assert [len(c.get_paths()) for c in est_bars] == [len(c.get_paths()) for c in plain_bars]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert LABEL in legend
    reply = await core.handle("/map", private())
    assert reply.png is not None and not reply.error
    store.close()


async def test_heatmap_marks_confirmed_levels_at_the_right_edge() -> None:
    service, core, store = await started_service(positions_config())
    est = core.board.get(SYMBOL)
    assert est is not None and core.positions is not None
    view = core.positions.view(SYMBOL, est.snapshot.now_ms, est.price, est.book.grid)
    marks = [(c.side, c.low, c.high, c.notional_usd) for c in view.clusters]
    fig = heatmap_figure(est.snapshot.candles, est.heatmap("7d"), est.clusters, symbol=SYMBOL,
                         exchange="x", timeframe="1h", window_label="7d", confirmed=marks)
    [dots] = by_gid(fig, "confirmed")
    assert isinstance(dots, PathCollection)
    ax = fig.axes[0]
    xs = dots.get_offsets()[:, 0]
    assert np.allclose(xs, ax.get_xlim()[1])  # at the right edge
    ylo, yhi = ax.get_ylim()
    in_range = [m for m in marks if ylo <= (m[1] + m[2]) / 2 <= yhi]
    assert len(dots.get_offsets()) == len(in_range) > 0
    assert LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    reply = await core.handle("/heatmap 7d", private())
    assert reply.png is not None and not reply.error
    store.close()


async def test_chart_cache_follows_the_confirmed_book() -> None:
    service, core, store = await started_service(positions_config())
    keys: list = []
    original = core.render

    async def spy(key, draw):
        keys.append(key)
        return await original(key, draw)
    core.render = spy  # type: ignore[method-assign]
    await core.handle("/map", private())
    replay = SnapshotReplay.load(SNAPS)
    est = core.board.get(SYMBOL)
    assert est is not None
    before = replay.states_at(est.snapshot.now_ms)
    while replay.states_at(core.board.get(SYMBOL).snapshot.now_ms) == before:
        await service.price_job()  # the virtual clock on until a wallet's snapshot changes
    await core.handle("/map", private())
    assert keys[0] != keys[1]
    store.close()
