"""Read-only commands: /start /help /levels /heatmap /map /status /symbols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bot.charts import ChartKey, render_heatmap, render_map
from bot.commands.parse import parse_amount
from bot.commands.reply import Button, Caller, Reply
from bot.errors import UserInputError
from bot.estimate_summaries import age_text, stale_after_ms
from bot.estimates import WINDOWS_H, Estimate
from bot.fmt import money, price_text, utc_text
from bot.market.replay import replay_is_spot, replay_label
from bot.store import now_ms
from bot.tape.alerts import live_clusters
from bot.tape.events import Liquidation
from bot.web import page_url
from estimator import top
from estimator.clusters import merge_touching

if TYPE_CHECKING:
    from bot.commands.core import CommandCore
    from bot.hyperliquid.confirmed import ConfirmedView

DISCLAIMER = "estimate from a model, not exchange data"
TOP_N = 3


def source_label(est: Estimate) -> str:
    """Where the numbers come from, honestly: OI sources or the volume proxy."""
    snap = est.snapshot
    oi = ("OI: " + "+".join(snap.oi_sources)) if snap.oi_sources else "volume proxy (no OI)"
    return f"{snap.timeframe} candles · {oi} · side split: {snap.taker_source}"


async def _require(core: CommandCore, symbol: str) -> Estimate:
    """The estimate to answer with (tracked, or made on request: :meth:`CommandCore.estimate`)."""
    return await core.estimate(symbol)


async def _symbol_and_rest(core: CommandCore, args: tuple[str, ...],
                           max_rest: int) -> tuple[str, tuple[str, ...]]:
    """First argument as a symbol unless it looks like a window/other parameter."""
    if args and args[0].lower() not in WINDOWS_H:
        symbol, rest = await core.resolve_symbol(args[0], untracked=True), args[1:]
    else:
        symbol, rest = await core.resolve_symbol(None), args
    if len(rest) > max_rest:
        raise UserInputError(f"Too many arguments: {' '.join(rest)[:40]}")
    return symbol, rest


async def start(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Welcome text."""
    return Reply(
        "liqbot estimates where leveraged futures positions would be force-liquidated "
        "(liquidation clusters) and alerts you when price nears or breaks a big one.\n"
        f"It is a model, not exchange data. Tracked: {', '.join(core.symbols)}.\n"
        "Try /levels, /heatmap 24h, /map, or /subscribe BTC 100m 0.5. /help lists everything."
    )


