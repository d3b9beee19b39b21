"""The read-only web view (aiohttp): ``/s/{symbol}`` and the JSON API ``/api/v1/...``.

Safe by construction: GET/HEAD only; no cookies; a strict Content-Security-Policy (scripts
from this server only, no inline script); no CORS headers (other sites cannot read the API);
a per-IP rate limit; symbols go through the command core's resolver (tracked symbols only);
the page fills itself from the API with ``textContent`` (values never become HTML).

Telegram Mini App rule: a request carrying ``X-Telegram-Init-Data`` (the page sends it when
Telegram opened it, from the ``tgWebAppData`` Telegram passes in the URL fragment) is served
only when that initData is signed with this bot's token and younger than
:data:`~bot.web.initdata.MAX_AGE_S`; else 401. A request without the header is a plain
browser request and gets the same public, read-only data.
"""

from __future__ import annotations

import asyncio
import html
import logging
import signal
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from bot.commands.core import CommandCore, RateLimiter
from bot.commands.market_cmds import chart_key, confirmed_view, live_tape
from bot.config import Config, model_params
from bot.errors import UserInputError
from bot.estimates import WINDOWS_H, Estimate
from bot.finite import finite_json
from bot.web import api, page_name
from bot.web.initdata import InitDataError, validate

log = logging.getLogger(__name__)

INIT_HEADER = "X-Telegram-Init-Data"
REQUESTS_PER_MINUTE = 120  # per client IP
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'self' https://web.telegram.org")
STATIC = {  # the only files served from bot/web/static
    "app.js": "text/javascript", "app.css": "text/css",
    "echarts.min.js": "text/javascript", "ECHARTS_LICENSE.txt": "text/plain",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes:
    return resources.files("bot.web").joinpath("static", name).read_bytes()


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=finite_json(obj, "web api"), status=status,
                        content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"version": api.API_VERSION, "error": message}, status)


