"""User symbol text → ccxt unified linear-perpetual symbol (``BTC/USDT:USDT``).

Accepts ``BTC``, ``btcusdt``, ``BTC/USDT``, ``BTC-USDT-SWAP``, ``BTCUSDT.P``, ``BTC/USDT:USDT``.
:func:`normalise` is pure syntax; :func:`resolve` also checks the exchange's ``load_markets()``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from bot.errors import BadSymbolError

DEFAULT_QUOTE = "USDT"
# Longest first so "BTCFDUSD" is not read as "BTCFD" + "USD".
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")
_MAX_ECHO = 24


def _unsafe(text: str) -> BadSymbolError:
    shown = text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "…"
    return BadSymbolError(
        f"'{shown}' is not a symbol. Try BTC, ETHUSDT or BTC/USDT:USDT."
    )


def _split_concat(s: str) -> tuple[str, str]:
    for quote in QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)], quote
    return s, DEFAULT_QUOTE


def normalise(user_text: str) -> str:
    """Unified symbol for ``user_text`` by syntax alone (no exchange lookup).

    Raises BadSymbolError (user-safe message) for text that cannot be a symbol.
    """
    s = user_text.strip().upper().replace(" ", "")
    for suffix in (".P", "-SWAP", "-PERP", "_PERP", "PERP"):
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[: -len(suffix)]
            break
    settle = None
    if ":" in s:
        s, settle = s.split(":", 1)
    if "/" in s:
        base, _, quote = s.partition("/")
    elif "-" in s or "_" in s:
        base, _, quote = s.replace("_", "-").partition("-")
    else:
        base, quote = _split_concat(s)
    settle = settle or quote
    if not all(_ASSET.match(part) for part in (base, quote, settle)):
        raise _unsafe(user_text.strip())
    return f"{base}/{quote}:{settle}"


def resolve(user_text: str, markets: Mapping[str, Mapping[str, Any]], exchange: str = "") -> str:
    """Unified symbol for ``user_text`` that ``markets`` (ccxt ``load_markets()``) lists.

    Matches a contract market, also by exchange id (``BTCUSDT``); otherwise raises
    BadSymbolError with up to three close suggestions.
    """
    symbol = normalise(user_text)
    market = markets.get(symbol)
    if market is None:
        raw = user_text.strip().upper()
        market = next(
            (m for m in markets.values() if m.get("id", "").upper() == raw and m.get("contract")),
            None,
        )
    where = f" on {exchange}" if exchange else ""
    if market is not None and market.get("contract", True) and is_perpetual(
            {**market, "active": True}):
        if market.get("active") is False:
            raise BadSymbolError(f"{market['symbol']} is listed{where} but not trading now.")
        return str(market["symbol"])
    raise BadSymbolError(not_a_perpetual(user_text, symbol, markets, exchange))


def is_perpetual(market: Mapping[str, Any]) -> bool:
    """A trading linear perpetual (what on-demand estimates and tracking accept); markets
    without the ccxt flags (hand-made test tables) count as contracts."""
    return (bool(market.get("contract", True)) and market.get("swap", True) is not False
            and market.get("linear", True) is not False and market.get("active") is not False)


def perpetuals(markets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every trading linear perpetual in ``markets``, sorted."""
    return sorted(str(m["symbol"]) for m in markets.values() if is_perpetual(m))


def short_name(symbol: str) -> str:
    """``SOL`` for ``SOL/USDT:USDT`` (the default quote), else the unified symbol."""
    base, _, rest = symbol.partition("/")
    return base if rest == f"{DEFAULT_QUOTE}:{DEFAULT_QUOTE}" else symbol


def not_a_perpetual(user_text: str, symbol: str, markets: Mapping[str, Mapping[str, Any]],
                    exchange: str = "") -> str:
    """"BTCX is not a perpetual on binanceusdm; did you mean BTC?" — up to three close
    matches (difflib) among the listed linear perpetuals."""
    base, rest = symbol.split("/", 1)
    contracts = perpetuals(markets)
    same_base = [c for c in contracts if c.split("/", 1)[0] == base]
    by_base = {c.split("/", 1)[0]: c for c in contracts if c.endswith("/" + rest)}
    close = same_base + [by_base[b] for b in difflib.get_close_matches(base, list(by_base), n=3,
                                                                       cutoff=0.6)]
    shown = short_name(symbol)
    where = f" on {exchange}" if exchange else ""
    hint = f"; did you mean {', '.join(short_name(c) for c in close[:3])}?" if close else "."
    return f"{shown} is not a perpetual{where}{hint}"
