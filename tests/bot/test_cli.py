"""The liqbot CLI: levels/chart on any replay CSV, demo end to end, help for every command."""

import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli import build_parser, main
from bot.market.replay import BUNDLED_CSV

PNG = b"\x89PNG\r\n\x1a\n"


def small_csv(tmp_path: Path, with_oi: bool) -> Path:
    rows = BUNDLED_CSV.read_text().splitlines()
    header, body = rows[0], rows[-800:]
    path = tmp_path / ("oi.csv" if with_oi else "plain.csv")
    if with_oi:
        rng = np.random.default_rng(3)
        oi = 5e8 * np.exp(np.cumsum(rng.normal(0, 0.01, len(body))))
        body = [f"{r},{v:.2f}" for r, v in zip(body, oi, strict=True)]
        header += ",open_interest_usd"
    path.write_text("\n".join([header, *body]) + "\n")
    return path


@pytest.mark.parametrize("with_oi", [False, True])
def test_levels_json_lists_clusters_for_any_replay_csv(tmp_path, capsys, with_oi):
    data = small_csv(tmp_path, with_oi)
    assert main(["levels", "BTC", "--data", str(data), "--json", "--top", "3"]) == 0
    clusters = json.loads(capsys.readouterr().out)
    assert clusters, "expected clusters"
    for c in clusters:
        assert {"side", "low", "high", "price", "notional_usd", "distance_pct"} <= set(c)
        assert c["low"] <= c["price"] <= c["high"] and c["notional_usd"] > 0
        assert (c["distance_pct"] < 0) == (c["side"] == "long")
    assert len([c for c in clusters if c["side"] == "long"]) <= 3


def test_levels_merge_touching_clusters_into_one_zone(capsys):
    # Bundled data: shorts 8,826–8,941, 8,941–9,058 and 9,058–9,168 touch: one zone.
    assert main(["levels", "BTC", "--json", "--top", "50"]) == 0
    zones = json.loads(capsys.readouterr().out)
    assert set(zones[0]) == {"side", "low", "high", "price", "notional_usd", "distance_pct",
                             "id"}
    for side in ("long", "short"):
        mine = sorted((z for z in zones if z["side"] == side), key=lambda z: z["low"])
        assert all(a["high"] < b["low"] for a, b in zip(mine, mine[1:], strict=False))
    (zone,) = [z for z in zones if z["low"] <= 9_000 <= z["high"]]
    assert (round(zone["low"]), round(zone["high"])) == (8_826, 9_168)
    assert main(["levels", "BTC"]) == 0
    assert "8,826–9,168" in capsys.readouterr().out


def test_levels_text_says_it_is_an_estimate(capsys):
    assert main(["levels", "btcusdt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BTC/USDT:USDT · price") and "not exchange data" in out
    assert "volume proxy" in out


@pytest.mark.parametrize("kind", ["heatmap", "map"])
def test_chart_writes_only_the_requested_png(tmp_path, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"{kind}.png"
    window = ["--window", "3d"] if kind == "heatmap" else []  # a map has no window
    assert main(["chart", "BTC", "--kind", kind, *window, "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_bad_data_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n1,2,3,1,2,5\n0,2,3,1,2,5\n")
    assert main(["levels", "BTC", "--data", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.csv:3: unsorted timestamp" in err


def test_demo_prints_alerts_and_writes_two_pngs(tmp_path, capsys):
    assert main(["demo", "--days", "20", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "ALERT " in out and "Summary: 480 candles replayed" in out
    for name in ("heatmap.png", "map.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG)


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "demo", "levels", "chart", "check-config", "backtest",
                                "record", "calibrate", "ifbreak", "serve", "score-positions",
                                "accuracy"}
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: liqbot" in capsys.readouterr().out
