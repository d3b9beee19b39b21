"""Discord adapter (discord.py 2.x): slash commands mirroring the command table, channel alerts.

Every slash command turns its typed options back into the core's command line
(``/heatmap BTC 24h``) so wording and validation live in :mod:`bot.commands` only. Replies are
embeds with the chart PNG attached; chart commands check their arguments, then defer (errors
answer at once and privately, charts publicly). Alerts post to the bound
channel with the outbox dedupe key as the message nonce (discord.py sends
``enforce_nonce``), so a resend after a crash does not make a second message.

Channel alerts: ``/subscribe`` run in a guild channel by a member with Manage Channels binds
that channel (the core's admin check; ``Caller.is_admin`` = Manage Channels there).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import traceback
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import partial
from io import BytesIO
from typing import Any, Literal

import aiohttp

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
from discord import app_commands

from bot.alerts.events import AlertEvent
from bot.commands.core import APOLOGY, CommandCore
from bot.commands.market_cmds import liq_map
from bot.commands.reply import WEB_LABEL, Caller, Reply
from bot.commands.table import BY_NAME, COMMANDS
from bot.config import DiscordSection
from bot.discord_embeds import alert_embed, clip, reply_embed
from bot.dispatcher import Alert
from bot.errors import (
    ConfigError,
    EditFailedError,
    PermanentDeliveryError,
    PlatformUnreachableError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from bot.estimates import WINDOWS_H
from bot.platform_start import START_RETRY, token_source
from bot.redact import DISCORD, install, redact, register
from bot.store import Chat

log = logging.getLogger(__name__)

PLATFORM = "discord"
ChartFn = Callable[[AlertEvent], Awaitable[Reply | None]]


class LiqClient(discord.Client):
    """A discord.Client that carries the command core (set by :meth:`DiscordAdapter.start`)."""

    def __init__(self, **options: Any) -> None:
        # Slash commands need no privileged intent; guilds keeps channel/guild objects usable.
        intents = discord.Intents.none()
        intents.guilds = True
        # A 429 longer than 30 s (discord.py's minimum) raises RateLimited instead of sleeping
        # inside the request: the dispatcher holds that channel and serves the others.
        super().__init__(intents=intents, max_ratelimit_timeout=30.0, **options)
        self.core: CommandCore | None = None
        self.tree = build_tree(self)


class ShardedLiqClient(LiqClient, discord.AutoShardedClient):
    """The same client over several gateway connections (discord.py's AutoShardedClient)."""


def make_client(shards: int | str) -> LiqClient:
    """``[discord] shards``: 0 = one connection; N = N shards; "auto" = Discord's count."""
    if shards == 0:
        return LiqClient()
    return ShardedLiqClient(shard_count=None if shards == "auto" else int(shards))


# --- interaction → core → reply ------------------------------------------------------------
def caller_for(interaction: discord.Interaction) -> Caller:
    """Who asked: guild channels are groups; admin = Manage Channels in that channel."""
    in_guild = interaction.guild_id is not None
    return Caller(PLATFORM, str(interaction.channel_id), str(interaction.user.id),
                  is_group=in_guild,
                  is_admin=in_guild and interaction.permissions.manage_channels,
                  display_name=interaction.user.display_name)


def command_text(name: str, *args: object, rest: str | None = None) -> str:
    """``/name a b [rest]``; whitespace inside an option is dropped so it stays one argument."""
    parts = [f"/{name}"] + ["".join(str(a).split()) for a in args if a is not None]
    if rest:
        parts.append(" ".join(rest.split()))
    return " ".join(p for p in parts if p)


async def run_command(interaction: discord.Interaction, name: str, *args: object,
                      rest: str | None = None) -> None:
    """Answer one slash command through the core."""
    core: CommandCore | None = getattr(interaction.client, "core", None)
    if core is None:
        await interaction.response.send_message("Starting up, try again in a moment.",
                                                ephemeral=True)
        return
    # Rendering a chart can take longer than Discord's 3 s answer window, so the answer is
    # deferred — but only once the arguments passed (the core calls ``before_render`` then):
    # Discord keeps the visibility of the defer, and an error must stay private (ephemeral)
    # while a chart is public.
    # The same for a command that may first fetch an untracked symbol (a few seconds).
    slow = BY_NAME[name].chart or BY_NAME[name].fetches
    defer = partial(interaction.response.defer, thinking=True) if slow else None
    reply = await core.handle(command_text(name, *args, rest=rest), caller_for(interaction),
                              before_render=defer)
    await send_reply(interaction, f"/{name}", reply or Reply("Unknown command.", error=True))


async def send_reply(interaction: discord.Interaction, title: str, reply: Reply) -> None:
    """The reply and its follow-ups as embeds (first as the response, the rest as follow-ups)."""
    for i, part in enumerate((reply, *reply.followups)):
        embed, file = reply_embed(title, part)
        kwargs: dict[str, Any] = {"embed": embed, "ephemeral": part.error}
        if file is not None:
            kwargs["file"] = file
        if part.web_url:  # the chart's interactive page (bot.web) as a link button
            kwargs["view"] = discord.ui.View().add_item(discord.ui.Button(
                label=WEB_LABEL, url=part.web_url, style=discord.ButtonStyle.link))
        if i == 0 and not interaction.response.is_done():
            await interaction.response.send_message(**kwargs)
        else:
            await interaction.followup.send(**kwargs)


async def on_tree_error(interaction: discord.Interaction,
                        error: app_commands.AppCommandError) -> None:
    """Log (tokens redacted) and apologise; never let one command take the bot down."""
    name = interaction.command.name if interaction.command else "?"
    original = getattr(error, "original", None) or error
    text = redact("".join(traceback.format_exception(original)),
                  also=(interaction.client.http.token, interaction.token))
    log.error("discord /%s failed (guild=%s channel=%s):\n%s", name, interaction.guild_id,
              interaction.channel_id, text)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(APOLOGY, ephemeral=True)
        else:
            await interaction.response.send_message(APOLOGY, ephemeral=True)
    except Exception as exc:  # the interaction may have expired; the log line is what counts
        log.warning("discord /%s: could not send the apology (%s)", name, type(exc).__name__)


async def symbol_autocomplete(interaction: discord.Interaction,
                              current: str) -> list[app_commands.Choice[str]]:
    """Tracked symbols containing what was typed so far (Discord shows at most 25)."""
    core: CommandCore | None = getattr(interaction.client, "core", None)
    typed = "".join(current.split()).upper()
    return [app_commands.Choice(name=s, value=s) for s in (core.symbols if core else ())
            if typed in s.upper()][:25]


# --- the slash commands: signatures drive Discord's UI; descriptions come from the table -----
SYMBOL = "Symbol, e.g. BTC (default: the first tracked one)"
WINDOW_CHOICES = [app_commands.Choice(name=w, value=w) for w in WINDOWS_H]


async def start(interaction: discord.Interaction) -> None:
    await run_command(interaction, "start")


async def help_(interaction: discord.Interaction) -> None:
    await run_command(interaction, "help")


@app_commands.describe(symbol=SYMBOL)
async def levels(interaction: discord.Interaction, symbol: str | None = None) -> None:
    await run_command(interaction, "levels", symbol)


@app_commands.describe(symbol=SYMBOL, window="Time window (default 24h)")
@app_commands.choices(window=WINDOW_CHOICES)
async def heatmap(interaction: discord.Interaction, symbol: str | None = None,
                  window: str | None = None) -> None:
    await run_command(interaction, "heatmap", symbol, window)


@app_commands.describe(symbol=SYMBOL,
                       price="Optional: shade the path to this price, e.g. 90k or 90,000")
async def map_(interaction: discord.Interaction, symbol: str | None = None,
               price: str | None = None) -> None:
    if price is not None and symbol is None:  # positional in the core: fill the default
        core = getattr(interaction.client, "core", None)
        symbol = core.symbols[0] if core else None
    await run_command(interaction, "map", symbol, price)


@app_commands.describe(symbol="Symbol, e.g. BTC", price="Target price, e.g. 90k or 90,000")
async def ifbreak(interaction: discord.Interaction, symbol: str, price: str) -> None:
    await run_command(interaction, "ifbreak", symbol, price)


@app_commands.describe(symbol="Symbol, e.g. BTC", side="Your position's side",
                       entry="Entry price, e.g. 95k", leverage="Leverage, e.g. 10x",
                       size_usd="Optional position size (notional), e.g. 50k: picks the tier",
                       watch_pct="Optional: watch it here, alert within this % of your "
                                 "liquidation")
@app_commands.choices(side=[app_commands.Choice(name=s, value=s) for s in ("long", "short")])
async def mypos(interaction: discord.Interaction, symbol: str, side: str, entry: str,
                leverage: str, size_usd: str | None = None,
                watch_pct: float | None = None) -> None:
    watch = ("watch", f"{watch_pct:g}") if watch_pct is not None else (None, None)
    await run_command(interaction, "mypos", symbol, side, entry, leverage, size_usd, *watch)


@app_commands.describe(symbol="Symbol to alert on, e.g. BTC",
                       min_usd="Smallest cluster to alert on, e.g. 100m (USD)",
                       within_pct="Alert when price is within this % of a cluster, e.g. 0.5",
                       follow="Estimated clusters (a model), confirmed ones (real positions on "
                              "Hyperliquid) or both")
async def subscribe(interaction: discord.Interaction, symbol: str, min_usd: str | None = None,
                    within_pct: float | None = None,
                    follow: Literal["estimate", "confirmed", "both"] | None = None) -> None:
    if within_pct is not None and min_usd is None:  # positional in the core: fill the default
        core = getattr(interaction.client, "core", None)
        min_usd = f"{core.config.alerts.min_usd:.15g}" if core else None
    pct = None if within_pct is None else f"{within_pct:g}"
    await run_command(interaction, "subscribe", symbol, min_usd, pct, follow)


@app_commands.describe(symbol="Subscribed symbol, e.g. BTC",
                       mode="on: new / grown clusters in one digest; off: one message each")
async def quiet(interaction: discord.Interaction, symbol: str,
                mode: Literal["on", "off"]) -> None:
    await run_command(interaction, "quiet", symbol, mode)


@app_commands.describe(symbol="Symbol to stop alerts for, e.g. BTC")
async def unsubscribe(interaction: discord.Interaction, symbol: str) -> None:
    await run_command(interaction, "unsubscribe", symbol)


@app_commands.describe(symbol="Symbol to alert on, e.g. BTC",
                       min_usd="Alert on each liquidation at least this big, e.g. 1m (USD)",
                       sum_usd="…and on all of them when a window sums to this, e.g. 10m")
async def subscribe_liqs(interaction: discord.Interaction, symbol: str,
                         min_usd: str | None = None, sum_usd: str | None = None) -> None:
    if sum_usd is not None and min_usd is None:  # positional in the core: fill the default
        core = getattr(interaction.client, "core", None)
        min_usd = f"{core.config.tape.min_usd:.15g}" if core else None
    await run_command(interaction, "subscribe_liqs", symbol, min_usd, sum_usd)


@app_commands.describe(symbol="Symbol to stop liquidation alerts for, e.g. BTC")
async def unsubscribe_liqs(interaction: discord.Interaction, symbol: str) -> None:
    await run_command(interaction, "unsubscribe_liqs", symbol)


async def alerts(interaction: discord.Interaction) -> None:
    await run_command(interaction, "alerts")


@app_commands.describe(symbol="Symbol, e.g. BTC", price="Price level, e.g. 94k or 94,000",
                       note="Optional note shown in the alert")
async def level(interaction: discord.Interaction, symbol: str, price: str,
                note: str | None = None) -> None:
    await run_command(interaction, "level", symbol, price, rest=note)


@app_commands.describe(level_id="The level's ID from /alerts (w3 for a position watch)")
async def unlevel(interaction: discord.Interaction, level_id: str) -> None:
    await run_command(interaction, "unlevel", level_id)


async def status(interaction: discord.Interaction) -> None:
    await run_command(interaction, "status")


async def symbols(interaction: discord.Interaction) -> None:
    await run_command(interaction, "symbols")


@app_commands.describe(symbol=SYMBOL, window="Time window (default 30d)")
async def accuracy(interaction: discord.Interaction, symbol: str | None = None,
                   window: Literal["7d", "30d", "all"] | None = None) -> None:
    await run_command(interaction, "accuracy", symbol, window)


@app_commands.describe(count="How many clusters (1–25, default 5)",
                       side="Only long or only short clusters (default both)")
async def top(interaction: discord.Interaction, count: app_commands.Range[int, 1, 25] | None = None,
              side: Literal["long", "short"] | None = None) -> None:
    await run_command(interaction, "top", None if count is None else str(count), side)


@app_commands.describe(count="How many clusters (1–25, default 5)",
                       side="Only long or only short clusters (default both)")
async def subscribe_top(interaction: discord.Interaction,
                        count: app_commands.Range[int, 1, 25] | None = None,
                        side: Literal["long", "short"] | None = None) -> None:
    await run_command(interaction, "subscribe_top", None if count is None else str(count), side)


async def unsubscribe_top(interaction: discord.Interaction) -> None:
    await run_command(interaction, "unsubscribe_top")


CALLBACKS: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
    "start": start, "help": help_, "levels": levels, "heatmap": heatmap, "map": map_,
    "ifbreak": ifbreak, "mypos": mypos,
    "subscribe": subscribe, "quiet": quiet, "unsubscribe": unsubscribe,
    "subscribe_liqs": subscribe_liqs,
    "unsubscribe_liqs": unsubscribe_liqs, "alerts": alerts, "level": level,
    "unlevel": unlevel, "status": status, "symbols": symbols, "accuracy": accuracy,
    "top": top, "subscribe_top": subscribe_top, "unsubscribe_top": unsubscribe_top,
}


