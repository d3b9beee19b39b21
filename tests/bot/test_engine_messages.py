"""Neutral alert wording (bot.alerts.messages)."""

from bot.alerts import AlertEvent, EventKind, render
from bot.fmt import money, price_text, time_text
from tests.bot.engine_helpers import SYM, T0


def cluster_event(kind: EventKind, **kw) -> AlertEvent:
    base = dict(kind=kind, chat=1, symbol=SYM, ref="S1", epoch=0, price=92_900.0, ts_ms=T0,
                side="short", low=94_000.0, high=94_400.0, notional_usd=1.0e9,
                distance_pct=(94_000 - 92_900) / 92_900 * 100)
    base.update(kw)
    return AlertEvent(**base)


def test_approach_wording_matches_the_spec_example() -> None:
    assert render(cluster_event(EventKind.APPROACH)) == (
        "⚠️ BTC/USDT:USDT approaching $1.0B short cluster 94,000–94,400 (1.2 % above price)"
        " — price 92,900"
        " · 2025-11-25 12:00 UTC · estimate, not exchange data")


def test_break_new_and_growth_wording() -> None:
    assert render(cluster_event(EventKind.BREAK, price=94_520.0)).startswith(
        "💥 BTC/USDT:USDT broke through $1.0B short cluster 94,000–94,400 — price 94,520")
    assert render(cluster_event(EventKind.NEW_CLUSTER, notional_usd=641e6)).startswith(
        "🆕 BTC/USDT:USDT new $641M short cluster 94,000–94,400 (1.2 % above price)")
    grown = render(cluster_event(EventKind.NEW_CLUSTER, notional_usd=1.5e9, grown_from_usd=1e9))
    assert "grew to $1.5B (×1.5 from $1.0B; 1.2 % above price)" in grown
    below = render(cluster_event(EventKind.APPROACH, side="long", low=91_000.0, high=91_500.0,
                                 distance_pct=-1.5))
    assert "long cluster 91,000–91,500 (1.5 % below price)" in below
    assert grown.endswith("estimate, not exchange data")


def test_level_cross_wording_and_time_zone() -> None:
    e = AlertEvent(kind=EventKind.LEVEL_CROSS, chat=1, symbol=SYM, ref="level:7", epoch=0,
                   price=95_120.0, ts_ms=T0, level_price=95_000.0, direction="up",
                   note="breakout")
    assert render(e, "Europe/Berlin") == (
        "🔔 BTC/USDT:USDT crossed your level 95,000 ↑ (breakout) — price 95,120"
        " · 2025-11-25 13:00 CET")
    assert render(e, "Not/AZone").endswith("12:00 UTC")


def test_a_level_touched_by_a_wick_says_so() -> None:
    """A low that touched the level while price closed back above it is not a "cross"."""
    from bot.alerts import UserLevel
    from tests.bot.engine_helpers import Run

    run = Run(levels=[UserLevel(7, 1, SYM, 60_853.0, "any")])
    run.tick(61_000)
    [wick] = run.tick(60_963, low=60_790, high=61_010)
    assert render(wick) == ("🔔 BTC/USDT:USDT low 60,790 touched your level 60,853 ↓; price "
                            "back at 60,963 · 2025-11-25 12:02 UTC")
    run.tick(61_500, dt=2 * 3_600_000)  # 1 % away (re-armed); past the cooldown
    [cross] = run.tick(60_700, low=60_650, high=61_500)
    assert render(cross).startswith(
        "🔔 BTC/USDT:USDT crossed your level 60,853 ↓ — price 60,700")


def test_number_formats() -> None:
    assert [money(x) for x in (1.04e9, 641e6, 12.34e6, 950e3, 420)] == [
        "$1.0B", "$641M", "$12.3M", "$950K", "$420"]
    assert [price_text(x) for x in (94_000.4, 3.14159, 0.000123456)] == [
        "94,000", "3.14", "0.000123"]
    assert time_text(T0) == "2025-11-25 12:00 UTC"


def test_approach_from_inside_the_cluster_says_so() -> None:
    text = render(cluster_event(EventKind.APPROACH, price=94_100.0, distance_pct=0.0))
    assert text.startswith("⚠️ BTC/USDT:USDT price is inside a $1.0B short cluster 94,000–94,400")


def test_a_bad_price_is_told_what_a_price_looks_like_not_the_size_shorthand() -> None:
    import pytest

    from bot.commands.parse import parse_amount
    from bot.errors import UserInputError

    with pytest.raises(UserInputError) as price:
        parse_amount("-5", "price")
    assert str(price.value) == ("'-5' is not a valid price (a positive price like 94k, 94,000 "
                                "or 0.35).")
    with pytest.raises(UserInputError) as size:
        parse_amount("lots", "minimum cluster size")
    assert "(try 100m, 1.5b, 94k or 94,000)" in str(size.value)
