"""`liqbot backtest`: the JSON report has the keys the README and issue promise; the text
report reads plainly; a liquidation file is scored; bad input is a clear error."""

import json

import numpy as np
import pytest

from bot.backtest.walk import evaluation_times, walk
from bot.cli import main
from bot.config import Config, model_params
from bot.market.replay import BUNDLED_CSV, load_csv
from estimator import ClusterRule

KEYS = {"touch_rate", "baseline_touch_rate", "lift", "lift_ci95", "ceiling", "headroom",
        "rules", "reaction", "n_clusters", "horizon", "proxy"}
ARGS = ["--every", "24", "--warmup", "10d", "--draws", "50"]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    rows = BUNDLED_CSV.read_text().splitlines()
    path = tmp_path_factory.mktemp("bt") / "plain.csv"
    path.write_text("\n".join([rows[0], *rows[-1500:]]) + "\n")
    return path


def test_json_has_the_required_keys(small_csv, capsys):
    assert main(["backtest", "--data", str(small_csv), "--json", "--horizon", "24h",
                 "--top", "5", "--half-life", "72", "--seed", "3", *ARGS]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= KEYS
    assert r["proxy"] is True and r["horizon"] == "24h" and r["n_clusters"] > 0
    assert set(r["rules"]) == {"last_24h_move", "always_below"}
    for rule in r["rules"].values():
        assert set(rule) >= {"touch_rate", "lift", "lift_ci95", "model_vs_rule", "reaction_rate"}
    assert {"rate", "baseline_rate", "ratio", "ratio_ci95"} <= set(r["reaction"])
    lo, hi = r["lift_ci95"]
    assert lo <= r["lift"] <= hi and 0 <= r["touch_rate"] <= 1
    assert r["model"]["half_life_hours"] == 72.0 and r["seed"] == 3
    assert r["liquidations"] is None


def test_text_report_reads_plainly(small_csv, capsys):
    assert main(["backtest", "--data", str(small_csv), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "b1 (random side)" in out and "volume proxy" in out and "reading:" in out


def test_liquidation_file_is_scored_against_the_standing_zones(small_csv, tmp_path, capsys):
    candles = load_csv(small_csv)
    params = model_params(Config())
    times = evaluation_times(len(candles), 240, 24, 30)
    est = walk(candles, times[:3], params, ClusterRule(), 5)
    step = int(np.median(np.diff(candles.timestamp)))
    # One liquidation inside the first zone an hour after it was estimated, one far away.
    e0 = est.eval_idx == 0
    at = int(candles.timestamp[times[0]]) + 2 * step
    inside = (est.low[e0][0] + est.high[e0][0]) / 2
    liq = tmp_path / "liq.csv"
    liq.write_text("timestamp,side,price,notional_usd\n"
                   f"{at},long,{inside},1000\n{at + 1},sell,{inside * 3},1000\n")
    assert main(["backtest", "--data", str(small_csv), "--json", "--liquidations", str(liq),
                 *ARGS]) == 0
    r = json.loads(capsys.readouterr().out)["liquidations"]
    assert r["n_scored"] == 2
    assert r["within_0.5pct"]["share"] == pytest.approx(0.5)
    assert 0 <= r["within_1pct"]["baseline_share"] <= 0.5


@pytest.mark.parametrize("bad", [["--horizon", "24"], ["--every", "0"], ["--top", "0"],
                                 ["--warmup", "900d"], ["--draws", "0"], ["--half-life", "-1"],
                                 ["--dominant-share", "0.3"]])
def test_bad_arguments_are_a_clear_error(small_csv, capsys, bad):
    assert main(["backtest", "--data", str(small_csv), *ARGS, *bad]) == 1
    err = capsys.readouterr().err
    assert err.startswith("liqbot: backtest:") and "Traceback" not in err
