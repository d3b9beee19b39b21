"""The block reader of ``load_csv`` (vectorised parse of plain-decimal blocks, line-by-line
reader for any other block) against the loader it replaced (bench/csv_baseline.py, the whole
file as text): the same candles bit for bit, the same error for the same file; with tiny
blocks, rows and errors that cross block boundaries keep their line numbers."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import DataFileError
from bot.market import replay
from bot.market.csv_numbers import parse_block
from bot.market.replay import load_csv
from tests.bot.test_fuzz_loaders import csv_files
from tests.conftest import scaled

FIELDS = ("timestamp", "open", "high", "low", "close", "volume", "open_interest_usd",
          "taker_buy_volume")
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _baseline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_csv_baseline", BENCH / "csv_baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


OLD = _baseline()


def outcome(loader: object, path: Path) -> tuple[str, object]:
    try:
        c = loader(path)  # type: ignore[operator]
    except DataFileError as exc:
        return "error", str(exc)
    return "ok", {f: None if getattr(c, f) is None else (getattr(c, f).dtype.str,
                                                         getattr(c, f).tobytes())
                  for f in FIELDS}


@pytest.fixture(scope="module")
def tmp() -> Path:
    path = Path(tempfile.mkdtemp(prefix="liqbot-blocks-"))
    yield path
    shutil.rmtree(path, True)


@pytest.mark.slow
@settings(max_examples=scaled(3_000, minimum=300), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=csv_files(), block=st.sampled_from([0, 1, 7, 40, 200]))
def test_same_result_as_the_whole_file_reader(tmp: Path, data: bytes, block: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp / "same.csv"
    path.write_bytes(data)
    with monkeypatch.context() as m:
        if block:
            m.setattr(replay, "CHUNK_BYTES", block)
            m.setattr(replay, "TEXT_ERRORS_BYTES", 0)
        new = outcome(load_csv, path)
    old = outcome(OLD.load_csv, path)
    if block == 0:  # one block: the same message, word for word
        assert new == old
    else:  # across blocks an error found in an earlier block may come first
        assert new[0] == old[0], (new, old)
        if new[0] == "ok":
            assert new == old


def test_plain_decimals_parse_bit_for_bit_like_float() -> None:
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(0, 12, 20_000)) * rng.choice([-1, 1], 20_000)
    cells = [f"{v:.{int(rng.integers(0, 20))}f}" for v in values]
    cells += ["0", "-0", "-0.0", "5.", ".5", "-.5", "000123.4500", "9007199254740993",
              "123456789012345678901234567890", "0." + "0" * 30 + "17", "1" * 18]
    cells += ["1"] * (-len(cells) % 4)
    text = "\n".join(",".join(cells[i:i + 4]) for i in range(0, len(cells), 4)) + "\n"
    got = parse_block(text.encode(), 4)
    assert got is not None
    want = np.array([float(c) for c in cells]).reshape(-1, 4)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("block", [b"1e5,1\n", b"1,2\n\n", b" 1,2\n", b"1,2", b"1,,\n",
                                   b"--1,2\n", b"1-,2\n", b"1..2,3\n", b".,1\n", b"nan,1\n",
                                   b"1,2,3\n", b"1\n2\n", b"\xd9\xa1,1\n", b"1_0,1\n"])
def test_anything_but_plain_decimals_goes_to_the_exact_reader(block: bytes) -> None:
    assert parse_block(block, 2) is None


def test_lines_across_blocks(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "CHUNK_BYTES", 64)
    monkeypatch.setattr(replay, "TEXT_ERRORS_BYTES", 0)
    rows = [f"{1_600_000_000_000 + i * 60_000},{100 + i}.5,{102 + i},{99 + i},{101 + i},3"
            for i in range(400)]
    rows[150] = ""  # blank lines are skipped but counted
    rows[151] = "  "
    head = "timestamp,open,high,low,close,volume"
    path = tmp / "lines.csv"
    path.write_text("\r\n".join([head, *rows]) + "\r\n", newline="")
    c = load_csv(path)
    assert len(c) == 398 and c.open[-1] == 499.5
    bad = list(rows)
    bad[300] = bad[300].replace(".5,", ".5e0,", 1)[:-2] + ",-3"  # the exact reader's block
    path.write_text("\n".join([head, *bad]))
    with pytest.raises(DataFileError, match=re.escape("lines.csv:302: negative volume")):
        load_csv(path)
    bad = list(rows)
    bad[350] = bad[350][:-2]  # a field short
    path.write_text("\n".join([head, *bad]))
    with pytest.raises(DataFileError, match=re.escape("lines.csv:352: expected 6 fields")):
        load_csv(path)
    bad = list(rows)
    bad[399], bad[398] = bad[398], bad[399]  # the last row, without its newline
    path.write_text("\n".join([head, *bad]))
    with pytest.raises(DataFileError, match=re.escape("lines.csv:401: unsorted timestamp")):
        load_csv(path)
