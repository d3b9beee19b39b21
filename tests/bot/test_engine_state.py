"""Engine state: JSON round trip, purity, replayed ticks, stale data."""

from bot.alerts import Subscription, SymbolState, Tick, UserLevel, evaluate
from tests.bot.engine_helpers import SYM, T0, Run, short


def busy_run() -> Run:
    run = Run([Subscription(1, SYM)], [UserLevel(1, 1, SYM, 93_500, "any")])
    run.tick(93_000, [short()])
    run.tick(93_700, [short()], high=93_800)
    return run


def test_state_round_trips_through_json() -> None:
    run = busy_run()
    assert run.events
    again = SymbolState.from_json(run.state.to_json())
    assert again == run.state
    assert SymbolState.from_json(None) == SymbolState()


def test_evaluate_does_not_modify_its_input_state() -> None:
    run = busy_run()
    before = run.state.to_json()
    evaluate(run.state, SYM, Tick(94_500, 94_600, 93_000, run.t + 60_000), [short()], run.watch)
    assert run.state.to_json() == before


def test_same_inputs_same_events() -> None:
    run = busy_run()
    tick = Tick(93_300, 93_900, 93_200, run.t + 60_000)
    a = evaluate(run.state, SYM, tick, [short()], run.watch)
    b = evaluate(SymbolState.from_json(run.state.to_json()), SYM, tick, [short()], run.watch)
    assert a == b


def test_repeated_or_older_tick_produces_nothing_new() -> None:
    run = busy_run()
    tick = Tick(93_300, 94_500, 93_000, run.t)  # same ts as the last processed tick
    ev, state = evaluate(run.state, SYM, tick, [short()], run.watch)
    assert ev == []
    older = Tick(93_300, 94_500, 93_000, T0)
    assert evaluate(state, SYM, older, [short()], run.watch) == ([], state)


def test_stale_tick_fires_nothing() -> None:
    run = Run([Subscription(1, SYM)], [UserLevel(1, 1, SYM, 93_500, "any")])
    run.tick(93_000, [short()])
    assert run.tick(94_500, [short()], high=94_600, stale=True) == []
    assert run.state.last_price is None


def test_unknown_state_keys_are_ignored() -> None:
    assert SymbolState.from_json('{"last_ms": 5, "from_the_future": 1}') == SymbolState(last_ms=5)


def test_bad_tick_is_rejected() -> None:
    import pytest

    with pytest.raises(ValueError):
        Tick(price=0, high=1, low=0, ts_ms=T0)
    with pytest.raises(ValueError):
        Tick(price=1, high=0.5, low=1, ts_ms=T0)


def test_public_api_is_complete() -> None:
    import bot.alerts

    public = {n for n in dir(bot.alerts) if not n.startswith("_")}
    modules = {"engine", "events", "messages", "lifecycle", "threads", "digest", "top_digest"}
    assert public - modules == set(bot.alerts.__all__)
