"""Console adapter: alerts and replies to stdout, PNGs to a folder, commands from stdin."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections import deque
from pathlib import Path
from typing import TextIO

from bot.commands.core import CommandCore
from bot.commands.reply import Caller, Reply
from bot.config import ConsoleSection
from bot.dispatcher import Alert
from bot.store import Chat

log = logging.getLogger(__name__)

PLATFORM = "console"
CHAT_ID = "console"
CALLER = Caller(PLATFORM, CHAT_ID, "console-user", is_admin=True)


class ConsoleNotifier:
    """Prints alerts (the dispatcher's Notifier for platform "console").

    Keeps only the ``keep`` most recent alerts (``sent``, for tests and the REPL) and a count:
    a bot running for weeks must not hold every alert it ever printed. Dedupe is the outbox's
    job (one row per key), not the notifier's.
    """

    def __init__(self, out: TextIO | None = None, keep: int = 100) -> None:
        self.out = out or sys.stdout
        self.sent: deque[Alert] = deque(maxlen=keep)
        self.count = 0

    async def send(self, chat: Chat, alert: Alert) -> str:
        """Print the alert on one line; its id is its number in this process."""
        self.sent.append(alert)
        self.count += 1
        reply = f"(reply to alert {alert.reply_to}) " if alert.reply_to is not None else ""
        print(f"ALERT {reply}{one_line(alert.text)}", file=self.out, flush=True)
        return str(self.count)

    async def edit(self, chat: Chat, alert: Alert) -> None:
        """A terminal cannot edit a printed line: the update is a new line saying which
        alert it updates (the approach message of that cluster, its timeline included)."""
        self.sent.append(alert)
        self.count += 1
        print(f"ALERT (updates the earlier alert on this cluster) {one_line(alert.text)}",
              file=self.out, flush=True)


def one_line(text: str) -> str:
    """An alert's lines (message, timeline) joined with " · " for a line-per-alert log."""
    return " · ".join(part for part in text.splitlines() if part)


class ConsoleAdapter:
    """The console as a chat platform: alerts to stdout, commands from stdin when asked."""

    platform = PLATFORM

    def __init__(self, settings: ConsoleSection, out: TextIO | None = None) -> None:
        self.settings = settings
        self._notifier = ConsoleNotifier(out)
        self._reader: asyncio.Task[None] | None = None

    @property
    def notifier(self) -> ConsoleNotifier:
        return self._notifier

    async def start(self, core: CommandCore) -> None:
        kind = stdin_kind()
        if self.settings.interactive and kind == "terminal":
            self._reader = asyncio.create_task(read_commands(core, self.settings.charts_dir))
        elif self.settings.interactive:
            log.warning("console: [console] interactive = true, but stdin is not a terminal "
                        "(%s): no commands are read", kind)
        elif kind in ("pipe", "file"):
            log.warning("console: stdin is a %s and is ignored: commands are read only with "
                        "[console] interactive = true, from a terminal", kind)

    async def start_notifier(self, core: CommandCore) -> None:
        """Alerts print to stdout: nothing to connect."""

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None


def show_reply(reply: Reply, charts_dir: str = "", out: TextIO | None = None) -> None:
    """Print a reply; save its PNG under ``charts_dir`` when one is given."""
    stream = out or sys.stdout
    print(reply.text, file=stream)
    if reply.png is not None:
        if charts_dir:
            d = Path(charts_dir)
            d.mkdir(parents=True, exist_ok=True)
            path = d / reply.filename
            path.write_bytes(reply.png)
            print(f"[chart saved to {path}]", file=stream)
        else:
            print(f"[chart: {len(reply.png)} bytes PNG; set console.charts_dir to save it]",
                  file=stream)
    for follow in reply.followups:
        show_reply(follow, charts_dir, out)
    stream.flush()


def stdin_kind() -> str:
    """What stdin is: "terminal", "pipe", "file" or "other" (/dev/null, a socket, closed, or
    no file descriptor at all, as under pytest)."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd):
            return "terminal"
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return "other"
    if stat.S_ISFIFO(mode):
        return "pipe"
    return "file" if stat.S_ISREG(mode) else "other"


async def read_commands(core: CommandCore, charts_dir: str) -> None:
    """Answer commands typed on stdin until EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("Type /help for commands (Ctrl-D to stop reading).", flush=True)
    while True:
        line = await reader.readline()
        if not line:
            return
        text = line.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        reply = await core.handle(text if text.startswith("/") else "/" + text, CALLER)
        if reply is not None:
            show_reply(reply, charts_dir)
