"""Commands that change what a chat is alerted about: subscriptions and price levels.

Store calls run on the event loop thread (they are short SQLite transactions); the store is
never used from two threads at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.commands.parse import clip, parse_amount, parse_int, parse_percent
from bot.commands.reply import Caller, Reply
from bot.errors import UserInputError
from bot.fmt import money, price_text
from bot.store import now_ms
from bot.tape.alerts import SUM_FACTOR
from bot.tape.events import BINANCE_NOTE

if TYPE_CHECKING:
    from bot.commands.core import CommandCore
    from bot.store import Chat

MAX_NOTE = 120


def _chat(core: CommandCore, caller: Caller) -> Chat:
    return core.store.upsert_chat(caller.platform, caller.chat_id, thread_id=caller.thread_id,
                                  is_group=caller.is_group, timezone=core.config.bot.timezone)


async def subscribe(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/subscribe SYM [MIN_USD] [PCT] [estimate|confirmed|both]."""
    from bot.hyperliquid.alerts import layer_of

    args, layer = layer_of(args)
    if not args:
        raise UserInputError("Which symbol? For example: /subscribe BTC 100m 0.5")
    if len(args) > 3:
        raise UserInputError("Too many arguments.")
    if layer in ("confirmed", "both") and core.positions is None:
        raise UserInputError("Confirmed levels are off on this bot (config [positions]): only "
                             "estimated clusters can be followed.")
    symbol = await core.resolve_symbol(args[0], untracked=True)
    core.check_track_room(symbol)  # a subscription makes the symbol tracked
    if layer in ("confirmed", "both"):
        return await _subscribe_confirmed(core, caller, args, symbol, layer)
    if len(args) == 1 and layer is None:  # e.g. the Subscribe button under /levels
        chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
        mine = [s for s in core.store.list_subscriptions(chat.id) if s.symbol == symbol] if (
            chat is not None) else []
        if mine:
            short = symbol.split("/")[0]
            return Reply(
                f"Already subscribed to {symbol}: clusters ≥ {money(mine[0].min_usd)}, alert "
                f"within {mine[0].approach_pct:g} % and on breaks (kept as they are).\n"
                f"To change them: /subscribe {short} MIN_USD PCT, e.g. /subscribe {short} "
                f"100m 0.5.")
    defaults = core.config.alerts
    min_usd = parse_amount(args[1], "minimum cluster size") if len(args) > 1 else defaults.min_usd
    pct = parse_percent(args[2], "approach distance") if len(args) > 2 else defaults.approach_pct
    chat = _chat(core, caller)
    sub = core.store.subscribe(chat.id, symbol, min_usd=min_usd, approach_pct=pct)
    if layer == "estimate":  # said so: estimated clusters only
        core.store.unsubscribe_confirmed(chat.id, symbol)
    return Reply(
        f"Subscribed to {symbol}: clusters ≥ {money(sub.min_usd)}, alert within "
        f"{sub.approach_pct:g} % and on breaks. Estimates from a model, not exchange data.\n"
        f"{_quiet_note(core, chat.id, symbol)}"
        f"/alerts lists this chat's alerts; /unsubscribe {symbol.split('/')[0]} stops them.")


async def _subscribe_confirmed(core: CommandCore, caller: Caller, args: tuple[str, ...],
                               symbol: str, layer: str) -> Reply:
    """``confirmed``: follow real Hyperliquid positions' clusters instead of the estimate's;
    ``both``: follow both, with the same thresholds."""
    defaults = core.config.alerts
    min_usd = parse_amount(args[1], "minimum cluster size") if len(args) > 1 else defaults.min_usd
    pct = parse_percent(args[2], "approach distance") if len(args) > 2 else defaults.approach_pct
    chat = _chat(core, caller)
    sub = core.store.subscribe_confirmed(chat.id, symbol, min_usd, pct, now_ms())
    short = symbol.split("/")[0]
    if layer == "both":
        core.store.subscribe(chat.id, symbol, min_usd=min_usd, approach_pct=pct)
        what = "estimated clusters (a model) and confirmed ones (real positions on Hyperliquid)"
    else:
        core.store.unsubscribe(chat.id, symbol)
        what = "confirmed clusters only (real positions on Hyperliquid)"
    return Reply(
        f"Following {what} of {symbol}: ≥ {money(sub.min_usd)}, alert within "
        f"{sub.approach_pct:g} %; each confirmed cluster alerts once. Confirmed = a sample of "
        f"wallets on one venue.\n/unsubscribe {short} stops them.")