async def help_(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """The command list, generated from the command table."""
    from bot.commands.table import help_text

    return Reply(help_text())


def levels_text(est: Estimate, n: int = TOP_N, failing: str | None = None,
                live: Mapping[str, tuple[float, int]] | None = None,
                live_minutes: float = 60) -> str:
    """The seed post's picture as text: top clusters per side with range, size, distance.

    ``failing``: the error of the last update when it failed (the estimate shown is the last
    good one and alerts are paused). ``live``: cluster id → (USD, count) of the real
    liquidations that fell in it during the last ``live_minutes`` (:func:`live_marks`)."""
    lines = [f"{est.symbol} · price {price_text(est.price)} · {DISCLAIMER}"]
    for side, title in (("short", "Shorts above (liquidated if price rises):"),
                        ("long", "Longs below (liquidated if price falls):")):
        lines.append(title)
        clusters = top(merge_touching(est.clusters), n, side)  # touching clusters: one zone
        if not clusters:
            lines.append("  no cluster stands out")
        for c in clusters:
            lines.append(f"  {price_text(c.low)}–{price_text(c.high)}  "
                         f"{money(c.notional_usd)}  {c.distance_pct:+.1f} %")
            usd, count = (live or {}).get(c.id, (0.0, 0))
            if count:
                lines.append(f"    🔥 live: {money(usd)} of real {c.side} liquidations here in "
                             f"the last {live_minutes:g} min ({count})")
    lines.append(f"As of {utc_text(est.book.timestamp)} UTC · {source_label(est)}")
    if est.snapshot.stale:
        lines.append("⚠ data is stale: alerts are paused until fresh candles arrive")
    if failing:
        lines.append(f"⚠ the last update failed ({failing[:120]}): this is the last good "
                     "estimate and alerts are paused until an update succeeds")
    return "\n".join(lines)


def confirmed_view(core: CommandCore, est: Estimate) -> ConfirmedView | None:
    """The confirmed book of ``est``'s symbol at its time (None without ``[positions]``)."""
    desk = core.positions
    if desk is None:
        return None
    oi = est.snapshot.candles.open_interest_usd
    return desk.view(est.symbol, est.snapshot.now_ms, est.price, est.book.grid,
                     None if oi is None or desk.live else float(oi[-1]))


def chart_key(view: ConfirmedView) -> str:
    """Changes whenever the confirmed book does (charts are cached per key)."""
    t = view.totals
    return f"c{t['positions']}:{t['long_usd']:.0f}:{t['short_usd']:.0f}:{len(view.positions)}"


def confirmed_section(core: CommandCore, est: Estimate, n: int = TOP_N) -> list[str]:
    """The "Confirmed on Hyperliquid" lines for ``est``'s symbol at its time."""
    from bot.hyperliquid.confirmed import confirmed_lines
    view = confirmed_view(core, est)
    return [] if view is None else confirmed_lines(view, n)


async def levels(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Top clusters per side."""
    symbol, _ = await _symbol_and_rest(core, args, 0)
    est = await _require(core, symbol)
    short = symbol.split("/")[0]
    minutes = core.config.tape.live_minutes
    live = live_marks(core, est, live_tape(core, symbol, est, minutes))
    text = levels_text(est, failing=core.board.status(symbol).last_error, live=live,
                       live_minutes=minutes)
    if core.positions is not None:  # the confirmed layer, under the estimate, never in it
        text += "\n" + "\n".join(confirmed_section(core, est))
    return Reply(text, buttons=(
        Button("Heatmap 24h", f"/heatmap {short} 24h"), Button("Map", f"/map {short}"),
        Button("Subscribe", f"/subscribe {short}"),
    ))


async def heatmap(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Heatmap PNG for a window."""
    symbol, rest = await _symbol_and_rest(core, args, 1)
    window = rest[0].lower() if rest else "24h"
    if window not in WINDOWS_H:
        raise UserInputError(f"Unknown window '{window[:12]}'. Use one of "
                             f"{', '.join(WINDOWS_H)}.")
    est = await _require(core, symbol)
    tape = live_tape(core, symbol, est, WINDOWS_H[window] * 60)
    live = set(live_marks(core, est, tape))
    # The picture changes with the estimate and with every new real liquidation.
    version = f"{est.version}:{len(tape)}:{tape[-1].timestamp}" if tape else est.version
    view = confirmed_view(core, est)
    marks = [] if view is None else [(c.side, c.low, c.high, c.notional_usd)
                                     for c in view.clusters]
    if view is not None:  # and with the confirmed book
        version = f"{version}:{chart_key(view)}"

    def render() -> bytes:
        return render_heatmap(est.snapshot.candles, est.heatmap(window), est.clusters,
                              symbol=symbol, exchange=exchange_label(core), window_label=window,
                              timeframe=est.snapshot.timeframe, tape=tape, live=live,
                              spot=source_is_spot(core), confirmed=marks)

    png = await core.render(ChartKey(symbol, "heatmap", window, version), render)
    return Reply(f"{symbol} liquidation heatmap, {window} · {DISCLAIMER}"
                 f"{' (volume proxy)' if est.proxy else ''}", png=png,
                 filename=f"heatmap-{window}.png",
                 web_url=page_url(core.config.web, symbol, window))


async def liq_map(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Liquidation map PNG; with a PRICE, the /ifbreak path to it shaded and read off."""
    from bot.commands.position_cmds import path_of

    symbol, rest = await _symbol_and_rest(core, args, 1)
    est = await _require(core, symbol)
    path = path_of(est, parse_amount(rest[0], "price")) if rest else None
    view = confirmed_view(core, est)
    confirmed = None if view is None else view.liquidation_prices()

    def render() -> bytes:
        return render_map(est.book, est.clusters, symbol=symbol, exchange=exchange_label(core),
                          timeframe=est.snapshot.timeframe, path=path,
                          spot=source_is_spot(core), confirmed=confirmed)

    key = f"{path.target:.10g}" if path is not None else ""
    if view is not None:
        key = f"{key}|{chart_key(view)}"
    png = await core.render(ChartKey(symbol, "map", key, est.version), render)
    what = "" if path is None else (
        f": break {price_text(path.target)} → {money(path.cumulative_usd)} of "
        f"{'longs' if path.side == 'long' else 'shorts'} on the way")
    return Reply(f"{symbol} liquidation map{what} · {DISCLAIMER}"
                 f"{' (volume proxy)' if est.proxy else ''}", png=png, filename="map.png",
                 web_url=page_url(core.config.web, symbol))


def live_tape(core: CommandCore, symbol: str, est: Estimate,
              minutes: float) -> list[Liquidation]:
    """Real liquidations of the last ``minutes`` before the estimate's clock (none without
    the tape)."""
    if core.tape is None:
        return []
    core.tape.ingest(est.snapshot.now_ms)
    return core.tape.recent(symbol, est.snapshot.now_ms - int(minutes * 60_000))


def live_marks(core: CommandCore, est: Estimate,
               tape: Sequence[Liquidation]) -> dict[str, tuple[float, int]]:
    """The zones of ``est`` (touching clusters merged, as /levels and the charts show them)
    that ``tape`` says were eaten in the last ``live_minutes``."""
    since = est.snapshot.now_ms - int(core.config.tape.live_minutes * 60_000)
    return live_clusters(tape, merge_touching(est.clusters), since)


def exchange_label(core: CommandCore) -> str:
    src = core.config.source
    if src.kind == "replay":
        return replay_label(src.path)
    return "+".join(src.exchanges)


def source_is_spot(core: CommandCore) -> bool:
    """Whether the charts' candles are spot (the bundled replay file), not perpetuals."""
    src = core.config.source
    return src.kind == "replay" and replay_is_spot(src.path)


async def status(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Freshness and health per symbol."""
    lines = [f"Source: {core.config.source.kind} ({exchange_label(core)})"]
    counts = core.store.subscriber_counts() if core.store is not None else {}
    # Symbols this process does not estimate (chat role, another market worker's): the
    # summary their market worker stored, with its age (bot.estimate_summaries).
    stored = {s.symbol: s for s in core.store.load_summaries()} if core.store is not None else {}
    t, max_age = now_ms(), stale_after_ms(core.config.schedule.recompute_seconds)
    for symbol in core.symbols:
        st = core.board.status(symbol)
        est = core.board.get(symbol)
        when = utc_text(st.last_recompute_ms) + " UTC" if st.last_recompute_ms else "never"
        summary = stored.get(symbol) if est is None and not st.last_recompute_ms else None
        old = summary is not None and summary.age_ms(t) > max_age
        # A failed update pauses alerts just like stale data does: say so.
        fresh = ("STALE" if st.stale or old else "FAILING (alerts paused)" if st.last_error
                 else "fresh")
        if summary is not None and summary.written_ms is not None:
            when = (f"{utc_text(summary.written_ms)} UTC by a market worker (stored estimate "
                    f"{age_text(summary.age_ms(t))} old"
                    f"{', over 2× the recompute interval' if old else ''})")
        line = f"{symbol}: {fresh}, last recompute {when}, {counts.get(symbol, 0)} subscriber(s)"
        if est is not None:
            line += (f", newest candle {utc_text(int(est.snapshot.candles.timestamp[-1]))} UTC"
                     f", {len(est.clusters)} clusters, {source_label(est)}")
        elif summary is not None:
            line += f", {len(summary.clusters)} clusters"
        if st.last_error:
            line += f"\n  last error: {st.last_error}"
        if st.source_note:
            line += f"\n  notes: {st.source_note}"
        from bot.commands.accuracy_cmds import status_line

        if (score := status_line(core, symbol)) is not None:
            line += f"\n  {score} (/accuracy)"
        lines.append(line)
    if core.tape is not None:
        lines.append(f"Liquidation tape (real liquidations, exchange data): {core.tape.feed.label}")
        lines += ["  " + h.replace("\n", "\n  ") for h in core.tape.feed.health()]
        liq_counts = core.store.liq_subscriber_counts()
        lines.append("  /subscribe_liqs chats: " + (", ".join(
            f"{s} {n}" for s, n in liq_counts.items()) or "none"))
    if core.positions is not None:
        lines += core.positions.status_lines()
    return Reply("\n".join(lines))


async def symbols(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """Tracked symbols."""
    text = ("Tracked symbols: " + ", ".join(core.symbols) +
            "\nYou can type them short: BTC, btcusdt, BTC/USDT.")
    if core.ondemand is not None:
        text += (f"\nAny perpetual listed on {core.config.source.exchanges[0]} can be asked for "
                 "(/levels SOL, /heatmap PEPE 7d): the first request fetches it (a few "
                 "seconds); /subscribe tracks it.")
    return Reply(text)
