"""The benches' baselines do what the product does (agreement, not timing: the timing is the
bench's job). engine_bench stops when its naive engine and bot.alerts.evaluate disagree on one
dedupe key; here it runs far enough for a growth of a cluster beyond the 10 % news range."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_engine_bench_naive_baseline_agrees_with_the_engine() -> None:
    bench = load("engine_bench")
    res = bench.run(12, seed=7)  # tick 5 grows a near and a far (11-12 %) cluster per symbol
    assert res["ticks"] == 11 and res["events_per_tick"] > 0
