"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` into a temp
dir, listening on a free loopback port (127.0.0.1 only) and on a unix socket inside that dir.

Never the system's default cluster, never port 5432. Authentication is ``trust`` (loopback and
the private socket only), superuser ``liqbot``; ``fsync`` is off (a test server's data is
thrown away). When the process runs as root (CI), the server runs as the unprivileged user
``nobody`` (``initdb`` refuses root), in a temp dir that user owns.

``python -m tests.pg_server`` starts one, prints its DSN and waits for Ctrl-C.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "liqbot"
SERVER_USER = "nobody"  # used only when running as root
# Stops the server when the process that started it dies without stopping it (kill -9, a
# timeout): polls the owner's pid every second; exits quietly once stop() removed the dir.
WATCHDOG = """
import os, shutil, subprocess, sys, time
owner, base, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
while os.path.exists(base):
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)
        break
    time.sleep(1)
"""


class PgUnavailable(RuntimeError):
    """No server can be started here; the message is one line saying why."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``: $LIQBOT_PG_BIN if set, else PATH, else
    Debian's /usr/lib/postgresql/<newest>/bin."""
    forced = os.environ.get("LIQBOT_PG_BIN")
    if forced:
        if all(os.access(os.path.join(forced, n), os.X_OK) for n in ("initdb", "pg_ctl")):
            return Path(forced)
        raise PgUnavailable(f"LIQBOT_PG_BIN={forced} has no executable initdb and pg_ctl")
    found = [shutil.which(name) for name in ("initdb", "pg_ctl", "postgres")]
    if all(found):
        return Path(str(found[0])).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for cand in reversed(candidates):
        if all(os.access(os.path.join(cand, n), os.X_OK) for n in ("initdb", "pg_ctl", "postgres")):
            return Path(cand)
    raise PgUnavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in "
                        "/usr/lib/postgresql/*/bin (apt-get install postgresql)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One running server. ``dsn(db)`` gives a TCP DSN, ``create_database()`` a fresh one."""

    def __init__(self, base: Path, port: int, bin_dir: Path, as_user: str | None) -> None:
        self.base = base
        self.data = base / "data"
        self.port = port
        self.bin_dir = bin_dir
        self.as_user = as_user
        self.log = base / "server.log"
        self._stopped = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def start(cls, max_connections: int = 300) -> PgServer:
        """initdb + pg_ctl start; raises :class:`PgUnavailable` (one line) on any failure."""
        bin_dir = find_bin_dir()
        as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise PgUnavailable(f"running as root and there is no user {SERVER_USER!r} to "
                                    "run PostgreSQL as (initdb refuses root)") from exc
            as_user = SERVER_USER
        base = Path(tempfile.mkdtemp(prefix="liqbot-pg-"))
        if as_user is not None:
            ent = pwd.getpwnam(as_user)
            os.chown(base, ent.pw_uid, ent.pw_gid)
        os.chmod(base, 0o755 if as_user is not None else 0o700)
        server = cls(base, free_port(), bin_dir, as_user)
        try:
            server._initdb()
            for attempt in range(3):  # a free port can be taken between probe and bind
                try:
                    server._pg_ctl_start(max_connections)
                    break
                except PgUnavailable:
                    server._stop_quietly()
                    if attempt == 2 or "could not bind" not in server.log_tail():
                        raise
                    server.port = free_port()
            server._wait_ready()
            server._watch()
        except PgUnavailable:
            server._stop_quietly()
            shutil.rmtree(base, ignore_errors=True)
            raise
        return server

    def _cmd(self, args: list[str]) -> list[str]:
        if self.as_user is None:
            return args
        return ["runuser", "-u", self.as_user, "--", *args]

    def _run(self, what: str, args: list[str], timeout: float = 120) -> None:
        try:
            proc = subprocess.run(self._cmd(args), capture_output=True, text=True,
                                  timeout=timeout, cwd=self.base)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgUnavailable(f"{what} failed: {exc}") from exc
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout or "").strip().splitlines()
            detail = lines[-1] if lines else f"exit {proc.returncode}"
            tail = self.log_tail()
            if tail:
                detail += f" (server log: {tail})"
            raise PgUnavailable(f"{what} failed: {detail}")

    def _initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self._run("initdb", [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])

    def _pg_ctl_start(self, max_connections: int) -> None:
        opts = " ".join([
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.base}",
            f"-c max_connections={max_connections}", "-c fsync=off",
            "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c shared_buffers=64MB", "-c max_wal_size=1GB",
        ])
        self._run("pg_ctl start", [str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                                   "-l", str(self.log), "-w", "-t", "60", "-o", opts, "start"])

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        err: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                    return
            except psycopg.Error as exc:
                err = exc
                time.sleep(0.1)
        first = str(err).strip().splitlines()[0] if err else "timeout"
        raise PgUnavailable(f"server on 127.0.0.1:{self.port} does not accept connections: "
                            f"{first}")

    def _watch(self) -> None:
        stop = self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "-t", "30", "stop"])
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(self.base), *stop],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln or "could not" in ln]
        return (errors or lines or [""])[-1].strip()

    def _stop_quietly(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m",
                                  "immediate", "-w", "-t", "30", "stop"]),
                       capture_output=True, cwd=self.base, timeout=60, check=False)

    def stop(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._stop_quietly()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            if self._watchdog is not None:  # it sees the dir gone within a second
                try:
                    self._watchdog.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                    self._watchdog.wait()

    # -- databases ---------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database with a unique name; returns its DSN."""
        import psycopg

        safe = "".join(c if c.isalnum() else "_" for c in prefix.lower())[:40].strip("_") or "t"
        name = f"{safe}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        """Drop a database made by :meth:`create_database` (connections to it are ended)."""
        import psycopg

        name = dsn.rsplit("/", 1)[1]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        print(f"pg_server: {exc}")
        return 1
    try:
        print(server.create_database("manual"), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
