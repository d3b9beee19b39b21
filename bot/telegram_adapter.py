"""Telegram adapter (python-telegram-bot 22): commands → :class:`CommandCore`, replies and
outbox alerts → Bot API messages.

Runs in the service's asyncio loop (``initialize → start → updater.start_polling``; stopped in
reverse). Every command of :data:`bot.commands.table.COMMANDS` gets a ``CommandHandler`` and a
menu entry; inline buttons carry the command text as ``callback_data``. Text is sent as HTML
with every character escaped (:mod:`bot.telegram_format`). In groups, commands marked
``admin_in_groups`` ask ``getChatMember`` whether the caller is an admin (cached for
``admin_ttl_s``). The token is redacted from every log record (:mod:`bot.redact`).

Commands sent while the bot was down are fetched at start (no ``drop_pending_updates``);
those older than ``[telegram] stale_command_minutes`` are answered "please resend" and not
acted on. Replies are retried on 5xx / network errors (:data:`REPLY_RETRY`).

``[telegram] mode = "webhook"``: instead of polling, PTB's own webhook server
(``updater.start_webhook``, tornado) listens on ``listen:port/url_path`` and calls setWebhook
with ``webhook_url`` and the secret token (requests without it get 403). Any number of
replicas may serve one URL: each sets the same webhook at start, and none deletes it at stop
(the others still serve it; with none left, Telegram keeps the updates, as with polling's
backlog). Polling mode deletes a webhook at start (PTB), so switching back needs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram import Chat as TgChat
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import redact
from bot.commands.core import APOLOGY, CommandCore
from bot.commands.parse import split_command
from bot.commands.reply import Caller, Reply
from bot.commands.table import BY_NAME, COMMANDS
from bot.config import TelegramSection
from bot.dispatcher import Alert
from bot.errors import (
    ConfigError,
    EditFailedError,
    PermanentDeliveryError,
    PlatformUnreachableError,
    RejectedDeliveryError,
    TransientDeliveryError,
    UserInputError,
)
from bot.market.errors import RetryPolicy
from bot.market.symbols import short_name
from bot.platform_start import token_source
from bot.store import Chat
from bot.telegram_format import caption_and_rest, escape, keyboard, split_html
from bot.telegram_limits import ALERT, ChatRateLimiter, retry_after_s

log = logging.getLogger(__name__)
T = TypeVar("T")

PLATFORM = "telegram"
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
REDACTED = redact.TELEGRAM
GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)
ADMIN_STATUSES = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
# Command replies: 3 tries, 1 s then 2 s apart (the user is waiting; alerts have the outbox).
REPLY_RETRY = RetryPolicy(attempts=3)
# A BadRequest with one of these means this chat (or forum topic) is gone for good.
GONE = ("chat not found", "message thread not found", "topic_deleted", "topic closed",
        "group chat was deactivated", "peer_id_invalid")


def _chat_id(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # "@channelname"


class TelegramNotifier:
    """The dispatcher's Notifier for platform "telegram": alert text as escaped HTML.

    Alerts are not retried on a 429 inside PTB (``rate_limit_args=ALERT``): the ``RetryAfter``
    becomes a TransientDeliveryError with its ``retry_after``, and the dispatcher holds that
    chat alone (:mod:`bot.telegram_limits`)."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.app = app
        self.started = False

    @property
    def _rl_args(self) -> str | None:
        """ALERT for our limiter; nothing for another (or none: the bench's baselines)."""
        return ALERT if isinstance(self.app.bot.rate_limiter, ChatRateLimiter) else None

    def wait_s(self, chat: Chat) -> float:
        """Seconds before ``chat`` could receive without waiting (its group's 20 msg/min)."""
        limiter = self.app.bot.rate_limiter
        if isinstance(limiter, ChatRateLimiter):
            return limiter.wait_s(_chat_id(chat.chat_id))
        return 0.0

    async def send(self, chat: Chat, alert: Alert) -> str | None:
        """Send the alert (split at 4096 characters); returns the first message's id."""
        if not self.started:
            raise TransientDeliveryError("the Telegram adapter is not running yet")
        thread = int(chat.thread_id) if chat.thread_id else None
        first: str | None = None
        # A receipt replies to its break message (sent even if that one was deleted).
        reply = (ReplyParameters(int(alert.reply_to), allow_sending_without_reply=True)
                 if alert.reply_to is not None else None)
        with _delivery_errors(chat):
            for chunk in split_html(alert.text):
                msg = await self.app.bot.send_message(_chat_id(chat.chat_id), chunk,
                                                      parse_mode=ParseMode.HTML,
                                                      message_thread_id=thread,
                                                      reply_parameters=reply if first is None
                                                      else None,
                                                      rate_limit_args=self._rl_args)
                first = first or str(msg.message_id)
        return first

    async def edit(self, chat: Chat, alert: Alert) -> None:
        """Replace the text of message ``alert.updates`` (editMessageText; editMessageCaption
        for a photo). A message that cannot be edited (deleted, too old) → EditFailedError."""
        if not self.started:
            raise TransientDeliveryError("the Telegram adapter is not running yet")
        assert alert.updates is not None
        text = split_html(alert.text)[0]
        target = {"chat_id": _chat_id(chat.chat_id), "message_id": int(alert.updates),
                  "parse_mode": ParseMode.HTML, "rate_limit_args": self._rl_args}
        with _delivery_errors(chat, editing=True):
            try:
                try:
                    await self.app.bot.edit_message_text(text, **target)
                except BadRequest as exc:
                    if "no text in the message" not in exc.message.lower():
                        raise
                    await self.app.bot.edit_message_caption(caption=text[:1024], **target)
            except BadRequest as exc:
                if "not modified" not in exc.message.lower():
                    raise
                # a resend after a lost answer: the message already shows this text


