"""Positions snapshot files: JSON lines, one per scanned wallet,
``{"time": <ms>, "user": "0x…", "state": <the clearinghouseState response verbatim>}``.

:class:`SnapshotReplay` answers "each wallet's latest state at or before t", the book a replay
tick (or ``levels --positions``) uses. Loading checks every line and names the first bad one
(file:line) with :class:`~bot.errors.DataFileError`; nothing is half-loaded.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bot.errors import DataFileError
from bot.hyperliquid.positions import parse_state
from bot.market.errors import MalformedResponse

ADDRESS = re.compile(r"0x[0-9a-f]{40}")


@dataclass(frozen=True)
class Snapshot:
    time: int
    user: str
    state: Mapping[str, Any]

    def line(self) -> str:
        return json.dumps({"time": self.time, "user": self.user, "state": self.state},
                          separators=(",", ":"), allow_nan=False)


def write_snapshot(out: IO[str], snap: Snapshot) -> None:
    out.write(snap.line() + "\n")


def read_snapshots(path: str | Path) -> list[Snapshot]:
    return list(_iter(Path(path)))


def _iter(path: Path) -> Iterator[Snapshot]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot read positions snapshots: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    if not any(line.strip() for line in lines):
        raise DataFileError(f"{path}: no snapshots (expected JSON lines "
                            '{"time", "user", "state"})')
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise DataFileError(f"{where}: not JSON ({exc})") from None
        if not isinstance(row, dict) or set(row) != {"time", "user", "state"}:
            raise DataFileError(f'{where}: expected exactly the keys "time", "user", "state"')
        t, user = row["time"], row["user"]
        if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
            raise DataFileError(f"{where}: time must be a positive integer (ms), got {t!r}")
        if not isinstance(user, str) or not ADDRESS.fullmatch(user):
            raise DataFileError(f"{where}: user must be a lower-case 0x address, got {user!r}")
        try:
            parse_state(user, row["state"])  # every position usable, or the file is refused
        except MalformedResponse as exc:
            raise DataFileError(f"{where}: {exc}") from None
        yield Snapshot(t, user, row["state"])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class SnapshotReplay:
    """Snapshots by wallet, sorted by time (a stable sort: of two snapshots of one wallet at
    the same ms, the later line wins)."""

    def __init__(self, snapshots: Iterable[Snapshot]) -> None:
        by_user: dict[str, list[Snapshot]] = {}
        for s in sorted(snapshots, key=lambda s: s.time):
            by_user.setdefault(s.user, []).append(s)
        self._times = {u: [s.time for s in ss] for u, ss in by_user.items()}
        self._snaps = by_user

    @classmethod
    def load(cls, path: str | Path) -> SnapshotReplay:
        return cls(read_snapshots(path))

    @property
    def times(self) -> list[int]:
        return sorted({t for ts in self._times.values() for t in ts})

    def states_at(self, t_ms: int) -> dict[str, Mapping[str, Any]]:
        """``{user: state}``: each wallet's latest snapshot at or before ``t_ms``."""
        out: dict[str, Mapping[str, Any]] = {}
        for user, times in self._times.items():
            i = bisect.bisect_right(times, t_ms)
            if i:
                out[user] = self._snaps[user][i - 1].state
        return out

    def scanned_at(self, t_ms: int) -> dict[str, int]:
        """``{user: time of the snapshot used at t_ms}``."""
        out: dict[str, int] = {}
        for user, times in self._times.items():
            i = bisect.bisect_right(times, t_ms)
            if i:
                out[user] = times[i - 1]
        return out
