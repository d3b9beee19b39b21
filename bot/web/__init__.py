"""The read-only web view and Telegram Mini App (issue 23): server.py (aiohttp), api.py (the
JSON), initdata.py (Telegram's signature check), static/ (the page and the vendored ECharts)."""

from __future__ import annotations

from urllib.parse import quote

from bot.config import WebSection


def page_name(symbol: str) -> str:
    """How ``/s/{name}`` names a unified symbol: BTC/USDT:USDT → BTCUSDT (the command core's
    resolver reads it back); "" for one it would not read back (settled in another coin)."""
    base, _, rest = symbol.partition("/")
    quote_ccy, _, settle = rest.partition(":")
    return base + quote_ccy if settle in ("", quote_ccy) else ""


def page_url(web: WebSection, symbol: str, window: str = "") -> str:
    """The public address of the symbol's page, for a chat button; "" = no button (the web view
    is off, has no public_url, or cannot name the symbol)."""
    name = page_name(symbol)
    if not (web.enabled and web.public_url and name):
        return ""
    return f"{web.public_url}/s/{quote(name)}" + (f"?window={quote(window)}" if window else "")
