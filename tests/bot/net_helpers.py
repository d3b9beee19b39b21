"""A loopback TCP proxy that injects network faults in front of the chat fakes.

``FlakyProxy(upstream_port)`` forwards bytes both ways. Faults:

- :meth:`stop` / :meth:`start`: the service goes away (connections aborted, connects refused)
  and comes back on the same port;
- ``reset_before``: the next N requests whose first bytes contain ``match`` are answered with a
  TCP reset before reaching the fake (nothing delivered);
- ``reset_after``: the next N matching requests reach the fake, then the client connection is
  reset instead of relaying the answer (delivered, answer lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), like a peer that crashed."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FlakyProxy:
    def __init__(self, upstream_port: int, match: bytes = b"") -> None:
        self.upstream_port = upstream_port
        self.match = match
        self.port = 0
        self.reset_before = 0
        self.reset_after = 0
        self.resets = 0
        self.refused_while_down = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Go away: stop listening and reset every open connection."""
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                _rst(w)
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _rst(writer)
            self._writers.discard(writer)
            return
        self._writers.add(up_w)
        lose_answer = asyncio.Event()

        async def client_to_upstream() -> None:
            while data := await reader.read(65536):
                if self.match in data and self.reset_before > 0:
                    self.reset_before -= 1
                    self.resets += 1
                    raise ConnectionResetError
                if self.match in data and self.reset_after > 0:
                    self.reset_after -= 1
                    self.resets += 1
                    lose_answer.set()
                up_w.write(data)
                await up_w.drain()

        async def upstream_to_client() -> None:
            while data := await up_r.read(65536):
                if lose_answer.is_set():
                    raise ConnectionResetError
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(client_to_upstream()),
                 asyncio.create_task(upstream_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            _rst(writer)
            up_w.transport.abort()
            self._writers.discard(writer)
            self._writers.discard(up_w)
