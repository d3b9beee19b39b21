"""CSV loading/validation and the replay source on its virtual clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import BadSymbolError, DataFileError
from bot.market import MarketSource
from bot.market.replay import BUNDLED_CSV, ReplaySource, find_gaps, load_csv
from estimator import Candles, build_book, find_clusters

HEADER = "timestamp,open,high,low,close,volume"


def write(tmp_path: Path, *lines: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def small(n: int = 5, step: int = 60_000) -> Candles:
    ts = np.arange(n, dtype=np.int64) * step + 1_700_000_000_000
    close = 100.0 + np.arange(n)
    return Candles(ts, close - 0.5, close + 1, close - 1, close, np.ones(n))


def test_bundled_file_loads_whole() -> None:
    # Speed is a benchmark's business (README, Benchmarks), not a timed unit test's.
    c = load_csv(BUNDLED_CSV)
    assert len(c) == 20_111
    assert c.timestamp[0] == 1498906800000
    assert c.open_interest_usd is None and c.taker_buy_volume is None
    assert find_gaps(c.timestamp).count == 0


def test_optional_columns_any_order_and_extra_columns(tmp_path: Path) -> None:
    header = "close,timestamp,taker_buy_volume,open,low,high,volume,open_interest_usd,x"
    path = write(tmp_path, header, "10,1000,1,9,8,11,2,500,0", "11,2000,0.5,10,9,12,3,600,0")
    c = load_csv(path)
    assert c.timestamp.tolist() == [1000, 2000]
    assert c.open_interest_usd is not None and c.open_interest_usd.tolist() == [500, 600]
    assert c.taker_buy_volume is not None and c.taker_buy_volume.tolist() == [1, 0.5]
    assert c.high.tolist() == [11, 12]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["timestamp,open,high,low,volume", "1,1,1,1,1"], r"c\.csv:1: missing column\(s\) close"),
        ([HEADER, "1000,1,2,1,1,1", "2000,1,2,1,abc,1"], r"c\.csv:3: close is not a finite number"),
        ([HEADER, "1000,1,2,1,1,1", "2000,1,2,1,nan,1"], r"c\.csv:3: close is not a finite"),
        ([HEADER, "1000,1,2,1,1,1", "2000,1,2,1,1"], r"c\.csv:3: expected 6 fields, got 5"),
        ([HEADER, "1000,1,2,1,1,1", "3000,1,2,1,1,1", "2000,1,2,1,1,1"],
         r"c\.csv:4: unsorted timestamp 2000"),
        ([HEADER, "1000,1,2,1,1,1", "1000,1,2,1,1,1"], r"c\.csv:3: duplicate timestamp 1000"),
        ([HEADER, "1000,1,2,1,1,1", "2000,1,1,2,1,1"], r"c\.csv:3: high 1\.0 < low 2\.0"),
        ([HEADER, "1000,1,2,1,1,1", "2000,0,2,1,1,1"], r"c\.csv:3: non-positive open"),
        ([HEADER, "1000.5,1,2,1,1,1"], r"c\.csv:2: timestamp must be a whole number"),
        ([HEADER, "1000,1,2,1,1,-1"], r"c\.csv:2: negative volume"),
        ([HEADER], r"c\.csv: no data rows"),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path: Path, lines: list[str],
                                              expected: str) -> None:
    with pytest.raises(DataFileError, match=expected):
        load_csv(write(tmp_path, *lines))


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1000,1,2,1,1,1", "", "2000,1,2,1,x,1")
    with pytest.raises(DataFileError, match=r"c\.csv:4:"):
        load_csv(path)


def test_missing_file_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nope.csv: cannot read"):
        load_csv(tmp_path / "nope.csv")


def test_gaps_are_allowed_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "0,1,2,1,1,1", "60000,1,2,1,1,1", "240000,1,2,1,1,1",
                 "300000,1,2,1,1,1", "360000,1,2,1,1,1", "540000,1,2,1,1,1")
    c = load_csv(path)
    gaps = find_gaps(c.timestamp)
    assert (gaps.step_ms, gaps.count, gaps.missing, gaps.first_row) == (60_000, 2, 4, 2)
    assert ReplaySource(c).gaps.count == 2


async def test_replay_clock_reveals_candles_per_tick() -> None:
    src = ReplaySource(small(7), candles_per_tick=2, warmup=2)
    assert isinstance(src, MarketSource)
    snap = await src.fetch("BTC/USDT:USDT")
    assert len(snap.candles) == 2 and not snap.stale and snap.proxy
    assert snap.timeframe == "1m" and snap.taker_source == "candle colour"
    tick = await src.last_price("BTC/USDT:USDT")
    assert (tick.price, tick.high, tick.low) == (101.0, 102.0, 100.0)
    steps = []
    while src.advance():
        tick = await src.last_price("BTC/USDT:USDT")
        steps.append((src.position, tick.price, tick.high, tick.low))
    # Each tick's range covers only the candles revealed by that tick.
    assert steps == [(4, 103.0, 104.0, 101.0), (6, 105.0, 106.0, 103.0), (7, 106.0, 107.0, 105.0)]
    assert src.advance() is False and src.position == 7
    assert tick.timestamp == src.now_ms == int(small(7).timestamp[-1]) + 60_000


async def test_replay_window_and_symbols() -> None:
    src = ReplaySource(small(10), warmup=8, window=3)
    snap = await src.fetch("BTC/USDT:USDT")
    assert snap.candles.close.tolist() == [105.0, 106.0, 107.0]
    assert await src.normalise(" btcusdt ") == "BTC/USDT:USDT"
    with pytest.raises(BadSymbolError, match="ETH/USDT:USDT is not available in replay"):
        await src.normalise("ETH")
    with pytest.raises(BadSymbolError):
        await src.fetch("ETH/USDT:USDT")


async def test_replay_of_bundled_file_feeds_the_estimator() -> None:
    src = ReplaySource.from_csv(candles_per_tick=24, warmup=24 * 30, window=24 * 60)
    books = []
    for _ in range(3):
        snap = await src.fetch("BTC/USDT:USDT")
        book = build_book(snap.candles)
        assert book.proxy and snap.proxy
        assert book.last_price == snap.last_close
        assert book.timestamp == int(snap.candles.timestamp[-1])
        books.append(book)
        assert src.advance()
    assert books[0].timestamp < books[1].timestamp < books[2].timestamp
    total = books[-1].long_usd.sum() + books[-1].short_usd.sum()
    assert total > 0
    assert isinstance(find_clusters(books[-1]), list)


@st.composite
def candle_tables(draw: st.DrawFn) -> tuple[list[int], list[list[float]]]:
    n = draw(st.integers(2, 30))
    steps = draw(st.lists(st.integers(1, 10**7), min_size=n, max_size=n))
    ts = np.cumsum(steps).tolist()
    price = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
    rows = []
    for _ in range(n):
        a, b = draw(price), draw(price)
        rows.append([draw(price), max(a, b), min(a, b), draw(price),
                     draw(st.floats(0, 1e9, allow_nan=False, allow_infinity=False))])
    return ts, rows


@settings(max_examples=40, deadline=None)
@given(table=candle_tables(), swap=st.integers(0, 10**6))
def test_csv_round_trip_and_unsorted_line_numbers(
        tmp_path_factory: pytest.TempPathFactory, table: tuple[list[int], list[list[float]]],
        swap: int) -> None:
    ts, rows = table
    lines = [HEADER] + [f"{t},{','.join(repr(v) for v in r)}" for t, r in zip(ts, rows,
                                                                              strict=True)]
    path = tmp_path_factory.mktemp("csv") / "p.csv"
    path.write_text("\n".join(lines))
    c = load_csv(path, clip_wicks=False)  # random tables are full of "bad prints"
    assert c.timestamp.tolist() == ts
    np.testing.assert_array_equal(np.column_stack([c.open, c.high, c.low, c.close, c.volume]),
                                  np.array(rows))
    # Swap two neighbouring data rows: the error names the first out-of-order line.
    i = swap % (len(ts) - 1)
    lines[i + 1], lines[i + 2] = lines[i + 2], lines[i + 1]
    path.write_text("\n".join(lines))
    with pytest.raises(DataFileError, match=rf"p\.csv:{i + 3}: unsorted timestamp"):
        load_csv(path)
