"""Configuration: TOML (stdlib tomllib) → frozen, validated dataclasses.

Validated once at start-up. Every error names the file, the key and its line. Secrets are
never in the file: adapters name an environment variable (or a token file) to read them from,
and :class:`Secret` redacts itself when printed or logged.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import BadSymbolError, ConfigError, UsageError
from bot.market.replay import replay_symbol
from bot.market.symbols import normalise
from estimator import ModelParams, PriceGrid

DEFAULT_SYMBOL = "BTC/USDT:USDT"
log = logging.getLogger(__name__)


class Secret:
    """A token that never shows itself in repr/str/logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class BotSection:
    symbols: tuple[str, ...] = (DEFAULT_SYMBOL,)
    # A SQLite file, or a postgresql:// URL. With a DSN (this URL or store_dsn_env's) it shows
    # the server without the password; the DSN itself is store_dsn (never printed).
    store: str = "liqbot.db"
    store_dsn_env: str = ""  # an env var holding the whole PostgreSQL DSN; wins over store
    store_dsn: Secret | None = None
    admins: tuple[str, ...] = ()
    timezone: str = "UTC"


@dataclass(frozen=True)
class SourceSection:
    kind: str = "replay"
    path: str = ""  # replay CSV; "" = the bundled real BTC candles
    candles_per_tick: int = 1
    warmup_candles: int = 500
    exchanges: tuple[str, ...] = ("binanceusdm",)
    timeframe: str = "5m"
    lookback_days: float = 30.0
    rest_url: str = ""  # live, binanceusdm alone: another REST base (relay, tests)


@dataclass(frozen=True)
class ScheduleSection:
    recompute_seconds: float = 300.0
    price_seconds: float = 15.0
    dispatch_seconds: float = 1.0


@dataclass(frozen=True)
class AlertsSection:
    approach_pct: float = 0.5
    min_usd: float = 100_000_000.0
    cooldown_minutes: float = 60.0
    rearm_pct: float = 0.25
    growth_factor: float = 1.5
    new_cluster_range_pct: float = 10.0
    digest_hours: float = 4.0  # quiet subscriptions: one digest of new/grown clusters per slot
    top_digest_hour: int = 8  # /subscribe_top: the daily /top digest at this hour (UTC)


@dataclass(frozen=True)
class ModelSection:
    leverage: tuple[float, ...] = (5, 10, 25, 50, 100)
    weights: tuple[float, ...] = (0.15, 0.30, 0.25, 0.20, 0.10)
    bucket_pct: float = 0.1
    bucket_usd: float = 0.0  # > 0 switches to fixed USD buckets
    half_life_hours: float = 168.0  # 0 = no age decay
    proxy_fraction: float = 0.1
    dominant_share: float = 0.75
    ladder_file: str = ""  # a `liqbot calibrate --out` file: its ladder replaces the keys above


@dataclass(frozen=True)
class TapeSection:
    enabled: bool = False
    exchanges: tuple[str, ...] = ("binanceusdm",)
    path: str = ""  # replay: a recorded liquidations CSV, played on the virtual clock
    window_seconds: float = 60.0
    flush_seconds: float = 2.0
    min_usd: float = 1_000_000.0
    live_minutes: float = 60.0
    keep_hours: float = 48.0
    ws_url: str = ""  # binanceusdm or bybit alone: another websocket base (relay, tests)
    rest_url: str = ""  # and REST base
    receipt_minutes: float = 15.0  # a break's receipt (bot.audit.receipts) this long after it


@dataclass(frozen=True)
class PositionsSection:
    """The confirmed layer (bot.hyperliquid): real Hyperliquid positions beside the estimate."""

    enabled: bool = False
    path: str = ""  # replay: a positions snapshot file (JSON lines) on the virtual clock
    rescan_minutes: float = 10.0  # every known wallet scanned again at least this often
    weight_share: float = 0.5  # of Hyperliquid's 1,200 request weight per minute per IP
    batch: int = 50  # wallets per scan pass
    scan_seconds: float = 5.0  # one pass this often
    rest_url: str = ""  # another info API base (relay, tests)
    ws_url: str = ""  # and trades websocket base


