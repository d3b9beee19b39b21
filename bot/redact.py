"""The one place secrets are taken out of text: log records, stored errors, anything printed.

:func:`redact` replaces the configured secrets (:func:`register`, done by the adapters with
their bot tokens) and anything shaped like a token: Telegram bot tokens (``123456:AA…``),
Discord bot tokens (three dot-separated base64 parts), Discord interaction / webhook tokens in
URLs (``/interactions/<id>/<token>/callback``, ``/webhooks/<app>/<token>``), ``"token": "…"``
fields of logged payloads (discord.py's DEBUG gateway events) and ``Authorization`` values;
also a ``/mypos`` command, its answer, its /alerts line and a watch alert (a position is
private).
:data:`FILTER` applies it to every log record; :func:`install` puts it on the root handlers
(every record that reaches a handler passes there) and on the loggers that already exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

TELEGRAM = "<telegram-token>"
DISCORD = "<discord-token>"
INTERACTION = "<interaction-token>"
SECRET = "<secret>"
POSITION = "<position>"
MIN_SECRET = 6  # shorter "secrets" would blank out ordinary words

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram: bot id, colon, 35 characters (≥ 30 to also catch test tokens).
    (re.compile(r"(?<!\d)\d{3,}:[A-Za-z0-9_-]{30,}"), TELEGRAM),
    # Discord bot token: base64 user id . timestamp . HMAC.
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
     DISCORD),
    # Interaction and webhook tokens are the path segment after the numeric id.
    (re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?#'\"<>]+"), r"\1" + INTERACTION),
    # "token": "…" / 'token': '…' in logged payloads (gateway events, IDENTIFY, dict reprs).
    (re.compile(r"""((?:"|')(?:token|access_token)(?:"|')\s*:\s*(?:"|'))[^"']+"""),
     r"\1" + SECRET),
    # Authorization: Bot … / Bearer …
    (re.compile(r"(?i)(authorization(?:\"|')?\s*[:=]\s*(?:\"|')?(?:bot|bearer)\s+)[^\s\"',}]+"),
     r"\1" + SECRET),
    # A user's position is private: a /mypos command, its answer ("BTC long from 95,000 at
    # 10x …"), its line in /alerts ("long 10x from 95,000 …") and a watch alert ("🛡 …") are
    # cut from there to the end of the record (PTB's DEBUG lines carry every update's text
    # and every reply).
    (re.compile(r"(?s)(/mypos)\b.*"), r"\1 " + POSITION),
    (re.compile(r"(?s)(?:\b(?:long|short) (?:from [0-9][0-9,.]* at [0-9.]+x\b|[0-9.]+x from "
                r"[0-9])|🛡).*"), POSITION),
)

_secrets: dict[str, str] = {}


def register(secret: str, label: str = SECRET) -> None:
    """Redact ``secret`` (shown as ``label``) wherever it appears from now on."""
    if secret and len(secret) >= MIN_SECRET:
        _secrets[secret] = label


def redact(text: str, also: Iterable[str | None] = ()) -> str:
    """``text`` without registered secrets, token-shaped strings and the ``also`` strings."""
    for extra in also:
        if extra and len(extra) >= MIN_SECRET and extra in text:
            text = text.replace(extra, SECRET)
    for secret, label in list(_secrets.items()):
        if secret in text:
            text = text.replace(secret, label)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack with :func:`redact` (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken record is the logging module's problem, not ours
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


FILTER = RedactFilter()


def install() -> None:
    """Put :data:`FILTER` on the root logger's handlers and on every existing logger
    (idempotent; handlers added to the root later get it at the next call)."""
    root = logging.getLogger()
    targets: list[logging.Logger | logging.Handler] = [root, *root.handlers]
    targets += [lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger)]
    for target in targets:
        if FILTER not in target.filters:
            target.addFilter(FILTER)
