"""``liqbot levels --positions`` (and the other confirmed-layer commands) on the SYNTHETIC
fixture made by tests/fixtures/hyperliquid/make_synthetic.py and on small hand-made files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bot.cli import main
from tests.bot.fake_hyperliquid import address, position, state

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid"
CANDLES = FIX / "synthetic_btc_1h.csv"
SNAPS = FIX / "synthetic_positions.jsonl"


def test_the_synthetic_fixture_is_what_its_script_makes(tmp_path) -> None:
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_synthetic", FIX / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("synthetic_positions.jsonl", "synthetic_btc_1h.csv"):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes()


def last_candle_ms() -> int:
    return int(CANDLES.read_text().splitlines()[-1].split(",")[0])


def totals_by_hand(path: Path, t_ms: int, coin: str = "BTC") -> dict[str, float | int]:
    """The issue's definition, straight from the raw lines."""
    latest: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["time"] <= t_ms and (row["user"] not in latest
                                    or row["time"] >= latest[row["user"]]["time"]):
            latest[row["user"]] = row
    long_usd = short_usd = 0.0
    n, wallets = 0, set()
    for row in latest.values():
        for entry in row["state"]["assetPositions"]:
            p = entry["position"]
            if p["coin"] != coin or p["liquidationPx"] is None or float(p["szi"]) == 0:
                continue
            n += 1
            wallets.add(row["user"])
            if float(p["szi"]) > 0:
                long_usd += abs(float(p["positionValue"]))
            else:
                short_usd += abs(float(p["positionValue"]))
    return {"long_usd": long_usd, "short_usd": short_usd, "positions": n,
            "wallets": len(wallets)}