def build_tree(client: discord.Client) -> app_commands.CommandTree:
    """One app command per entry of the command table (a missing callback fails here)."""
    tree = app_commands.CommandTree(client)
    for c in COMMANDS:
        if c.name not in CALLBACKS:
            raise RuntimeError(f"command /{c.name} has no Discord callback")
        cmd: app_commands.Command[Any, ..., None] = app_commands.Command(
            name=c.name, description=clip(c.help, 100), callback=CALLBACKS[c.name])
        if "symbol" in cmd._params:
            cmd.autocomplete("symbol")(symbol_autocomplete)
        tree.add_command(cmd)
    tree.error(on_tree_error)
    return tree


# --- alerts ---------------------------------------------------------------------------------
def alert_nonce(dedupe_key: str) -> str:
    """Discord nonces are at most 25 characters: a 24-hex digest of the outbox dedupe key."""
    return hashlib.blake2b(dedupe_key.encode(), digest_size=12).hexdigest()


class DiscordNotifier:
    """Posts outbox alerts to channels (the dispatcher's Notifier for platform "discord")."""

    def __init__(self, client: discord.Client, chart: ChartFn | None = None) -> None:
        self.client = client
        self.chart = chart
        self.online = False  # logged in (the HTTP session exists); set by the adapter

    async def send(self, chat: Chat, alert: Alert) -> str:
        """Post the alert (with the symbol's map when charts are on); returns the message id."""
        channel = self._channel(chat)
        embed = alert_embed(alert, chat.timezone)
        kwargs: dict[str, Any] = {}
        png = await self._chart(alert.event)
        if png is not None:
            embed, kwargs["file"] = _with_image(embed, png)
        if alert.reply_to is not None:  # a receipt replies to its break message
            kwargs["reference"] = discord.MessageReference(
                message_id=int(alert.reply_to), channel_id=int(chat.chat_id),
                fail_if_not_exists=False)
        with _delivery_errors(chat):
            msg = await channel.send(embed=embed, nonce=alert_nonce(alert.dedupe_key), **kwargs)
        return str(msg.id)

    async def edit(self, chat: Chat, alert: Alert) -> None:
        """Replace the embed of message ``alert.updates`` (PATCH; an attached map stays as a
        file). Unknown Message (deleted) → EditFailedError: the update goes out as new."""
        channel = self._channel(chat)
        assert alert.updates is not None
        message = channel.get_partial_message(int(alert.updates))
        with _delivery_errors(chat, editing=True):
            await message.edit(embed=alert_embed(alert, chat.timezone))

    def _channel(self, chat: Chat) -> discord.PartialMessageable:
        if not self.online:
            raise TransientDeliveryError("discord client not logged in", retry_after_s=5.0)
        try:
            return self.client.get_partial_messageable(int(chat.chat_id))
        except ValueError as exc:
            raise PermanentDeliveryError(f"not a Discord channel id: {chat.chat_id!r}") from exc

    async def _chart(self, event: AlertEvent) -> Reply | None:
        if self.chart is None:
            return None
        try:
            reply = await self.chart(event)
        except Exception:  # an alert without its chart beats no alert
            log.exception("alert chart for %s failed; sending without it", event.symbol)
            return None
        return reply if reply is not None and reply.png is not None else None


