"""The store's database connection: one small surface, two backends.

- :class:`bot.db.sqlite.SqliteDatabase` — a SQLite file through sqlite-utils (the default).
- :class:`bot.db.postgres.PostgresDatabase` — a PostgreSQL server through psycopg 3.

Both offer what :class:`bot.store.Store` and its table mixins use (:class:`Database`):
``execute(sql, params)`` → a cursor (``rowcount``, ``fetchone``, ``fetchall``, iteration),
``query(sql, params)`` → dict rows, ``executemany(sql, rows)`` → rows changed,
``atomic()`` (nestable: savepoints), ``in_transaction``, ``schema_version`` /
``set_schema_version``, ``lock_schema()``, ``integrity_ok()``, ``notify(channel)``,
``close()``. SQL is written once, SQLite-style (``?`` placeholders, INTEGER/REAL/TEXT DDL);
the PostgreSQL backend translates it (:mod:`bot.db.translate`).
"""

from bot.db.base import Cursor, Database

__all__ = ["Cursor", "Database"]
