"""The live scoreboard agrees with the offline backtest (issue 18): a replay of the bundled
candles with a recorded (synthetic) tape through the service scores the same evaluations, the
same clusters, the same touches and the same liquidation capture as `liqbot backtest --data …
--liquidations …` with the same settings.

b1 differs by construction, and only by the backtest's Monte-Carlo error: the live b1 is the
exact expectation of a random side ((touch above + touch below) / 2 per cluster), which the
backtest estimates from 200 seeded draws (50 for liquidation capture). The test bounds the
difference by 4 standard errors of those draws, and checks the quantities both compute exactly
(touch rate, oracle rate = ceiling × b1, model capture) to rounding."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.audit import scoreboard
from bot.cli import main
from bot.config import AccuracySection, Config, ScheduleSection, SourceSection, TapeSection
from bot.market.replay import BUNDLED_CSV, load_csv
from bot.store import Store
from bot.wiring import make_service
from tests.bot.helpers import SYMBOL, write_liqs
from tests.bot.test_tape_alerts import run_to_end

WARMUP = 19_000  # candles before the first evaluation (the bundled file has 20,111)


def synthetic_tape(path: Path, seed: int = 5) -> tuple[Path, np.ndarray]:
    """Three liquidations per hour of the replay, priced around each candle's range."""
    c = load_csv(BUNDLED_CSV)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(WARMUP - 1, len(c)):
        for _ in range(3):
            t = int(c.timestamp[i]) + int(rng.integers(0, 3_600_000))
            price = float(rng.uniform(c.low[i] * 0.985, c.high[i] * 1.015))
            rows.append((t, "long" if rng.random() < 0.5 else "short", round(price, 2),
                         round(float(rng.lognormal(11, 1)), 2)))
    write_liqs(path, rows)
    return path, np.asarray([r[3] for r in rows])


def config(tmp_path: Path, tape: Path) -> Config:
    base = Config()
    return replace(
        base,
        bot=replace(base.bot, store=str(tmp_path / "live.db")),
        source=SourceSection(kind="replay", warmup_candles=WARMUP, lookback_days=60.0),
        schedule=ScheduleSection(recompute_seconds=360.0, price_seconds=15.0),  # 24 ticks
        tape=TapeSection(enabled=True, path=str(tape)),
        accuracy=AccuracySection(every_minutes=1440.0, top=5, horizon="24h", reaction="6h",
                                 min_evaluations=20),
        console=replace(base.console, enabled=False),
    )


@pytest.mark.slow
async def test_the_replayed_bot_scores_itself_as_the_backtest_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tape, notional = synthetic_tape(tmp_path / "liqs.csv")
    cfg = config(tmp_path, tape)
    store = Store(cfg.bot.store)
    service, _ = make_service(cfg, store, [])
    await service.start()
    assert service.scheduler is not None
    service.scheduler.shutdown(wait=False)  # the test drives the virtual clock
    await run_to_end(service)
    live = scoreboard.for_config(store, cfg.accuracy, SYMBOL, "all")
    store.close()
    assert list(live) == [True]  # the bundled file has no OI: proxy only
    b = live[True]

    assert main(["backtest", "--data", str(BUNDLED_CSV), "--liquidations", str(tape),
                 "--every", "24", "--warmup", f"{WARMUP}h", "--lookback", "60d", "--top", "5",
                 "--horizon", "24h", "--json", "--quiet"]) == 0
    bt = json.loads(capsys.readouterr().out)

    assert b["n_evaluations"] == bt["n_evaluations"] >= 40
    assert b["n_clusters"] == bt["n_clusters"]
    assert round(b["touch_rate"], 9) == round(bt["touch_rate"], 9)
    # Oracle touch rate (ceiling × b1) is exact in both.
    assert round(b["ceiling"] * b["baseline_touch_rate"], 9) == round(
        bt["ceiling"] * bt["baseline_touch_rate"], 9)
    # b1: exact expectation vs 200 draws; se ≤ 0.5 / sqrt(draws × clusters).
    se = 0.5 / np.sqrt(200 * bt["n_clusters"])
    assert abs(b["baseline_touch_rate"] - bt["baseline_touch_rate"]) <= 4 * se
    # Real-liquidation capture: the model's share exactly, b1 within the draws' error.
    liq = bt["liquidations"]
    se_liq = 0.5 / np.sqrt(50) * np.sqrt((notional ** 2).sum()) / liq["notional_scored_usd"]
    for key in ("within_0.5pct", "within_1pct"):
        assert round(b["liq_capture"][key], 9) == round(liq[key]["share"], 9)
        assert abs(b["liq_capture_baseline"][key] - liq[key]["baseline_share"]) <= 4 * se_liq
    assert b["lift_ci95"][0] <= b["lift"] <= b["lift_ci95"][1]
