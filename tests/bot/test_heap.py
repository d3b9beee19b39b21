"""bot/heap.py: a ``liqbot`` process keeps the memory it frees, so a heatmap drawn again takes
no fresh pages from the kernel; a setting of the user's own wins."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the top pad is a glibc malloc setting")

# In a fresh process: optionally start liqbot's entry point (a command that fails fast), then
# draw the bundled file's heatmap twice and print the page faults of the second one.
_CHILD = """
import json, resource, sys
from bot.cli import main
from bot.market.replay import BUNDLED_CSV, load_csv
from estimator import ModelParams, build_heatmap
if sys.argv[1] == "liqbot":
    assert main(["levels", "NOPE"]) == 2
candles = load_csv(BUNDLED_CSV)
build_heatmap(candles, ModelParams(), columns=300)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
build_heatmap(candles, ModelParams(), columns=300)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def faults_in_child(code: str, *argv: str, **env: str) -> int:
    """Run ``code`` in a fresh interpreter (no malloc setting inherited from this one's
    environment, plus ``env``); the page-fault count it prints last."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=ROOT, env={**clean, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return int(json.loads(proc.stdout.strip().splitlines()[-1]))


def second_heatmap_faults(how: str, **env: str) -> int:
    return faults_in_child(_CHILD, how, **env)


def test_liqbot_draws_a_heatmap_again_without_fresh_pages() -> None:
    # (glibc's defaults give the same heatmap thousands: the last test)
    assert second_heatmap_faults("liqbot") < 100


def test_the_users_own_malloc_setting_wins() -> None:
    with_pad = second_heatmap_faults("liqbot")
    users = second_heatmap_faults("liqbot", MALLOC_ARENA_MAX="8")
    assert users > 1000 > with_pad


def test_without_liqbot_s_entry_point_the_heatmap_takes_fresh_pages() -> None:
    # What the pad saves: the same two heatmaps in a plain Python process.
    assert second_heatmap_faults("plain") > 1000


_ARRAYS = """
import json, resource
import numpy as np
from bot.heap import keep_freed_heap
assert keep_freed_heap()
def work():  # 8 MB arrays, as a recompute's
    a = np.ones(1_000_000); b = a * 2; c = np.zeros(1_000_000); c += b
work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    work()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def test_arrays_of_a_few_mb_come_back_from_the_heap() -> None:
    # Not only after the import of liqbot raised glibc's threshold: straight after the setting
    # (a top pad alone fixes the threshold at 128 KiB: every such array mapped fresh).
    assert faults_in_child(_ARRAYS) < 50