class WebView:
    """The aiohttp application over a command core (its board, tape, config, resolver)."""

    def __init__(self, core: CommandCore, bot_token: str | None = None,
                 per_minute: int = REQUESTS_PER_MINUTE) -> None:
        self.core = core
        self._token = bot_token
        self.limiter = RateLimiter(per_minute, core.clock)
        self._cache: dict[tuple[str, str, int, int, str], bytes] = {}
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_get("/", self._index)
        self.app.router.add_get("/s/{symbol}", self._page)
        self.app.router.add_get("/static/{name}", self._file)
        self.app.router.add_get("/api/v1/levels", self._levels)
        self.app.router.add_get("/api/v1/heatmap", self._heatmap)
        self.app.router.add_get("/api/v1/map", self._map)
        self._runner: web.AppRunner | None = None

    # -- middleware ---------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = self.limiter.check(request.remote or "?")
        if wait > 0:
            resp: web.StreamResponse = _error(429, f"rate limit: {self.limiter.per_minute} "
                                                   "requests per minute")
            resp.headers["Retry-After"] = str(max(int(wait), 1))
        elif request.path.startswith("/api/") and INIT_HEADER in request.headers \
                and (problem := self._init_problem(request.headers[INIT_HEADER])):
            resp = _error(401, problem)
        else:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                resp = _error(exc.status, exc.reason) if request.path.startswith("/api/") \
                    else _page_error(exc.status, exc.reason)
            except Exception:  # logged here; the client gets one line, never a traceback
                log.exception("web: %s failed", request.path)
                resp = _error(500, "something went wrong on our side") \
                    if request.path.startswith("/api/") else _page_error(500, "server error")
        h = resp.headers
        h["Content-Security-Policy"] = CSP
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        h.setdefault("Cache-Control", "no-store")
        return resp

    def _init_problem(self, init_data: str) -> str | None:
        if not self._token:
            return "Mini App sign-in needs [telegram] enabled on this bot"
        try:
            validate(init_data, self._token)
        except InitDataError as exc:
            return str(exc)
        return None

    # -- pages ----------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        where = f"/s/{page_name(self.core.symbols[0])}"
        return web.Response(status=302, headers={"Location": where})

    async def _page(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.core.resolve_symbol(request.match_info["symbol"][:40])
        except UserInputError as exc:
            return _page_error(404, str(exc))
        return web.Response(body=_static("page.html"), content_type="text/html",
                            charset="utf-8")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(reason="no such file")
        resp = web.Response(body=_static(name), content_type=STATIC[name])
        resp.headers["Cache-Control"] = "public, max-age=3600"
        return resp

    # -- API ------------------------------------------------------------------------------------
    async def _estimate(self, request: web.Request) -> Estimate:
        text = request.query.get("symbol", "")
        if not text:
            raise web.HTTPBadRequest(reason="symbol is required, e.g. ?symbol=BTC")
        try:
            symbol = await self.core.resolve_symbol(text[:40])
        except UserInputError as exc:
            raise web.HTTPNotFound(reason=str(exc)) from None
        est = self.core.board.get(symbol)
        if est is None:
            raise web.HTTPServiceUnavailable(reason=f"no estimate for {symbol} yet")
        return est

    async def _levels(self, request: web.Request) -> web.StreamResponse:
        est = await self._estimate(request)
        top = request.query.get("top", "5")
        if not (top.isascii() and top.isdigit()) or not 1 <= int(top) <= 50:
            raise web.HTTPBadRequest(reason=f"top must be a whole number 1..50, got {top[:12]!r}")
        return _json(api.levels_json(est, int(top), confirmed_view(self.core, est)))

    async def _heatmap(self, request: web.Request) -> web.StreamResponse:
        est = await self._estimate(request)
        window = request.query.get("window", "24h").lower()
        if window not in WINDOWS_H:
            raise web.HTTPBadRequest(reason=f"window must be one of {', '.join(WINDOWS_H)}")
        tape = live_tape(self.core, est.symbol, est, WINDOWS_H[window] * 60)  # as /heatmap
        view = confirmed_view(self.core, est)
        key = (est.symbol, window, est.version, len(tape), "" if view is None else chart_key(view))
        body = self._cache.get(key)
        if body is None:
            body = (await asyncio.to_thread(lambda: finite_json(
                api.heatmap_json(est, window, tape, view), "heatmap"))).encode()
            self._cache = {k: v for k, v in self._cache.items() if k[2] == est.version}
            self._cache[key] = body
        resp = web.Response(body=body, content_type="application/json")
        resp.enable_compression()  # gzip when the client takes it: a 30d window is ~1 MB
        return resp

    async def _map(self, request: web.Request) -> web.StreamResponse:
        est = await self._estimate(request)
        return _json(api.map_json(est, confirmed_view(self.core, est)))

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> list[str]:
        """Listen on ``host``:``port`` (0 = any free port); returns the URLs listened on."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        urls = [f"http://{a[0]}:{a[1]}" for a in self._runner.addresses]
        log.info("web view on %s", ", ".join(urls))
        return urls

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _page_error(status: int, message: str) -> web.Response:
    body = (f"<!doctype html><meta charset=utf-8><title>liqbot</title>"
            f"<p>{html.escape(message)}</p>")
    return web.Response(text=body, status=status, content_type="text/html")


def bot_token(cfg: Config) -> str | None:
    """The Telegram bot token that signs Mini App initData (None: Telegram is off)."""
    tok = cfg.telegram.token
    return tok.reveal() if cfg.telegram.enabled and tok is not None else None


async def replay_view(cfg: Config, data: str | None, symbol: str,
                      positions: str | None = None) -> WebView:
    """A web view on the estimate of a whole replay CSV (the one ``liqbot levels`` computes);
    its store lives in memory (``view.core.store``). ``positions``: a Hyperliquid snapshot
    file (default: ``[positions] path`` when enabled) for the confirmed layer at the last
    candle."""
    from dataclasses import replace

    from bot.charts import ChartCache
    from bot.estimates import EstimateBoard, compute_estimate
    from bot.market.replay import BUNDLED_CSV, ReplaySource, load_csv
    from bot.store import Store

    candles = load_csv(data or BUNDLED_CSV)
    cfg = replace(cfg, bot=replace(cfg.bot, symbols=(symbol,)),
                  source=replace(cfg.source, kind="replay", path=data or ""))
    source = ReplaySource(candles, symbol=symbol, warmup=len(candles))
    board = EstimateBoard(cfg.bot.symbols)
    snapshot = await source.fetch(symbol)
    board.put(await asyncio.to_thread(compute_estimate, snapshot, model_params(cfg)))
    core = CommandCore(cfg, board, source, Store(memory=True), ChartCache())
    path = positions or (cfg.positions.path if cfg.positions.enabled else "")
    if path:  # the confirmed layer (issue 17), replayed
        from bot.hyperliquid.desk import PositionsDesk
        from bot.hyperliquid.snapshots import SnapshotReplay
        core.positions = PositionsDesk(replay=SnapshotReplay.load(path))
    return WebView(core, bot_token(cfg))


async def serve_replay(cfg: Config, data: str | None, symbol: str,
                       ready: Callable[[list[str]], None] | None = None,
                       stop: asyncio.Event | None = None, positions: str | None = None) -> int:
    """``liqbot serve``: :func:`replay_view` until ``stop`` is set (default: SIGINT/SIGTERM)."""
    view = await replay_view(cfg, data, symbol, positions)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        urls = await view.start(cfg.web.listen, cfg.web.port)
        (ready or _announce)(urls)
        await stop.wait()
    finally:
        await view.stop()
        view.core.store.close()
    return 0


def _announce(urls: list[str]) -> None:
    print(f"liqbot serve: web view on {urls[0]}/ (Ctrl-C stops)", flush=True)
