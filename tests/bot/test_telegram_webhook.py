"""Telegram webhook mode (issue 21): PTB 22's own webhook server against the loopback Bot API
fake, which registers setWebhook and POSTs queued updates to the webhook with the secret token
header, as Telegram does. Real PTB, Service and CommandCore; only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bot.charts import ChartCache
from bot.cli import main
from bot.commands.core import CommandCore
from bot.config import Config, ConsoleSection, Secret, TelegramSection
from bot.demo import DemoOptions, demo_config
from bot.errors import ConfigError
from bot.market.replay import ReplaySource
from bot.service import Service
from bot.store import Store
from bot.telegram_adapter import TelegramAdapter
from bot.wiring import make_source
from tests.bot.fake_telegram import ANN, PRIVATE, TOKEN, FakeTelegram
from tests.pg_server import free_port

SECRET = "s3cret-Token_for-the-webhook-0123456789"
PUBLIC_URL = "https://bot.example.org/tg"  # what a reverse proxy would serve; never contacted


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


@dataclass
class Replica:
    adapter: TelegramAdapter
    url: str  # where this replica's webhook server listens


def webhook_config(fake: FakeTelegram, port: int) -> Config:
    cfg = demo_config(DemoOptions(days=10), ":memory:")
    return replace(cfg, console=ConsoleSection(enabled=False), telegram=TelegramSection(
        enabled=True, base_url=fake.base_url, token=Secret(fake.token), mode="webhook",
        webhook_url=PUBLIC_URL, listen="127.0.0.1", port=port, url_path="/tg",
        secret_token=Secret(SECRET)))


@asynccontextmanager
async def replicas(fake: FakeTelegram, store: Store, n: int = 1) -> AsyncIterator[list[Replica]]:
    """``n`` bot processes' worth of adapters (one Service + CommandCore each) on one store."""
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(n):
            port = free_port()
            cfg = webhook_config(fake, port)
            source = make_source(cfg)
            assert isinstance(source, ReplaySource)
            adapter = TelegramAdapter(cfg.telegram)
            service = Service(cfg, source, store, {adapter.platform: adapter.notifier},
                              clock_ms=lambda s=source: s.now_ms)
            core = CommandCore(cfg, service.board, source, store, ChartCache())
            await service.recompute(cfg.bot.symbols[0])
            await adapter.start(core)
            stack.push_async_callback(adapter.stop)
            out.append(Replica(adapter, f"http://127.0.0.1:{port}/tg"))
        yield out


