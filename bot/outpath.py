"""Output paths given on the command line (``chart --out``, ``demo --out``), checked before any
work starts: a missing folder, a directory given as a file, "" or an unwritable place is a
UsageError naming the argument (exit 2), and nothing is written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bot.errors import UsageError


def check_out_file(path: str, arg: str) -> Path:
    """The file ``path`` can be written: its folder exists and is writable, it is no folder."""
    if not path.strip():
        raise UsageError(f"{arg} is empty: give a file name, e.g. {arg} chart.png")
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{arg} {path}: is a directory; give a file name inside it")
    folder = p.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise UsageError(f"{arg} {path}: folder {folder} {what}")
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"{arg} {path}: file is not writable")
    _probe(folder, arg, path)
    return p


def check_out_dir(path: str, arg: str) -> Path:
    """The folder ``path`` exists (or can be created, with its parents) and is writable."""
    if not path.strip():
        raise UsageError(f"{arg} is empty: give a folder")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{arg} {path}: is not a directory")
    existing = p
    while not existing.exists():  # the nearest existing ancestor must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{arg} {path}: {existing} is not a directory")
    _probe(existing, arg, path)
    return p


def _probe(folder: Path, arg: str, path: str) -> None:
    """Create and remove a temporary file in ``folder`` (os.access is wrong for root, for
    read-only mounts and for /proc)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".liqbot-probe-")
    except OSError as exc:
        raise UsageError(f"{arg} {path}: folder {folder} is not writable: "
                         f"{exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(name)
