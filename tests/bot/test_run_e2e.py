"""``liqbot run`` as a real subprocess: replay + console adapter, SIGTERM, consistent store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.store import Store

CONFIG = """
[bot]
store = "{store}"
[source]
kind = "replay"
warmup_candles = 18000
candles_per_tick = 3
lookback_days = 60
[schedule]
recompute_seconds = 0.2
price_seconds = 0.02
dispatch_seconds = 0.05
[alerts]
min_usd = 1_000_000
cooldown_minutes = 0
"""


def test_run_replays_alerts_and_stops_cleanly_on_sigterm(tmp_path: Path):
    store_path = tmp_path / "bot.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(store=store_path))
    store = Store(store_path)
    chat = store.upsert_chat("console", "console")
    store.subscribe(chat.id, "BTC/USDT:USDT", min_usd=1_000_000, approach_pct=0.5)
    store.close()

    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(cfg)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    alerts: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(alerts) < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("ALERT "):
            alerts.append(line)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    alerts += [line for line in out.splitlines() if line.startswith("ALERT ")]

    assert proc.returncode == 0, err[-2000:]
    assert len(alerts) >= 5, err[-2000:]
    assert all("estimate, not exchange data" in a for a in alerts)
    assert "stopped (store integrity ok)" in err
    store = Store(store_path)
    try:
        assert store.integrity_ok()
        counts = store.outbox_counts()
        assert counts.get("sending", 0) == 0
        # Every alert printed is marked sent; nothing sent twice.
        assert counts.get("sent", 0) == len(alerts)
        assert len(set(alerts)) == len(alerts)
    finally:
        store.close()


# A Ctrl-C while `liqbot run` is still starting (store, service, first recompute): the
# signal arrives here before the loop's handlers exist, as it can from a terminal or a test
# that signals on the first line printed.
_EARLY_SIGINT = """
import asyncio, logging, os, signal, sys
from bot.config import Config
logging.basicConfig(level=logging.INFO)
from bot.run import remember_stop_signals, run
noted = remember_stop_signals()
os.kill(os.getpid(), signal.SIGINT)
sys.exit(asyncio.run(run(Config(), noted=noted)))
"""


def test_a_ctrl_c_during_start_up_stops_the_bot_once_it_is_up(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-c", _EARLY_SIGINT], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "liqbot running" in proc.stderr  # started in full, then stopped
    assert "stopped (store integrity ok)" in proc.stderr
    assert "Traceback" not in proc.stderr
