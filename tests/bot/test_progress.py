"""Progress bars: shown on a terminal (a pseudo-terminal here), nothing extra when piped,
none with --quiet; the demo's alerts print on their own lines, never into the bar, and its
INFO lines ("recompute") only with -v."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from bot.cli import main
from bot.progress import LinesAbove, Progress
from tests.bot.test_calibrate_cli import files as calibration_files  # noqa: F401 (a fixture)

BUNDLED = Path(__file__).resolve().parents[2] / "bot" / "data" / "btcusd_coinbase_1h.csv"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(args: list[str], cwd: Path) -> str:
    """Run ``liqbot args`` with stdin/stdout/stderr on a pseudo-terminal; its raw output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], stdin=slave,
                            stdout=slave, stderr=slave, cwd=cwd, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows, line by line: a carriage return moves back to column 0."""
    lines = []
    for line in ANSI.sub("", raw).split("\n"):
        cells: list[str] = []
        col = 0
        for ch in line:
            if ch == "\r":
                col = 0
                continue
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
        lines.append("".join(cells).rstrip())
    return lines


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("bt") / "head.csv"
    lines = BUNDLED.read_text().splitlines()
    path.write_text("\n".join(lines[:3001]) + "\n")
    return path


def test_demo_on_a_terminal_shows_a_bar_with_alerts_on_their_own_lines(tmp_path):
    raw = in_terminal(["demo", "--days", "3", "--out", str(tmp_path / "o")], tmp_path)
    assert "replay" in raw and "candle" in raw  # the bar was drawn
    shown = screen_lines(raw)
    assert any(line.startswith("liqbot demo · replaying") for line in shown), shown[:3]
    alerts = [line for line in shown if "ALERT" in line]
    assert len(alerts) >= 3
    assert all(line.startswith("ALERT ") for line in alerts), alerts
    assert not any("recompute" in line for line in shown)  # INFO lines only with -v


def test_demo_info_lines_with_verbose_and_no_bar_with_quiet(tmp_path):
    raw = in_terminal(["-v", "demo", "--days", "1", "--quiet", "--out", str(tmp_path / "o")],
                      tmp_path)
    assert "recompute" in raw
    assert "replay:" not in raw and "candle/s" not in raw


def test_demo_piped_prints_no_bar(tmp_path, capsys):
    assert main(["demo", "--days", "3", "--out", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    assert "ALERT " in out
    assert "candles ·" not in err and "candle/s" not in err and "\r" not in err + out


def test_backtest_bar_on_a_terminal_not_when_piped_nor_quiet(tmp_path, small_csv, capsys):
    args = ["backtest", "--data", str(small_csv), "--json", "--warmup", "10d"]
    raw = in_terminal(args, tmp_path)
    assert "backtest:" in raw and "%|" in raw  # tqdm's label and bar
    quiet = in_terminal([*args, "--quiet"], tmp_path)
    assert "backtest:" not in quiet and "%|" not in quiet
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.lstrip().startswith("{")


def test_lines_above_a_hidden_bar_pass_through(capsys):
    bar = Progress("x", quiet=True)
    stream = LinesAbove(sys.stdout, bar)
    stream.write("one\ntw")
    stream.write("o\n")
    bar.close()
    assert capsys.readouterr().out == "one\ntwo\n"


def test_calibrate_bar_on_a_terminal_only(calibration_files, tmp_path, capsys):  # noqa: F811
    candles, liq, _ = calibration_files
    args = ["calibrate", "--candles", str(candles), "--liquidations", str(liq), "--json"]
    raw = in_terminal(args, tmp_path)
    assert "calibrate:" in raw and "%|" in raw
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.lstrip().startswith("{")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_timed_bar_counts_seconds_and_returns_the_result():
    async def work() -> str:
        await asyncio.sleep(1.2)
        return "done"

    screen = Terminal()
    with Progress("recording", total=60, unit="s", file=screen) as bar:
        assert await bar.timed(work()) == "done"
        assert 1 <= bar.bar.n < 60  # whole seconds elapsed, of 60
    assert "recording:" in screen.getvalue()