async def quiet(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/quiet SYM on|off: new / grown cluster news in one digest per ``digest_hours``."""
    if len(args) != 2 or args[1].lower() not in ("on", "off"):
        raise UserInputError("Say on or off, e.g. /quiet BTC off")
    symbol = await core.resolve_symbol(args[0])
    chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
    short = symbol.split("/")[0]
    if chat is None or symbol not in {s.symbol for s in core.store.list_subscriptions(chat.id)}:
        return Reply(f"This chat is not subscribed to {symbol}: /subscribe {short} first.",
                     error=True)
    on = args[1].lower() == "on"
    core.store.set_quiet(chat.id, symbol, on)
    if on:
        return Reply(f"Quiet on for {symbol}: new and grown clusters come in one digest every "
                     f"{core.config.alerts.digest_hours:g} h; approach, break and level alerts "
                     "stay immediate.")
    return Reply(f"Quiet off for {symbol}: every new or grown cluster is a message of its own.")


async def unsubscribe(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/unsubscribe SYM."""
    def remove(chat: int, symbol: str) -> bool:  # estimated and confirmed clusters alike
        return core.store.unsubscribe(chat, symbol) | core.store.unsubscribe_confirmed(chat,
                                                                                      symbol)
    return await _stop(core, caller, args, remove,
                       "Unsubscribed from {}.", "This chat was not subscribed to {}.")


def _quiet_note(core: CommandCore, chat: int, symbol: str) -> str:
    short = symbol.split("/")[0]
    if symbol in core.store.quiet_symbols(chat):
        return (f"New and grown clusters come in one digest every "
                f"{core.config.alerts.digest_hours:g} h (/quiet {short} off: one message "
                "each).\n")
    return ""


async def _stop(core: CommandCore, caller: Caller, args: tuple[str, ...],
                remove: Callable[[int, str], bool], done: str, none: str) -> Reply:
    """Remove one of this chat's per-symbol watches (``remove(chat, symbol)``)."""
    if len(args) != 1:
        raise UserInputError("Give exactly one symbol.")
    symbol = await core.resolve_symbol(args[0], untracked=True)
    chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
    if chat is not None and remove(chat.id, symbol):
        return Reply(done.format(symbol))
    return Reply(none.format(symbol), error=True)


async def subscribe_liqs(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/subscribe_liqs SYM [MIN_USD] [SUM_USD]."""
    if core.tape is None:
        raise UserInputError("The liquidation tape is off on this bot (config [tape]), so "
                             "there are no real liquidations to alert on.")
    if not args:
        raise UserInputError("Which symbol? For example: /subscribe_liqs BTC 1m 10m")
    if len(args) > 3:
        raise UserInputError("Too many arguments.")
    symbol = await core.resolve_symbol(args[0])
    min_usd = (parse_amount(args[1], "minimum liquidation size") if len(args) > 1
               else core.config.tape.min_usd)
    sum_usd = (parse_amount(args[2], "window total") if len(args) > 2
               else min_usd * SUM_FACTOR)
    chat = _chat(core, caller)
    sub = core.store.subscribe_liqs(chat.id, symbol, min_usd, sum_usd, now=now_ms())
    window = f"{core.config.tape.window_seconds:g} s"
    label = core.tape.feed.label
    caveat = f" {BINANCE_NOTE}" if "binance" in label else ""
    return Reply(
        f"Liquidation alerts for {symbol}: every liquidation ≥ {money(sub.min_usd)}, and all of "
        f"them when ≥ {money(sub.sum_usd)} liquidate within {window} — one message per {window} "
        f"at most. Real liquidations from {label}.{caveat}\n"
        f"/unsubscribe_liqs {symbol.split('/')[0]} stops them.")


async def unsubscribe_liqs(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/unsubscribe_liqs SYM."""
    return await _stop(core, caller, args, core.store.unsubscribe_liqs,
                       "Liquidation alerts for {} stopped.",
                       "This chat had no liquidation alerts for {}.")


async def alerts(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/alerts: this chat's subscriptions and levels."""
    chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
    subs = core.store.list_subscriptions(chat.id) if chat else []
    levels = core.store.list_levels(chat.id) if chat else []
    liqs = core.store.list_liq_subscriptions(chat.id) if chat else []
    # Position watches exist in private chats only; never listed in a group.
    watches = core.store.list_position_watches(chat.id) if chat and not caller.is_group else []
    confirmed = core.store.confirmed_subscriptions(chat=chat.id) if chat else []
    top = core.store.top_subscription(chat.id) if chat else None
    if not subs and not levels and not liqs and not watches and not confirmed and top is None:
        return Reply("No alerts in this chat yet. Try /subscribe BTC 100m 0.5 or "
                     "/level BTC 94k.")
    lines = []
    if subs:
        lines.append("Cluster alerts:")
        quiet = core.store.quiet_symbols(chat.id) if chat else set()
        digest = f"; quiet: news in a {core.config.alerts.digest_hours:g} h digest"
        lines += [f"  {s.symbol}: clusters ≥ {money(s.min_usd)}, within {s.approach_pct:g} %"
                  f"{digest if s.symbol in quiet else ''}" for s in subs]
    if confirmed:
        lines.append("Confirmed cluster alerts (real positions on Hyperliquid):")
        lines += [f"  {s.symbol}: confirmed clusters ≥ {money(s.min_usd)}, within "
                  f"{s.approach_pct:g} %" for s in confirmed]
    if liqs:
        lines.append("Liquidation alerts (real, from the tape):")
        lines += [f"  {s.symbol}: each ≥ {money(s.min_usd)}, or all when ≥ "
                  f"{money(s.sum_usd)} in a window" for s in liqs]
    if levels:
        lines.append("Price levels (remove with /unlevel ID):")
        lines += [f"  #{lv.id} {lv.symbol} {price_text(lv.price)}"
                  f"{' — ' + lv.note if lv.note else ''}" for lv in levels]
    if top is not None:
        what = f"{top.side} clusters" if top.side else "clusters"
        lines.append(f"Daily /top digest: the {top.n} largest {what}, at "
                     f"{core.config.alerts.top_digest_hour:02d}:00 UTC (/unsubscribe_top)")
    if watches:
        lines.append("Position watches (private; remove with /unlevel wID):")
        lines += [f"  #w{w.id} {w.symbol} {w.side} {w.leverage:g}x from {price_text(w.entry)}: "
                  f"liquidation {price_text(w.liq_price)}, alert within {w.within_pct:g} %"
                  for w in watches]
    if chat is not None and not chat.active:
        lines.append("⚠ This chat was deactivated (the bot could not post here); any command "
                     "re-activates it.")
    return Reply("\n".join(lines))


async def level(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/level SYM PRICE [NOTE]."""
    if len(args) < 2:
        raise UserInputError("Give a symbol and a price, e.g. /level BTC 94k")
    symbol = await core.resolve_symbol(args[0])
    price = parse_amount(args[1], "price")
    note = " ".join(args[2:])
    if len(note) > MAX_NOTE:
        raise UserInputError(f"The note is too long ({len(note)} characters, max {MAX_NOTE}).")
    est = core.board.get(symbol)
    if est is not None and not 0.2 * est.price <= price <= 5 * est.price:
        raise UserInputError(f"{price_text(price)} is too far from the current price "
                             f"{price_text(est.price)} to be a level.")
    chat = _chat(core, caller)
    lv = core.store.add_level(chat.id, symbol, price, "any", note)
    return Reply(f"Level #{lv.id} set: {symbol} {price_text(price)}"
                 f"{' — ' + clip(note, MAX_NOTE) if note else ''}. You will be alerted when "
                 "price crosses it.")


async def unlevel(core: CommandCore, caller: Caller, args: tuple[str, ...]) -> Reply:
    """/unlevel ID."""
    if len(args) != 1:
        raise UserInputError("Give the level's ID from /alerts, e.g. /unlevel 12")
    if args[0].lstrip("#")[:1].lower() == "w":  # a position watch: /unlevel w3
        watch_id = parse_int(args[0].lstrip("#")[1:], "watch ID")
        chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
        if chat is None or not core.store.remove_position_watch(chat.id, watch_id):
            return Reply(f"This chat has no position watch #w{watch_id} (see /alerts).",
                         error=True)
        return Reply(f"Position watch #w{watch_id} removed.")
    level_id = parse_int(args[0], "level ID")
    chat = core.store.find_chat(caller.platform, caller.chat_id, caller.thread_id)
    if chat is None or not core.store.remove_level(chat.id, level_id):
        return Reply(f"This chat has no level #{level_id} (see /alerts).", error=True)
    return Reply(f"Level #{level_id} removed.")
