"""Issue 16: what the bot says instead of staying silent or answering wrong — bad-print candles
clipped with a warning, piped stdin, a default `liqbot run`, a readable token file, NaN never
a result."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.config import ConsoleSection, parse_config
from bot.console import ConsoleAdapter
from bot.errors import NonFiniteResultError
from bot.finite import finite_json, first_non_finite
from bot.market.replay import BUNDLED_CSV, load_csv
from estimator.candles import median_range

HOUR = 3_600_000
T0 = 1_502_942_400_000  # 2017-08-17 04:00 UTC, where a public Binance BTCUSDT 1h export starts


def binance_like(path: Path) -> Path:
    """A first row like the public Binance hourly export's (high 16,199 / low 4,261 at a
    4,300 price; a first hour trading ~10× an ordinary one), then 200 ordinary hours."""
    rng = np.random.default_rng(7)
    close = 4300 * np.exp(np.cumsum(rng.normal(0, 0.004, 200)))
    rows = [f"{T0},4261.48,16199.0,4261.32,4300.0,600"]
    for i, c in enumerate(close[1:], start=1):
        o = close[i - 1]
        hi, lo = max(o, c) * 1.002, min(o, c) * 0.998
        rows.append(f"{T0 + i * HOUR},{o:.2f},{hi:.2f},{lo:.2f},{c:.2f},{rng.uniform(20, 80):.2f}")
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_a_bad_print_wick_is_clipped_with_one_warning(tmp_path, caplog):
    data = binance_like(tmp_path / "binance.csv")
    with caplog.at_level(logging.WARNING, logger="bot.market.replay"):
        candles = load_csv(data)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("binance.csv:2: 1 bad-print candle(s)")
    assert "16199" in warnings[0]
    assert 4300 < candles.high[0] < 4400 and candles.low[0] == pytest.approx(4261.32)
    assert candles.high[1:].max() < 6000  # the other rows are untouched


def test_no_cluster_is_planted_far_above_price_by_a_bad_print(tmp_path, capsys):
    data = binance_like(tmp_path / "binance.csv")
    assert main(["levels", "BTC", "--data", str(data), "--json", "--top", "10"]) == 0
    clusters = json.loads(capsys.readouterr().out)
    assert clusters and max(c["distance_pct"] for c in clusters) < 30


def test_the_bundled_real_file_has_no_bad_print(caplog):
    """The rule clips wicks, not big candles: real crashes in the bundled file stay whole."""
    with caplog.at_level(logging.WARNING, logger="bot.market.replay"):
        c = load_csv(BUNDLED_CSV)
    assert not caplog.records
    # The README's figures: candles with 20× the median range, no wick beyond 12×.
    med = median_range(c)
    ok = med > 0
    wick = np.maximum(c.high - np.maximum(c.open, c.close), np.minimum(c.open, c.close) - c.low)
    assert ((c.high - c.low)[ok] / med[ok]).max() >= 20
    assert 11 < (wick[ok] / med[ok]).max() < 12


@pytest.mark.parametrize("interactive", [False, True])
def test_piped_stdin_is_not_ignored_without_a_word(monkeypatch, caplog, interactive):
    r, w = os.pipe()
    os.write(w, b"/levels BTC\n")
    os.close(w)
    with os.fdopen(r) as pipe:
        monkeypatch.setattr(sys, "stdin", pipe)
        adapter = ConsoleAdapter(ConsoleSection(interactive=interactive))
        with caplog.at_level(logging.WARNING, logger="bot.console"):
            # No reader starts when stdin is not a terminal, so no command core is needed.
            asyncio.run(adapter.start(None))  # type: ignore[arg-type]
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "stdin" in msg and "pipe" in msg and "interactive" in msg


def test_default_run_says_what_it_is_doing_at_once(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert first.startswith("liqbot run: no --config, so built-in defaults")
    assert "nothing is subscribed" in first and "liqbot demo" in first


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_token_file_others_can_read_is_warned_about(tmp_path, caplog, mode, warned):
    token = tmp_path / "token"
    token.write_text("123:SECRETSECRET\n")
    token.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        cfg = parse_config(f"[telegram]\nenabled = true\ntoken_file = '{token}'\n", "c.toml",
                           env={})
    assert cfg.telegram.token is not None
    msgs = [r.getMessage() for r in caplog.records]
    assert bool(msgs) == warned
    if warned:
        assert msgs[0].startswith("c.toml:line 3: telegram.token_file") and "chmod 600" in msgs[0]
        assert "SECRET" not in msgs[0]


def test_nan_is_never_a_result():
    result = {"lift": 1.2, "rules": {"a": {"ci": [0.9, math.nan]}}, "n": 3, "note": None}
    assert first_non_finite(result) == ("rules.a.ci[1]", result["rules"]["a"]["ci"][1])
    with pytest.raises(NonFiniteResultError, match=r"^backtest: rules\.a\.ci\[1\] is nan"):
        finite_json(result, "backtest")
    assert finite_json({"x": [1.0, 2]}, "t") == '{"x": [1.0, 2]}'
    with pytest.raises(NonFiniteResultError, match="inf"):
        finite_json([{"notional_usd": math.inf}], "levels")
