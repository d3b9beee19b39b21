"""Opening the store's SQLite file: path checks, private permissions, one owning process, and
a corruption check with the way to recover. Used by :class:`bot.store.Store`."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import stat
from pathlib import Path

from bot.errors import StoreError, StoreLockedError, StorePathError

log = logging.getLogger(__name__)


def prepare(path: Path) -> None:
    """Check that ``path`` can hold the store; create it with mode 0600 (it holds chat ids) or
    take group/world access away from an existing one (with a warning).

    Raises :class:`StorePathError` (exit 2) naming the path and what is wrong with it."""
    folder = path.parent
    if not folder.exists():
        raise StorePathError(f"store {path}: folder {folder} does not exist (create it, or set "
                             "[bot] store to a path in an existing folder)")
    if not folder.is_dir():
        raise StorePathError(f"store {path}: {folder} is not a folder")
    if path.is_dir():
        raise StorePathError(f"store {path} is a folder; [bot] store must name a file")
    # SQLite's WAL mode creates -wal and -shm files next to the store.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorePathError(f"store {path}: folder {folder} is not writable by this user")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        _make_private(path)
    except OSError as exc:
        raise StorePathError(f"store {path}: cannot create it: {exc.strerror}") from exc
    else:
        os.close(fd)
    if not os.access(path, os.R_OK | os.W_OK):
        raise StorePathError(f"store {path} is not readable and writable by this user")


def _make_private(path: Path) -> None:
    """chmod 0600 the store and its WAL files when group or others may access them."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(p, mode & 0o700)
            except OSError as exc:
                log.warning("store file %s has mode %04o (readable by others) and could not be "
                            "made private: %s", p, mode, exc.strerror)
            else:
                log.warning("store file %s had mode %04o (readable by others: it holds chat ids); "
                            "changed to %04o", p, mode, mode & 0o700)


class OwnerLock:
    """An exclusive ``flock`` on ``<store>.lock``, held while this process owns the store.

    The kernel drops it when the process dies, so a crash never leaves a stale lock. A separate
    file, not the store itself: closing another descriptor of the database would drop SQLite's
    own POSIX locks."""

    def __init__(self, store: Path) -> None:
        self.path = Path(f"{store}.lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"store {store} is in use by another liqbot process (pid {owner}; lock "
                f"{self.path}): only one process may own a SQLite store. Stop the other one, or "
                "give this one its own [bot] store") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def recovery_hint(path: Path) -> str:
    return (f'; to recover what is readable: sqlite3 {path} ".recover" | sqlite3 '
            f"{path.with_name(path.stem + '-recovered' + path.suffix)}, then point [bot] store "
            "at the recovered file")


def check_pages(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` (every page readable, no index cross-check): a corrupt store is
    refused at start with SQLite's message and how to recover, not met mid-run."""
    rows = [r[0] for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if rows != ["ok"]:
        found = "; ".join(line.strip() for row in rows for line in str(row).splitlines()
                          if line.strip() and not line.startswith("***"))
        raise StoreError(f"store {path} is corrupt (SQLite quick_check: {found})"
                         + recovery_hint(path))


def open_error(exc: sqlite3.DatabaseError, path: Path) -> StoreError:
    """Our error for SQLite refusing to open/read ``path``: a malformed image gets the
    recovery hint."""
    text = f"cannot open store {path}: {exc}"
    if "malformed" in str(exc):
        text += recovery_hint(path)
    return StoreError(text)
