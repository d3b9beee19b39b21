"""Hypothesis fuzzing of the two file loaders: the replay CSV loader (``load_csv``) and the
config loader (``parse_config`` / ``liqbot check-config``).

Property: a file either loads into valid data or fails with the loader's own error naming the
file (and the line, where there is one) — never another exception.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.config import _SECTIONS, Config, parse_config
from bot.errors import ConfigError, DataFileError
from bot.market.replay import OPTIONAL, REQUIRED, load_csv
from tests.conftest import scaled

pytestmark = pytest.mark.slow
TMP = Path(tempfile.mkdtemp(prefix="liqbot-fuzz-"))
atexit.register(shutil.rmtree, TMP, True)

# --- replay CSV -------------------------------------------------------------------------------
JUNK_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e308", "-1", "0",
              "-0.0", "abc", "1,5", "١٢٣", "🚀", "1_000", "0x1F", "9" * 40, "1e-320", '"1"',
              "1.0.0", "\u00a0", "None", "True", "2**53"]
columns = st.lists(st.sampled_from([*REQUIRED, *OPTIONAL, "Timestamp", " open ", "note", "",
                                    "ОТКРЫТ", "open"]), min_size=0, max_size=9)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(st.one_of(st.permutations([*REQUIRED, *OPTIONAL][:draw(
        st.integers(6, 8))]), columns))
    n = draw(st.integers(0, 25))
    step = draw(st.sampled_from([60_000, 3_600_000, 1]))
    t0 = draw(st.integers(0, 2**53))
    rows = []
    for i in range(n):
        base = draw(st.floats(min_value=1e-6, max_value=1e9))
        row = {"timestamp": str(t0 + i * step), "open": repr(base), "high": repr(base * 1.01),
               "low": repr(base * 0.99), "close": repr(base), "volume": "10",
               "open_interest_usd": "1e9", "taker_buy_volume": "5"}
        cells = [row.get(h.strip().lower(), "1") for h in header]
        if cells and draw(st.integers(0, 3)) == 0:  # mutate one cell
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = draw(st.one_of(st.sampled_from(JUNK_CELLS), st.text(max_size=8),
                                      st.floats().map(repr), st.integers().map(str)))
        if draw(st.integers(0, 15)) == 0:  # a field too many or too few
            cells = cells + ["1"] if draw(st.booleans()) else cells[:-1]
        rows.append(",".join(cells))
    if rows and draw(st.integers(0, 5)) == 0:  # unsorted / duplicate timestamps
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(rows) - 1))
        rows[i], rows[j] = rows[j], rows[i] if draw(st.booleans()) else rows[i]
    lines = [",".join(header), *rows]
    if draw(st.integers(0, 6)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\t"])))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    data = (b"\xef\xbb\xbf" if draw(st.integers(0, 6)) == 0 else b"") + text.encode()
    if draw(st.integers(0, 20)) == 0:
        data += b"\xff\xfe\x00garbage"
    return data


def check_csv(data: bytes, name: str) -> None:
    path = TMP / name
    path.write_bytes(data)
    try:
        candles = load_csv(path)
    except DataFileError as exc:
        msg = str(exc)
        m = re.match(rf"^{re.escape(name)}(?::(\d+))?: \S", msg)
        assert m is not None, msg
        if m.group(1) is not None:
            # Lines as an editor counts them: \r\n, \r or \n end a line.
            assert 1 <= int(m.group(1)) <= len(re.findall(rb"\r\n|\r|\n", data)) + 1, msg
        return
    ts = candles.timestamp
    assert len(ts) >= 1 and bool(np.all(np.diff(ts) > 0))
    for a in (candles.open, candles.high, candles.low, candles.close):
        assert bool(np.all(np.isfinite(a))) and bool(np.all(a > 0))
    assert bool(np.all(candles.high >= candles.low)) and bool(np.all(candles.volume >= 0))


@settings(max_examples=scaled(10_000, minimum=500), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=csv_files())
def test_replay_csv_loads_or_names_file_and_line(data: bytes) -> None:
    check_csv(data, "fuzz.csv")


@settings(max_examples=scaled(2_000, minimum=200), deadline=None)
@given(data=st.binary(max_size=400))
def test_replay_csv_of_random_bytes(data: bytes) -> None:
    check_csv(b"timestamp,open,high,low,close,volume\n" + data, "bytes.csv")


@pytest.mark.parametrize(("rows", "needle"), [
    (["1,1,1,1,1,1", "1,1,1,1,1,1"], "fuzz.csv:3: duplicate timestamp"),
    (["2,1,1,1,1,1", "1,1,1,1,1,1"], "fuzz.csv:3: unsorted timestamp"),
    (["1,-5,1,1,1,1"], "fuzz.csv:2: non-positive open"),
    (["1,nan,1,1,1,1"], "fuzz.csv:2: open is not a finite number"),
    (["1,1,inf,1,1,1"], "fuzz.csv:2: high is not a finite number"),
    (["1,1,1e400,1,1,1"], "fuzz.csv:2: high is not a finite number"),
    (["1,1,1,1,1,1,7", "2,1,1,1,1"], "fuzz.csv:2: expected 6 fields, got 7"),
    (["1,1,1,2,1,1"], "fuzz.csv:2: high 1.0 < low 2.0"),
    (["1,1,1,1,1,-3"], "fuzz.csv:2: negative volume"),
    (["1.5,1,1,1,1,1"], "fuzz.csv:2: timestamp must be a whole number"),
    (["1,1,1,1,1,1,"], "fuzz.csv:2: expected 6 fields, got 7"),
    (["1,1,1,1,1", "2,1,1,1,1,1,1"], "fuzz.csv:2: expected 6 fields, got 5"),
    (["1,abc,1,1,1,1"], "fuzz.csv:2: open is not a finite number: 'abc'"),
])
def test_replay_csv_examples(rows: list[str], needle: str) -> None:
    path = TMP / "fuzz.csv"
    path.write_text("\n".join(["timestamp,open,high,low,close,volume", *rows]))
    with pytest.raises(DataFileError, match=re.escape(needle)):
        load_csv(path)


# --- config -------------------------------------------------------------------------------------
def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
    st.text(max_size=20), st.sampled_from(["", "UTC", "Mars/Olympus", "../etc/passwd", "a" * 300,
                                           "/dev/null", "/nonexistent\x00x", "replay", "live",
                                           "BTC", "<b>", "5m", "binanceusdm", "1h", "nope"]))
values = st.one_of(scalars, st.lists(scalars, max_size=6), st.dictionaries(
    st.text(max_size=5), scalars, max_size=3))
KEYS = {name: [f.name for f in cls.__dataclass_fields__.values()]
        for name, cls in _SECTIONS.items()}


@st.composite
def toml_files(draw: st.DrawFn) -> str:
    parts = []
    for section in draw(st.lists(st.sampled_from([*KEYS, "nope", "bot.sub", "bot"]),
                                 max_size=5)):
        parts.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from([*KEYS.get(section.split(".")[0], []),
                                                  "zzz", "enabled", "token"]), max_size=6,
                                 unique=True)):
            parts.append(f"{key} = {toml_value(draw(values))}")
    text = "\n".join(parts) + "\n"
    if draw(st.integers(0, 10)) == 0:  # broken TOML
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["[", "=", '"', "\x00", "]]", "\ud800"[:0]]))
    return text


ENVS = st.sampled_from([{}, {"TELEGRAM_TOKEN": "123:abc", "DISCORD_TOKEN": "x.y.z"},
                        {"TELEGRAM_TOKEN": " ", "DISCORD_TOKEN": ""}])


@settings(max_examples=scaled(10_000, minimum=500), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(toml_files(), st.text(max_size=200)), env=ENVS)
def test_config_parses_or_raises_config_error_naming_the_file(text: str,
                                                              env: dict[str, str]) -> None:
    try:
        cfg = parse_config(text, "fuzz.toml", env=env)
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml"), str(exc)
        assert "123:abc" not in str(exc) and "x.y.z" not in str(exc)
        return
    assert isinstance(cfg, Config) and cfg.bot.symbols


@pytest.mark.parametrize("text", [
    '[bot]\ntimezone = "' + "a" * 300 + '"\n',  # ZoneInfo raised OSError (name too long)
    '[bot]\ntimezone = "../../etc/passwd"\n',
    '[telegram]\nenabled = true\ntoken_file = "/"\n',
    '[model]\nleverage = [1e308, 1]\nweights = [0.5, 0.5]\n',
    '[source]\nlookback_days = nan\n',
    '[source]\ncandles_per_tick = 0\n',
    '[alerts]\nmin_usd = -inf\n',
    '[bot]\nsymbols = ["<b>BTC</b>"]\n',
    '[bot]\nadmins = [true]\n',
    '[discord]\nguild_ids = ["7"]\n',
])
def test_config_examples_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^fuzz\.toml"):
        parse_config(text, "fuzz.toml", env={})


@settings(max_examples=scaled(300, minimum=60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=toml_files())
def test_check_config_cli_exits_0_or_2(text: str) -> None:
    path = TMP / "cli.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["check-config", str(path)])
    try:
        parse_config(text, str(path), env={})
        expected = 0
    except ConfigError:
        expected = 2
    if expected == 2:
        assert code == 2 and "config error" in err.getvalue()
    else:
        assert code in (0, 2)  # 2 only when a token env var of the real environment is missing


def test_line_numbers_count_newlines_only() -> None:
    # \v and \f are not line breaks in a CSV file (str.splitlines() would say they are).
    path = TMP / "vt.csv"
    path.write_bytes(b"timestamp,open,high,low,close,volume\n1,1,1,1,1,1\x0b\x0c\n2,x,1,1,1,1\n")
    with pytest.raises(DataFileError, match=r"vt\.csv:[23]: "):
        load_csv(path)