UNKNOWN_MESSAGE = 10008  # Discord's JSON error code for a deleted / unknown message


@contextmanager
def _delivery_errors(chat: Chat, editing: bool = False) -> Iterator[None]:
    """discord.py errors of an alert post (or edit) → the dispatcher's delivery errors."""
    try:
        yield
    except discord.NotFound as exc:
        if editing and exc.code == UNKNOWN_MESSAGE:
            raise EditFailedError(f"Discord 404: {exc.text}") from exc
        raise PermanentDeliveryError(f"Discord {exc.status} in channel {chat.chat_id}: "
                                     f"{exc.text or 'not found'}") from exc
    except discord.Forbidden as exc:  # no access, channel deleted
        raise PermanentDeliveryError(f"Discord {exc.status} in channel {chat.chat_id}: "
                                     f"{exc.text or 'no access'}") from exc
    except discord.RateLimited as exc:
        raise TransientDeliveryError("Discord rate limit", exc.retry_after) from exc
    except discord.DiscordServerError as exc:
        raise TransientDeliveryError(f"Discord {exc.status}") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:  # still limited after discord.py's retries (or Cloudflare's)
            raise TransientDeliveryError("Discord 429 after retries", 5.0) from exc
        if 400 <= exc.status < 500 and exc.status != 401:  # refused (400, 413, …): fail
            if editing:  # e.g. a message that can no longer be edited: send a new one
                raise EditFailedError(f"Discord {exc.status}: {exc.text}") from exc
            log.warning("discord: alert to channel %s rejected: %s %s", chat.chat_id,
                        exc.status, exc.text)
            raise RejectedDeliveryError(f"Discord {exc.status}: {exc.text}") from exc
        raise TransientDeliveryError(f"Discord {exc.status}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TransientDeliveryError(f"Discord unreachable: {type(exc).__name__}") from exc


def _with_image(embed: discord.Embed, chart: Reply) -> tuple[discord.Embed, discord.File]:
    assert chart.png is not None
    embed.set_image(url=f"attachment://{chart.filename}")
    return embed, discord.File(BytesIO(chart.png), filename=chart.filename)


# --- the adapter ----------------------------------------------------------------------------
class DiscordAdapter:
    """discord.py inside the service's loop: login, sync commands, gateway in a task.

    ``gateway=False`` logs in over REST only (tests: no websocket). ``alert_charts`` attaches
    the symbol's liquidation map (cached per estimate) to alerts.
    """

    platform = PLATFORM

    def __init__(self, settings: DiscordSection, *, gateway: bool = True,
                 alert_charts: bool = True) -> None:
        self.settings = settings
        self.client = make_client(settings.shards)
        self.alert_charts = alert_charts
        self._gateway = gateway
        self._notifier = DiscordNotifier(self.client)
        self._task: asyncio.Task[None] | None = None
        self._first_error: str | None = None

    @property
    def notifier(self) -> DiscordNotifier:
        return self._notifier

    @property
    def tree(self) -> app_commands.CommandTree:
        return self.client.tree

    async def start(self, core: CommandCore) -> None:
        await self.start_notifier(core)
        try:
            await self.sync()
        except UNREACHABLE as exc:  # REST went away after the login
            await self._logout()
            raise _unreachable(exc) from exc
        if self._gateway:
            self._task = asyncio.create_task(self._connect(), name="discord-gateway")
            self._task.add_done_callback(_gateway_done)

    async def start_notifier(self, core: CommandCore) -> None:
        """Log in over REST (alerts are REST calls); :meth:`start` adds commands and the
        gateway."""
        if self.settings.token is None:
            raise ConfigError("[discord] is enabled but no token was loaded")
        self.client.core = core
        token = self.settings.token.reveal()
        register(token, DISCORD)
        install()  # discord.py logs interaction tokens at DEBUG: redact at the root handlers
        try:
            await self.client.login(token)
        except discord.LoginFailure:
            await self._logout()
            raise ConfigError(f"discord: Discord rejected the bot token in "
                              f"{token_source(self.settings, PLATFORM)}") from None
        except UNREACHABLE as exc:  # ``liqbot run`` tries again (bot.platform_start)
            await self._logout()
            raise _unreachable(exc) from exc
        if self.alert_charts:
            caller = Caller(PLATFORM, "alerts", "alerts")
            self._notifier.chart = lambda ev: liq_map(core, caller, (ev.symbol,))
        self._notifier.online = True

    async def sync(self) -> list[str]:
        """Register the slash commands: per configured guild (instant), else globally."""
        targets: list[discord.Object | None] = [discord.Object(g) for g in self.settings.guild_ids]
        targets = targets or [None]
        done = []
        for guild in targets:
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            where = f"guild {guild.id}" if guild is not None else "global"
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:  # e.g. invited without applications.commands
                log.warning("discord: command sync (%s) failed: %s %s", where, exc.status,
                            exc.text)
                continue
            log.info("discord: %d commands synced (%s)", len(synced), where)
            done.append(where)
        return done

    async def _logout(self) -> None:
        """Close the HTTP session of a failed login: a later :meth:`start` logs in afresh
        (discord.py reuses the session's connector, closed with it: a new one then)."""
        self._notifier.online = False
        await self.client.http.close()
        self.client.http.connector = discord.utils.MISSING

    async def _connect(self) -> None:
        """The gateway: discord.py reconnects once connected, but a first connection that
        fails kills its loop (``ws`` is still None there): retried here, :data:`START_RETRY`
        apart, one line each."""
        attempt = 0
        discord_log = logging.getLogger("discord.client")
        discord_log.addFilter(self._first_connect_line)
        try:
            while True:
                try:
                    await self.client.connect(reconnect=True)
                    return
                except Exception as exc:
                    if self.client.is_closed() or self.client.ws is not None:
                        raise
                    wait = START_RETRY.delay(attempt, None)
                    attempt += 1
                    log.warning("discord: gateway connection attempt %d failed (%s); retrying "
                                "in %.0f s (commands wait; alerts go out over REST)", attempt,
                                self._first_error or type(exc).__name__, wait)
                    await asyncio.sleep(wait)
        finally:
            discord_log.removeFilter(self._first_connect_line)

    def _first_connect_line(self, record: logging.LogRecord) -> bool:
        """Before the first gateway connection, discord.py's reconnect line is left out
        (:meth:`_connect` logs the attempt); its error is kept for that line."""
        if self.client.ws is None and "Attempting a reconnect" in str(record.msg):
            self._first_error = getattr(record, "error", None)
            return False
        return True

    async def stop(self) -> None:
        self._notifier.online = False
        await self.client.close()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (asyncio.CancelledError, Exception):  # closing anyway: never block shutdown
                task.cancel()


UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError)


def _unreachable(exc: BaseException) -> PlatformUnreachableError:
    text = f"{exc.status} {exc.text}" if isinstance(exc, discord.HTTPException) else str(exc)
    return PlatformUnreachableError(f"discord: Discord's API at {discord.http.Route.BASE} "
                                    f"cannot be reached: {type(exc).__name__}: {text}")


def _reconnect_line(record: logging.LogRecord) -> bool:
    """discord.py logs each gateway reconnect with a traceback: one line instead."""
    if record.exc_info and str(record.msg).startswith("Attempting a reconnect"):
        exc = record.exc_info[1]
        error = record.__dict__["error"] = f"{type(exc).__name__}: {exc}"  # for the adapter
        record.msg = f"discord: gateway lost, {record.getMessage()} ({error})"
        record.args, record.exc_info, record.exc_text = None, None, None
    return True


logging.getLogger("discord.client").addFilter(_reconnect_line)


def _gateway_done(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord gateway stopped: %s", task.exception())
