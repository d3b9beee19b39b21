"""Parsing of command text and human-typed numbers (``100m``, ``1.5b``, ``94k``, ``94,000``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.errors import UserInputError

MAX_TEXT = 512  # longer commands are refused before parsing
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9, "t": 1e12}
_AMOUNT = re.compile(r"^\$?([0-9][0-9,_]*(?:\.[0-9]+)?|\.[0-9]+)\s*(k|m|b|bn|t)?\$?$",
                     re.IGNORECASE)
_COMMAND = re.compile(r"^/([A-Za-z][A-Za-z0-9_]{0,31})(?:@[A-Za-z0-9_]{1,64})?$")


@dataclass(frozen=True)
class CommandText:
    """A parsed command line: name without the slash (lower case) and its arguments."""

    name: str
    args: tuple[str, ...]


def split_command(text: str) -> CommandText | None:
    """``/levels@liqbot BTC`` → CommandText("levels", ("BTC",)); None if not a command."""
    if len(text) > MAX_TEXT:
        raise UserInputError(f"That message is too long ({len(text)} characters); "
                             f"commands are at most {MAX_TEXT}.")
    parts = text.strip().split()
    if not parts:
        return None
    m = _COMMAND.match(parts[0])
    if not m:
        return None
    return CommandText(m.group(1).lower(), tuple(parts[1:]))


def parse_amount(text: str, what: str = "amount") -> float:
    """A positive USD amount or price: ``100m`` → 1e8, ``1.5b``, ``94k``, ``94,000``, ``$2.5M``.
    Errors for a price (``what`` names one) suggest prices, not the dollar shorthand of sizes."""
    m = _AMOUNT.match(text.strip())
    if not m:
        hint = ("a positive price like 94k, 94,000 or 0.35" if "price" in what
                else "try 100m, 1.5b, 94k or 94,000")
        raise UserInputError(f"'{clip(text)}' is not a valid {what} ({hint}).")
    digits = m.group(1).replace(",", "").replace("_", "")
    value = float(digits) * _SUFFIX[(m.group(2) or "").lower()]
    if not math.isfinite(value) or value <= 0:
        raise UserInputError(f"The {what} must be a positive number, got '{clip(text)}'.")
    if value > 1e15:
        raise UserInputError(f"The {what} '{clip(text)}' is too large.")
    return value


def parse_percent(text: str, what: str = "distance", low: float = 0.01,
                  high: float = 20.0) -> float:
    """A percentage like ``0.5`` or ``0.5%`` within [low, high]."""
    raw = text.strip().rstrip("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UserInputError(f"'{clip(text)}' is not a valid {what} in % (try 0.5).") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise UserInputError(f"The {what} must be between {low:g} % and {high:g} %, "
                             f"got '{clip(text)}'.")
    return value


def parse_int(text: str, what: str) -> int:
    if not re.fullmatch(r"#?[0-9]{1,12}", text.strip()):
        raise UserInputError(f"'{clip(text)}' is not a valid {what} (a number like 12).")
    return int(text.strip().lstrip("#"))


def clip(text: str, n: int = 24) -> str:
    """User text echoed back in errors: short, one line."""
    one = " ".join(text.split())
    return one if len(one) <= n else one[:n] + "…"
