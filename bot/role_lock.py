"""One ``liqbot run --role all`` process or role processes on a PostgreSQL database, never both.

``all`` puts every outbox row left 'sending' back to pending when it starts (alone, those are a
crash's); beside a live dispatcher that could resend the row it is sending. So each ``liqbot
run`` on a PostgreSQL store holds an advisory lock for its lifetime, on a connection of its own:
``all`` the exclusive lock, every role worker (market, dispatch, chat) the shared one. An
``all`` process is refused while any role worker holds it, a role worker while an ``all``
process does (and a second ``all`` like a second owner of a SQLite file):
:class:`~bot.errors.StoreLockedError`, one line naming the holders, exit 1.

The lock needs no expiry: PostgreSQL drops it with the session, so a process that dies (even
by SIGKILL) frees it at once. The session names its process (``application_name`` =
``liqbot ROLE WORKER``), which the refusal quotes, and asks the server for short TCP keepalives
(10 s idle, 3 probes 5 s apart), so the session of a machine that vanished does not hold the
lock for the kernel's default two hours. SQLite stores take no such lock:
one process owns the file (bot.store_file.OwnerLock).
"""

from __future__ import annotations

from bot.db import dsn as dsns
from bot.db.postgres import MIGRATION_LOCK, connect
from bot.errors import StoreLockedError

LOCK_KEY = (MIGRATION_LOCK, 2)  # pg_try_advisory_lock(int4, int4): "liqb", 2
KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5,
             "tcp_keepalives_count": 3}
TAKE_EXCLUSIVE = "SELECT pg_try_advisory_lock(%s, %s)"  # --role all
TAKE_SHARED = "SELECT pg_try_advisory_lock_shared(%s, %s)"  # market, dispatch, chat


class RoleLock:
    """The advisory lock of one ``liqbot run`` process on ``dsn``; :meth:`release` (or the
    process's death) gives it back."""

    def __init__(self, dsn: str, role: str, worker: str) -> None:
        self.role = role
        self._conn = connect(dsn, application_name=f"liqbot {role} {worker}"[:63])
        try:
            for name, value in KEEPALIVE.items():
                self._conn.execute("SELECT set_config(%s, %s, false)", (name, str(int(value))))
            take = TAKE_EXCLUSIVE if role == "all" else TAKE_SHARED
            row = self._conn.execute(take, LOCK_KEY).fetchone()
            if row is None or not row[0]:
                raise StoreLockedError(self._refusal(dsn))
        except BaseException:
            self._conn.close()
            raise

    def holders(self) -> list[str]:
        """The other sessions holding the lock: 'liqbot ROLE WORKER (pid N)'."""
        rows = self._conn.execute(
            "SELECT l.pid, l.mode, a.application_name FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " JOIN pg_database d ON d.oid = l.database AND d.datname = current_database()"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
            " AND l.objsubid = 2 AND l.pid <> pg_backend_pid() ORDER BY l.pid",
            LOCK_KEY).fetchall()
        return [f"{name or ('liqbot all' if mode == 'ExclusiveLock' else 'a role worker')}"
                f" (server pid {pid})" for pid, mode, name in rows]

    def _refusal(self, dsn: str) -> str:
        live = ", ".join(self.holders()) or "a process that just stopped (try again)"
        where = f"store {dsns.safe_dsn(dsn)}"
        if self.role == "all":
            return (f"{where} is in use by other liqbot processes ({live}): --role all runs "
                    "alone on a database. Stop them first, or start this one with a --role")
        return (f"{where} is in use by a --role all process ({live}): role workers share a "
                "database only with each other. Stop it first")

    def release(self) -> None:
        self._conn.close()  # the session ends: the server drops its lock
