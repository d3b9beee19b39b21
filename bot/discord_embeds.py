"""Discord look of liqbot: replies and alerts as embeds (wording comes from the core)."""

from __future__ import annotations

import warnings
from io import BytesIO

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord

from bot.alerts.events import EventKind
from bot.alerts.messages import DISCLAIMER, TAPE_SOURCE
from bot.charts.style import LONG, SHORT
from bot.commands.reply import Reply
from bot.dispatcher import Alert
from bot.fmt import money, pct_text, price_text, time_text

DESCRIPTION_MAX = 4096  # Discord's embed description limit (characters)
REPLY_COLOUR = discord.Colour(0x5865F2)
ERROR_COLOUR = discord.Colour(0xFFA000)
LEVEL_COLOUR = discord.Colour(0xFFD54F)
SIDE_COLOUR = {"long": discord.Colour.from_str(LONG), "short": discord.Colour.from_str(SHORT)}
ALERT_TITLE = {EventKind.APPROACH: "Approaching a liquidation cluster",
               EventKind.INSIDE: "Price inside a liquidation cluster",
               EventKind.BREAK: "Cluster broken", EventKind.NEW_CLUSTER: "New liquidation cluster",
               EventKind.LEVEL_CROSS: "Your level was crossed",
               EventKind.LIQUIDATIONS: "Real liquidations",
               EventKind.POSITION: "Your position (watch)",
               EventKind.DIGEST: "Cluster news digest",
               EventKind.RECEIPT: "Receipt: what the tape saw in a broken cluster",
               EventKind.CONFIRMED: "Confirmed: real positions (Hyperliquid)",
               EventKind.TOP_DIGEST: "Daily /top digest"}


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def description(text: str) -> str:
    """The core's plain text as an embed description: markdown (masked links, bold…) and
    mentions escaped — user notes are part of the text — then clipped to Discord's limit."""
    escaped = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return clip(escaped, DESCRIPTION_MAX)


def reply_embed(title: str, reply: Reply) -> tuple[discord.Embed, discord.File | None]:
    """One Reply as an embed; its PNG (if any) attached and shown as the embed image."""
    embed = discord.Embed(title=title, description=description(reply.text),
                          colour=ERROR_COLOUR if reply.error else REPLY_COLOUR)
    if reply.buttons:  # slash commands are the buttons on Discord: show them as hints
        embed.set_footer(text="Next: " + " · ".join(b.command for b in reply.buttons))
    if reply.png is None:
        return embed, None
    embed.set_image(url=f"attachment://{reply.filename}")
    return embed, discord.File(BytesIO(reply.png), filename=reply.filename)


def alert_embed(alert: Alert, tz: str = "UTC") -> discord.Embed:
    """An alert: the core's one-line text as description, coloured by side, with fields."""
    ev = alert.event
    if ev.kind is EventKind.LEVEL_CROSS:
        colour = LEVEL_COLOUR
    else:
        colour = SIDE_COLOUR.get(ev.side or "", REPLY_COLOUR)
    title = (ALERT_TITLE[ev.kind] if ev.kind is EventKind.TOP_DIGEST  # every symbol
             else f"{ev.symbol} · {ALERT_TITLE[ev.kind]}")
    embed = discord.Embed(title=title, description=description(alert.text), colour=colour)
    source = DISCLAIMER
    if ev.kind is EventKind.LEVEL_CROSS:
        embed.add_field(name="Level", value=price_text(ev.level_price or 0.0))
    elif ev.kind is EventKind.POSITION:
        embed.add_field(name="Your liquidation", value=price_text(ev.level_price or 0.0))
    elif ev.kind is EventKind.DIGEST:
        embed.add_field(name="Updates", value=str(len(ev.items or [])))
    elif ev.kind is EventKind.TOP_DIGEST:
        embed.add_field(name="Clusters", value=str(ev.tape_count or 0))
    elif ev.kind is EventKind.RECEIPT:
        source = "tape = exchange data; estimate = estimate, not exchange data"
        embed.add_field(name="Tape in range", value=f"{money(ev.tape_usd or 0.0)} "
                                                    f"({ev.tape_count or 0})")
        embed.add_field(name="Control band", value=money(ev.control_usd or 0.0))
        if ev.positions is not None:  # a confirmed cluster's: real positions, not an estimate
            from bot.hyperliquid.alerts import SOURCE
            source = f"tape = exchange data; confirmed = {SOURCE}"
            embed.add_field(name="Real positions", value=f"{ev.positions}, "
                                                         f"{money(ev.notional_usd or 0.0)}")
        else:
            embed.add_field(name="Estimate", value=money(ev.notional_usd or 0.0))
    elif ev.kind is EventKind.CONFIRMED:
        from bot.hyperliquid.alerts import SOURCE
        source = SOURCE
        embed.add_field(name="Range", value=f"{price_text(ev.low or 0.0)}–"
                                            f"{price_text(ev.high or 0.0)}")
        embed.add_field(name="Real positions", value=f"{ev.positions or 0}, "
                                                     f"{money(ev.notional_usd or 0.0)}")
    elif ev.kind is EventKind.LIQUIDATIONS:
        source = TAPE_SOURCE
        embed.add_field(name="Events", value=str(ev.tape_count or 0))
        embed.add_field(name="Longs", value=money(ev.long_usd or 0.0))
        embed.add_field(name="Shorts", value=money(ev.short_usd or 0.0))
        embed.add_field(name="Range", value=f"{price_text(ev.low or 0.0)}–"
                                            f"{price_text(ev.high or 0.0)}")
    else:
        embed.add_field(name="Range", value=f"{price_text(ev.low or 0.0)}–"
                                            f"{price_text(ev.high or 0.0)}")
        embed.add_field(name="Size", value=f"{money(ev.notional_usd or 0.0)} {ev.side}s")
        embed.add_field(name="Distance", value=pct_text(ev.distance_pct or 0.0))
    if ev.kind is not EventKind.TOP_DIGEST:  # many symbols, many prices: in the text
        embed.add_field(name="Price", value=price_text(ev.price))
    embed.set_footer(text=f"{time_text(ev.ts_ms, tz)} · {source}")
    return embed
