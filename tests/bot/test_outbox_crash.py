"""Crash test: SIGKILL a real worker process (tests/bot/crash_worker.py) at random points
between compute and send, restart it, and compare what the recording platform received with
an uninterrupted reference run.

Asserted (what the design actually guarantees):
- 0 lost: every alert of the reference run was delivered;
- none replayed as new: no alert the reference run does not have (same keys, same text);
- duplicates are counted from what the platform *received* (every accepted send is logged
  before the platform looks at its key): 0 in the uninterrupted reference, and at most one per
  kill (the at-least-once window between "accepted" and "marked sent"); a keyed platform
  (Discord's nonce, our recorder) shows each key once, so users see 0 of them;
- the store passes PRAGMA integrity_check with nothing left pending.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import scaled

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    delivered: dict[str, str]  # dedupe key → text, first send of each key (what users see)
    received: int  # sends the platform accepted, repeats included
    duplicates_received: int  # accepted sends whose key had arrived before


def worker(db: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bot.crash_worker", "--db", str(db), "--out", str(out),
         *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run_to_end(db: Path, out: Path) -> None:
    with worker(db, out) as p:
        stdout, _ = p.communicate(timeout=120)
    assert p.returncode == 0 and stdout.split() == ["ready", "done"], stdout


def outcome(out: Path) -> Outcome:
    def lines(name: str) -> list[dict]:
        path = out / name
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    delivered = lines("delivered.jsonl")
    keys = [d["key"] for d in lines("received.jsonl")]
    assert set(keys) == {d["key"] for d in delivered}  # the recorder saw what it shows
    return Outcome(delivered={d["key"]: d["text"] for d in delivered}, received=len(keys),
                   duplicates_received=len(keys) - len(set(keys)))


def check_store(db: Path, expected_sent: int) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    finally:
        conn.close()
    assert counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0
    assert counts.get("sent", 0) == expected_sent


@dataclass
class Reference:
    delivered: dict[str, str]
    loop_s: float  # wall time from "ready" to exit


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    d = tmp_path_factory.mktemp("reference")
    with worker(d / "db", d) as p:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        t = time.monotonic()
        rest, _ = p.communicate(timeout=120)
        loop_s = time.monotonic() - t
    assert p.returncode == 0 and rest.split() == ["done"]
    ref = outcome(d)
    assert ref.duplicates_received == 0 and ref.received == len(ref.delivered)
    kinds = {k.split("|")[1] for k in ref.delivered}
    # A meaningful path: news one by one (chat b) and in digests (quiet, the default).
    assert kinds >= {"approach", "break", "new_cluster", "digest", "level_cross"}, kinds
    return Reference(ref.delivered, loop_s)


def assert_same_as_reference(run_dir: Path, ref: Reference, kills: int) -> Outcome:
    got = outcome(run_dir)
    lost = set(ref.delivered) - set(got.delivered)
    new = set(got.delivered) - set(ref.delivered)
    assert not lost, f"lost alerts: {sorted(lost)[:5]}"
    assert not new, f"alerts replayed as new: {sorted(new)[:5]}"
    assert got.delivered == ref.delivered  # same wording, times and prices
    assert got.duplicates_received <= kills
    check_store(run_dir / "db", len(ref.delivered))
    return got


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path,
                                                               reference: Reference) -> None:
    runs = scaled(50, minimum=20)
    rng = random.Random(20261125)
    total_kills = total_duplicates = 0
    for run in range(runs):
        d = tmp_path / f"run{run}"
        d.mkdir()
        kills = misses = 0
        want = rng.randint(1, 3)
        while kills < want and misses < 6:
            with worker(d / "db", d) as p:
                assert p.stdout is not None
                assert p.stdout.readline().strip() == "ready"
                # A restarted worker has less left to do: shrink the window after a miss.
                time.sleep(rng.uniform(0, reference.loop_s * 0.5 ** misses))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    kills += 1
                else:
                    misses += 1
                p.wait(timeout=60)
        assert kills >= 1
        run_to_end(d / "db", d)
        got = assert_same_as_reference(d, reference, kills)
        total_kills += kills
        total_duplicates += got.duplicates_received
    print(f"crash test: {runs} runs, {total_kills} SIGKILLs, 0 lost, 0 replayed as new, "
          f"{total_duplicates} duplicate send(s) received by the platform (dropped by its key)")


@pytest.mark.parametrize("die_after", [1, 17, 60])
def test_kill_inside_the_send_window_resends_exactly_once(tmp_path: Path, reference: Reference,
                                                          die_after: int) -> None:
    """Killed after the platform accepted a message but before 'sent' was committed: after the
    restart that one message is sent again (at-least-once): the platform receives it twice and
    the keyed platform drops the repeat."""
    with worker(tmp_path / "db", tmp_path, "--die-after-sends", str(die_after)) as p:
        p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL
    run_to_end(tmp_path / "db", tmp_path)
    got = assert_same_as_reference(tmp_path, reference, kills=1)
    assert got.duplicates_received == 1
