"""The web view's server and JSON API (issue 23), over real HTTP on 127.0.0.1: the API
against the CLI, the symbol resolver, headers (CSP, no cookies, no CORS), the per-IP rate
limit, the Mini App initData rule, [web] config, ``liqbot serve`` and ``liqbot run``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import numpy as np
import pytest

from bot.cli import main as cli_main
from bot.config import Config, ConfigError, Secret, TelegramSection, WebSection, parse_config
from bot.web import page_name, page_url
from bot.web.initdata import MAX_AGE_S, sign
from bot.web.server import CSP, INIT_HEADER, WebView, replay_view
from tests.pg_server import free_port

TOKEN = "123456:TEST-token-must-never-be-logged"


def tg_config() -> Config:
    return replace(Config(), telegram=TelegramSection(enabled=True, token=Secret(TOKEN)))


@pytest.fixture
async def served() -> AsyncIterator[tuple[WebView, str]]:
    view = await replay_view(tg_config(), None, "BTC/USDT:USDT")
    urls = await view.start("127.0.0.1", 0)
    try:
        yield view, urls[0]
    finally:
        await view.stop()
        view.core.store.close()


async def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers,
                                                   allow_redirects=False) as r:
        return r.status, dict(r.headers), await r.read()


def launch(age_s: float = 5.0, token: str = TOKEN) -> str:
    return sign({"user": json.dumps({"id": 111}), "auth_date": str(int(time.time() - age_s))},
                token)


async def test_levels_json_equals_the_clis(served: tuple[WebView, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, base = served
    status, _, body = await fetch(f"{base}/api/v1/levels?symbol=BTC")
    assert status == 200
    api = json.loads(body)
    assert cli_main(["levels", "BTC", "--json"]) == 0
    assert api["levels"] == json.loads(capsys.readouterr().out)
    assert api["version"] == 1 and api["symbol"] == "BTC/USDT:USDT"
    assert api["disclaimer"] == "estimate from a model, not exchange data"
    status, _, body = await fetch(f"{base}/api/v1/levels?symbol=BTC&top=2")
    assert cli_main(["levels", "BTC", "--json", "--top", "2"]) == 0
    assert json.loads(body)["levels"] == json.loads(capsys.readouterr().out)


async def test_heatmap_json_is_the_estimates_heatmap_on_the_charts_price_range(
        served: tuple[WebView, str]) -> None:
    view, base = served
    est = view.core.board.get("BTC/USDT:USDT")
    assert est is not None
    for window in ("12h", "7d", "30d"):
        status, _, body = await fetch(f"{base}/api/v1/heatmap?symbol=btcusdt&window={window}")
        assert status == 200
        d = json.loads(body)
        hm = est.heatmap(window)
        nt, npr = d["shape"]
        assert d["time_ms"] == hm.timestamp.tolist() and nt == len(hm.timestamp)
        assert len(d["values"]) == nt * npr == nt * len(d["prices"])
        j0 = int(np.argmin(np.abs(hm.prices - d["prices"][0])))
        expect = np.rint(hm.total[:, j0:j0 + npr]).astype(np.int64)
        assert np.array_equal(np.array(d["values"]).reshape(nt, npr), expect)
        assert sum(d["values"]) > 0
        # cropped like the PNG: around the window's traded range
        assert d["prices"][0] < min(d["close"]) and d["prices"][-1] > max(d["close"])
        assert npr < hm.total.shape[1]


async def test_map_json_is_the_book(served: tuple[WebView, str]) -> None:
    view, base = served
    est = view.core.board.get("BTC/USDT:USDT")
    assert est is not None
    status, _, body = await fetch(f"{base}/api/v1/map?symbol=BTC")
    d = json.loads(body)
    assert status == 200 and d["leverage"] == list(est.book.leverages)
    assert np.array_equal(np.array(d["long"]), np.rint(est.book.long_by_lev))
    assert np.array_equal(np.array(d["short"]), np.rint(est.book.short_by_lev))
    assert len(d["prices"]) == est.book.long_by_lev.shape[1]


@pytest.mark.parametrize("path, status, says", [
    ("/api/v1/levels?symbol=ETH", 404, "not available in replay"),
    ("/api/v1/levels?symbol=%3Cscript%3E", 404, "is not a symbol"),
    ("/api/v1/levels", 400, "symbol is required"),
    ("/api/v1/levels?symbol=BTC&top=0", 400, "top must be"),
    ("/api/v1/heatmap?symbol=BTC&window=2y", 400, "window must be one of"),
    ("/api/v1/nothing?symbol=BTC", 404, "Not Found"),
])
async def test_bad_requests_get_one_json_error(served: tuple[WebView, str], path: str,
                                               status: int, says: str) -> None:
    got, headers, body = await fetch(served[1] + path)
    assert got == status and headers["Content-Type"].startswith("application/json")
    assert says in json.loads(body)["error"]


async def test_page_is_served_for_tracked_symbols_only_and_escapes_the_refusal(
        served: tuple[WebView, str]) -> None:
    base = served[1]
    status, headers, body = await fetch(f"{base}/s/BTC")
    assert status == 200 and b'src="/static/app.js"' in body and b"<script>" not in body
    assert b"not exchange data" in body
    status, _, body = await fetch(f"{base}/s/%3Cb%3Ex%3C%2Fb%3E")
    assert status == 404 and b"<b>" not in body and b"&lt;b&gt;" in body
    status, headers, _ = await fetch(f"{base}/")
    assert status == 302 and headers["Location"] == "/s/BTCUSDT"
    status, _, _ = await fetch(f"{base}/static/../config.py")
    assert status == 404
    status, _, body = await fetch(f"{base}/static/ECHARTS_LICENSE.txt")
    assert status == 200 and b"Apache License" in body and b"6.1.0" in body


async def test_every_response_has_a_strict_csp_and_no_cookies_or_cors(
        served: tuple[WebView, str]) -> None:
    base = served[1]
    for path in ("/s/BTC", "/api/v1/levels?symbol=BTC", "/static/app.js", "/api/v1/levels"):
        _, headers, _ = await fetch(base + path, Origin="https://evil.example")
        assert headers["Content-Security-Policy"] == CSP
        assert "script-src 'self';" in CSP and "unsafe-eval" not in CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Set-Cookie" not in headers
        assert not any(h.lower().startswith("access-control-") for h in headers)
    async with aiohttp.ClientSession() as s, s.options(
            f"{base}/api/v1/levels?symbol=BTC", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}) as r:
        assert r.status == 405 and "Access-Control-Allow-Origin" not in r.headers
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/v1/levels?symbol=BTC") as r:
        assert r.status == 405


async def test_per_ip_rate_limit(served: tuple[WebView, str]) -> None:
    view, base = served
    assert view.limiter.per_minute == 120  # the README's figure
    view.limiter.per_minute = 5
    got = [(await fetch(f"{base}/api/v1/levels?symbol=BTC"))[0] for _ in range(6)]
    assert got == [200] * 5 + [429]
    _, headers, body = await fetch(f"{base}/s/BTC")
    assert int(headers["Retry-After"]) >= 1 and b"rate limit" in body


async def test_mini_app_requests_need_valid_recent_init_data(served: tuple[WebView, str]) -> None:
    base = served[1]
    url = f"{base}/api/v1/levels?symbol=BTC"
    assert (await fetch(url, **{INIT_HEADER: launch()}))[0] == 200  # valid
    fields = dict(p.split("=", 1) for p in launch().split("&"))
    fields["auth_date"] = str(int(fields["auth_date"]) + 1)
    tampered = "&".join(f"{k}={v}" for k, v in fields.items())
    for init, says in ((tampered, "signature does not match"),
                       (launch(token="654321:another-bot"), "signature does not match"),
                       (launch(age_s=MAX_AGE_S + 60), "expired"),
                       ("", "missing")):
        status, _, body = await fetch(url, **{INIT_HEADER: init})
        assert status == 401 and says in json.loads(body)["error"], init
    # No header at all: a plain browser request, served (the data is public and read-only).
    assert (await fetch(url))[0] == 200


async def test_mini_app_requests_are_refused_when_telegram_is_off() -> None:
    view = await replay_view(Config(), None, "BTC/USDT:USDT")
    base = (await view.start("127.0.0.1", 0))[0]
    try:
        status, _, body = await fetch(f"{base}/api/v1/levels?symbol=BTC",
                                      **{INIT_HEADER: launch()})
        assert status == 401 and "telegram" in json.loads(body)["error"]
    finally:
        await view.stop()
        view.core.store.close()


def test_web_config_defaults_off_and_checks_its_keys() -> None:
    assert Config().web == WebSection(enabled=False)
    cfg = parse_config('[web]\nenabled = true\nport = 9000\npublic_url = "https://x.org/liq/"\n')
    assert cfg.web.port == 9000 and cfg.web.public_url == "https://x.org/liq"
    for text, says in (("[web]\nport = 0", "web.port = 0 must be in [1, 65535]"),
                       ("[web]\nport = 70000", "must be in [1, 65535]"),
                       ('[web]\npublic_url = "javascript:alert(1)"', "line 2: web.public_url"),
                       ('[web]\npublic_url = "https://x.org/?a=<b>"', "without query"),
                       ("[web]\nlisten = ''", "must be an address"),
                       ("[web]\nport = '80'", "must be an integer")):
        with pytest.raises(ConfigError, match=r"line 2: web\.|must"):
            parse_config(text, "c.toml")
        with pytest.raises(ConfigError) as exc:
            parse_config(text, "c.toml")
        assert says in str(exc.value)
    with pytest.raises(ConfigError, match="https:// when telegram is enabled"):
        parse_config('[web]\nenabled = true\npublic_url = "http://x.org"\n'
                     '[telegram]\nenabled = true\n', "c.toml", env={"TELEGRAM_TOKEN": TOKEN})


def test_page_url_only_when_enabled_with_a_public_url() -> None:
    on = WebSection(enabled=True, public_url="https://liq.example.org")
    assert page_url(on, "BTC/USDT:USDT", "7d") == "https://liq.example.org/s/BTCUSDT?window=7d"
    assert page_url(on, "ETH/USDC:USDC") == "https://liq.example.org/s/ETHUSDC"
    assert page_url(on, "BTC/USD:BTC") == ""  # the resolver would read BTCUSD as USD-settled
    assert page_url(replace(on, enabled=False), "BTC/USDT:USDT") == ""
    assert page_url(replace(on, public_url=""), "BTC/USDT:USDT") == ""
    assert page_name("SOL/USDT:USDT") == "SOLUSDT"


def test_liqbot_serve_serves_the_replay_and_stops_on_sigint() -> None:
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert f"http://127.0.0.1:{port}/" in line, line
            status, _, body = asyncio.run(
                fetch(f"http://127.0.0.1:{port}/api/v1/levels?symbol=BTC"))
            assert status == 200 and json.loads(body)["levels"]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
        finally:
            proc.kill()


def test_liqbot_serve_on_a_taken_port_is_one_line_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli_main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"liqbot serve: error: cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1
    assert cli_main(["serve", "--symbol", "ETH"]) == 2


async def test_liqbot_run_serves_beside_the_bot_only_when_enabled(tmp_path: object) -> None:
    from bot.run import run

    port = free_port()
    store = os.path.join(str(tmp_path), "s.db")
    for enabled in (False, True):
        cfg = parse_config(f'[bot]\nstore = "{store}"\n[console]\nenabled = false\n'
                           f'[web]\nenabled = {str(enabled).lower()}\nport = {port}\n')
        task = asyncio.create_task(run(cfg))
        url = f"http://127.0.0.1:{port}/api/v1/levels?symbol=BTC"
        got = None
        for _ in range(100):
            await asyncio.sleep(0.1)
            if not enabled and not os.path.exists(store):
                continue  # run has not opened its store yet
            try:
                got = (await fetch(url))[0]
            except aiohttp.ClientConnectionError:
                if not enabled:
                    await asyncio.sleep(1.0)  # running, nothing listens: and a second later?
                    with pytest.raises(aiohttp.ClientConnectionError):
                        await fetch(url)
                    break
                continue
            if got == 200:
                break
        assert got == (200 if enabled else None)
        assert not task.done()
        os.kill(os.getpid(), signal.SIGINT)  # run's own handler stops it
        assert await asyncio.wait_for(task, 20) == 0


async def test_the_heatmap_is_gzipped_for_clients_that_take_it(served: tuple[WebView, str]) -> None:
    url = f"{served[1]}/api/v1/heatmap?symbol=BTC&window=30d"
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
            zipped = await r.read()
            assert r.headers["Content-Encoding"] == "gzip"
        async with s.get(url, headers={"Accept-Encoding": "identity"}) as r:
            plain = await r.read()
            assert "Content-Encoding" not in r.headers
    import gzip

    assert gzip.decompress(zipped) == plain and len(zipped) < len(plain) / 2


async def test_a_non_finite_estimate_is_a_500_line_not_nan_json(
        served: tuple[WebView, str], caplog: pytest.LogCaptureFixture) -> None:
    view, base = served
    est = view.core.board.get("BTC/USDT:USDT")
    assert est is not None
    view.core.board.put(replace(est, book=replace(est.book, last_price=float("nan"))))
    status, headers, body = await fetch(f"{base}/api/v1/levels?symbol=BTC")
    assert status == 500 and json.loads(body) == {
        "version": 1, "error": "something went wrong on our side"}
    assert b"NaN" not in body and b"Traceback" not in body
    assert "web: /api/v1/levels failed" in caplog.text