@dataclass(frozen=True)
class AccuracySection:
    """The live scoreboard (bot.audit): what each recorded evaluation is scored on."""

    enabled: bool = True
    every_minutes: float = 60.0  # at most one recorded evaluation per symbol this often
    top: int = 5  # clusters per side
    horizon: str = "24h"
    reaction: str = "6h"
    min_evaluations: int = 30  # below this: "not enough data yet"
    keep_days: float = 400.0


@dataclass(frozen=True)
class LimitsSection:
    charts_per_minute: int = 6
    subscriptions_per_chat: int = 20
    levels_per_chat: int = 50
    on_demand_symbols: int = 50  # untracked symbols estimated on request, kept (LRU) this many
    tracked_symbols: int = 200  # configured + subscribed symbols recomputed on the schedule


@dataclass(frozen=True)
class ConsoleSection:
    enabled: bool = True
    charts_dir: str = ""  # "" = do not save chart PNGs
    interactive: bool = False


@dataclass(frozen=True)
class TelegramSection:
    enabled: bool = False
    token_env: str = "TELEGRAM_TOKEN"
    token_file: str = ""
    base_url: str = ""
    stale_command_minutes: float = 10.0  # older commands (sent while down) are not acted on
    # "webhook": Telegram POSTs updates to webhook_url (a proxy forwards them to PTB's webhook
    # server on listen:port/url_path); every request must carry the secret token.
    mode: str = "polling"
    webhook_url: str = ""
    listen: str = "127.0.0.1"
    port: int = 8443
    url_path: str = ""  # "" = the path of webhook_url
    secret_token_env: str = "TELEGRAM_WEBHOOK_TOKEN"
    token: Secret | None = None
    secret_token: Secret | None = None


@dataclass(frozen=True)
class DiscordSection:
    enabled: bool = False
    token_env: str = "DISCORD_TOKEN"
    token_file: str = ""
    guild_ids: tuple[int, ...] = ()
    # 0 = one gateway connection (discord.Client); N = AutoShardedClient with N shards;
    # "auto" = AutoShardedClient with the shard count Discord recommends (GET /gateway/bot).
    shards: int | str = 0
    token: Secret | None = None


@dataclass(frozen=True)
class WebSection:
    """The read-only web view / Telegram Mini App (issue 23): off by default, nothing listens."""

    enabled: bool = False
    listen: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # how chat users reach it (https:// for a Telegram Mini App)


@dataclass(frozen=True)
class ClusterSection:
    """Several ``liqbot run --role`` processes on one PostgreSQL store (bot.leases)."""

    lease_seconds: float = 30.0  # a market worker's symbol lease; renewed every third of it
    worker: str = ""  # this process's name in the lease table ("" = hostname:pid)
    reclaim_seconds: float = 60.0  # a dead dispatcher's claimed row is resent after this


@dataclass(frozen=True)
class MetricsSection:
    """``/metrics`` (Prometheus) and ``/healthz`` of each ``liqbot run`` (bot.ops_http)."""

    listen: str = "127.0.0.1"
    port: int = 0  # 0 = off: nothing listens


