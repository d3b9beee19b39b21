"""A loopback fake of Hyperliquid's public info API (``POST /info``) and trades websocket
(``/ws``) for ccxt(.pro)'s ``hyperliquid``, with fault injection.

``/info`` answers ``metaAndAssetCtxs`` (from :attr:`FakeHyperliquid.coins`: name → (mark, OI
coins)) and ``clearinghouseState`` (from :attr:`FakeHyperliquid.states`: user → state; unknown
users have no positions). Faults are scripted per request type:
``fake.inject("clearinghouseState", "429", "ok")``. Kinds: ok, 429 (Retry-After 0), 500, 502,
slow (sleeps ``slow_s``), malformed (truncated JSON), partial (a position without ``szi``),
shape (a JSON list instead of an object).

The websocket answers ``{"method": "subscribe", "subscription": {"type": "trades", "coin"}}``
with a ``subscriptionResponse``; tests push trades with :meth:`FakeHyperliquid.push_trades`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from typing import Any

from aiohttp import web

from tests.bot.fake_binance_ws import FakeWsServer


def position(coin: str, szi: float, entry: float, liq: float | None, lev: float = 10,
             margin: str = "cross") -> dict[str, Any]:
    """One ``assetPositions`` entry as Hyperliquid sends it (numbers as strings)."""
    value = abs(szi) * entry
    return {"type": "oneWay", "position": {
        "coin": coin, "szi": f"{szi}", "entryPx": f"{entry}", "positionValue": f"{value}",
        "liquidationPx": None if liq is None else f"{liq}", "unrealizedPnl": "0.0",
        "returnOnEquity": "0.0", "leverage": {"type": margin, "value": lev,
                                              **({"rawUsd": "0"} if margin == "isolated" else {})},
        "marginUsed": f"{value / lev}", "maxLeverage": 50,
        "cumFunding": {"allTime": "0", "sinceOpen": "0", "sinceChange": "0"}}}


def state(*positions: dict[str, Any], t_ms: int = 1_764_000_000_000) -> dict[str, Any]:
    """A ``clearinghouseState`` response holding ``positions``."""
    return {"marginSummary": {"accountValue": "0", "totalNtlPos": "0", "totalRawUsd": "0",
                              "totalMarginUsed": "0"},
            "crossMarginSummary": {"accountValue": "0", "totalNtlPos": "0",
                                   "totalRawUsd": "0", "totalMarginUsed": "0"},
            "crossMaintenanceMarginUsed": "0", "withdrawable": "0",
            "assetPositions": list(positions), "time": t_ms}


def address(i: int) -> str:
    return "0x" + f"{i:040x}"


def trade(coin: str, px: float, sz: float, t_ms: int, buyer: str, seller: str,
          tid: int) -> dict[str, Any]:
    return {"coin": coin, "side": "B", "px": f"{px}", "sz": f"{sz}", "time": t_ms,
            "hash": "0x" + "0" * 64, "tid": tid, "users": [buyer, seller]}


class FakeHyperliquid(FakeWsServer):
    """``async with FakeHyperliquid() as hl:`` — ``hl.url`` is ``ws://…``; :attr:`http_url`
    the same server over http (ccxt's REST base)."""

    paths = ("/ws",)

    def __init__(self, slow_s: float = 1.0) -> None:
        super().__init__()
        self.slow_s = slow_s
        self.coins: dict[str, tuple[float, float]] = {"BTC": (100_000.0, 1_000.0),
                                                      "ETH": (4_000.0, 10_000.0)}
        self.states: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []

    @property
    def http_url(self) -> str:
        return "http" + self.url[len("ws"):]

    def inject(self, kind: str, *faults: str) -> None:
        self.faults[kind].extend(faults)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_post("/info", self._info)

    async def _info(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        kind = body.get("type", "")
        fault = self.faults[kind].popleft() if self.faults[kind] else "ok"
        if fault == "429":
            return web.Response(status=429, text="null", headers={"Retry-After": "0"})
        if fault in ("500", "502"):
            return web.Response(status=int(fault), text="internal error")
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        if fault == "malformed":
            return web.Response(text='{"assetPositions": [', content_type="application/json")
        if fault == "shape":
            return web.json_response([1, 2])
        if kind == "metaAndAssetCtxs":
            return web.json_response(self._meta())
        if kind == "candleSnapshot":
            return web.json_response(self._candles(body.get("req", {})))
        if kind == "spotMeta":  # ccxt's load_markets asks for currencies too
            return web.json_response({"universe": [], "tokens": []})
        if kind == "clearinghouseState":
            answer = self.states.get(str(body.get("user")), state())
            if fault == "partial":
                answer = json.loads(json.dumps(answer))
                for entry in answer["assetPositions"][:1]:
                    entry["position"].pop("szi")
            return web.json_response(answer)
        return web.json_response({"error": f"unknown type {kind}"}, status=422)

    def _candles(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        mark = self.coins.get(str(req.get("coin")), (1.0, 0.0))[0]
        t = int(req.get("startTime", 0)) // 60_000 * 60_000
        out = []
        while t <= int(req.get("endTime", 0)):
            out.append({"t": t, "T": t + 59_999, "s": req.get("coin"), "i": "1m",
                        "o": f"{mark}", "c": f"{mark}", "h": f"{mark * 1.001}",
                        "l": f"{mark * 0.999}", "v": "1.5", "n": 10})
            t += 60_000
        return out

    def _meta(self) -> list[Any]:
        universe = [{"name": c, "szDecimals": 5, "maxLeverage": 50, "marginTableId": 50}
                    for c in self.coins]
        ctxs = [{"funding": "0.0000125", "openInterest": f"{oi}", "prevDayPx": f"{mark}",
                 "dayNtlVlm": "1000000.0", "premium": "0.0", "oraclePx": f"{mark}",
                 "markPx": f"{mark}", "midPx": f"{mark}", "impactPxs": [f"{mark}", f"{mark}"],
                 "dayBaseVlm": "10.0"} for mark, oi in self.coins.values()]
        return [{"universe": universe, "marginTables": []}, ctxs]

    async def answer(self, ws: web.WebSocketResponse, body: dict[str, Any]) -> None:
        if body.get("method") == "ping":
            await ws.send_str(json.dumps({"channel": "pong"}))
        elif body.get("method") == "subscribe":
            await ws.send_str(json.dumps({"channel": "subscriptionResponse", "data": body}))
            sub = body.get("subscription", {})
            await self.subscribed(ws, [f"{sub.get('type')}:{sub.get('coin')}"])

    async def push_trades(self, *trades: dict[str, Any]) -> None:
        await self.push({"channel": "trades", "data": list(trades)})
