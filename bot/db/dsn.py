"""PostgreSQL DSNs in config, errors and logs: recognised, checked, and never shown with their
password (:func:`safe_dsn`; the password is also registered with :mod:`bot.redact`)."""

from __future__ import annotations

from typing import Any

from bot import redact

SCHEMES = ("postgresql://", "postgres://")


def conninfo_to_dict(dsn: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict as parse  # only when a DSN is configured

    return parse(dsn)


def is_dsn(store: str) -> bool:
    """``[bot] store`` names a PostgreSQL server (a URL), not a SQLite file."""
    return store.strip().lower().startswith(SCHEMES)


def check(dsn: str) -> str | None:
    """Why ``dsn`` is unusable (one phrase, without the DSN), or None."""
    try:
        conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg.ProgrammingError: the libpq parser's message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"is not a PostgreSQL connection string ({redact.redact(first, also=[dsn])})"
    return None


def password(dsn: str) -> str | None:
    try:
        pw = conninfo_to_dict(dsn).get("password")
        return str(pw) if pw else None
    except Exception:
        return None


def register(dsn: str) -> None:
    """From now on every log record and redacted text hides this DSN's password."""
    pw = password(dsn)
    if pw:
        redact.register(pw)


def safe_dsn(dsn: str) -> str:
    """``dsn`` to show: ``postgresql://user@host:port/db`` (no password, no options), or
    ``host=… dbname=…`` for a key=value string."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable PostgreSQL DSN>"
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    db = str(parts.get("dbname") or "")
    if "/" in host:  # a unix socket directory
        return f"postgresql://{user}/{db}?host={host}{port and '&port=' + port[1:]}"
    return f"postgresql://{user}{host}{port}/{db}"