@dataclass(frozen=True)
class Config:
    bot: BotSection = field(default_factory=BotSection)
    source: SourceSection = field(default_factory=SourceSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    alerts: AlertsSection = field(default_factory=AlertsSection)
    model: ModelSection = field(default_factory=ModelSection)
    tape: TapeSection = field(default_factory=TapeSection)
    positions: PositionsSection = field(default_factory=PositionsSection)
    accuracy: AccuracySection = field(default_factory=AccuracySection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    telegram: TelegramSection = field(default_factory=TelegramSection)
    discord: DiscordSection = field(default_factory=DiscordSection)
    web: WebSection = field(default_factory=WebSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    path: str = "<defaults>"


_SECTIONS: dict[str, type] = {
    "bot": BotSection, "source": SourceSection, "schedule": ScheduleSection,
    "alerts": AlertsSection, "model": ModelSection, "tape": TapeSection,
    "positions": PositionsSection,
    "accuracy": AccuracySection,
    "limits": LimitsSection,
    "console": ConsoleSection, "telegram": TelegramSection, "discord": DiscordSection,
    "web": WebSection,
    "cluster": ClusterSection,
    "metrics": MetricsSection,
}
_NOT_IN_FILE = {"token", "secret_token", "store_dsn"}
_ITEM_TYPES = {("model", "leverage"): "number", ("model", "weights"): "number",
               ("discord", "guild_ids"): "int", ("bot", "admins"): "id",
               ("discord", "shards"): "shards"}

Check = Callable[[Any], str | None]


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be ≥ 0"


def _reclaim(v: Any) -> str | None:
    """[cluster] reclaim_seconds: longer than a live dispatcher holds a claim, or its row is
    resent by another."""
    from bot.dispatcher import LONGEST_CLAIM_S, SEND_TIMEOUT_S  # their one home

    if LONGEST_CLAIM_S < v <= 86400:
        return None
    return (f"must be in ({LONGEST_CLAIM_S:g}, 86400] seconds: longer than a live dispatcher "
            f"holds a claimed alert (2 sends of at most {SEND_TIMEOUT_S:g} s), or another one "
            "resends it")


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _timezone(v: Any) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. name too long
        return "is not an IANA time zone (e.g. UTC, Europe/Berlin)"
    return None


def _duration(v: Any) -> str | None:
    from bot.backtest.walk import parse_duration

    try:
        parse_duration(v)
    except ValueError as exc:
        return str(exc)
    return None


def _up_to(limit: float, unit: str) -> Check:
    """> 0 and at most ``limit`` (a finite 1e308 still overflows timers and date arithmetic)."""
    return lambda v: None if 0 < v <= limit else f"must be in (0, {limit:g}] {unit}"


def _zero_up_to(limit: float, unit: str) -> Check:
    return lambda v: None if 0 <= v <= limit else f"must be in [0, {limit:g}] {unit}"


_TIMEFRAME = re.compile(r"[1-9][0-9]*[smhdwM]")


def _timeframe(v: Any) -> str | None:
    return None if _TIMEFRAME.fullmatch(v) else "is not a timeframe (e.g. 1m, 5m, 1h, 1d)"


def _file_name(v: Any) -> str | None:
    return None if v.strip() else "must name a file (e.g. liqbot.db)"


def _env_name(v: Any) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) else "is not an env var name"


_WEBHOOK_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?")
# Bot API: 1-256 characters A-Z a-z 0-9 _ -; at least 16 here (a shared password: short ones
# can be guessed, and redaction skips strings under bot.redact.MIN_SECRET).
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")

_CHECKS: dict[tuple[str, str], Check] = {
    ("bot", "timezone"): _timezone,
    ("bot", "store"): _file_name,
    ("bot", "store_dsn_env"): lambda v: None if v == "" else _env_name(v),
    ("source", "kind"): _one_of("replay", "live"),
    ("source", "candles_per_tick"): _positive,
    ("source", "warmup_candles"): _positive,
    ("source", "timeframe"): _timeframe,
    ("source", "lookback_days"): _up_to(3650, "days"),
    ("schedule", "recompute_seconds"): _up_to(86_400, "seconds"),
    ("schedule", "price_seconds"): _up_to(86_400, "seconds"),
    ("schedule", "dispatch_seconds"): _up_to(86_400, "seconds"),
    ("alerts", "approach_pct"): lambda v: None if 0 < v <= 20 else "must be in (0, 20]",
    ("alerts", "min_usd"): _non_negative,
    ("alerts", "cooldown_minutes"): _zero_up_to(525_600, "minutes (a year)"),
    ("alerts", "rearm_pct"): _non_negative,
    ("alerts", "growth_factor"): lambda v: None if v > 1 else "must be > 1",
    ("alerts", "new_cluster_range_pct"): _positive,
    ("alerts", "digest_hours"): _up_to(168, "hours (a week)"),
    ("alerts", "top_digest_hour"): lambda v: None if 0 <= v <= 23 else "must be an hour in [0, 23]",
    ("model", "bucket_pct"): lambda v: None if 0 < v < 50 else "must be in (0, 50)",
    ("model", "bucket_usd"): _non_negative,
    ("model", "half_life_hours"): _zero_up_to(87_600, "hours (ten years)"),
    ("model", "proxy_fraction"): _positive,
    ("model", "dominant_share"): lambda v: None if 0.5 <= v <= 1 else "must be in [0.5, 1]",
    ("tape", "window_seconds"): lambda v: None if 1 <= v <= 3600 else "must be in [1, 3600]",
    ("tape", "flush_seconds"): _up_to(3600, "seconds"),
    ("tape", "min_usd"): _positive,
    ("tape", "live_minutes"): _up_to(10_080, "minutes (a week)"),
    ("tape", "keep_hours"): _up_to(8760, "hours (a year)"),
    ("tape", "receipt_minutes"): _up_to(1440, "minutes (a day)"),
    ("positions", "rescan_minutes"): _up_to(1440, "minutes (a day)"),
    ("positions", "weight_share"): lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
    ("positions", "batch"): lambda v: None if 1 <= v <= 10_000 else "must be in [1, 10000]",
    ("positions", "scan_seconds"): _up_to(3600, "seconds"),
    ("accuracy", "every_minutes"): _up_to(10_080, "minutes (a week)"),
    ("accuracy", "top"): lambda v: None if 1 <= v <= 50 else "must be in [1, 50]",
    ("accuracy", "horizon"): _duration,
    ("accuracy", "reaction"): _duration,
    ("accuracy", "min_evaluations"): lambda v: None if v >= 1 else "must be ≥ 1",
    ("accuracy", "keep_days"): _up_to(3660, "days (ten years)"),
    ("limits", "charts_per_minute"): _positive,
    ("limits", "subscriptions_per_chat"): _positive,
    ("limits", "levels_per_chat"): _positive,
    ("limits", "on_demand_symbols"): lambda v: None if 0 <= v <= 1000 else "must be in [0, 1000]",
    ("limits", "tracked_symbols"): lambda v: None if 1 <= v <= 1000 else "must be in [1, 1000]",
    ("telegram", "token_env"): _env_name,
    ("telegram", "stale_command_minutes"): _positive,
    ("telegram", "mode"): _one_of("polling", "webhook"),
    ("telegram", "webhook_url"): lambda v: None if v == "" or _WEBHOOK_URL.fullmatch(v) else
        "must be an http(s) URL without query or fragment (e.g. https://bot.example.org/tg)",
    ("telegram", "listen"): lambda v: None if v.strip() else "must be an address (e.g. 127.0.0.1)",
    ("telegram", "port"): lambda v: None if 1 <= v <= 65535 else "must be in [1, 65535]",
    ("telegram", "url_path"): lambda v: None if re.fullmatch(r"[A-Za-z0-9._~/-]*", v) else
        "must be a URL path (letters, digits, . _ ~ / -)",
    ("telegram", "secret_token_env"): _env_name,
    ("discord", "token_env"): _env_name,
    ("cluster", "lease_seconds"): lambda v: None if 3 <= v <= 3600 else "must be in [3, 3600] "
                                                                       "seconds",
    ("cluster", "reclaim_seconds"): _reclaim,
    ("cluster", "worker"): lambda v: None if re.fullmatch(r"[A-Za-z0-9_.:@-]{0,100}", v) else
        "must be up to 100 letters, digits or _.:@- (e.g. market-1; \"\" = hostname:pid)",
    ("web", "listen"): lambda v: None if v.strip() else "must be an address (e.g. 127.0.0.1)",
    ("metrics", "listen"): lambda v: None if v.strip() else "must be an address (e.g. 0.0.0.0)",
    ("metrics", "port"): lambda v: None if 0 <= v <= 65535 else "must be in [0, 65535] (0 = off)",
    ("web", "port"): lambda v: None if 1 <= v <= 65535 else "must be in [1, 65535]",
    ("web", "public_url"): lambda v: None if v == "" or re.fullmatch(
        r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?", v) else
        "must be an http(s) URL without query or fragment (e.g. https://liq.example.org)",
}


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML config; raises ConfigError naming file, key and line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{p}:line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "a config is a TOML file saved as UTF-8") from exc
    return parse_config(text, str(p), env)


def parse_config(text: str, source: str = "<string>",
                 env: Mapping[str, str] | None = None) -> Config:
    """Validate TOML ``text`` (``source`` names it in errors); secrets come from ``env``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    lines = _KeyLines(text)
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{source}:{lines.section(name)}: unknown section [{name}] "
                              f"(known: {', '.join(_SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}:{lines.key('', name)}: {name} must be a [{name}] table")
        sections[name] = _section(name, value, source, lines)
    cfg = Config(**sections, path=source)
    return _with_secrets(_cross_checks(cfg, source, lines), source, lines,
                         os.environ if env is None else env)


def _section(name: str, values: dict[str, Any], source: str, lines: _KeyLines) -> Any:
    cls = _SECTIONS[name]
    defaults = cls()
    known = {f.name: f for f in fields(cls) if f.name not in _NOT_IN_FILE}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}:{lines.key(name, key)}: {name}.{key}"
        if key not in known:
            raise ConfigError(f"{where}: unknown key (known: {', '.join(known)})")
        kwargs[key] = _coerce(getattr(defaults, key), value, where,
                              _ITEM_TYPES.get((name, key), "str"))
        check = _CHECKS.get((name, key))
        problem = check(kwargs[key]) if check else None
        if problem:
            raise ConfigError(f"{where} = {value!r} {problem}")
    return cls(**kwargs)


def _coerce_item(item_type: str, item: Any, where: str) -> Any:
    if item_type == "number":
        return _coerce(0.0, item, where + " item")
    if item_type == "int":
        return _coerce(0, item, where + " item")
    if item_type == "id":
        if isinstance(item, bool) or not isinstance(item, int | str) \
                or not re.fullmatch(r"[0-9]+", str(item)):
            raise ConfigError(f"{where} items must be numeric user ids (e.g. 123456789; "
                              f"/status shows yours), got {item!r}")
        return str(item)
    return _coerce("", item, where + " item")


def _coerce(default: Any, value: Any, where: str, item_type: str = "str") -> Any:
    """Check ``value`` has the type of the field's default (ints are fine for floats)."""
    if item_type == "shards":  # "auto" or a whole number ≥ 0
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                               and value >= 0):
            return value
        raise ConfigError(f'{where} must be "auto" or a whole number of shards ≥ 0 '
                          f"(0 = one gateway connection), got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where} must be a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce_item(item_type, item, where) for item in value)
    raise ConfigError(f"{where}: unsupported setting")  # pragma: no cover - schema bug


def _cross_checks(cfg: Config, source: str, lines: _KeyLines) -> Config:
    if not cfg.bot.symbols:
        raise ConfigError(f"{source}:{lines.key('bot', 'symbols')}: bot.symbols is empty")
    try:
        symbols = tuple(dict.fromkeys(normalise(s) for s in cfg.bot.symbols))
    except BadSymbolError as exc:
        raise ConfigError(f"{source}:{lines.key('bot', 'symbols')}: bot.symbols: {exc}") from exc
    cfg = replace(cfg, bot=replace(cfg.bot, symbols=symbols))
    if cfg.source.kind == "replay":
        _replay_symbol_check(cfg, source, lines)
    cfg = _with_ladder_file(cfg, source, lines)
    m = cfg.model
    if len(m.leverage) != len(m.weights) or not m.leverage:
        raise ConfigError(f"{source}:{lines.key('model', 'weights')}: model.weights has "
                          f"{len(m.weights)} entries for {len(m.leverage)} leverages")
    try:
        model_params(cfg)
    except ValueError as exc:
        raise ConfigError(f"{source}:{lines.key('model', 'leverage')}: model: {exc}") from exc
    if cfg.source.kind == "replay" and cfg.source.path and not Path(cfg.source.path).is_file():
        raise ConfigError(f"{source}:{lines.key('source', 'path')}: source.path "
                          f"{cfg.source.path!r} is not a file")
    if cfg.source.kind == "live" and not cfg.source.exchanges:
        raise ConfigError(f"{source}:{lines.key('source', 'exchanges')}: source.exchanges is "
                          "empty")
    if cfg.source.kind == "live":
        import ccxt  # live only: checks the names before anything connects

        unknown = [e for e in cfg.source.exchanges if e not in ccxt.exchanges]
        if unknown:
            raise ConfigError(f"{source}:{lines.key('source', 'exchanges')}: source.exchanges: "
                              f"unknown ccxt exchange(s) {', '.join(unknown)} (e.g. binanceusdm, "
                              "bybit, okx)")
        if cfg.source.rest_url and cfg.source.exchanges != ("binanceusdm",):
            raise ConfigError(f"{source}:{lines.key('source', 'rest_url')}: source.rest_url is "
                              "for exchanges = ['binanceusdm'] alone")
        if cfg.source.rest_url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?",
                                                    cfg.source.rest_url):
            raise ConfigError(f"{source}:{lines.key('source', 'rest_url')}: source.rest_url "
                              f"{cfg.source.rest_url!r} is not an http(s) URL")
        tf = cfg.source.timeframe
        without = [e for e in cfg.source.exchanges if tf not in (getattr(ccxt, e)().timeframes
                                                                 or {tf: tf})]
        if without:
            raise ConfigError(f"{source}:{lines.key('source', 'timeframe')}: source.timeframe "
                              f"{tf!r} is not offered by {', '.join(without)}")
    cfg = _web_checks(_positions_checks(_tape_checks(cfg, source, lines), source, lines),
                      source, lines)
    return _webhook_checks(cfg, source, lines)


def _webhook_checks(cfg: Config, source: str, lines: _KeyLines) -> Config:
    """``[telegram] mode = "webhook"`` needs the public URL; https unless ``base_url`` names a
    local Bot API server (which may post to http). ``url_path`` defaults to the URL's path."""
    t = cfg.telegram
    if not t.enabled or t.mode != "webhook":
        return cfg
    if not t.webhook_url:
        raise ConfigError(f"{source}:{lines.key('telegram', 'mode')}: telegram.webhook_url is "
                          "required with telegram.mode = 'webhook' (the public https URL "
                          "Telegram posts updates to)")
    if find_spec("tornado") is None:  # PTB's webhook server; its import error is a traceback
        raise ConfigError(f"{source}:{lines.key('telegram', 'mode')}: telegram.mode = 'webhook' "
                          "needs PTB's webhook server: pip install "
                          "'python-telegram-bot[webhooks]' (tornado)")
    if not t.base_url and not t.webhook_url.startswith("https://"):
        raise ConfigError(f"{source}:{lines.key('telegram', 'webhook_url')}: "
                          "telegram.webhook_url must be https:// (Telegram posts to https URLs "
                          "only; http is for a local Bot API server set in telegram.base_url)")
    if lines.has("telegram", "url_path"):
        return cfg
    path = _WEBHOOK_URL.fullmatch(t.webhook_url).group(1) or ""  # type: ignore[union-attr]
    return replace(cfg, telegram=replace(t, url_path=path))


def _web_checks(cfg: Config, source: str, lines: _KeyLines) -> Config:
    """Chat buttons open ``public_url``: Telegram opens Mini Apps from https URLs only."""
    w = cfg.web
    if w.enabled and w.public_url and cfg.telegram.enabled \
            and not w.public_url.startswith("https://"):
        raise ConfigError(f"{source}:{lines.key('web', 'public_url')}: web.public_url must be "
                          "https:// when telegram is enabled (Telegram opens Mini Apps from "
                          "https URLs only)")
    return replace(cfg, web=replace(w, public_url=w.public_url.rstrip("/")))


def _replay_symbol_check(cfg: Config, source: str, lines: _KeyLines) -> None:
    """A replay file holds one symbol: bot.symbols names it alone (and the right one)."""
    where = f"{source}:{lines.key('bot', 'symbols')}: bot.symbols"
    if len(cfg.bot.symbols) > 1:
        raise ConfigError(f"{where}: a replay source plays one file, so one symbol; got "
                          f"{', '.join(cfg.bot.symbols)}")
    try:
        replay_symbol(cfg.bot.symbols[0], cfg.source.path)
    except UsageError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('symbol ')}") from exc


