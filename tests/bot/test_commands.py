"""The command core with real parts: replies, validation, permissions, limits, no state change
on bad input. (Hypothesis fuzzing of every command: tests/bot/test_fuzz_commands.py.)"""

import re

import pytest

from bot.commands.core import APOLOGY, CommandCore
from bot.commands.table import COMMANDS, help_text
from tests.bot.helpers import SYMBOL, group, private, started_service

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def parts():
    service, core, store = await started_service()
    yield service, core, store
    store.close()


async def test_start_and_help_list_every_command(parts):
    _, core, _ = parts
    assert "not exchange data" in (await core.handle("/start", private())).text
    text = (await core.handle("/help@liqbot", private())).text
    assert text == help_text()
    for c in COMMANDS:
        assert c.usage in text


async def test_levels_shows_top_clusters_per_side_like_the_seed_post(parts):
    service, core, _ = parts
    reply = await core.handle("/levels btcusdt", private())
    est = service.board.get(SYMBOL)
    assert not reply.error and reply.png is None
    assert "Shorts above" in reply.text and "Longs below" in reply.text
    assert "not exchange data" in reply.text and "volume proxy" in reply.text
    biggest = max((c for c in est.clusters if c.side == "long"), key=lambda c: c.notional_usd)
    assert f"{biggest.distance_pct:+.1f} %" in reply.text
    assert [b.command for b in reply.buttons] == ["/heatmap BTC 24h", "/map BTC",
                                                   "/subscribe BTC"]


async def test_levels_shows_touching_clusters_as_one_zone(parts):
    import dataclasses

    from bot.commands.market_cmds import levels_text
    from estimator import Cluster

    service, _, _ = parts
    est = service.board.get(SYMBOL)
    p = est.price

    def short(i: int, low: float, high: float, usd: float) -> Cluster:
        mid = (low + high) / 2
        return Cluster(f"S{i}", "short", low, high, mid, usd, (mid / p - 1) * 100)

    touching = (short(1, 1.10 * p, 1.11 * p, 2e6), short(2, 1.11 * p, 1.12 * p, 3e6),
                short(3, 1.12 * p, 1.13 * p, 1e6), short(4, 1.20 * p, 1.21 * p, 5e5))
    text = levels_text(dataclasses.replace(est, clusters=touching))
    zone = [line for line in text.splitlines() if line.startswith("  ") and "%" in line]
    assert len(zone) == 2
    assert zone[0].split()[0] == f"{1.10 * p:,.0f}–{1.13 * p:,.0f}" and "$6.0M" in zone[0]


async def test_heatmap_and_map_return_pngs_and_cache_them(parts):
    _, core, _ = parts
    first = await core.handle("/heatmap BTC 3d", private())
    assert first.png.startswith(PNG) and "heatmap, 3d" in first.text
    again = await core.handle("/heatmap 3d", private())
    assert again.png == first.png and core.charts.hits == 1
    liq = await core.handle("/map", private("u2"))
    assert liq.png.startswith(PNG) and liq.filename == "map.png"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("/heatmap BTC 2w", "Unknown window '2w'"),
        ("/heatmap DOGE", "DOGE/USDT:USDT is not available in replay"),
        ("/heatmap B@D!", "is not a symbol"),
        ("/subscribe", "Which symbol?"),
        ("/subscribe BTC lots", "'lots' is not a valid minimum cluster size"),
        ("/subscribe BTC 100m 90", "between 0.01 % and 20 %"),
        ("/subscribe BTC -5m", "is not a valid minimum cluster size"),
        ("/level BTC", "Give a symbol and a price"),
        ("/level BTC nan", "'nan' is not a valid price"),
        ("/level BTC 1e400", "'1e400' is not a valid price"),
        ("/level BTC 999b", "too far from the current price"),
        ("/unlevel x1", "'x1' is not a valid level ID"),
        ("/levels BTC ETH", "Too many arguments"),
    ],
)
async def test_bad_input_gets_specific_error_with_usage_and_changes_nothing(parts, text, needle):
    _, core, store = parts
    reply = await core.handle(text, private())
    assert reply.error and needle in reply.text, reply.text
    assert "Usage: /" in reply.text
    assert store.subscriber_counts() == {} and store.active_levels() == []


