"""/ifbreak and ``liqbot ifbreak --positions`` with the confirmed (Hyperliquid) layer: the real
positions' notional between price and target, recomputed here from the raw snapshot lines of
the SYNTHETIC fixture, shown apart from the estimate (never added to it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bot.cli import main
from bot.commands.position_cmds import path_of
from bot.fmt import money
from tests.bot.helpers import SYMBOL, private, started_service
from tests.bot.test_hyperliquid_service import positions_config

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid"
CANDLES = FIX / "synthetic_btc_1h.csv"
SNAPS = FIX / "synthetic_positions.jsonl"


def between_by_hand(t_ms: int, price: float, target: float) -> tuple[float, int]:
    """(USD, positions): each wallet's latest snapshot at or before ``t_ms``; BTC positions on
    the side the move liquidates (long if the target is below) with a liquidationPx between
    price and target, both ends included."""
    latest: dict[str, dict] = {}
    for line in SNAPS.read_text().splitlines():
        row = json.loads(line)
        if row["time"] <= t_ms and (row["user"] not in latest
                                    or row["time"] >= latest[row["user"]]["time"]):
            latest[row["user"]] = row
    lo, hi = min(price, target), max(price, target)
    values = []
    for row in latest.values():
        for entry in row["state"]["assetPositions"]:
            p = entry["position"]
            size = float(p["szi"])
            if p["coin"] != "BTC" or p["liquidationPx"] is None or size == 0:
                continue
            if (size > 0) == (target < price) and lo <= float(p["liquidationPx"]) <= hi:
                values.append(abs(float(p["positionValue"])))
    return math.fsum(values), len(values)


def last_candle_ms() -> int:
    return int(CANDLES.read_text().splitlines()[-1].split(",")[0])


def test_cli_json_confirmed_usd_is_the_raw_sum_and_apart(capsys) -> None:
    for target in ("90000", "112000"):
        assert main(["ifbreak", "BTC", target, "--data", str(CANDLES), "--json"]) == 0
        plain = json.loads(capsys.readouterr().out)
        assert "confirmed_usd" not in plain  # only with --positions
        assert main(["ifbreak", "BTC", target, "--data", str(CANDLES), "--positions",
                     str(SNAPS), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert list(out) == [*plain, "confirmed_usd"]  # additive
        assert {k: v for k, v in out.items() if k != "confirmed_usd"} == plain  # estimate as is
        want, n = between_by_hand(last_candle_ms(), out["price"], float(target))
        assert n > 3 and want > 0
        assert math.isclose(out["confirmed_usd"], want, rel_tol=1e-12)


def test_cli_text_shows_the_confirmed_part_on_its_own_line(capsys) -> None:
    assert main(["ifbreak", "BTC", "90000", "--data", str(CANDLES), "--positions",
                 str(SNAPS), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(["ifbreak", "BTC", "90000", "--data", str(CANDLES), "--positions",
                 str(SNAPS)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("Confirmed on Hyperliquid"))
    assert f"{money(out['confirmed_usd'])} of longs in this range" in line
    assert "not in the estimate" in line
    assert f"≈ {money(out['cumulative_usd'])} of longs" in text  # the estimate unchanged


async def test_ifbreak_command_shows_confirmed_apart_from_the_estimate() -> None:
    service, core, store = await started_service(positions_config())
    try:
        est = core.board.get(SYMBOL)
        assert est is not None
        for target in (round(est.price * 0.88), round(est.price * 1.06)):
            text = (await core.handle(f"/ifbreak BTC {target}", private())).text
            cas = path_of(est, float(target))
            want, n = between_by_hand(est.snapshot.now_ms, cas.price, float(target))
            assert n > 0
            estimate_part, confirmed = text.split("Confirmed on Hyperliquid")
            assert f"≈ {money(cas.cumulative_usd)} of " in estimate_part
            side = "longs" if target < est.price else "shorts"
            assert f"{money(want)} of {side} in this range" in confirmed.splitlines()[0]
    finally:
        store.close()


async def test_ifbreak_without_the_layer_has_no_confirmed_line() -> None:
    service, core, store = await started_service()
    try:
        est = core.board.get(SYMBOL)
        assert est is not None
        text = (await core.handle(f"/ifbreak BTC {round(est.price * 0.95)}", private())).text
        assert "Confirmed" not in text and "≈ $" in text
    finally:
        store.close()


def test_readme_ifbreak_confirmed_example_is_what_the_cli_prints(capsys, monkeypatch) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the README's command, relative paths and all
    readme = " ".join((root / "README.md").read_text().split())
    assert main(["ifbreak", "BTC", "90000", "--data", "tests/fixtures/hyperliquid/"
                 "synthetic_btc_1h.csv", "--positions",
                 "tests/fixtures/hyperliquid/synthetic_positions.jsonl"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Confirmed"))
    figure = line.split("): ")[1]  # "$7.2M of longs in this range"
    assert f"not in the estimate): {figure}\" for `liqbot ifbreak BTC 90000 --data " \
           "tests/fixtures/hyperliquid/synthetic_btc_1h.csv --positions " \
           "tests/fixtures/hyperliquid/synthetic_positions.jsonl`" in readme


def test_cli_bad_snapshot_file_is_one_line_exit_1(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": 1, "user": "0xabc", "state": {}}\n{"bad\n')
    assert main(["ifbreak", "BTC", "90000", "--data", str(CANDLES), "--positions", str(bad),
                 "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{bad}:" in err
