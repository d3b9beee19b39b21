"""Progress bars for long commands (backtest, calibrate, demo, record): tqdm on a terminal,
nothing at all when the stream is piped or redirected, or with ``--quiet``."""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Awaitable
from types import TracebackType
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Progress:
    """One bar on ``file`` (stderr by default), shown only when that is a terminal and not
    ``quiet``. Use as a context manager; the bar is removed when done."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it",
                 quiet: bool = False, file: TextIO | None = None) -> None:
        self.file = file if file is not None else sys.stderr
        self.shown = not quiet and _is_terminal(self.file)
        # delay > 0: nothing is drawn before the first update, so lines printed before the
        # work starts (a command's header) do not run into an empty bar.
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, leave=False,
                        dynamic_ncols=True, disable=not self.shown, delay=1e-9)

    def update_to(self, done: int, total: int | None = None) -> None:
        """``done`` of ``total`` (the total may become known only once the work starts)."""
        if not self.shown:
            return
        if total is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.update(done - self.bar.n)
            self.bar.refresh()  # draw the known total now, not at the next redraw
            return
        self.bar.update(done - self.bar.n)

    def note(self, text: str) -> None:
        """A short status after the bar (e.g. "12 alerts")."""
        if self.shown:
            self.bar.set_postfix_str(text, refresh=False)

    def write(self, line: str, file: TextIO) -> None:
        """``line`` on its own line of ``file``, above the bar (never run into it)."""
        if not self.shown:
            file.write(line + "\n")
            file.flush()
            return
        with self.bar.get_lock():  # what tqdm.write does, for any pair of streams
            self.bar.clear(nolock=True)
            file.write(line + "\n")
            file.flush()
            self.bar.refresh(nolock=True)

    async def timed(self, work: Awaitable[T]) -> T:
        """Await ``work`` while the bar counts seconds (its total is a duration in s)."""
        task = asyncio.ensure_future(work)
        started = time.monotonic()
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            total = self.bar.total
            elapsed = round(time.monotonic() - started)
            self.update_to(elapsed if total is None else min(elapsed, int(total)))
        return task.result()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class LinesAbove(io.TextIOBase):
    """A text stream that prints each complete line above a bar (for code that prints to a
    stream, such as the console notifier)."""

    def __init__(self, stream: TextIO, progress: Progress) -> None:
        self.stream = stream
        self.progress = progress
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.progress.write(line, self.stream)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return _is_terminal(self.stream)

    def writable(self) -> bool:
        return True
