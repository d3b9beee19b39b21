"""`liqbot calibrate`: fits a tape made from known weights, reports it, writes a ladder file
that load_ladder reads back; broken files are a one-line error (exit 1, like backtest) naming
the file."""

import dataclasses
import json

import numpy as np
import pytest

from bot.calibration import load_ladder
from bot.cli import main
from bot.config import Config, model_params
from bot.errors import ConfigError
from estimator import predicted_liquidations
from tests.synthetic import random_walk

TRUE_WEIGHTS = (0.05, 0.1, 0.15, 0.3, 0.4)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A candle CSV with OI (the columns liqbot record writes) and a tape from known weights."""
    out = tmp_path_factory.mktemp("cal")
    c = random_walk(1500, start=30_000.0, step_ms=3_600_000, vol=0.006, wick=0.004,
                    oi_usd=1e9, taker=True, seed=7)
    cols = {"timestamp": c.timestamp, "open": c.open, "high": c.high, "low": c.low,
            "close": c.close, "volume": c.volume, "open_interest_usd": c.open_interest_usd,
            "taker_buy_volume": c.taker_buy_volume}
    rows = [",".join(cols)] + [",".join(repr(v[i].item()) for v in cols.values())
                               for i in range(len(c))]
    candles = out / "BTCUSDT_1h.csv"
    candles.write_text("\n".join(rows) + "\n")
    # The CLI's base model is the bot's (168 h half-life): make the tape with it.
    true = dataclasses.replace(model_params(Config()), weights=TRUE_WEIGHTS,
                               dominant_share=0.65)
    per_side = predicted_liquidations(c, true).sum(axis=1) * 0.3
    side, t = np.nonzero(per_side > 0)
    liq = out / "BTCUSDT_liquidations.csv"
    liq.write_text("timestamp,side,price,notional_usd\n" + "".join(
        f"{c.timestamp[i] + 1500},{'short' if s else 'long'},{float(c.close[i])!r},"
        f"{float(per_side[s, i])!r}\n" for s, i in zip(side, t, strict=True)))
    return candles, liq, len(t)


def test_report_and_ladder_file(files, tmp_path, capsys):
    candles, liq, n = files
    out = tmp_path / "ladder.toml"
    assert main(["calibrate", "--candles", str(candles), "--liquidations", str(liq),
                 "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"{n} liquidations" in report and "new notional from: open interest" in report
    assert "dominant share  0.65 (default 0.75)" in report
    assert "  100x    40.0 %   10.0 %" in report
    assert "scale           0.3 tape USD" in report and "in-sample" in report
    assert "one liquidation per second per\nsymbol" in report and f"wrote {out}" in report
    text = out.read_text()
    assert text.startswith(f"# fitted by liqbot calibrate from {candles.name}, {liq.name}, "
                           f"{n} liquidations, ")
    assert "[model]\nleverage = [5, 10, 25, 50, 100]\n" in text
    leverage, weights, share = load_ladder(out)
    assert leverage == (5, 10, 25, 50, 100) and share == pytest.approx(0.65)
    np.testing.assert_allclose(weights, TRUE_WEIGHTS, atol=1e-6)
    assert sum(weights) == pytest.approx(1.0, abs=1e-12)


def test_json(files, capsys):
    candles, liq, n = files
    assert main(["calibrate", "--candles", str(candles), "--liquidations", str(liq),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_liquidations"] == n and r["proxy"] is False and r["out"] is None
    assert r["r2"] > r["r2_default"] and r["scale"] == pytest.approx(0.3)
    assert r["base_weights"] == [0.15, 0.30, 0.25, 0.20, 0.10]


def test_without_open_interest_the_report_says_proxy(files, tmp_path, capsys):
    candles, liq, _ = files
    lines = candles.read_text().splitlines()
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(",".join(r.split(",")[:6]) for r in lines) + "\n")
    assert main(["calibrate", "--candles", str(plain), "--liquidations", str(liq)]) == 0
    assert "volume proxy" in capsys.readouterr().out


@pytest.mark.parametrize("which, content, message", [
    ("liq", "timestamp,side,notional_usd\n1,long,5\n", "missing column(s) price"),
    ("liq", "timestamp,side,price,notional_usd\n1,long,10,-5\n", ":2: need side"),
    ("liq", "timestamp,side,price,notional_usd\n1,long,10,5\n",
     "no liquidation falls within the candles"),
    ("liq", "timestamp,side,price,notional_usd\n", "no liquidations to fit"),
    ("candles", "timestamp,open,high,low,close,volume\n1,2,3,1,2,5\n0,2,3,1,2,5\n",
     ":3: unsorted timestamp"),
])
def test_broken_files_exit_1_naming_the_file(files, tmp_path, capsys, which, content, message):
    candles, liq, _ = files
    bad = tmp_path / f"bad_{which}.csv"
    bad.write_text(content)
    args = {"candles": candles, "liq": liq} | {which: bad}
    assert main(["calibrate", "--candles", str(args["candles"]), "--liquidations",
                 str(args["liq"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("liqbot: ") and bad.name in err and message in err
    assert len(err.strip().splitlines()) == 1


def test_unwritable_out_is_exit_1(files, tmp_path, capsys):
    candles, liq, _ = files
    out = tmp_path / "no_such_dir" / "ladder.toml"
    assert main(["calibrate", "--candles", str(candles), "--liquidations", str(liq),
                 "--out", str(out)]) == 1
    assert "cannot write" in capsys.readouterr().err


GOOD = "[model]\nleverage = [5, 10]\nweights = [0.25, 0.75]\ndominant_share = 0.6\n"


def test_load_ladder_reads_a_hand_written_file(tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text("# by hand\n" + GOOD.replace("0.75]", "0.7500004]"))
    leverage, weights, share = load_ladder(path)
    assert leverage == (5.0, 10.0) and share == 0.6
    assert sum(weights) == pytest.approx(1.0, abs=1e-12)  # rounding within 1e-6 normalised


@pytest.mark.parametrize("text, message", [
    ("[model\n", "not a valid TOML"),
    ("[other]\nx = 1\n", "missing [model] table"),
    (GOOD.replace("dominant_share = 0.6\n", ""), "missing dominant_share"),
    (GOOD + "extra = 1\n", "unknown key(s) extra"),
    (GOOD.replace("[0.25, 0.75]", '["a", 0.75]'), "model.weights must be a non-empty list"),
    (GOOD.replace("0.6", '"0.6"'), "model.dominant_share must be a number"),
    (GOOD.replace("0.6", "true"), "model.dominant_share must be a number"),
    (GOOD.replace("[5, 10]", "[5, 10, 25]"), "3 leverages but 2 weights"),
    (GOOD.replace("0.75]", "0.7]"), "sum to 0.95"),
    (GOOD.replace("0.6", "0.4"), "dominant_share must be in [0.5, 1]"),
    (GOOD.replace("[5, 10]", "[5, 5]"), "duplicate leverage"),
])
def test_load_ladder_rejects_broken_files(tmp_path, text, message):
    path = tmp_path / "ladder.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_ladder(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_load_ladder_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read ladder file"):
        load_ladder(tmp_path / "nope.toml")
