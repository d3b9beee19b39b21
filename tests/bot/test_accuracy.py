"""/accuracy and `liqbot accuracy` (issue 18): evaluations scored once each when their horizon
has passed, persisted across restarts, aggregated on request; honest output (not enough data,
CI and baseline always, proxy and OI apart); the /status line; bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.audit import evaluations, scoreboard
from bot.cli import main
from bot.config import AccuracySection, Config, load_config
from bot.store import Store
from bot.tape.events import Liquidation
from tests.bot.helpers import SYMBOL, private, replay_config, started_service
from tests.synthetic import random_walk

HOUR = 3_600_000
ACC = AccuracySection(min_evaluations=30)
SETTINGS = evaluations.Settings.of(ACC, HOUR)


def fill(store: Store, n: int, *, proxy: bool = True, start: int = 0, seed: int = 1,
         tape: bool = True) -> int:
    """``n`` hourly evaluations with 5 clusters per side and a price path, then scored as the
    service does. Returns the data clock (ms) at the end."""
    c = random_walk(start + n + 40, start=60_000.0, step_ms=HOUR, vol=0.006, wick=0.003,
                    oi_usd=None, seed=seed)
    rng = np.random.default_rng(seed)
    store.add_path(SYMBOL, zip(c.timestamp.tolist(), c.high.tolist(), c.low.tolist(),
                               c.close.tolist(), strict=True))
    liqs = []
    for i in range(start, start + n):
        p = float(c.close[i])
        rows = [(side == "short", p * (1 + sign * 0.004 * (k + 1)),
                 p * (1 + sign * 0.004 * (k + 1) + 0.003), 1e7)
                for side, sign in (("long", -1), ("short", 1)) for k in range(5)]
        store.add_evaluation(SYMBOL, int(c.timestamp[i]), int(c.timestamp[i]) + HOUR, HOUR, p,
                             proxy, bool(i % 2), rows)
        t = int(c.timestamp[i]) + HOUR + int(rng.integers(0, HOUR))
        liqs.append(Liquidation("x", t, SYMBOL, "long", p, 1.0, p))
    if tape:
        store.add_liquidations(liqs)
    now = int(c.timestamp[-1]) + HOUR
    evaluations.score_due(store, SYMBOL, SETTINGS, now, tape_on=tape)
    return now


def test_each_evaluation_is_scored_once_when_its_horizon_has_passed(store: Store) -> None:
    c = random_walk(100, start=60_000.0, step_ms=HOUR, vol=0.006, wick=0.003, oi_usd=None)
    t0 = int(c.timestamp[10])
    store.add_evaluation(SYMBOL, t0, t0 + HOUR, HOUR, float(c.close[10]), True, True,
                         [(False, float(c.close[10]) * 0.99, float(c.close[10]) * 0.995, 1e7)])
    span = SETTINGS.horizon + SETTINGS.reaction
    # Only part of the horizon stored: nothing is scored yet.
    store.add_path(SYMBOL, zip(c.timestamp[10:10 + span].tolist(), c.high[10:10 + span].tolist(),
                               c.low[10:10 + span].tolist(), c.close[10:10 + span].tolist(),
                               strict=True))
    assert evaluations.score_due(store, SYMBOL, SETTINGS, t0 + 200 * HOUR, False) == 0
    store.add_path(SYMBOL, [(int(c.timestamp[10 + span]), float(c.high[10 + span]),
                             float(c.low[10 + span]), float(c.close[10 + span]))])
    # The last candle of the horizon must have closed by "now".
    assert evaluations.score_due(store, SYMBOL, SETTINGS, t0 + span * HOUR, False) == 0
    assert evaluations.score_due(store, SYMBOL, SETTINGS, t0 + (span + 1) * HOUR, False) == 1
    assert evaluations.score_due(store, SYMBOL, SETTINGS, t0 + 500 * HOUR, False) == 0
    assert store.evaluation_count(SYMBOL) == (1, 1)
    [(scores,)] = store.db.execute("SELECT scores FROM evaluations").fetchall()
    assert json.loads(scores)[:1] == [1] and json.loads(scores)[6:] == [None] * 5
    store.close()


def test_scores_survive_a_restart_and_liqbot_accuracy_prints_exactly_the_fields(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bot.db"
    store = Store(db)
    fill(store, 60)
    with store.db.atomic():  # a receipt made for one break (two chats)
        for chat in (store.upsert_chat("console", "a").id, store.upsert_chat("console", "b").id):
            store.db.execute(
                "INSERT INTO receipts (chat, ref, epoch, symbol, side, low, high, pre_price,"
                " break_ms, since_ms, due_ms, estimate_usd, proxy, done, tape_usd, control_usd)"
                " VALUES (?, 'L1', 0, ?, 'long', 1, 2, 3, 1700000000000, 0, 0, 5, 1, 1, 3e6, 0)",
                (chat, SYMBOL))
    store.close()
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nstore = "{db}"\n[accuracy]\nmin_evaluations = 30\n')
    assert main(["accuracy", "--config", str(cfg), "--symbol", "BTC", "--window", "all",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["symbol", "window", "n_evaluations", "n_clusters", "touch_rate",
                         "baseline_touch_rate", "lift", "lift_ci95", "ceiling", "headroom",
                         "liq_capture", "liq_capture_baseline", "receipts", "proxy"]
    assert out["symbol"] == SYMBOL and out["window"] == "all" and out["proxy"] is True
    assert out["n_evaluations"] == 60 and out["n_clusters"] == 600
    assert out["lift_ci95"][0] <= out["lift"] <= out["lift_ci95"][1]
    assert out["baseline_touch_rate"] > 0
    assert out["touch_rate"] == pytest.approx(out["lift"] * out["baseline_touch_rate"])
    assert set(out["liq_capture"]) == {"within_0.5pct", "within_1pct"}
    assert out["receipts"] == {"n": 1, "median_capture_usd": 3e6}
    # The text form: CI and baseline, never a bare rate.
    assert main(["accuracy", "--config", str(cfg), "--window", "all"]) == 0
    text = capsys.readouterr().out
    assert "vs b1 (same distance, random side)" in text and "lift" in text and "[" in text
    assert "misses included" in text


def test_below_the_minimum_it_says_not_enough_data_with_n(store: Store) -> None:
    fill(store, 12)
    boards = scoreboard.for_config(store, ACC, SYMBOL, "all")
    assert boards[True]["lift"] is None and boards[True]["n_evaluations"] == 12
    assert "not enough data yet (n = 12 evaluations; need 30)" in scoreboard.text(boards, 30)
    assert "not enough data yet (n = 12; need 30)" in scoreboard.summary(boards, 30)
    store.close()


def test_proxy_and_open_interest_evaluations_are_scored_apart_and_labelled(store: Store) -> None:
    fill(store, 40, proxy=True)
    fill(store, 40, proxy=False, start=40)
    boards = scoreboard.for_config(store, ACC, SYMBOL, "all")
    assert set(boards) == {True, False}
    assert boards[True]["n_evaluations"] == boards[False]["n_evaluations"] == 40
    text = scoreboard.text(boards, 30)
    assert "volume proxy (no open interest)" in text and "· open interest —" in text
    # A window counts back from its end (the newest evaluation unless given).
    last = store.last_evaluation_ms(SYMBOL)
    assert last is not None
    week = scoreboard.scoreboards(store, SYMBOL, "7d", horizon=24, every=1, min_n=30,
                                  end_ms=last + 7 * 24 * HOUR - 50 * HOUR)
    assert sum(b["n_evaluations"] for b in week.values()) == 51  # the last 51 hours
    store.close()


def test_old_evaluations_are_pruned_by_age(store: Store) -> None:
    now = fill(store, 40)
    assert store.prune_audit(now - 20 * HOUR) > 0
    assert store.evaluation_count(SYMBOL)[0] < 40
    store.close()


async def test_accuracy_command_and_status_line_through_the_core() -> None:
    service, core, store = await started_service()
    fill(store, 45)
    text = (await core.handle("/accuracy BTC all", private())).text
    assert text.startswith(f"Accuracy {SYMBOL} · all · volume proxy")
    assert "lift" in text and "vs b1" in text
    status = (await core.handle("/status", private())).text
    assert "Accuracy, last 30 d: proxy: lift" in status and "n = 45" in status
    bad = await core.handle("/accuracy BTC 1y", private())
    assert bad.error and "1y" in bad.text
    unknown = await core.handle("/accuracy DOGE", private())
    assert unknown.error and "DOGE" in unknown.text
    store.close()


async def test_the_replayed_service_records_evaluations_at_most_every_every_minutes() -> None:
    cfg = replace(replay_config(), accuracy=AccuracySection(every_minutes=180.0))
    service, core, store = await started_service(cfg)
    for _ in range(200):  # 200 hourly ticks, a recompute every 20
        await service.price_job()
    recorded, _ = store.evaluation_count(SYMBOL)
    assert recorded == 1 + 200 // 20  # 20 h apart ≥ 3 h: every recompute is recorded
    rows = store.db.execute("SELECT t_ms FROM evaluations ORDER BY t_ms").fetchall()
    assert all(b[0] - a[0] >= 3 * HOUR for a, b in zip(rows, rows[1:], strict=False))
    store.close()


def test_bad_cli_input_is_one_line_and_the_right_exit_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nstore = "{tmp_path / "none.db"}"\n')
    assert main(["accuracy", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no store yet" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "none.db").exists()  # nothing written
    assert main(["accuracy", "--config", str(cfg), "--symbol", "DOGE"]) == 2
    assert "--symbol DOGE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["accuracy", "--config", str(cfg), "--window", "1y"])
    assert exc.value.code == 2
    cfg.write_text("[accuracy]\nhorizon = 'soon'\n")
    assert main(["accuracy", "--config", str(cfg)]) == 2
    assert "accuracy.horizon" in capsys.readouterr().err


def test_the_example_config_documents_the_defaults() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "config.example.toml", env={})
    assert cfg.accuracy == Config().accuracy and cfg.tape.receipt_minutes == 15.0


@pytest.mark.parametrize(("n", "block"), [(7, 10), (46, 3), (807, 10), (8_760, 25)])
def test_bootstrap_sums_are_bit_identical_to_gathering_both_prefix_ends(n: int,
                                                                         block: int) -> None:
    from bot.backtest.bootstrap import BlockBootstrap

    boot = BlockBootstrap(n, block, 500, 3)
    v = np.random.default_rng(n).random(n) * 7
    ext = np.concatenate([[0.0], np.cumsum(np.concatenate([v, v[: boot.block]]))])
    lens = np.full(boot.starts.shape[1], boot.block)
    lens[-1] = boot.last_len
    reference = (ext[boot.starts + lens] - ext[boot.starts]).sum(axis=1)
    assert np.array_equal(boot.sums(v), reference)
