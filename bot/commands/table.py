"""The one command table: name, usage, help and handler.

Telegram handlers and its command menu, Discord app commands, ``/help`` and the README table
are all generated from :data:`COMMANDS` (a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands import accuracy_cmds, alert_cmds, market_cmds, position_cmds, top_cmds
from bot.commands.reply import Caller, Reply

if TYPE_CHECKING:
    from bot.commands.core import CommandCore

Handler = Callable[["CommandCore", Caller, tuple[str, ...]], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    """One chat command. ``admin_in_groups``: in groups only chat admins (or configured bot
    admins) may run it. ``chart``: counts against the per-user chart rate limit. ``fetches``:
    may first fetch an untracked symbol (seconds): Discord defers the answer then."""

    name: str
    usage: str
    help: str
    handler: Handler
    admin_in_groups: bool = False
    chart: bool = False
    fetches: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("start", "/start", "What this bot does and how to begin", market_cmds.start),
    Command("help", "/help", "List the commands", market_cmds.help_),
    Command("levels", "/levels [SYM]",
            "Top estimated liquidation clusters per side (size, range, distance)",
            market_cmds.levels, fetches=True),
    Command("heatmap", "/heatmap [SYM] [12h|24h|3d|7d|30d]",
            "Liquidation heatmap image over a window (default 24h)", market_cmds.heatmap,
            chart=True),
    Command("map", "/map [SYM] [PRICE]",
            "Liquidation map image: longs below, shorts above, by leverage; PRICE shades the "
            "path to it", market_cmds.liq_map, chart=True),
    Command("top", "/top [N] [long|short]",
            "Largest estimated clusters within ±5 % of price across tracked symbols, by share "
            "of open interest", top_cmds.top),
    Command("subscribe_top", "/subscribe_top [N] [long|short]",
            "/top in this chat once a day, at a fixed UTC hour", top_cmds.subscribe_top,
            admin_in_groups=True),
    Command("unsubscribe_top", "/unsubscribe_top", "Stop the daily /top digest",
            top_cmds.unsubscribe_top, admin_in_groups=True),
    Command("ifbreak", "/ifbreak SYM PRICE",
            "If price breaks PRICE: estimated liquidations on the way, clusters in order",
            position_cmds.ifbreak, fetches=True),
    Command("mypos", "/mypos SYM long|short ENTRY LEVERAGE [SIZE_USD] [watch [PCT]]",
            "Your liquidation price, the estimated clusters between price and it; optional "
            "watch (private chats)", position_cmds.mypos),
    Command("subscribe", "/subscribe SYM [MIN_USD] [PCT] [estimate|confirmed|both]",
            "Alert when price nears (within PCT %) or breaks a cluster ≥ MIN_USD (confirmed: "
            "real positions)",
            alert_cmds.subscribe, admin_in_groups=True),
    Command("quiet", "/quiet SYM on|off",
            "New / grown cluster news in one digest every few hours (on) or one message each",
            alert_cmds.quiet, admin_in_groups=True),
    Command("unsubscribe", "/unsubscribe SYM", "Stop cluster alerts for a symbol",
            alert_cmds.unsubscribe, admin_in_groups=True),
    Command("subscribe_liqs", "/subscribe_liqs SYM [MIN_USD] [SUM_USD]",
            "Real liquidations: alert on each ≥ MIN_USD, or on all once a window sums ≥ SUM_USD",
            alert_cmds.subscribe_liqs,
            admin_in_groups=True),
    Command("unsubscribe_liqs", "/unsubscribe_liqs SYM", "Stop liquidation alerts for a symbol",
            alert_cmds.unsubscribe_liqs, admin_in_groups=True),
    Command("alerts", "/alerts", "This chat's subscriptions and price levels", alert_cmds.alerts),
    Command("level", "/level SYM PRICE [NOTE]", "Alert when price crosses your own level",
            alert_cmds.level, admin_in_groups=True),
    Command("unlevel", "/unlevel ID", "Remove one of your price levels or position watches "
            "(ID from /alerts)",
            alert_cmds.unlevel, admin_in_groups=True),
    Command("status", "/status", "Data freshness, last recompute, source and subscribers",
            market_cmds.status),
    Command("symbols", "/symbols", "Symbols this bot tracks", market_cmds.symbols),
    Command("accuracy", "/accuracy [SYM] [7d|30d|all]",
            "How often this bot's own clusters were right: touch vs a random side, with CI",
            accuracy_cmds.accuracy),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}


def help_text() -> str:
    """The /help body, one line per command."""
    lines = ["Commands (estimates from a model, not exchange data):"]
    lines += [f"{c.usage} — {c.help}" for c in COMMANDS]
    lines.append("Amounts: 100m, 1.5b, 94k or 94,000. Symbols: BTC, btcusdt, BTC/USDT:USDT.")
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's command table."""
    rows = ["| command | what it does | who |", "|---|---|---|"]
    for c in COMMANDS:
        who = "group admins in groups" if c.admin_in_groups else "anyone"
        usage = c.usage.replace("|", "\\|")  # a pipe inside a markdown cell is escaped
        rows.append(f"| `{usage}` | {c.help} | {who} |")
    return "\n".join(rows)
