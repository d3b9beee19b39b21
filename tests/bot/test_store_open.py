"""Opening the store from `liqbot run`: a bad path, a corrupt page, a second owner and loose
permissions each end in one clear line (exit 2 for path problems), never a traceback."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import StoreError, StoreLockedError
from bot.store import Store


def run_with_store(tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
                   ) -> tuple[int, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[bot]\nstore = '{store}'\n")
    rc = main(["run", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.strip()


def only_line(err: str) -> str:
    """The one error line (INFO logging may precede it)."""
    lines = [ln for ln in err.splitlines() if ln.startswith("liqbot")]
    assert len(lines) == 1, err
    return lines[0]


def test_store_in_a_missing_folder_is_a_config_error(tmp_path, capsys) -> None:
    store = tmp_path / "nope" / "liqbot.db"
    rc, err = run_with_store(tmp_path, store, capsys)
    assert rc == 2
    assert only_line(err) == (f"liqbot: config error: store {store}: folder {store.parent} does "
                              "not exist (create it, or set [bot] store to a path in an existing "
                              "folder)")
    assert not store.parent.exists()


def test_store_under_a_file_or_naming_a_folder_is_a_config_error(tmp_path, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc, err = run_with_store(tmp_path, blocker / "liqbot.db", capsys)
    assert rc == 2 and f"{blocker} is not a folder" in only_line(err)
    folder = tmp_path / "adir"
    folder.mkdir()
    rc, err = run_with_store(tmp_path, folder, capsys)
    assert rc == 2 and f"store {folder} is a folder" in only_line(err)
    assert blocker.read_text() == "x" and list(folder.iterdir()) == []


def test_store_in_a_read_only_folder_is_a_config_error(tmp_path, capsys) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable for root")
        rc, err = run_with_store(tmp_path, folder / "liqbot.db", capsys)
    finally:
        folder.chmod(0o700)
    assert rc == 2 and f"folder {folder} is not writable" in only_line(err)


def corrupt_store(tmp_path: Path) -> Path:
    path = tmp_path / "liqbot.db"
    s = Store(path)
    for i in range(300):
        s.subscribe(s.upsert_chat("telegram", i).id, f"S{i % 20}")
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    with path.open("r+b") as f:  # scribble over page 6 (of ~33), not the header
        f.seek(4096 * 5 + 100)
        f.write(b"\xff" * 2000)
    return path


def test_corrupt_page_is_refused_with_sqlite_message_and_recovery(tmp_path, capsys) -> None:
    path = corrupt_store(tmp_path)
    with pytest.raises(StoreError, match="corrupt"):
        Store(path)
    rc, err = run_with_store(tmp_path, path, capsys)
    line = only_line(err)
    assert rc == 1
    assert line.startswith(f"liqbot: store {path} is corrupt (SQLite quick_check: ")
    assert f'sqlite3 {path} ".recover" | sqlite3 {tmp_path / "liqbot-recovered.db"}' in line


def test_second_owner_is_refused_and_the_lock_ends_with_the_first(tmp_path, capsys) -> None:
    path = tmp_path / "liqbot.db"
    first = Store(path, exclusive=True)
    try:
        rc, err = run_with_store(tmp_path, path, capsys)
        assert rc == 1
        assert only_line(err) == (
            f"liqbot: store {path} is in use by another liqbot process (pid {os.getpid()}; lock "
            f"{path}.lock): only one process may own a SQLite store. Stop the other one, or give "
            "this one its own [bot] store")
        with pytest.raises(StoreLockedError):
            Store(path, exclusive=True)
        Store(path).close()  # a reader that does not own the store (tests, tools) may open it
    finally:
        first.close()
    Store(path, exclusive=True).close()  # released on close


def test_existing_store_readable_by_others_is_made_private(tmp_path, caplog) -> None:
    path = tmp_path / "liqbot.db"
    Store(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="bot.store_file"):
        Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"store file {path} had mode 0644" in caplog.text
