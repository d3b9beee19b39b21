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
        "⚠️ BTC/USDT:USDT approaching $1.0B short cluster 94,000–94,400 (+1.2 %) — price 92,900"
        " · 2025-11-25 12:00 UTC · estimate, not exchange data")


def test_break_new_and_growth_wording() -> None:
    assert render(cluster_event(EventKind.BREAK, price=94_520.0)).startswith(
        "💥 BTC/USDT:USDT broke through $1.0B short cluster 94,000–94,400 — price 94,520")
    assert render(cluster_event(EventKind.NEW_CLUSTER, notional_usd=641e6)).startswith(
        "🆕 BTC/USDT:USDT new $641M short cluster 94,000–94,400 (+1.2 %)")
    grown = render(cluster_event(EventKind.NEW_CLUSTER, notional_usd=1.5e9, grown_from_usd=1e9))
    assert "grew to $1.5B (×1.5 from $1.0B, +1.2 %)" in grown
    assert grown.endswith("estimate, not exchange data")


def test_level_cross_wording_and_time_zone() -> None:
    e = AlertEvent(kind=EventKind.LEVEL_CROSS, chat=1, symbol=SYM, ref="level:7", epoch=0,
                   price=95_120.0, ts_ms=T0, level_price=95_000.0, direction="up",
                   note="breakout")
    assert render(e, "Europe/Berlin") == (
        "🔔 BTC/USDT:USDT crossed your level 95,000 ↑ (breakout) — price 95,120"
        " · 2025-11-25 13:00 CET")
    assert render(e, "Not/AZone").endswith("12:00 UTC")


def test_number_formats() -> None:
    assert [money(x) for x in (1.04e9, 641e6, 12.34e6, 950e3, 420)] == [
        "$1.0B", "$641M", "$12.3M", "$950K", "$420"]
    assert [price_text(x) for x in (94_000.4, 3.14159, 0.000123456)] == [
        "94,000", "3.14", "0.000123"]
    assert time_text(T0) == "2025-11-25 12:00 UTC"


def test_approach_from_inside_the_cluster_says_so() -> None:
    text = render(cluster_event(EventKind.APPROACH, price=94_100.0, distance_pct=0.0))
    assert text.startswith("⚠️ BTC/USDT:USDT price is inside a $1.0B short cluster 94,000–94,400")
