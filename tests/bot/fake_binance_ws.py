"""A loopback fake of Binance USDⓈ-M's forceOrder websocket stream (``/market/ws/…``), and the
server plumbing it shares with :mod:`tests.bot.fake_bybit_ws`.

ccxt.pro connects to ``{url}/market/ws/0`` when ``urls['api']['ws']['linear']`` is ``{url}/ws``;
it sends ``{"method": "SUBSCRIBE", "params": ["btcusdt@forceOrder"], "id": n}`` and the fake
answers ``{"result": null, "id": n}``. Tests push events with :meth:`FakeWsServer.push`
(to every open connection) and drop connections with :meth:`FakeWsServer.drop`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web


def force_order(symbol: str, side: str, price: float, qty: float, t_ms: int) -> dict[str, Any]:
    """One Binance forceOrder event: ``side`` is the liquidation order's side (BUY/SELL)."""
    return {"e": "forceOrder", "E": t_ms + 2, "o": {
        "s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": f"{qty}", "p": f"{price}",
        "ap": f"{price}", "X": "FILLED", "l": f"{qty}", "z": f"{qty}", "T": t_ms}}


class FakeWsServer:
    """A loopback websocket server: ``async with Fake() as ws:``; ``ws.url`` is
    ``ws://127.0.0.1:PORT``. Subclasses name their ``paths`` and answer each client JSON
    message in :meth:`answer`, calling :meth:`subscribed` after a subscription's answer.

    ``on_subscribe`` messages are sent on each subscription right after its answer
    (e.g. to replay the last event after a reconnect, as a duplicate).
    """

    paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.url = ""
        self.connections = 0
        self.subscriptions: list[list[str]] = []
        self.on_subscribe: list[dict[str, Any]] = []
        self._open: set[web.WebSocketResponse] = set()
        self._subscribed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        """Add the websocket paths (subclasses may add plain HTTP ones too)."""
        for path in self.paths:
            app.router.add_get(path, self._handle)

    async def __aenter__(self) -> FakeWsServer:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._open):
            await ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_subscribed(self, count: int, timeout_s: float = 10.0) -> None:
        """Until ``count`` subscription requests have been answered in all."""
        async def wait() -> None:
            while len(self.subscriptions) < count:
                self._subscribed.clear()
                await self._subscribed.wait()
        await asyncio.wait_for(wait(), timeout_s)

    async def push(self, *events: dict[str, Any]) -> None:
        """Send events to every open connection, in order."""
        for ws in list(self._open):
            for event in events:
                await ws.send_str(json.dumps(event))

    async def drop(self) -> None:
        """Close every open connection from the server side (code 1001, going away)."""
        for ws in list(self._open):
            await ws.close(code=1001, message=b"going away")

    async def answer(self, ws: web.WebSocketResponse, body: dict[str, Any]) -> None:
        """Answer one JSON message from the client."""
        raise NotImplementedError

    def replays(self, topics: list[str]) -> list[dict[str, Any]]:
        """The ``on_subscribe`` messages a subscription to ``topics`` gets (all, here)."""
        return self.on_subscribe

    async def subscribed(self, ws: web.WebSocketResponse, topics: list[str]) -> None:
        """After a subscription's answer: send its :meth:`replays`, record the topics."""
        for event in self.replays(topics):
            await ws.send_str(json.dumps(event))
        self.subscriptions.append(topics)
        self._subscribed.set()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self._open.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.answer(ws, json.loads(msg.data))
        finally:
            self._open.discard(ws)
        return ws


class FakeBinanceWs(FakeWsServer):
    """Binance's forceOrder stream (``subscriptions``: the SUBSCRIBE requests' params)."""

    paths = ("/market/ws/{stream}", "/ws/{stream}")  # ccxt before the /market/ws split

    async def __aenter__(self) -> FakeBinanceWs:
        await super().__aenter__()
        return self

    async def answer(self, ws: web.WebSocketResponse, body: dict[str, Any]) -> None:
        if body.get("method") == "SUBSCRIBE":
            await ws.send_str(json.dumps({"result": None, "id": body["id"]}))
            await self.subscribed(ws, list(body["params"]))
