"""Telegram Mini App initData: signed with the bot token (HMAC-SHA256, key HMAC("WebAppData",
token)), and recent. Cases: valid, tampered, expired, missing, and Telegram's own example
string shape (user JSON, query_id)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.web.initdata import MAX_AGE_S, InitDataError, sign, validate

TOKEN = "123456:TEST-token-must-never-be-logged"
NOW = 1_800_000_000.0
USER = json.dumps({"id": 111, "first_name": "Ann <b>&", "language_code": "en"})


def launch(age_s: float = 10.0, token: str = TOKEN) -> str:
    return sign({"query_id": "AAH1", "user": USER, "auth_date": str(int(NOW - age_s))}, token)


def test_valid_init_data_gives_its_fields() -> None:
    fields = validate(launch(), TOKEN, now=NOW)
    assert json.loads(fields["user"])["id"] == 111
    assert "hash" not in fields


def test_the_check_is_telegrams_hmac_of_the_sorted_fields() -> None:
    # Spelled out independently of bot.web.initdata: the spec's two HMACs.
    import hashlib
    import hmac

    fields = {"auth_date": str(int(NOW)), "user": USER, "query_id": "AAH1"}
    secret = hmac.new(b"WebAppData", TOKEN.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    digest = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    assert validate(urlencode({**fields, "hash": digest}), TOKEN, now=NOW)


@pytest.mark.parametrize("tamper", ["user", "auth_date", "hash", "extra"])
def test_tampered_init_data_is_refused(tamper: str) -> None:
    fields = dict(parse_qsl(launch()))
    if tamper == "user":
        fields["user"] = fields["user"].replace("111", "222")
    elif tamper == "auth_date":
        fields["auth_date"] = str(int(NOW))
    elif tamper == "hash":
        fields["hash"] = ("0" if fields["hash"][0] != "0" else "1") + fields["hash"][1:]
    else:
        fields["chat_type"] = "private"
    with pytest.raises(InitDataError, match="signature does not match"):
        validate(urlencode(fields), TOKEN, now=NOW)


def test_init_data_signed_by_another_bot_is_refused() -> None:
    with pytest.raises(InitDataError, match="signature does not match"):
        validate(launch(token="654321:other-bot"), TOKEN, now=NOW)


def test_expired_init_data_is_refused() -> None:
    assert validate(launch(age_s=MAX_AGE_S - 5), TOKEN, now=NOW)
    with pytest.raises(InitDataError, match="expired"):
        validate(launch(age_s=MAX_AGE_S + 5), TOKEN, now=NOW)


def test_init_data_from_the_future_is_refused() -> None:
    with pytest.raises(InitDataError, match="future"):
        validate(launch(age_s=-3600), TOKEN, now=NOW)


@pytest.mark.parametrize("text, reason", [
    ("", "missing"),
    ("user=x&auth_date=1", "no hash"),
    ("a=1&a=2&hash=00", "repeats"),
    ("%%%", "not a query string"),
    ("x" * 5000, "too long"),
])
def test_missing_or_malformed_init_data_is_refused(text: str, reason: str) -> None:
    with pytest.raises(InitDataError, match=reason):
        validate(text, TOKEN, now=NOW)


def test_a_signed_launch_without_auth_date_is_refused() -> None:
    with pytest.raises(InitDataError, match="auth_date"):
        validate(sign({"user": USER}, TOKEN), TOKEN, now=NOW)