async def test_unknown_and_non_commands(parts):
    _, core, _ = parts
    assert (await core.handle("/frobnicate", private())).text.startswith("Unknown command")
    assert await core.handle("hello there", private()) is None
    long = await core.handle("/levels " + "x" * 4096, private())
    assert long.error and "too long" in long.text


async def test_subscribe_with_human_amounts_then_alerts_then_unsubscribe(parts):
    _, core, store = parts
    reply = await core.handle("/subscribe btc 1.5b 0.75%", private())
    assert not reply.error and "$1.5B" in reply.text
    [sub] = store.active_subscriptions(SYMBOL)
    assert (sub.min_usd, sub.approach_pct) == (1.5e9, 0.75)
    await core.handle("/subscribe BTC 94,000", private())  # updates, not duplicates
    assert [s.min_usd for s in store.active_subscriptions()] == [94_000]
    listing = (await core.handle("/alerts", private())).text
    assert "BTC/USDT:USDT: clusters ≥ $94.0K, within 0.5 %" in listing
    assert not (await core.handle("/unsubscribe BTC", private())).error
    assert (await core.handle("/unsubscribe BTC", private())).error
    assert store.active_subscriptions() == []


async def test_levels_add_list_remove_only_own(parts):
    service, core, store = parts
    price = service.board.get(SYMBOL).price
    reply = await core.handle(f"/level BTC {price * 1.02:.0f} breakout <b>watch</b>", private())
    level_id = int(re.search(r"#(\d+)", reply.text).group(1))
    assert "<b>watch</b>" in reply.text  # plain text; adapters escape it
    assert f"#{level_id}" in (await core.handle("/alerts", private())).text
    other = await core.handle(f"/unlevel {level_id}", private("u9", chat="c9"))
    assert other.error and len(store.active_levels()) == 1
    assert not (await core.handle(f"/unlevel {level_id}", private())).error
    assert store.active_levels() == []


async def test_group_changes_are_admin_only(parts):
    _, core, store = parts
    refused = await core.handle("/subscribe BTC 100m", group("member", admin=False))
    assert refused.error and "Only chat admins" in refused.text
    assert store.active_subscriptions() == []
    assert not (await core.handle("/subscribe BTC 100m", group("boss", admin=True))).error
    assert not (await core.handle("/levels", group("member", admin=False))).error
    # Configured bot admins may act in any group.
    bot_admin = CommandCore(
        core.config.__class__(**{**core.config.__dict__,
                                 "bot": core.config.bot.__class__(admins=("root",))}),
        core.board, core.source, store, core.charts)
    assert not (await bot_admin.handle("/unsubscribe BTC", group("root", admin=False))).error


async def test_chart_rate_limit_per_user(parts):
    _, core, _ = parts
    now = [1000.0]
    core.chart_limiter._clock = lambda: now[0]
    for _ in range(core.config.limits.charts_per_minute):
        assert not (await core.handle("/map", private("spammer"))).error
    limited = await core.handle("/map", private("spammer"))
    assert limited.error and "Chart limit reached" in limited.text
    assert not (await core.handle("/map", private("someone-else"))).error
    now[0] += 61
    assert not (await core.handle("/map", private("spammer"))).error


async def test_unexpected_errors_become_an_apology(parts, caplog):
    _, core, store = parts
    store.close()  # the store is gone: a bug-like failure inside a handler
    reply = await core.handle("/subscribe BTC", private())
    assert reply.text == APOLOGY and reply.error
    assert "command /subscribe failed" in caplog.text
