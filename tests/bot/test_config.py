"""Config loading: the example file is valid; every mistake is named with its key and line."""

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, Secret, load_config, model_params, parse_config
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_matches_defaults():
    cfg = load_config(ROOT / "config.example.toml", env={})
    defaults = Config()
    for section in ("bot", "source", "schedule", "alerts", "model", "tape", "limits", "console",
                    "telegram", "discord"):
        assert getattr(cfg, section) == getattr(defaults, section), section


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[bot]\nsymbols = []\n", "x.toml:line 2: bot.symbols is empty"),
        ("[bot]\n\nsymbolz = ['BTC']\n", "x.toml:line 3: bot.symbolz: unknown key"),
        ("[alerts]\napproach_pct = 'near'\n", "line 2: alerts.approach_pct must be a number"),
        ("[alerts]\napproach_pct = 0\n", "alerts.approach_pct = 0 must be in (0, 20]"),
        ("[schedule]\nprice_seconds = -1\n", "schedule.price_seconds = -1 must be in (0, 86400]"),
        ("[source]\nkind = 'web'\n", "source.kind = 'web' must be one of replay, live"),
        ("[source]\npath = '/nope.csv'\n", "source.path '/nope.csv' is not a file"),
        ("[model]\nweights = [0.5, 0.6]\nleverage = [5, 10]\n", "weights sum to"),
        ("[model]\nleverage = [5, 500]\nweights = [0.5, 0.5]\n", "500"),
        ("[console]\nenabled = 'yes'\n", "console.enabled must be true or false"),
        ("[bot]\ntimezone = 'Mars/Olympus'\n", "not an IANA time zone"),
        ("[bot]\nsymbols = ['B T C!']\n", "bot.symbols"),
        ("[telegram]\nenabled = true\n", "line 2: telegram is enabled but no token was found "
                                         "(set the environment variable TELEGRAM_TOKEN)"),
        ("[discord]\nenabled = true\ntoken_env = 'MY_DISCORD'\n", "MY_DISCORD"),
        ("[nope]\na = 1\n", "x.toml:line 1: unknown section [nope]"),
        ("[source]\nkind = 'live'\nexchanges = ['binanceusdm', 'nope']\n",
         "line 3: source.exchanges: unknown ccxt exchange(s) nope"),
        ("[source]\nkind = 'live'\n[tape]\nenabled = true\nexchanges = ['kraken', 'x']\n",
         "line 5: tape.exchanges: kraken, x has no liquidation stream in ccxt.pro"),
        ("[model]\ndominant_share = 0.4\n", "model.dominant_share = 0.4 must be in [0.5, 1]"),
        ("[tape]\nenabled = true\n", "line 2: tape is enabled with a replay source: set "
                                     "tape.path"),
        ("[tape]\nenabled = true\npath = '/nope.csv'\n", "line 3: tape.path '/nope.csv' is not"),
        ("[tape]\nwindow_seconds = 0.5\n", "tape.window_seconds = 0.5 must be in [1, 3600]"),
        ("[source]\nkind = 'live'\n[tape]\nenabled = true\nexchanges = ['okx']\n"
         "ws_url = 'ws://127.0.0.1:1'\n", "line 6: tape.ws_url/rest_url are for exchanges"),
        ("[model]\nladder_file = '/nope.toml'\n", "line 2: model.ladder_file: /nope.toml: "
                                                  "cannot read ladder file"),
        ("[model]\nladder_file = '/nope.toml'\nweights = [1]\nleverage = [10]\n",
         "model.ladder_file sets the ladder; remove model.leverage, model.weights"),
        ("[bot\n", "invalid TOML"),
    ],
)
def test_errors_name_key_and_line(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.toml", env={})
    assert needle in str(info.value)


def test_tokens_come_from_env_or_file_and_never_print(tmp_path):
    cfg = parse_config("[telegram]\nenabled = true\n", env={"TELEGRAM_TOKEN": "123:SECRET"})
    assert cfg.telegram.token == Secret("123:SECRET")
    assert "SECRET" not in repr(cfg) and "SECRET" not in str(cfg.telegram)
    token_file = tmp_path / "token"
    token_file.write_text("456:FROMFILE\n")
    cfg = parse_config(f"[discord]\nenabled = true\ntoken_file = '{token_file}'\n", env={})
    assert cfg.discord.token is not None and cfg.discord.token.reveal() == "456:FROMFILE"


def test_symbols_are_normalised_and_model_params_follow_config():
    cfg = parse_config("[bot]\nsymbols = ['btcusdt', 'ETH']\n[source]\nkind = 'live'\n"
                       "[model]\nbucket_usd = 50\nhalf_life_hours = 0\n", env={})
    assert cfg.bot.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    params = model_params(cfg)
    assert params.grid.usd == 50 and params.half_life_hours is None


def test_check_config_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("[alerts]\nmin_usd = 5_000_000\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[alerts]\nmin_usd = -5\n")
    assert main(["check-config", str(bad)]) == 2
    assert "line 2: alerts.min_usd" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 2


def test_per_chat_caps_come_from_config(tmp_path):
    from bot.errors import LimitExceededError
    from bot.wiring import open_store

    cfg = parse_config(f"[bot]\nstore = '{tmp_path / 's.db'}'\n[limits]\nlevels_per_chat = 2\n"
                       "subscriptions_per_chat = 1\n", env={})
    store = open_store(cfg)
    try:
        chat = store.upsert_chat("console", "c")
        store.add_level(chat.id, "BTC/USDT:USDT", 100.0)
        store.add_level(chat.id, "BTC/USDT:USDT", 101.0)
        with pytest.raises(LimitExceededError, match="already has 2 levels"):
            store.add_level(chat.id, "BTC/USDT:USDT", 102.0)
        store.subscribe(chat.id, "BTC/USDT:USDT")
        with pytest.raises(LimitExceededError, match="already has 1 subscriptions"):
            store.subscribe(chat.id, "ETH/USDT:USDT")
    finally:
        store.close()


def test_a_fitted_ladder_file_sets_the_model(tmp_path):
    ladder = tmp_path / "ladder.toml"
    ladder.write_text("[model]\nleverage = [10, 20, 50]\nweights = [0.5, 0.3, 0.2]\n"
                      "dominant_share = 0.6\n")
    cfg = parse_config(f"[model]\nladder_file = '{ladder}'\n", "x.toml", env={})
    p = model_params(cfg)
    assert (p.leverages, p.weights, p.dominant_share) == ((10, 20, 50), (0.5, 0.3, 0.2), 0.6)
    ladder.write_text("[model]\nleverage = [10, 20]\nweights = [0.5]\ndominant_share = 0.6\n")
    with pytest.raises(ConfigError, match="x.toml:line 2: model.ladder_file: .*ladder.toml"):
        parse_config(f"[model]\nladder_file = '{ladder}'\n", "x.toml", env={})