async def test_start_sets_the_webhook_and_a_posted_command_is_answered(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeTelegram() as fake:
        store = Store(memory=True)
        async with replicas(fake, store) as [bot]:
            assert fake.webhook == {"url": PUBLIC_URL, "secret_token": SECRET,
                                    "drop_pending_updates": "false",
                                    "allowed_updates": ["message", "callback_query"]}
            assert fake.count("getUpdates") == 0 and fake.count("deleteWebhook") == 0
            fake.command(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
            assert await fake.deliver(url=bot.url) == 200
            [reply] = await fake.wait_sent(1)
            assert reply["text"].startswith("Subscribed to BTC/USDT:USDT")
            chat = store.find_chat("telegram", PRIVATE["id"], None)
            assert chat is not None and len(store.list_subscriptions(chat.id)) == 1
            fake.button(PRIVATE, ANN, "/unsubscribe BTC")  # a callback query, same way in
            assert await fake.deliver(url=bot.url) == 200
            assert (await fake.wait_sent(2))[1]["text"] == "Unsubscribed from BTC/USDT:USDT."
        # stopped: the webhook stays registered for other replicas (module docstring)
        assert fake.webhook is not None and fake.count("deleteWebhook") == 0
        store.close()
    assert "telegram: webhook https://bot.example.org/tg → 127.0.0.1:" in caplog.text
    assert "setWebhook" in caplog.text  # PTB's DEBUG line with the parameters…
    assert SECRET not in caplog.text  # …has the secret redacted


@pytest.mark.parametrize("secret", [None, "wrong-secret-token-0123456789", SECRET[:-1]])
async def test_a_post_without_the_secret_is_rejected_and_changes_nothing(
        secret: str | None) -> None:
    async with FakeTelegram() as fake:
        store = Store(memory=True)
        async with replicas(fake, store) as [bot]:
            uid = fake.command(PRIVATE, ANN, "/subscribe BTC 1m 0.5")
            assert await fake.deliver(uid, url=bot.url, secret=secret) == 403
            await asyncio.sleep(0.3)  # time enough to have answered, had it been accepted
            assert fake.sent == [] and store.find_chat("telegram", PRIVATE["id"], None) is None
            assert await fake.deliver(uid, url=bot.url) == 200  # Telegram's retry, signed
            await fake.wait_sent(1)
            assert store.find_chat("telegram", PRIVATE["id"], None) is not None
        store.close()


async def test_two_replicas_both_answer_updates_posted_to_either() -> None:
    async with FakeTelegram() as fake:
        store = Store(memory=True)
        async with replicas(fake, store, n=2) as [a, b]:
            assert a.url != b.url
            # both registered the same public URL and secret (the proxy spreads the posts)
            assert [w["url"] for w in fake.webhooks] == [PUBLIC_URL, PUBLIC_URL]
            assert {w["secret_token"] for w in fake.webhooks} == {SECRET}
            for i, replica in enumerate([a, b, b, a]):
                fake.command(PRIVATE, ANN, "/start")
                assert await fake.deliver(url=replica.url) == 200
                await fake.wait_sent(i + 1)
            assert all("liqbot estimates" in m["text"] for m in fake.sent)
            await a.adapter.stop()  # one replica goes away: the other still serves
            assert fake.webhook is not None and fake.count("deleteWebhook") == 0
            fake.command(PRIVATE, ANN, "/start")
            assert await fake.deliver(url=b.url) == 200
            await fake.wait_sent(5)
        store.close()


async def test_polling_mode_after_a_webhook_deletes_it_and_polls() -> None:
    """Switching back needs no manual deleteWebhook (getUpdates is refused while one is set)."""
    async with FakeTelegram(max_poll_s=0.2) as fake:
        store = Store(memory=True)
        async with replicas(fake, store):
            pass
        assert fake.webhook is not None
        cfg = webhook_config(fake, free_port())
        adapter = TelegramAdapter(replace(cfg.telegram, mode="polling"), poll_timeout_s=1)
        source = make_source(cfg)
        service = Service(cfg, source, store, {"telegram": adapter.notifier})
        core = CommandCore(cfg, service.board, source, store, ChartCache())
        await adapter.start(core)
        try:
            assert fake.webhook is None
            fake.command(PRIVATE, ANN, "/start")
            await fake.wait_sent(1)
        finally:
            await adapter.stop()
            store.close()


async def test_a_taken_port_is_a_config_error_naming_the_keys() -> None:
    async with FakeTelegram() as fake:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            cfg = webhook_config(fake, taken.getsockname()[1])
            adapter = TelegramAdapter(cfg.telegram)
            store = Store(memory=True)
            source = make_source(cfg)
            service = Service(cfg, source, store, {"telegram": adapter.notifier})
            core = CommandCore(cfg, service.board, source, store, ChartCache())
            with warnings.catch_warnings():
                # tornado's bind_sockets drops the socket it failed to bind without closing it
                warnings.simplefilter("ignore", ResourceWarning)
                with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+: "
                                   r".*\(telegram\.listen, telegram\.port\)"):
                    await adapter.start(core)
                gc.collect()
            assert not adapter.app.running and not adapter.notifier.started
            store.close()


# --- liqbot check-config / liqbot run ------------------------------------------------------------
BASE = "[console]\nenabled = false\n[telegram]\nenabled = true\n"
WEBHOOK = BASE + "mode = 'webhook'\nwebhook_url = 'https://bot.example.org/tg'\n"


@pytest.mark.parametrize(("text", "env", "needle"), [
    (BASE + "mode = 'hook'\n", {}, "line 5: telegram.mode = 'hook' must be one of polling, "
                                   "webhook"),
    (BASE + "mode = 'webhook'\n", {}, "line 5: telegram.webhook_url is required with "
                                      "telegram.mode = 'webhook'"),
    (BASE + "mode = 'webhook'\nwebhook_url = 'http://bot.example.org/tg'\n", {},
     "line 6: telegram.webhook_url must be https://"),
    (BASE + "mode = 'webhook'\nwebhook_url = 'https://x.org/a?b=1'\n", {},
     "line 6: telegram.webhook_url = 'https://x.org/a?b=1' must be an http(s) URL"),
    (WEBHOOK + "port = 70000\n", {}, "line 7: telegram.port = 70000 must be in [1, 65535]"),
    (WEBHOOK + "port = '8443'\n", {}, "line 7: telegram.port must be an integer"),
    (WEBHOOK + "listen = ' '\n", {}, "line 7: telegram.listen = ' ' must be an address"),
    (WEBHOOK + "url_path = '/tg?x'\n", {}, "line 7: telegram.url_path = '/tg?x' must be a URL "
                                           "path"),
    (WEBHOOK + "secret_token_env = 'MY SECRET'\n", {},
     "line 7: telegram.secret_token_env = 'MY SECRET' is not an env var name"),
    (WEBHOOK, {}, "line 3: telegram.mode is 'webhook' but the environment variable "
                  "TELEGRAM_WEBHOOK_TOKEN (telegram.secret_token_env) is not set"),
    (WEBHOOK + "secret_token_env = 'HOOK'\n", {"HOOK": "short"},
     "line 7: telegram.secret_token_env: the value of HOOK must be 16-256 characters"),
    (WEBHOOK + "secret_token_env = 'HOOK'\n", {"HOOK": "has spaces in it, 16+ chars"},
     "line 7: telegram.secret_token_env: the value of HOOK must be 16-256 characters"),
])
def test_check_config_names_the_bad_key_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        text: str, env: dict[str, str], needle: str) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "x.toml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"liqbot: config error: {path}:") and needle in err, err
    for value in env.values():
        assert value not in err  # a bad secret may be the real one mistyped


