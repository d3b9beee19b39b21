"""Telegram Mini App ``initData`` check (core.telegram.org/bots/webapps, "Validating data
received via the Mini App"): the query string Telegram hands the page, signed with the bot
token. secret = HMAC-SHA256(key="WebAppData", msg=bot_token); the ``hash`` field must equal
hex(HMAC-SHA256(key=secret, msg=data_check_string)), where data_check_string is every other
field as ``key=value``, sorted by key, joined by newlines. ``auth_date`` must be recent."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl

MAX_AGE_S = 3600.0  # how old a Mini App launch may be (auth_date) before it is refused
_SKEW_S = 60.0  # auth_date this far in the future is tolerated (clock differences)
_MAX_LEN = 4096


class InitDataError(ValueError):
    """initData is missing, malformed, not signed with our bot token, or too old."""


def _secret(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()


def sign(fields: dict[str, str], bot_token: str) -> str:
    """``fields`` as initData signed with ``bot_token`` (what Telegram does; tests use it)."""
    from urllib.parse import urlencode

    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    digest = hmac.new(_secret(bot_token), check.encode("utf-8"), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def validate(init_data: str, bot_token: str, now: float | None = None,
             max_age_s: float = MAX_AGE_S) -> dict[str, str]:
    """The signed fields of ``init_data`` (``hash`` removed); raises InitDataError."""
    if not init_data:
        raise InitDataError("initData is missing")
    if len(init_data) > _MAX_LEN:
        raise InitDataError("initData is too long")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InitDataError("initData is not a query string") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("initData repeats a field")
    given = fields.pop("hash", "")
    if not given:
        raise InitDataError("initData has no hash")
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    expected = hmac.new(_secret(bot_token), check.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise InitDataError("initData signature does not match this bot")
    try:
        auth = float(fields["auth_date"])
    except (KeyError, ValueError):
        raise InitDataError("initData has no valid auth_date") from None
    age = (time.time() if now is None else now) - auth
    if not -_SKEW_S <= age <= max_age_s:  # False for NaN too
        raise InitDataError(f"initData is expired (auth_date older than {max_age_s:g} s)"
                            if age > 0 else "initData auth_date is in the future")
    return fields
