"""Hostile text through the real Telegram adapter and the Bot API fake: HTML/markdown
injection, unicode, 4 KB messages. Replies and alerts go out with ``parse_mode=HTML`` and every
user character escaped, so an injected ``<b>`` or ``<a href>`` arrives as text, never markup.
"""

from __future__ import annotations

import asyncio
import html
import random
import re

import pytest

from bot.alerts import AlertEvent, EventKind, SymbolState
from bot.dispatcher import Dispatcher
from tests.bot.fake_telegram import ANN, PRIVATE
from tests.bot.test_telegram import running

SYMBOL = "BTC/USDT:USDT"
INJECTIONS = [
    "<b>bold</b>",
    '<a href="https://evil.example/x?a=1&b=2">click</a>',
    "<script>alert(1)</script>",
    "&lt;already&gt;escaped&amp;",
    "*bold* _it_ `code` [link](https://evil.example) ~strike~ ||spoiler||",
    "<tg-spoiler>x</tg-spoiler><pre>y</pre><code>z</code>",
    "emoji🚀 rtl\u202eevil zero\u200bwidth ｆｕｌｌ 中文 𝔘𝔫𝔦",
    "</b></i></a><",
    "a&b<c>d\"e'f",
]
_rng = random.Random(11)
_CHARS = "<>&\"'*_`[]()~|#@/=ab1 🚀é"
INJECTIONS += ["".join(_rng.choice(_CHARS) for _ in range(_rng.randint(5, 60)))
               .strip().replace("  ", " ") or "x" for _ in range(12)]

TAG = re.compile(r"<\s*/?\s*(b|i|u|s|a|code|pre|script|tg-spoiler)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


def assert_inert(sent: str, original: str) -> None:
    """Sent HTML shows ``original`` as text: no tag survives, unescaping gives it back."""
    assert not TAG.search(sent), sent
    assert " ".join(original.split()) in html.unescape(sent)


async def test_injected_markup_in_replies_and_alerts_arrives_escaped() -> None:
    async with running() as h:
        price = h.service.board.get(SYMBOL).price  # type: ignore[union-attr]
        events = []
        for note in INJECTIONS:
            reply = await h.ask(PRIVATE, ANN, f"/level BTC {price:.0f} {note}")
            assert reply["parse_mode"] == "HTML"
            assert_inert(reply["text"], note)
            level_id = int(re.search(r"#(\d+)", html.unescape(reply["text"]))[1])  # type: ignore[index]
            events.append(AlertEvent(
                kind=EventKind.LEVEL_CROSS, chat=h.chat(111).id, symbol=SYMBOL,
                ref=f"level:{level_id}", epoch=0, price=price * 1.001, ts_ms=1, level_price=price,
                direction="up", note=note))
        listing = await h.ask(PRIVATE, ANN, "/alerts")
        for note in INJECTIONS:
            assert_inert(listing["text"], note)
        # The same notes inside alerts, through the outbox and the dispatcher.
        n = len(h.fake.sent)
        h.store.commit_tick(SYMBOL, SymbolState(), None, events, now=h.replay.now_ms)
        stats = await Dispatcher(h.store, {"telegram": h.adapter.notifier},
                                 clock=lambda: h.replay.now_ms).run_once()
        assert stats.sent == len(INJECTIONS)
        alerts = h.fake.sent[n:]
        for note, alert in zip(INJECTIONS, alerts, strict=True):
            assert alert["parse_mode"] == "HTML"
            assert_inert(alert["text"], note)


@pytest.mark.parametrize("text", [
    "/levels " + "x" * 4090,  # a 4 KB message
    "/level BTC 8k " + "<b>" * 1400,
    "/subscribe " + "١٢٣" * 1400,
])
async def test_four_kilobyte_messages_get_a_short_answer(text: str) -> None:
    async with running() as h:
        reply = await h.ask(PRIVATE, ANN, text)
        assert reply["text"].startswith("That message is too long")
        assert len(reply["text"]) < 200


async def test_a_long_reply_is_split_within_telegram_limits() -> None:
    async with running() as h:
        price = h.service.board.get(SYMBOL).price  # type: ignore[union-attr]
        for i in range(50):  # 50 levels with 120-character hostile notes
            note = ("<a href='x'>&" * 12)[:120]
            reply = await h.ask(PRIVATE, ANN, f"/level BTC {price * (1 + i / 500):.0f} {note}")
            assert "set" in reply["text"]
        n = len(h.fake.sent)
        h.fake.command(PRIVATE, ANN, "/alerts")
        for _ in range(500):  # escaped, the listing needs several messages
            parts = [m["text"] for m in h.fake.sent[n:]]
            if html.unescape("\n".join(parts)).count("<a href='x'>&") >= 50 * 9:
                break
            await asyncio.sleep(0.02)
        assert len(parts) >= 2 and all(len(p) <= 4096 for p in parts)
        assert all(not TAG.search(p) for p in parts)
        assert html.unescape("\n".join(parts)).count("<a href='x'>&") == 50 * 9