def _with_ladder_file(cfg: Config, source: str, lines: _KeyLines) -> Config:
    """``[model] ladder_file``: the fitted leverage, weights and dominant share it holds."""
    m = cfg.model
    if not m.ladder_file:
        return cfg
    where = f"{source}:{lines.key('model', 'ladder_file')}: model.ladder_file"
    clash = [k for k in ("leverage", "weights", "dominant_share") if lines.has("model", k)]
    if clash:
        raise ConfigError(f"{where} sets the ladder; remove model.{', model.'.join(clash)} "
                          "(or the ladder file)")
    from bot.calibration import load_ladder  # lazy: it brings the CSV loaders along

    try:
        leverage, weights, share = load_ladder(m.ladder_file)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return replace(cfg, model=replace(m, leverage=leverage, weights=weights,
                                      dominant_share=share))


def _positions_checks(cfg: Config, source: str, lines: _KeyLines) -> Config:
    p = cfg.positions
    if not p.enabled:
        return cfg
    _replayed_file(cfg, "positions", p.path, "a snapshot file", source, lines)
    return cfg


def _replayed_file(cfg: Config, section: str, path: str, what: str, source: str,
                   lines: _KeyLines) -> None:
    """An enabled [tape]/[positions] section: a replay source needs ``path``, and a given path
    must be a file."""
    if cfg.source.kind == "replay" and not path:
        raise ConfigError(f"{source}:{lines.key(section, 'enabled')}: {section} is enabled with "
                          f"a replay source: set {section}.path to {what}")
    if path and not Path(path).is_file():
        raise ConfigError(f"{source}:{lines.key(section, 'path')}: {section}.path {path!r} is "
                          "not a file")


