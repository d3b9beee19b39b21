"""Telegram formatting: escaping, limits, keyboards (no network). Log redaction: test_redact."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from bot.commands.reply import Button
from bot.telegram_format import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    caption_and_rest,
    escape,
    keyboard,
    split_html,
)


def test_escape_covers_the_three_html_specials() -> None:
    assert escape("a < b & c > d \"q\"") == 'a &lt; b &amp; c &gt; d "q"'


@given(st.text(alphabet="ab<&>\n ", max_size=600), st.integers(min_value=8, max_value=80))
def test_split_is_lossless_within_the_limit_and_never_cuts_an_entity(text: str,
                                                                     limit: int) -> None:
    chunks = split_html(text, limit)
    assert chunks and all(len(c) <= limit for c in chunks)
    joined = "".join(html.unescape(c) for c in chunks)
    if text.strip():  # only blank chunks are dropped
        assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text)
    else:  # Telegram refuses empty messages
        assert chunks == ["…"]
    for c in chunks:  # no raw specials; every '&' starts a whole entity
        assert "<" not in c and ">" not in c
        assert html.unescape(c).count("&") == c.count("&amp;")


def test_long_text_is_split_at_line_breaks() -> None:
    lines = [f"line {i} " + "x" * 90 for i in range(100)]
    chunks = split_html("\n".join(lines))
    assert len(chunks) > 1 and all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert "\n".join(chunks).split("\n") == lines


def test_caption_fits_or_the_text_follows_as_messages() -> None:
    assert caption_and_rest("BTC <map>") == ("BTC &lt;map&gt;", [])
    long = "title & more\n" + "\n".join("y" * 100 for _ in range(20))
    caption, rest = caption_and_rest(long)
    assert caption == "title &amp; more" and len(caption) <= CAPTION_LIMIT
    assert html.unescape("\n".join(rest)) == long


def test_keyboard_uses_command_text_and_drops_oversized_callback_data() -> None:
    markup = keyboard((Button("Map", "/map BTC"), Button("Long", "/level BTC 94k " + "é" * 30)))
    assert markup is not None
    [[button]] = markup.inline_keyboard
    assert (button.text, button.callback_data) == ("Map", "/map BTC")
    assert keyboard(()) is None