def test_check_config_accepts_a_webhook_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_TOKEN", SECRET)
    path = tmp_path / "x.toml"
    path.write_text(WEBHOOK)
    assert main(["check-config", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "OK" in out and "telegram" in out and SECRET not in out


def test_webhook_mode_without_tornado_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tornado", None)  # PTB installed without [webhooks]
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_TOKEN", SECRET)
    path = tmp_path / "x.toml"
    path.write_text(WEBHOOK)
    assert main(["check-config", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err == (f"liqbot: config error: {path}:line 5: telegram.mode = 'webhook' needs PTB's "
                   "webhook server: pip install 'python-telegram-bot[webhooks]' (tornado)\n")


async def test_liqbot_run_serves_the_webhook(tmp_path: Path) -> None:
    """The real CLI process in webhook mode (role all): setWebhook at start, commands posted
    to its server answered, SIGTERM stops it without deleting the webhook; the secret is not in
    its DEBUG log."""
    port = free_port()
    async with FakeTelegram() as fake:
        cfg = tmp_path / "liqbot.toml"
        cfg.write_text(f'[bot]\nstore = "{tmp_path / "bot.db"}"\n[console]\nenabled = false\n'
                       f'[telegram]\nenabled = true\nbase_url = "{fake.base_url}"\n'
                       f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/hook"\n'
                       f'port = {port}\n')
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "-v", "run", "--config", str(cfg),
            env={**os.environ, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_TOKEN": SECRET,
                 "PTB_TIMEDELTA": "1"},
            stderr=asyncio.subprocess.PIPE)
        try:
            await fake.wait_calls("setWebhook", timeout=40)
            assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
            fake.command(PRIVATE, ANN, "/levels")
            for _ in range(100):  # setWebhook comes just before the server listens
                try:
                    status = await fake.deliver()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            assert status == 200
            [reply] = await fake.wait_sent(1, timeout=20)
            assert "Shorts above" in reply["text"]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            print(err.decode()[-3000:])  # shown when the test fails
        log = err.decode()
        assert proc.returncode == 0, log[-3000:]
        assert f"telegram: webhook http://127.0.0.1:{port}/hook → 127.0.0.1:{port}/hook" in log
        assert "stopped (store integrity ok)" in log
        assert fake.count("deleteWebhook") == 0 and fake.count("getUpdates") == 0
        assert "setWebhook" in log and SECRET not in log and TOKEN not in log