def _tape_checks(cfg: Config, source: str, lines: _KeyLines) -> Config:
    t = cfg.tape
    if not t.enabled:
        return cfg
    _replayed_file(cfg, "tape", t.path, "a recorded liquidations CSV", source, lines)
    if cfg.source.kind == "live" and not t.exchanges:
        raise ConfigError(f"{source}:{lines.key('tape', 'exchanges')}: tape.exchanges is empty")
    if cfg.source.kind == "live":
        without = [e for e in t.exchanges if not _has_liquidation_stream(e)]
        if without:
            raise ConfigError(f"{source}:{lines.key('tape', 'exchanges')}: tape.exchanges: "
                              f"{', '.join(without)} has no liquidation stream in ccxt.pro "
                              "(e.g. binanceusdm, bybit, okx)")
    if (t.ws_url or t.rest_url) and t.exchanges not in (("binanceusdm",), ("bybit",)):
        raise ConfigError(f"{source}:{lines.key('tape', 'ws_url')}: tape.ws_url/rest_url are "
                          "for exchanges = [\"binanceusdm\"] or [\"bybit\"] only")
    return cfg


def _has_liquidation_stream(name: str) -> bool:
    import ccxt.pro  # live only

    if name not in ccxt.pro.exchanges:
        return False
    has = getattr(ccxt.pro, name)().has
    return bool(has.get("watchLiquidationsForSymbols") or has.get("watchLiquidations"))