@contextmanager
def _delivery_errors(chat: Chat, editing: bool = False) -> Iterator[None]:
    """Telegram errors of an alert send (or edit) → the dispatcher's delivery errors."""
    try:
        yield
    except Forbidden as exc:  # blocked by the user, kicked from the group
        raise PermanentDeliveryError(f"forbidden: {exc.message}") from exc
    except ChatMigrated as exc:
        raise PermanentDeliveryError(
            f"group became supergroup {exc.new_chat_id}; subscribe again there") from exc
    except RetryAfter as exc:
        raise TransientDeliveryError(f"flood control: {exc.message}",
                                     retry_after_s=retry_after_s(exc)) from exc
    except BadRequest as exc:  # before NetworkError: PTB's BadRequest subclasses it
        if any(g in exc.message.lower() for g in GONE):
            log.warning("telegram: chat %s (thread %s) is gone: %s", chat.chat_id,
                        chat.thread_id or "-", exc.message)
            raise PermanentDeliveryError(f"bad request: {exc.message}") from exc
        if editing:  # message deleted, too old, not ours…: the update goes out as a new one
            raise EditFailedError(f"bad request: {exc.message}") from exc
        log.warning("telegram: alert to chat %s (thread %s) rejected: %s", chat.chat_id,
                    chat.thread_id or "-", exc.message)
        # Neither transient nor a dead chat: this one message fails, the chat stays.
        raise RejectedDeliveryError(f"bad request: {exc.message}") from exc
    except NetworkError as exc:  # TimedOut, 5xx, connection errors
        raise TransientDeliveryError(f"network: {exc.message}") from exc
    except TelegramError as exc:  # InvalidToken, Conflict, …: not this chat's fault
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc.message}") from exc


