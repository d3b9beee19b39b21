"""Telegram-specific formatting: HTML escaping, message/caption limits, inline keyboards.

Wording lives in the command core; this module only makes the core's plain text safe for
``parse_mode=HTML`` and fits it into Telegram's limits (characters, after escaping).
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.commands.reply import WEB_LABEL, Button

MESSAGE_LIMIT = 4096  # characters of one text message
CAPTION_LIMIT = 1024  # characters of a photo caption
CALLBACK_DATA_LIMIT = 64  # bytes of an inline button's callback_data


def escape(text: str) -> str:
    """Plain text → Telegram HTML (only &, < and > are special outside attributes)."""
    return html.escape(text, quote=False)


def _cut_line(line: str, limit: int) -> list[str]:
    """One over-long plain line → escaped pieces of at most ``limit`` characters each."""
    pieces, current = [], ""
    for ch in line:
        esc = escape(ch)
        if len(current) + len(esc) > limit:
            pieces.append(current)
            current = ""
        current += esc
    pieces.append(current)
    return pieces


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Escape ``text`` and split it into chunks of ≤ ``limit`` characters, at line breaks
    where possible (never inside an entity such as ``&amp;``). Always at least one chunk."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        esc = escape(line)
        if len(esc) > limit:
            if current:
                chunks.append(current)
            *full, current = _cut_line(line, limit)
            chunks.extend(full)
            continue
        candidate = f"{current}\n{esc}" if current else esc
        if current and len(candidate) > limit:
            chunks.append(current)
            current = esc
        else:
            current = candidate
    chunks.append(current)
    return [c for c in chunks if c.strip()] or [escape(text.strip()) or "…"]


def caption_and_rest(text: str) -> tuple[str, list[str]]:
    """A photo caption (≤ 1024 characters, escaped) and the messages to send after the photo:
    none when the whole text fits, else the caption is the first line and the full text
    follows as messages."""
    esc = escape(text)
    if len(esc) <= CAPTION_LIMIT:
        return esc, []
    return split_html(text.split("\n")[0], CAPTION_LIMIT)[0], split_html(text)


def keyboard(buttons: tuple[Button, ...], web_url: str = "",
             private: bool = True) -> InlineKeyboardMarkup | None:
    """One row of inline buttons; callback_data is the command text. Buttons whose command
    does not fit Telegram's 64-byte callback_data are left out rather than truncated.
    ``web_url``: an "Interactive" button opening it, as a Mini App (web_app) in a private chat;
    in groups a plain link (Telegram allows web_app buttons in private chats only)."""
    fitting = [InlineKeyboardButton(b.label, callback_data=b.command) for b in buttons
               if len(b.command.encode("utf-8")) <= CALLBACK_DATA_LIMIT]
    if web_url:
        fitting.append(InlineKeyboardButton(WEB_LABEL, web_app=WebAppInfo(web_url)) if private
                       else InlineKeyboardButton(WEB_LABEL, url=web_url))
    return InlineKeyboardMarkup([fitting]) if fitting else None