def _with_store_dsn(cfg: Config, source: str, lines: _KeyLines,
                    env: Mapping[str, str]) -> Config:
    """A PostgreSQL store: ``store_dsn_env``'s value, else a postgresql:// ``store``; checked,
    its password registered for redaction, and ``store`` replaced by the DSN without it."""
    from bot.db import dsn as dsns

    b = cfg.bot
    if b.store_dsn_env:
        key, dsn = "store_dsn_env", env.get(b.store_dsn_env, "").strip()
        if not dsn:
            raise ConfigError(f"{source}:{lines.key('bot', key)}: bot.store_dsn_env: the "
                              f"environment variable {b.store_dsn_env} is not set (it holds "
                              "the PostgreSQL DSN, e.g. postgresql://liqbot:PASSWORD@host/liqbot)")
    elif dsns.is_dsn(b.store):
        key, dsn = "store", b.store.strip()
    else:
        return cfg
    dsns.register(dsn)
    problem = dsns.check(dsn)
    if problem:  # never the value: it holds the password
        raise ConfigError(f"{source}:{lines.key('bot', key)}: bot.{key}: the DSN {problem}")
    return replace(cfg, bot=replace(b, store=dsns.safe_dsn(dsn), store_dsn=Secret(dsn)))


def _with_secrets(cfg: Config, source: str, lines: _KeyLines, env: Mapping[str, str]) -> Config:
    cfg = _with_store_dsn(cfg, source, lines, env)
    updates: dict[str, Any] = {}
    for name in ("telegram", "discord"):
        sec = getattr(cfg, name)
        if not sec.enabled:
            continue
        token = ""
        if sec.token_file:
            try:
                token = Path(sec.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{source}:{lines.key(name, 'token_file')}: {name}.token_file "
                                  f"cannot be read: {exc.strerror or exc}") from exc
            _warn_if_readable(Path(sec.token_file), f"{source}:{lines.key(name, 'token_file')}: "
                              f"{name}.token_file")
        else:
            token = env.get(sec.token_env, "").strip()
        if not token:
            key = ("token_file" if sec.token_file
                   else "token_env" if lines.has(name, "token_env") else "enabled")
            raise ConfigError(
                f"{source}:{lines.key(name, key)}: {name} is enabled but no token was found "
                f"(set the environment variable {sec.token_env}"
                f"{' or fix token_file' if sec.token_file else ''})")
        updates[name] = replace(sec, token=Secret(token))
        if name == "telegram" and sec.mode == "webhook":
            updates[name] = replace(updates[name], secret_token=_webhook_secret(
                sec, env, f"{source}:{lines.key(name, 'secret_token_env')}"))
    return replace(cfg, **updates) if updates else cfg


