"""Bad input through the real CLI entry point (issue 16): every case ends with one line naming
the file/line/key/argument, exit 1 (bad data) or 2 (bad config/usage), no traceback, nothing
written. Read-only places are ones that refuse root too (CI runs as root): a folder that is a
regular file, a directory given as a file, /proc."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.market.replay import BUNDLED_CSV

HEADER = "timestamp,open,high,low,close,volume"
T0 = 1_500_000_000_000  # 2017-07-14 in ms
HOUR = 3_600_000


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def wave(i: int) -> float:
    return 100 + 10 * math.sin(i / 30)


def make_inputs(d: Path) -> None:
    """The files the cases read, in ``d`` (the working directory of every case)."""
    n = 24 * 60
    write_csv(d / "const.csv", [f"{T0 + i * HOUR},100,100,100,100,10" for i in range(n)])
    write_csv(d / "zerovol.csv", [f"{T0 + i * HOUR},{wave(i)},{wave(i) + 1},{wave(i) - 1},"
                                  f"{wave(i)},0" for i in range(n)])
    write_csv(d / "seconds.csv", [f"{(T0 + i * HOUR) // 1000},{wave(i)},{wave(i) + 1},"
                                  f"{wave(i) - 1},{wave(i)},5" for i in range(300)])
    write_csv(d / "overflow.csv", [f"{T0 + i * HOUR},{wave(i)},{wave(i) + 1},{wave(i) - 1},"
                                   f"{wave(i)},{'1e308' if i == 50 else 5}" for i in range(300)])
    (d / "binary.toml").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (d / "latin1.toml").write_bytes("[bot]\nstore = 'café.db'\n".encode("latin-1"))
    for name, text in CONFIGS.items():
        (d / name).write_text(text)
    (d / "afile").write_text("a regular file, used as a folder below\n")


CONFIGS = {
    "timeframe.toml": "[source]\ntimeframe = \"7x\"\n",
    "price_seconds.toml": "[schedule]\nprice_seconds = 1e308\n",
    "store.toml": "[bot]\nstore = \"\"\n",
    "admins.toml": "[bot]\nadmins = [\"alice\"]\n",
    "symbols.toml": "[bot]\nsymbols = [\"BTC\", \"ETH\"]\n",
}

CASES = [
    # (argv, exit code, text the one error line must hold)
    (["backtest", "--data", "const.csv"], 1, "lift is undefined"),
    (["backtest", "--data", "const.csv", "--json"], 1, "lift is undefined"),
    (["backtest", "--data", "zerovol.csv"], 1, "found no clusters"),
    (["levels", "BTC", "--data", "seconds.csv"], 1,
     "seconds.csv:2: timestamp 1500000000 looks like seconds"),
    (["levels", "BTC", "--data", "overflow.csv", "--json"], 1,
     "overflow.csv:52: volume 1e308 is too large"),
    (["chart", "BTC", "--data", "overflow.csv", "--kind", "map", "--out", "x.png"], 1,
     "overflow.csv:52: volume 1e308 is too large"),
    (["levels", "BTC", "--top", "-3"], 2, "argument --top: must be a whole number > 0"),
    (["levels", "DOGE"], 2, "btcusd_coinbase_1h.csv holds BTC only"),
    (["chart", "DOGE", "--kind", "map", "--out", "x.png"], 2, "holds BTC only"),
    (["backtest", "--top", "0"], 1, "backtest: top and draws must be ≥ 1"),
    (["demo", "--days", "nan"], 2, "argument --days"),
    (["demo", "--days", "0"], 2, "argument --days"),
    (["demo", "--days", "1", "--out", "afile/out"], 2, "--out afile/out: afile is not a dir"),
    (["demo", "--days", "1", "--out", "afile"], 2, "--out afile: is not a directory"),
    (["demo", "--days", "1", "--out", "/proc/liqbot-demo"], 2, "--out /proc/liqbot-demo"),
    (["chart", "BTC", "--kind", "map", "--out", "missing/x.png"], 2,
     "folder missing does not exist"),
    (["chart", "BTC", "--kind", "map", "--out", "."], 2, "--out .: is a directory"),
    (["chart", "BTC", "--kind", "map", "--out", ""], 2, "--out is empty"),
    (["chart", "BTC", "--kind", "map", "--out", "afile/x.png"], 2,
     "folder afile is not a directory"),
    (["chart", "BTC", "--kind", "map", "--out", "/proc/x.png"], 2, "--out /proc/x.png"),
    (["check-config", "binary.toml"], 2, "binary.toml:line 2: not UTF-8 text (byte 0x80)"),
    (["check-config", "latin1.toml"], 2, "latin1.toml:line 2: not UTF-8 text (byte 0xe9)"),
    (["check-config", "timeframe.toml"], 2, "line 2: source.timeframe = '7x' is not a time"),
    (["check-config", "price_seconds.toml"], 2, "line 2: schedule.price_seconds = 1e+308"),
    (["check-config", "store.toml"], 2, "line 2: bot.store = '' must name a file"),
    (["check-config", "admins.toml"], 2, "line 2: bot.admins items must be numeric user ids"),
    (["check-config", "symbols.toml"], 2, "line 2: bot.symbols: a replay source plays one"),
]


def listing(d: Path) -> dict[str, int]:
    return {str(p.relative_to(d)): p.stat().st_size for p in d.rglob("*")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-input")
    make_inputs(d)
    return d


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """bot.cli.main as the ``liqbot`` script runs it (argparse errors exit via SystemExit)."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("argv", "code", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_error_and_writes_nothing(inputs, monkeypatch, capsys, argv,
                                                        code, needle):
    monkeypatch.chdir(inputs)
    before = listing(inputs)
    rc, out, err = run_main(argv, capsys)
    assert rc == code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("liqbot"), err
    assert "Traceback" not in out + err
    assert "NaN" not in out and "Infinity" not in out and "lift above 1" not in out
    assert listing(inputs) == before, "something was written"


@pytest.mark.parametrize(("argv", "code"), [
    (["levels", "BTC", "--top", "-3"], 2),
    (["backtest", "--data", "const.csv", "--json"], 1),
    (["chart", "BTC", "--kind", "map", "--out", "afile/x.png"], 2),
])
def test_the_installed_script_exits_with_one_line(inputs, argv, code):
    """The same through a real process: exit code, one stderr line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=inputs,
                          capture_output=True, text=True, timeout=300,
                          env=os.environ | {"PYTHONWARNINGS": "ignore"})
    assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_levels_top_prints_that_many_per_side(capsys):
    rc, out, _ = run_main(["levels", "BTC", "--top", "2", "--json"], capsys)
    clusters = json.loads(out)
    assert rc == 0 and 1 <= sum(c["side"] == "long" for c in clusters) <= 2
    assert sum(c["side"] == "short" for c in clusters) <= 2


def test_a_recorded_file_holds_the_symbol_in_its_name(tmp_path, monkeypatch, capsys):
    rows = BUNDLED_CSV.read_text().splitlines()
    rec = tmp_path / "ETHUSDT_binanceusdm_1h_2019-10-01.csv"  # as liqbot record names it
    rec.write_text("\n".join([rows[0], *rows[-600:]]) + "\n")
    rc, _, err = run_main(["levels", "BTC", "--data", str(rec)], capsys)
    assert rc == 2 and f"{rec.name} holds ETHUSDT only" in err
    rc, out, _ = run_main(["levels", "eth", "--data", str(rec)], capsys)
    assert rc == 0 and out.startswith("ETH/USDT:USDT · price")