class TelegramAdapter:
    """Telegram as a chat platform (see the module docstring)."""

    platform = PLATFORM

    def __init__(self, settings: TelegramSection, *, admin_ttl_s: float = 60.0,
                 poll_timeout_s: float = 10.0, max_retries: int = 2,
                 concurrent_updates: int = 4) -> None:
        if settings.token is None:
            raise ValueError("TelegramSection.token is not set (load the config with secrets)")
        self._token = settings.token.reveal()
        if settings.mode == "webhook" and settings.secret_token is None:
            raise ValueError("TelegramSection.secret_token is not set (webhook mode)")
        self.settings = settings
        self.admin_ttl_s = admin_ttl_s
        self.poll_timeout_s = poll_timeout_s
        self.stale_after_s = settings.stale_command_minutes * 60
        # Before building: PTB logs its API URLs (token included) at DEBUG while it builds.
        redact.register(self._token, redact.TELEGRAM)
        if settings.secret_token is not None:  # PTB logs setWebhook's parameters at DEBUG
            redact.register(settings.secret_token.reveal(), redact.SECRET)
        redact.install()
        # 30 msg/s overall, 20 msg/min per group; a 429 holds only its own chat.
        limiter = ChatRateLimiter(overall_max_rate=30, overall_time_period=1,
                                  group_max_rate=20, group_time_period=60,
                                  max_retries=max_retries)
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder().token(self._token)
            .base_url(settings.base_url or DEFAULT_BASE_URL)
            .rate_limiter(limiter).job_queue(None).concurrent_updates(concurrent_updates)
            .build())
        self._notifier = TelegramNotifier(self.app)
        self._admins: dict[tuple[int, int], tuple[bool, float]] = {}
        self._core: CommandCore | None = None

    @property
    def notifier(self) -> TelegramNotifier:
        return self._notifier

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, core: CommandCore) -> None:
        """Register handlers, set the command menu and start long polling (or the webhook
        server)."""
        self._core = core
        redact.install()  # again: the root handlers may have been set up since __init__
        app = self.app
        if not app.handlers:  # once: a start the platform was down for is tried again
            for command in COMMANDS:
                app.add_handler(CommandHandler(command.name, self._on_command,
                                               filters=filters.UpdateType.MESSAGE))
            app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE
                                           & filters.UpdateType.MESSAGE, self._on_command))
            app.add_handler(CallbackQueryHandler(self._on_button))
            app.add_error_handler(self._on_error)
        try:
            await app.initialize()
            await app.bot.set_my_commands([BotCommand(c.name, c.help[:256]) for c in COMMANDS])
            await app.start()
            assert app.updater is not None
            if self.settings.mode == "webhook":
                await self._start_webhook()
            else:
                await app.updater.start_polling(
                    timeout=timedelta(seconds=self.poll_timeout_s), drop_pending_updates=False,
                    allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
        except BaseException as exc:
            await self.stop()
            if (err := self._start_error(exc)) is exc:
                raise
            raise err from None
        self._notifier.started = True
        s = self.settings
        log.info("telegram: %s as @%s", f"webhook {s.webhook_url} → {s.listen}:{s.port}"
                 f"{s.url_path or '/'}" if s.mode == "webhook" else "polling", app.bot.username)

    def _start_error(self, exc: BaseException) -> BaseException:
        """What a failed start raises: a rejected token → ConfigError naming where it came
        from (PTB's message contains the token), the Bot API unreachable →
        PlatformUnreachableError (``liqbot run`` retries, bot.platform_start), else ``exc``."""
        url = self.settings.base_url or DEFAULT_BASE_URL
        if isinstance(exc, InvalidToken):
            return ConfigError(f"telegram: the Bot API at {url} rejected the token in "
                               f"{token_source(self.settings, PLATFORM)}")
        if isinstance(exc, NetworkError | RetryAfter) and not isinstance(exc, BadRequest):
            return PlatformUnreachableError(f"telegram: the Bot API at {url} cannot be reached: "
                                            f"{redact.redact(exc.message)}")
        return exc

    async def _start_webhook(self) -> None:
        """PTB's webhook server; setWebhook with the secret, keeping pending updates."""
        s, updater = self.settings, self.app.updater
        assert updater is not None and s.secret_token is not None
        try:
            await updater.start_webhook(
                listen=s.listen, port=s.port, url_path=s.url_path, webhook_url=s.webhook_url,
                secret_token=s.secret_token.reveal(), drop_pending_updates=False,
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
        except OSError as exc:  # the port is taken, the address not ours
            raise ConfigError(f"telegram: the webhook server cannot listen on {s.listen}:"
                              f"{s.port}: {exc.strerror or exc} (telegram.listen, "
                              "telegram.port)") from exc

    async def stop(self) -> None:
        """Stop polling (or the webhook server: the webhook itself stays set, see the module
        docstring), the application and its HTTP clients (idempotent)."""
        self._notifier.started = False
        app = self.app
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()  # no-op when not initialized
        await app.bot.shutdown()  # closes HTTP clients a failed initialize() left open

    async def start_notifier(self, core: CommandCore) -> None:
        """Dispatch role: the Bot API client sends alerts; no update is received (no
        polling, no webhook), so this process answers no command."""
        redact.install()
        try:
            await self.app.initialize()  # getMe: checks the token
        except BaseException as exc:
            await self.stop()
            if (err := self._start_error(exc)) is exc:
                raise
            raise err from None
        self._notifier.started = True
        log.info("telegram: sending alerts as @%s (no commands here)", self.app.bot.username)

    # --- updates --------------------------------------------------------------------------------
    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command message: ask the core, answer in the same chat and topic."""
        msg = update.message
        if msg is None or msg.text is None or msg.from_user is None:
            return
        caller = await self._caller(msg.chat, msg.from_user, msg, msg.text)
        # The backlog is fetched at start: a command that waited out a long downtime is not
        # acted on (its intent may be stale); the sender is told to send it again.
        age_s = time.time() - msg.date.timestamp()
        if age_s > self.stale_after_s:
            assert self._core is not None, "start() first"
            reply = self._core.stale(msg.text, caller, age_s)
            if reply is not None:
                await self.send_reply(_chat_id(caller.chat_id),
                                      int(caller.thread_id) if caller.thread_id else None, reply)
            return
        await self._answer(caller, msg.text)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button: its callback_data is a command line."""
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()  # stops the button's spinner; harmless if it fails (too old)
        except TelegramError as exc:
            log.info("telegram: answerCallbackQuery failed: %s", exc)
        if query.message is None or not isinstance(query.data, str):
            return
        message = query.message if isinstance(query.message, Message) else None
        caller = await self._caller(query.message.chat, query.from_user, message, query.data)
        await self._answer(caller, query.data)

    async def _answer(self, caller: Caller, text: str) -> None:
        """Ask the core and send its reply. A cold on-demand request (an untracked symbol to
        fetch first, seconds) gets "Computing SOL…" at once, which becomes the answer: its
        text is edited into a text answer; a chart is sent as a photo (a text message cannot
        become one) and the placeholder is then deleted. Kept or tracked symbols: no
        placeholder."""
        assert self._core is not None, "start() first"
        chat_id = _chat_id(caller.chat_id)
        thread = int(caller.thread_id) if caller.thread_id else None
        placeholder: list[Message] = []

        async def computing(symbol: str) -> None:
            try:
                placeholder.append(await _retried("sendMessage", partial(
                    self.app.bot.send_message, chat_id, escape(computing_text(symbol)),
                    parse_mode=ParseMode.HTML, message_thread_id=thread)))
            except TelegramError as exc:  # the answer still comes, as a new message
                log.warning("telegram: placeholder to chat %s failed: %s", chat_id, exc)

        reply = await self._core.handle(text, caller, before_fetch=computing)
        if placeholder:
            await self._replace(placeholder[0], chat_id, thread, reply)
        elif reply is not None:
            await self.send_reply(chat_id, thread, reply)

    async def _replace(self, placeholder: Message, chat_id: int | str, thread: int | None,
                       reply: Reply | None) -> None:
        """Turn the "Computing…" ``placeholder`` into ``reply`` (see :meth:`_answer`)."""
        bot = self.app.bot
        if reply is not None and reply.png is None:
            first, *rest = split_html(reply.text)
            markup = keyboard(reply.buttons, reply.web_url,
                              private=not str(chat_id).startswith("-"))
            try:
                await _retried("editMessageText", partial(
                    bot.edit_message_text, first, chat_id=chat_id,
                    message_id=placeholder.message_id, parse_mode=ParseMode.HTML,
                    reply_markup=None if rest else markup))
            except BadRequest as exc:  # deleted meanwhile…: the answer goes out as new
                log.info("telegram: placeholder edit failed (%s); sending anew", exc.message)
                await self.send_reply(chat_id, thread, reply)
                return
            await self._send_chunks(chat_id, thread, rest, markup)
            for follow in reply.followups:
                await self.send_reply(chat_id, thread, follow)
            return
        try:  # the chart first, then the placeholder goes: the chat is never empty-handed
            if reply is not None:
                await self.send_reply(chat_id, thread, reply)
        finally:
            try:
                await bot.delete_message(chat_id, placeholder.message_id)
            except TelegramError as exc:
                log.info("telegram: placeholder %s not deleted: %s", placeholder.message_id,
                         exc)

    async def _caller(self, chat: TgChat, user: User, msg: Message | None, text: str) -> Caller:
        """Who asked; ``is_admin`` is looked up only when the command needs it."""
        is_group = chat.type in GROUP_TYPES
        thread = None
        if msg is not None and chat.is_forum and msg.is_topic_message and msg.message_thread_id:
            thread = str(msg.message_thread_id)
        is_admin = not is_group
        # Configured bot admins pass the core's check anyway: no lookup for them.
        bot_admin = self._core is not None and str(user.id) in self._core.config.bot.admins
        if is_group and not bot_admin and _needs_admin(text):
            is_admin = await self._is_admin(chat, user, msg)
        return Caller(PLATFORM, str(chat.id), str(user.id), is_group=is_group,
                      is_admin=is_admin, thread_id=thread, display_name=user.full_name)

    async def _is_admin(self, chat: TgChat, user: User, msg: Message | None) -> bool:
        """Chat owner/administrator per getChatMember, cached for ``admin_ttl_s`` seconds."""
        if msg is not None and msg.sender_chat is not None and msg.sender_chat.id == chat.id:
            return True  # an anonymous admin posting as the group
        key = (chat.id, user.id)
        now = time.monotonic()
        cached = self._admins.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            member = await self.app.bot.get_chat_member(chat.id, user.id)
        except TelegramError as exc:
            log.warning("telegram: getChatMember failed for chat %s: %s", chat.id, exc)
            return False
        is_admin = member.status in ADMIN_STATUSES
        if len(self._admins) > 10_000:
            self._admins = {k: v for k, v in self._admins.items() if now < v[1]}
        self._admins[key] = (is_admin, now + self.admin_ttl_s)
        return is_admin

    async def send_reply(self, chat_id: int | str, thread: int | None, reply: Reply) -> None:
        """A core Reply as Telegram messages: photo with caption, or text; then follow-ups.
        Each message is retried on a 5xx or network error (:data:`REPLY_RETRY`)."""
        bot = self.app.bot
        markup = keyboard(reply.buttons, reply.web_url, private=not str(chat_id).startswith("-"))
        if reply.png is not None:
            caption, rest = caption_and_rest(reply.text)
            photo = InputFile(reply.png, filename=reply.filename)
            await _retried("sendPhoto", partial(
                bot.send_photo, chat_id, photo, caption=caption, parse_mode=ParseMode.HTML,
                message_thread_id=thread, reply_markup=None if rest else markup))
        else:
            rest = split_html(reply.text)
        await self._send_chunks(chat_id, thread, rest, markup)
        for follow in reply.followups:
            await self.send_reply(chat_id, thread, follow)

    async def _send_chunks(self, chat_id: int | str, thread: int | None, chunks: list[str],
                           markup: InlineKeyboardMarkup | None) -> None:
        """HTML chunks as messages, the buttons under the last one."""
        for i, chunk in enumerate(chunks):
            await _retried("sendMessage", partial(
                self.app.bot.send_message, chat_id, chunk, parse_mode=ParseMode.HTML,
                message_thread_id=thread, reply_markup=markup if i == len(chunks) - 1 else None))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log a handler's error (the token is redacted) and apologise to the chat."""
        chat = update.effective_chat if isinstance(update, Update) else None
        log.error("telegram: error handling update in chat %s", chat.id if chat else "-",
                  exc_info=context.error)
        if chat is None or isinstance(context.error, Forbidden):
            return
        msg = update.effective_message if isinstance(update, Update) else None
        thread = (msg.message_thread_id if isinstance(msg, Message) and chat.is_forum
                  and msg.is_topic_message else None)
        try:
            await self.app.bot.send_message(chat.id, escape(APOLOGY), parse_mode=ParseMode.HTML,
                                            message_thread_id=thread)
        except TelegramError as exc:
            log.warning("telegram: could not apologise in chat %s: %s", chat.id, exc)


async def _retried(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()`` again after a transient failure (5xx, connection error, timeout), waiting as
    :data:`REPLY_RETRY` says; a refusal (400, 403) or the last failure is raised."""
    for attempt in range(REPLY_RETRY.attempts):
        try:
            return await call()
        except BadRequest:  # a NetworkError subclass in PTB, but final
            raise
        except NetworkError as exc:
            if attempt + 1 >= REPLY_RETRY.attempts:
                raise
            wait = REPLY_RETRY.delay(attempt, None)
            log.warning("telegram: reply %s failed (%s); retry %d/%d in %.0f s", what,
                        exc.message, attempt + 1, REPLY_RETRY.attempts - 1, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def computing_text(symbol: str) -> str:
    """The placeholder of a cold on-demand request, edited into the answer."""
    return (f"Computing {short_name(symbol)}… (first request for it here: fetching its "
            "candles and open interest, a few seconds)")


def _needs_admin(text: str) -> bool:
    try:
        parsed = split_command(text)
    except UserInputError:
        return False
    command = BY_NAME.get(parsed.name) if parsed else None
    return bool(command and command.admin_in_groups)