def _webhook_secret(sec: TelegramSection, env: Mapping[str, str], where: str) -> Secret:
    """The webhook's secret token from ``secret_token_env`` (never printed: not even a bad
    one, which may be the real one mistyped)."""
    value = env.get(sec.secret_token_env, "").strip()
    if not value:
        raise ConfigError(f"{where}: telegram.mode is 'webhook' but the environment variable "
                          f"{sec.secret_token_env} (telegram.secret_token_env) is not set; it "
                          "holds the secret token Telegram sends with every update (e.g. "
                          "openssl rand -hex 32)")
    if not _SECRET_TOKEN.fullmatch(value):
        raise ConfigError(f"{where}: telegram.secret_token_env: the value of "
                          f"{sec.secret_token_env} must be 16-256 characters A-Z a-z 0-9 _ - "
                          f"(it has {len(value)}; e.g. openssl rand -hex 32)")
    return Secret(value)


def _warn_if_readable(path: Path, where: str) -> None:
    """A token file others can read leaks the token: say so (the bot still starts)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # pragma: no cover - it was just read
        return
    if mode & 0o044:
        log.warning("%s %s is readable by %s (mode %03o): chmod 600 %s", where, path,
                    "group and others" if mode & 0o004 else "its group", mode & 0o777, path)


def model_params(cfg: Config) -> ModelParams:
    """The estimator's ModelParams for this config."""
    m = cfg.model
    grid = PriceGrid.fixed(m.bucket_usd) if m.bucket_usd > 0 else PriceGrid.relative(m.bucket_pct)
    return ModelParams(
        leverages=m.leverage, weights=m.weights,
        half_life_hours=m.half_life_hours or None, proxy_fraction=m.proxy_fraction, grid=grid,
        dominant_share=m.dominant_share,
    )


class _KeyLines:
    """Finds the line of ``[section]`` / ``key =`` in the TOML text, for error messages."""

    _HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")

    def __init__(self, text: str) -> None:
        self._keys: dict[tuple[str, str], int] = {}
        self._sections: dict[str, int] = {}
        current = ""
        for no, line in enumerate(text.splitlines(), start=1):
            if h := self._HEADER.match(line):
                current = h.group(1)
                self._sections.setdefault(current, no)
            elif k := self._KEY.match(line):
                self._keys.setdefault((current, k.group(1)), no)

    def key(self, section: str, key: str) -> str:
        no = self._keys.get((section, key)) or self._sections.get(section)
        return f"line {no}" if no else "(default)"

    def has(self, section: str, key: str) -> bool:
        return (section, key) in self._keys

    def section(self, section: str) -> str:
        no = self._sections.get(section)
        return f"line {no}" if no else "?"