def test_levels_positions_json_fields_and_exact_totals(capsys) -> None:
    assert main(["levels", "BTC", "--data", str(CANDLES), "--positions", str(SNAPS),
                 "--json", "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["clusters", "confirmed", "confirmed_totals"]
    # the estimated clusters are exactly what `levels --json` lists without --positions
    assert main(["levels", "BTC", "--data", str(CANDLES), "--json", "--top", "3"]) == 0
    assert out["clusters"] == json.loads(capsys.readouterr().out)
    assert out["confirmed"]
    for c in out["confirmed"]:
        assert list(c) == ["side", "low", "high", "notional_usd", "wallets", "distance_pct"]
        assert c["side"] in ("long", "short") and c["low"] < c["high"] and c["wallets"] >= 1
    by_hand = totals_by_hand(SNAPS, last_candle_ms())
    assert out["confirmed_totals"]["positions"] == by_hand["positions"] > 0
    assert out["confirmed_totals"]["wallets"] == by_hand["wallets"]
    for side in ("long_usd", "short_usd"):  # exact up to float summation order
        assert math.isclose(out["confirmed_totals"][side], by_hand[side], rel_tol=1e-12)


def test_levels_positions_small_file_totals_and_clusters(tmp_path, capsys) -> None:
    t_last = last_candle_ms()
    a, b, c = address(1), address(2), address(3)
    lines = [
        {"time": t_last - 10, "user": a, "state": state(position("BTC", 1.0, 100_000, 90_000))},
        # a's later snapshot after the last candle is not used
        {"time": t_last + 10, "user": a, "state": state()},
        {"time": t_last - 5, "user": b, "state": state(
            position("BTC", -2.0, 100_000, 120_000, 20, "isolated"),
            position("ETH", 3.0, 4_000, 3_000))},
        {"time": t_last - 5, "user": c, "state": state(position("BTC", 5.0, 100_000, None))},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["levels", "BTC", "--data", str(CANDLES), "--positions", str(path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["confirmed_totals"] == {"long_usd": 100_000.0, "short_usd": 200_000.0,
                                       "positions": 2, "wallets": 2}
    sides = sorted((x["side"], x["notional_usd"], x["wallets"]) for x in out["confirmed"])
    assert sides == [("long", 100_000.0, 1), ("short", 200_000.0, 1)]
    long_row = next(x for x in out["confirmed"] if x["side"] == "long")
    assert long_row["low"] <= 90_000 < long_row["high"]
    # the text output has its own section, never calling the confirmed levels an estimate
    assert main(["levels", "BTC", "--data", str(CANDLES), "--positions", str(path)]) == 0
    text = capsys.readouterr().out
    section = text[text.index("Confirmed on Hyperliquid"):]
    assert "estimate" not in section and "a sample of wallets on one venue" in section
    assert "open interest in the candle file" in section  # not claimed to be Hyperliquid's


@pytest.mark.parametrize("body, message", [
    ("not json\n", ":1: not JSON"),
    ('{"time": 1, "user": "0x1"}\n', ':1: expected exactly the keys'),
    (json.dumps({"time": 5, "user": "0x" + "a" * 40, "state": {"assetPositions": [
        {"position": {"coin": "BTC", "szi": "1", "entryPx": "1", "positionValue": "NaN",
                      "liquidationPx": None, "leverage": {"type": "cross", "value": 2}}}]}})
     + "\n", ":1: clearinghouseState"),
    ("", "no snapshots"),
])
def test_levels_positions_bad_file_is_one_line_exit_1(tmp_path, capsys, body: str,
                                                      message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(body)
    assert main(["levels", "BTC", "--data", str(CANDLES), "--positions", str(path),
                 "--json"]) == 1
    err = capsys.readouterr()
    assert err.out == "" and message in err.err and "Traceback" not in err.err
    assert len(err.err.strip().splitlines()) == 1


def test_calibrate_positions_recovers_the_synthetic_ladder(tmp_path, capsys) -> None:
    from bot.calibration import load_ladder

    spec = importlib_spec()
    cfg = tmp_path / "liqbot.toml"
    levs = list(spec.LADDER)
    cfg.write_text(f"[model]\nleverage = {levs}\nweights = {[0.2] * len(levs)}\n")
    out = tmp_path / "ladder.toml"
    assert main(["calibrate", "--positions", str(SNAPS), "--config", str(cfg), "--out",
                 str(out), "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["leverages"] == levs
    for got, want in zip(fit["weights"], spec.LADDER.values(), strict=True):
        assert abs(got - want) <= 0.05  # 40x is under-counted: liquidated before a scan
    assert abs(fit["long_share"] - spec.LONG_SHARE) <= 0.03
    leverages, weights, share = load_ladder(out)  # the file the bot reads
    assert list(leverages) == levs and list(weights) == fit["weights"]
    assert share == 0.75  # dominant_share is the base model's, not fitted from snapshots


def test_calibrate_needs_positions_or_both_csvs(capsys) -> None:
    assert main(["calibrate"]) == 2
    assert "give --candles and --liquidations, or --positions" in capsys.readouterr().err
    assert main(["calibrate", "--positions", str(SNAPS), "--candles", str(CANDLES)]) == 2


def importlib_spec():  # the generator's constants, from its own file
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_synthetic", FIX / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_score_positions_json_fields_and_determinism(capsys) -> None:
    args = ["score-positions", "--candles", str(CANDLES), "--positions", str(SNAPS), "--json",
            "--draws", "20"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # seeded b1 draws: same answer
    out = json.loads(first)
    assert list(out) == ["evaluations", "top", "within", "w1_pct", "sides", "confirmed_usd"]
    assert out["evaluations"] > 100 and out["top"] == 5
    for band in ("0.5pct", "1pct"):
        assert set(out["within"][band]) == {"model", "b1"}
        assert all(0 <= v <= 1 for v in out["within"][band].values())
    assert out["within"]["1pct"]["model"] >= out["within"]["0.5pct"]["model"]
    assert set(out["w1_pct"]) == {"model", "distance_only"}
    assert 0 < out["sides"]["confirmed_long_share"] < 1


def test_w1_and_coverage_arithmetic() -> None:
    import numpy as np

    from bot.hyperliquid.score import _covered, w1
    a = np.array([0.0])
    assert w1(a, np.array([1.0]), np.array([2.0]), np.array([5.0])) == 2.0
    assert w1(np.array([0.0, 2.0]), np.array([1.0, 1.0]), np.array([1.0]),
              np.array([3.0])) == 1.0
    d, w = np.array([-1.2, -3.0, 2.0]), np.array([10.0, 20.0, 30.0])
    lo, hi = np.array([-1.0]), np.array([-0.8])
    assert _covered(d, w, lo, hi, 0.5) == 10.0  # -1.2 within 0.5 of [-1, -0.8]
    assert _covered(d, w, lo, hi, 0.1) == 0.0
    assert _covered(d, w, np.array([-3.0, 1.9]), np.array([-2.9, 2.5]), 0.0) == 50.0


def test_readme_confirmed_levels_figures_are_what_the_commands_print(tmp_path, capsys) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Confirmed levels"):readme.index("## Alerts:")]
    assert "a sample of wallets" in section and "one venue" in section and "SYNTHETIC" in section
    assert main(["score-positions", "--candles", str(CANDLES), "--positions", str(SNAPS)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for line in printed[1:4]:  # the ±0.5 %, ±1 % and W1 lines
        assert line in section, line
    spec = importlib_spec()
    cfg = tmp_path / "ladder_cfg.toml"
    levs = list(spec.LADDER)
    cfg.write_text(f"[model]\nleverage = {levs}\nweights = {[0.2] * len(levs)}\n")
    assert main(["calibrate", "--positions", str(SNAPS), "--config", str(cfg), "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    shown = ", ".join(f"{w * 100:.1f} %" for w in fit["weights"])
    assert f"`{shown}`" in section and f"`{fit['long_share']:.3f}`" in section
    made = ", ".join(f"{lev}x {w * 100:.0f} %" for lev, w in spec.LADDER.items())
    assert made in section and f"{spec.LONG_SHARE * 100:.0f} % long" in section


def test_run_with_a_broken_snapshot_file_is_one_line_exit_1(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": 1, "user": "0x1", "state": {}}\n')
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text(f'[bot]\nstore = "{tmp_path / "s.db"}"\n[console]\nenabled = false\n'
                   f'[positions]\nenabled = true\npath = "{bad}"\n')
    assert main(["run", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"liqbot: {bad}:1: user must be a lower-case 0x address, got '0x1'"]
