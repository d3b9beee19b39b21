"""The ``liqbot`` command line: run, demo, levels, chart, ifbreak, serve, backtest, record,
calibrate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from pathlib import Path
from typing import NoReturn

from bot.errors import ConfigError, LiqBotError, UsageError
from bot.estimates import WINDOWS_H
from bot.heap import keep_freed_heap
from bot.outpath import check_out_file
from estimator import ModelParams

EXIT_CONFIG = 2


def _levels(args: argparse.Namespace) -> int:
    from bot.finite import finite_json
    from bot.fmt import money, price_text
    from bot.market.replay import BUNDLED_CSV, load_csv, replay_symbol
    from bot.web.api import levels_rows  # the same rows as the web view's /api/v1/levels
    from estimator import build_book, find_clusters

    symbol = replay_symbol(args.symbol, args.data)
    candles = load_csv(args.data or BUNDLED_CSV)
    book = build_book(candles, _params(args))
    rows = levels_rows(find_clusters(book), args.top)  # touching ones: one zone
    text = finite_json(rows, f"levels {symbol}")  # NaN is an error, in text as in JSON
    view = None
    if args.positions:  # the confirmed layer (issue 17): beside the estimate, never in it
        from bot.hyperliquid.confirmed import coin_of, levels_object, replay_view
        from bot.hyperliquid.snapshots import SnapshotReplay
        oi = candles.open_interest_usd
        view = replay_view(SnapshotReplay.load(args.positions), coin_of(symbol),
                           int(candles.timestamp[-1]), book.last_price, book.grid,
                           None if oi is None else float(oi[-1]))
        text = finite_json(levels_object(rows, view, args.top), f"levels {symbol}")
    if args.json:
        print(text)
        return 0
    print(f"{symbol} · price {price_text(book.last_price)} · estimate from a model, not "
          f"exchange data{' (volume proxy: no open interest in the data)' if book.proxy else ''}")
    for c in rows:
        print(f"  {c['side']:<5}  {price_text(c['low'])}–{price_text(c['high'])}  "
              f"{money(c['notional_usd']):>7}  {c['distance_pct']:+.1f} %")
    if view is not None:
        from bot.hyperliquid.confirmed import confirmed_lines
        print("\n".join(confirmed_lines(view, args.top)))
    return 0


def _ifbreak(args: argparse.Namespace) -> int:
    from bot.commands.parse import parse_amount
    from bot.commands.position_cmds import cascade_json, cascade_text
    from bot.errors import UserInputError
    from bot.finite import finite_json
    from bot.market.replay import BUNDLED_CSV, load_csv, replay_label, replay_symbol
    from estimator import build_book, cascade_path, find_clusters

    symbol = replay_symbol(args.symbol, args.data)
    try:
        target = parse_amount(args.price, "price")
    except UserInputError as exc:
        raise UsageError(f"PRICE: {exc}") from exc
    candles = load_csv(args.data or BUNDLED_CSV)
    book = build_book(candles, _params(args))
    try:
        cas = cascade_path(book, find_clusters(book), target)
    except ValueError as exc:
        raise UsageError(f"PRICE {args.price}: {exc}") from exc
    confirmed = None
    if args.positions:  # the confirmed layer (issue 17) at the last candle, apart
        from bot.hyperliquid.confirmed import coin_of, replay_view
        from bot.hyperliquid.snapshots import SnapshotReplay
        view = replay_view(SnapshotReplay.load(args.positions), coin_of(symbol),
                           int(candles.timestamp[-1]), book.last_price, book.grid)
        confirmed = view.between(cas.price, cas.target)
    text = finite_json(cascade_json(symbol, cas, confirmed),
                       f"ifbreak {symbol}")  # NaN is an error
    print(text if args.json else cascade_text(symbol, cas, replay_label(args.data), confirmed))
    return 0


def _chart(args: argparse.Namespace) -> int:
    from bot.charts import render_heatmap, render_map
    from bot.estimates import window_heatmap
    from bot.finite import require_finite
    from bot.market.replay import (
        BUNDLED_CSV,
        load_csv,
        replay_is_spot,
        replay_label,
        replay_symbol,
        timeframe_of,
    )
    from estimator import build_book, find_clusters

    if args.kind == "map" and args.window is not None:
        raise UsageError("--window: the map is the book at the newest candle, it has no time "
                         "window (use --kind heatmap)")
    window = args.window or "7d"
    out = check_out_file(args.out, "--out")  # before any work
    symbol = replay_symbol(args.symbol, args.data)
    candles = load_csv(args.data or BUNDLED_CSV)
    params = _params(args)
    book = build_book(candles, params)
    clusters = find_clusters(book)
    require_finite([c.as_dict() for c in clusters], f"chart {symbol}")
    label = replay_label(args.data)
    timeframe = timeframe_of(candles)
    if args.kind == "heatmap":
        png = render_heatmap(candles, window_heatmap(candles, params, window), clusters,
                             symbol=symbol, exchange=label, timeframe=timeframe,
                             window_label=window, spot=replay_is_spot(args.data))
    else:
        png = render_map(book, clusters, symbol=symbol, exchange=label, timeframe=timeframe,
                         spot=replay_is_spot(args.data))
    try:
        out.write_bytes(png)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {args.out} ({len(png)} bytes)")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    import dataclasses

    from bot.backtest import BacktestOptions, format_text, load_liquidations, run_backtest
    from bot.errors import UserInputError
    from bot.finite import finite_json
    from bot.market.replay import BUNDLED_CSV, load_csv
    from bot.progress import Progress

    params = _params(args)
    changes: dict[str, object] = {}
    if args.half_life is not None:
        changes["half_life_hours"] = args.half_life or None
    if args.dominant_share is not None:
        changes["dominant_share"] = args.dominant_share
    try:
        opts = BacktestOptions(
            horizon=args.horizon, top=args.top, every=args.every, warmup=args.warmup,
            lookback=args.lookback, seed=args.seed, draws=args.draws,
            params=dataclasses.replace(params, **changes))  # type: ignore[arg-type]
        liq = load_liquidations(args.liquidations) if args.liquidations else None
        candles = load_csv(args.data or BUNDLED_CSV)
        with Progress("backtest", unit="evaluation", quiet=args.quiet) as bar:
            result = run_backtest(candles, opts, liq, progress=bar.update_to)
    except ValueError as exc:
        raise UserInputError(f"backtest: {exc}") from exc
    print(finite_json(result, "backtest") if args.json else format_text(result))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from bot.calibration import calibrate, format_report, write_ladder
    from bot.finite import finite_json
    from bot.progress import Progress

    if args.positions:  # the ladder read off real Hyperliquid positions (issue 17)
        return _calibrate_positions(args)
    if not (args.candles and args.liquidations):
        raise UsageError("give --candles and --liquidations, or --positions")
    # A file it cannot use is a DataFileError: main() prints it and exits 1, as backtest does.
    with Progress("calibrate", unit="share", quiet=args.quiet) as bar:
        cal = calibrate(args.candles, args.liquidations, _params(args), bar.update_to)
    text = finite_json(cal.as_dict() | {"out": args.out}, "calibrate")  # before writing
    if args.out:
        write_ladder(cal, args.out)
    if args.json:
        print(text)
    else:
        print(format_report(cal))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _calibrate_positions(args: argparse.Namespace) -> int:
    from bot.finite import finite_json
    from bot.hyperliquid import ladder

    if args.candles or args.liquidations:
        raise UsageError("--positions fits from the positions alone: drop --candles and "
                         "--liquidations")
    fit = ladder.fit_positions(args.positions, _params(args))
    text = finite_json(fit.as_dict() | {"out": args.out}, "calibrate")  # before writing
    if args.out:
        ladder.write_ladder(fit, args.out)
    print(text if args.json else ladder.format_report(fit))
    if args.out and not args.json:
        print(f"wrote {args.out}")
    return 0


def _score_positions(args: argparse.Namespace) -> int:
    from bot.errors import DataFileError
    from bot.finite import finite_json
    from bot.hyperliquid.confirmed import coin_of
    from bot.hyperliquid.score import format_text, score_positions
    from bot.hyperliquid.snapshots import SnapshotReplay
    from bot.market.replay import load_csv

    candles = load_csv(args.candles)
    replay = SnapshotReplay.load(args.positions)
    try:
        result = score_positions(candles, replay, coin_of(args.symbol), _params(args),
                                 top=args.top, warmup=args.warmup, draws=args.draws,
                                 seed=args.seed)
    except ValueError as exc:
        raise DataFileError(f"{args.positions} on {args.candles}: {exc}") from exc
    text = finite_json(result.as_dict(), "score-positions")  # NaN is an error
    print(text if args.json else format_text(result))
    return 0


def _params(args: argparse.Namespace) -> ModelParams:
    from bot.config import Config, load_config, model_params

    return model_params(load_config(args.config) if args.config else Config())


def _accuracy(args: argparse.Namespace) -> int:
    from bot.audit import scoreboard
    from bot.config import load_config
    from bot.errors import BadSymbolError, StoreError
    from bot.finite import finite_json
    from bot.market.symbols import normalise
    from bot.store import open_store

    cfg = load_config(args.config)
    symbol = None
    if args.symbol:
        try:
            symbol = normalise(args.symbol)
        except BadSymbolError as exc:
            raise UsageError(f"--symbol {args.symbol!r}: {exc}") from exc
        if symbol not in cfg.bot.symbols:
            raise UsageError(f"--symbol {args.symbol}: {symbol} is not in the config's symbols "
                             f"({', '.join(cfg.bot.symbols)})")
    dsn = cfg.bot.store_dsn.reveal() if cfg.bot.store_dsn is not None else None
    if dsn is None and not Path(cfg.bot.store).is_file():  # would create an empty store
        raise StoreError(f"{cfg.bot.store}: no store yet (bot.store of {args.config}); "
                         "`liqbot run` records the evaluations it scores")
    store = open_store(cfg.bot.store, dsn, exclusive=False)
    try:
        boards = scoreboard.for_config(store, cfg.accuracy, symbol, args.window)
    finally:
        store.close()
    if args.json:  # one object per data kind (proxy / open interest) present, proxy first
        for b in boards.values():
            print(finite_json(scoreboard.as_json(b), "accuracy"))
    else:
        print(scoreboard.text(boards, cfg.accuracy.min_evaluations))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from bot.config import load_config

    cfg = load_config(args.path)
    enabled = [n for n in ("console", "telegram", "discord") if getattr(cfg, n).enabled]
    print(f"{args.path}: OK · symbols {', '.join(cfg.bot.symbols)} · source {cfg.source.kind} · "
          f"adapters {', '.join(enabled) or 'none'} · store {cfg.bot.store}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import DemoOptions, main

    return main(DemoOptions(days=args.days, out_dir=args.out, quiet=args.quiet))


def _run(args: argparse.Namespace) -> int:
    from bot.config import Config, load_config
    from bot.run import check_role, remember_stop_signals, run

    cfg = load_config(args.config) if args.config else Config()
    check_role(cfg, args.role)  # before anything prints or opens: one line when refused
    noted = remember_stop_signals()  # a Ctrl-C from here on stops the bot cleanly
    if not args.config:  # else a default run prints nothing more: no chat is subscribed
        print(f"liqbot run: no --config, so built-in defaults: a replay of the bundled BTC "
              f"candles (one every {cfg.schedule.price_seconds:g} s), alerts to this console, "
              f"store {cfg.bot.store}; nothing is subscribed and no commands are read, so "
              "little prints here. Try `liqbot demo`, or a config with [console] interactive = "
              "true (see config.example.toml).", file=sys.stderr, flush=True)
    return asyncio.run(run(cfg, args.role, noted))


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bot.config import Config, load_config
    from bot.market.replay import replay_symbol
    from bot.web.server import serve_replay

    cfg = load_config(args.config) if args.config else Config()
    symbol = replay_symbol(args.symbol, args.data)
    web = replace(cfg.web, listen=args.listen or cfg.web.listen,
                  port=cfg.web.port if args.port is None else args.port)
    try:
        return asyncio.run(serve_replay(replace(cfg, web=web), args.data, symbol,
                                        positions=args.positions))
    except OSError as exc:  # the address is taken or not ours
        raise UsageError(f"cannot listen on {web.listen}:{web.port}: "
                         f"{exc.strerror or exc}") from exc


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text!r}")
    return int(text)


def _record(args: argparse.Namespace) -> int:
    from bot.errors import UserInputError
    from bot.progress import Progress
    from bot.tape.record import record

    if not args.minutes > 0:
        raise UserInputError("--minutes must be > 0")
    symbols = [s for part in args.symbols for s in part.split(",") if s.strip()]
    if args.hyperliquid:  # positions snapshots + Hyperliquid candles with OI (issue 17)
        from bot.hyperliquid.record import run_cli
        return run_cli(symbols, Path(args.out), args.minutes, args.quiet)
    with Progress("recording", total=round(args.minutes * 60), unit="s",
                  quiet=args.quiet) as bar:
        result = asyncio.run(bar.timed(record(symbols, Path(args.out), args.exchange,
                                              args.minutes)))
    for sym in sorted(set(result.candles) | set(result.liquidations)):
        print(f"{sym}: {result.candles.get(sym, 0)} candles, "
              f"{result.liquidations.get(sym, 0)} liquidations")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(result.files)} file(s) in {args.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return value


def _demo_days(text: str) -> float:
    from bot.demo import MAX_DAYS

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1 / 24 <= value <= MAX_DAYS:  # False for NaN too
        raise argparse.ArgumentTypeError(f"must be a number of days from 1/24 (one hourly "
                                         f"candle) to {MAX_DAYS:g}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="liqbot",
        description="Estimated liquidation clusters for crypto futures: alerts and charts. "
                    "Estimates come from a model, not exchange data.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the bot (scheduler, store, adapters) from a config")
    p.add_argument("--config", help="TOML config (default: built-in defaults = replay + console)")
    p.add_argument("--role", default="all", choices=("all", "market", "dispatch", "chat"),
                   help="what this process does (default all: everything, alone); the others "
                        "share a PostgreSQL store: market (symbol leases), dispatch (alerts "
                        "out), chat (commands in)")
    p.set_defaults(func=_run)

    p = sub.add_parser("demo", help="replay the bundled real BTC candles through the whole "
                                    "pipeline; print alerts, write heatmap.png and map.png")
    p.add_argument("--days", type=_demo_days, default=60.0, help="days replayed (default 60)")
    p.add_argument("--out", default="liqbot-demo", help="folder for the PNGs")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (one shows only on a terminal)")
    p.set_defaults(func=_demo)

    for name, helptext in (("levels", "print the top clusters for a candle CSV"),
                           ("chart", "render a heatmap or liquidation map PNG")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("symbol", help="symbol label, e.g. BTC")
        p.add_argument("--data", help="replay CSV (default: the bundled BTC candles)")
        p.add_argument("--config", help="TOML config for the model parameters")
        if name == "levels":
            p.add_argument("--json", action="store_true", help="print a JSON list")
            p.add_argument("--top", type=_positive_int, default=5,
                           help="clusters per side (default 5)")
            p.add_argument("--positions", help="Hyperliquid positions snapshots (JSON lines, "
                                               "liqbot record --hyperliquid): add the confirmed "
                                               "levels; --json prints one object")
            p.set_defaults(func=_levels)
        else:
            p.add_argument("--kind", choices=("heatmap", "map"), required=True)
            p.add_argument("--window", choices=tuple(WINDOWS_H),
                           help="heatmap window (default 7d; refused with --kind map)")
            p.add_argument("--out", required=True, help="PNG file to write")
            p.set_defaults(func=_chart)

    p = sub.add_parser("ifbreak", help="estimated liquidations between the last price of a "
                                       "candle CSV and PRICE, clusters in order")
    p.add_argument("symbol", help="symbol label, e.g. BTC")
    p.add_argument("price", help="target price, e.g. 9500, 9.5k or 9,500")
    p.add_argument("--data", help="replay CSV (default: the bundled BTC candles)")
    p.add_argument("--config", help="TOML config for the model parameters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--positions", help="Hyperliquid positions snapshots (JSON lines): add the "
                                       "confirmed notional in the range (confirmed_usd)")
    p.set_defaults(func=_ifbreak)

    p = sub.add_parser("serve", help="the interactive web view (heatmap, map, levels) on a "
                                     "replay CSV, alone; `liqbot run` serves it beside the bot")
    p.add_argument("--data", help="replay CSV (default: the bundled BTC candles)")
    p.add_argument("--symbol", default="BTC", help="symbol label, e.g. BTC (default BTC)")
    p.add_argument("--config", help="TOML config: model parameters and [web] listen/port")
    p.add_argument("--listen", help="address to listen on (default: [web] listen, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port (default: [web] port, 8080; 0 = any free)")
    p.add_argument("--positions", help="Hyperliquid positions snapshots (JSON lines): the "
                                       "confirmed levels layer")
    p.set_defaults(func=_serve)

    p = sub.add_parser("backtest", help="walk-forward backtest: are the top clusters touched "
                                        "more than levels at the same distance on a random side?")
    p.add_argument("--data", help="candle CSV (default: the bundled BTC candles)")
    p.add_argument("--config", help="TOML config for the model parameters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--horizon", default="24h", help="scoring horizon, e.g. 24h (default 24h)")
    p.add_argument("--top", type=int, default=5, help="clusters per side (default 5)")
    p.add_argument("--every", type=int, default=24, help="evaluate every K candles (default 24)")
    p.add_argument("--half-life", type=float, help="position half-life in hours, 0 = off "
                                                   "(default: the config's)")
    p.add_argument("--dominant-share", type=float,
                   help="long share of a green candle's new notional (default 0.75)")
    p.add_argument("--warmup", default="30d", help="history before the first evaluation")
    p.add_argument("--lookback", help="feed only this much history to each estimate, e.g. 90d "
                                      "(default: every candle up to t)")
    p.add_argument("--seed", type=int, default=0, help="seed for b1 draws and the bootstrap")
    p.add_argument("--draws", type=int, default=200, help="b1 random-side draws (default 200)")
    p.add_argument("--liquidations", help="CSV of real liquidations: timestamp,side,price,"
                                          "notional_usd")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (one shows only on a terminal)")
    p.set_defaults(func=_backtest)

    p = sub.add_parser("accuracy", help="the bot's own scoreboard from its store: touch vs "
                                        "a random side (b1), lift with CI, ceiling, liquidation "
                                        "capture, receipts")
    p.add_argument("--config", required=True, help="the TOML config of the bot (its store)")
    p.add_argument("--symbol", help="one tracked symbol, e.g. BTC (default: all)")
    p.add_argument("--window", choices=("7d", "30d", "all"), default="30d",
                   help="evaluations of the last 7 or 30 days of data, or all (default 30d)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per data kind (volume proxy / open interest)")
    p.set_defaults(func=_accuracy)

    p = sub.add_parser("record", help="record live candles (with OI, taker-buy volume) and "
                                      "liquidations to daily CSVs for backtests")
    p.add_argument("--symbols", nargs="+", required=True, help="e.g. BTC ETH (or BTC,ETH)")
    p.add_argument("--out", required=True, help="directory for the CSV files")
    p.add_argument("--exchange", default="binanceusdm", help="ccxt exchange (default binanceusdm)")
    p.add_argument("--hyperliquid", action="store_true",
                   help="instead: Hyperliquid positions snapshots (wallets discovered from "
                        "trades) and Hyperliquid candles with OI")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="how long to record the liquidation tape (default 60)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (one shows only on a terminal)")
    p.set_defaults(func=_record)

    p = sub.add_parser("calibrate", help="fit the leverage ladder and long/short split to "
                                         "recorded liquidations; write a ladder file")
    p.add_argument("--candles", help="candle CSV, ideally with open_interest_usd "
                                     "(e.g. from liqbot record)")
    p.add_argument("--liquidations", help="liquidation CSV: timestamp,side,price,"
                                          "notional_usd")
    p.add_argument("--positions", help="instead: Hyperliquid positions snapshots (JSON lines); "
                                       "the ladder is read off their leverage")
    p.add_argument("--out", help="ladder TOML file to write ([model] leverage, weights, "
                                 "dominant_share)")
    p.add_argument("--config", help="TOML config for the base model (half-life, ladder compared "
                                    "against)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (one shows only on a terminal)")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("score-positions", help="the estimator against real Hyperliquid "
                                              "positions: share of confirmed notional near the "
                                              "top clusters vs b1, W1 distance, sides")
    p.add_argument("--candles", required=True, help="Hyperliquid candle CSV with OI")
    p.add_argument("--positions", required=True, help="positions snapshots (JSON lines)")
    p.add_argument("--symbol", default="BTC", help="coin (default BTC)")
    p.add_argument("--config", help="TOML config for the model parameters")
    p.add_argument("--top", type=_positive_int, default=5, help="clusters per side (default 5)")
    p.add_argument("--warmup", type=int, default=24, help="candles before the first "
                                                          "evaluation (default 24)")
    p.add_argument("--draws", type=_positive_int, default=200, help="b1 draws (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for the b1 draws")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_score_positions)

    p = sub.add_parser("check-config", help="validate a config file (exit 2 when invalid)")
    p.add_argument("path")
    p.set_defaults(func=_check_config)
    return ap


def main(argv: list[str] | None = None) -> int:
    keep_freed_heap()  # before the first large array (bot/heap.py: page faults)
    args = build_parser().parse_args(argv)
    # The demo's progress bar and alerts are the show: its INFO lines (a "recompute" line
    # every few candles) only with -v.
    quiet_info = args.command == "demo"
    logging.basicConfig(level=logging.DEBUG if args.verbose else
                        logging.WARNING if quiet_info else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # APScheduler logs every job run at INFO: far too chatty at 20 runs a second.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"liqbot {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(f"liqbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except LiqBotError as exc:
        print(f"liqbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
