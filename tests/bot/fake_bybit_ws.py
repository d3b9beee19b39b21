"""A loopback fake of Bybit's v5 public linear websocket (``/v5/public/linear``), with the one
REST endpoint ccxt's ``load_markets`` calls for linear markets (``/v5/market/instruments-info``).

ccxt.pro bybit's ``watch_liquidations`` sends one ``{"op": "subscribe", "req_id": n,
"args": ["allLiquidation.BTCUSDT"]}`` per symbol; the fake answers as Bybit does,
``{"success": true, "ret_msg": "subscribe", "conn_id": …, "req_id": "n", "op": "subscribe"}``,
and answers ``{"op": "ping"}`` with ``{"success": true, "ret_msg": "pong", …}``. Liquidations
go out as Bybit's allLiquidation snapshots (:func:`all_liquidation`), whose ``S`` is the side
of the liquidated *position*: "Buy" means a long was liquidated.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.bot.fake_binance_ws import FakeWsServer

INSTRUMENTS = {"BTCUSDT": ("BTC", "0.10", "0.001"), "ETHUSDT": ("ETH", "0.01", "0.01")}
"""Linear perpetuals served: id → (base coin, tick size, qty step)."""


def all_liquidation(symbol: str, *events: tuple[str, float, float, int]) -> dict[str, Any]:
    """One allLiquidation message of ``symbol`` (e.g. ``BTCUSDT``) carrying ``events``
    (position side "Buy"/"Sell", bankruptcy price USD, size in coins, time ms)."""
    return {"topic": f"allLiquidation.{symbol}", "type": "snapshot",
            "ts": max(t for *_, t in events) + 300,
            "data": [{"T": t, "s": symbol, "S": side, "v": f"{qty}", "p": f"{price}"}
                     for side, price, qty, t in events]}


def instrument(symbol: str) -> dict[str, Any]:
    """One row of Bybit's linear instruments-info list."""
    base, tick, step = INSTRUMENTS[symbol]
    return {"symbol": symbol, "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": base, "quoteCoin": "USDT", "settleCoin": "USDT",
            "launchTime": "1585526400000", "deliveryTime": "0", "priceScale": "2",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00",
                               "leverageStep": "0.01"},
            "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": step, "qtyStep": step,
                              "minNotionalValue": "5"},
            "fundingInterval": 480}


class FakeBybitWs(FakeWsServer):
    """``ws.url`` is the websocket base, ``ws.rest_url`` the REST base; ``subscriptions``
    holds each subscribe request's topics, ``pings`` counts pings, ``rest_requests`` the
    instruments-info queries. ``on_subscribe`` messages are replayed on a subscription to
    their topic only."""

    paths = ("/v5/public/linear",)

    def __init__(self) -> None:
        super().__init__()
        self.rest_url = ""
        self.pings = 0
        self.rest_requests: list[dict[str, str]] = []

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/v5/market/instruments-info", self._instruments)

    async def __aenter__(self) -> FakeBybitWs:
        await super().__aenter__()
        self.rest_url = "http" + self.url[len("ws"):]
        return self

    def replays(self, topics: list[str]) -> list[dict[str, Any]]:
        return [m for m in self.on_subscribe if m.get("topic") in topics]

    async def answer(self, ws: web.WebSocketResponse, body: dict[str, Any]) -> None:
        op = body.get("op")
        reply = {"success": True, "ret_msg": "pong" if op == "ping" else str(op),
                 "conn_id": f"fake-{self.connections}", "req_id": str(body.get("req_id", "")),
                 "op": op}
        await ws.send_str(json.dumps(reply))
        if op == "ping":
            self.pings += 1
        elif op == "subscribe":
            await self.subscribed(ws, list(body["args"]))

    async def _instruments(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.rest_requests.append(q)
        rows = ([instrument(s) for s in INSTRUMENTS]
                if q.get("category") == "linear" and q.get("status") != "PreLaunch" else [])
        return web.json_response({
            "retCode": 0, "retMsg": "OK", "retExtInfo": {}, "time": 1_764_000_000_000,
            "result": {"category": q.get("category", ""), "list": rows, "nextPageCursor": ""}})
