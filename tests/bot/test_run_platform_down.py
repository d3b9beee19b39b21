"""``liqbot run`` when a chat platform is unreachable at start or refuses the token.

Real ``liqbot run`` subprocesses (the launcher of test_run_stop points discord.py at the fake)
against the loopback Telegram and Discord fakes, reached through a TCP proxy that is stopped
(its port closed: connection refused) and started again on the same port.

- Unreachable at start (Telegram polling, Discord REST, Discord gateway): one warning line per
  start attempt naming the platform and the address, the rest of the bot runs (the other
  platform delivers its alerts meanwhile), and once the platform answers the adapter starts
  (a Telegram command is answered and the alerts held meanwhile are sent, Discord commands
  sync and the gateway identifies). SIGTERM: exit 0. No traceback, no token in stderr.
- A token the fake refuses (401): exit 2, one stderr line naming the adapter and the token's
  environment variable, no traceback, no token, nothing else logged at ERROR.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bot.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.fake_discord import FakeDiscord
from tests.bot.fake_telegram import ANN, PRIVATE, FakeTelegram
from tests.bot.net_helpers import FlakyProxy
from tests.bot.test_run_stop import CHANNEL, LAUNCH, seed, wait_until

pytestmark = pytest.mark.slow

CONFIG = """
[bot]
store = "{store}"
[source]
kind = "replay"
warmup_candles = 19_500
lookback_days = 60
[schedule]
recompute_seconds = 3600
dispatch_seconds = 0.2
[console]
enabled = false
"""
TELEGRAM = """[telegram]
enabled = true
base_url = "{url}"
"""
DISCORD = """[discord]
enabled = true
guild_ids = [7]
"""
WRONG_TELEGRAM = "999999:WRONG-telegram-token-never-printed"
WRONG_DISCORD = "wrong.discord.token-NEVER-PRINTED"


class Run:
    """One ``liqbot run`` subprocess; stderr goes to a file read while it runs."""

    def __init__(self, tmp: Path, config: str, env: dict[str, str]) -> None:
        self.tmp, self.config, self.env = tmp, config, env
        self.err = tmp / "stderr.txt"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Run:
        cfg = self.tmp / "config.toml"
        cfg.write_text(self.config)
        with self.err.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LAUNCH, "run", "--config", str(cfg), cwd=self.tmp,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "FAKE_DISCORD_BASE": "",
                     "FAKE_DISCORD_GATEWAY": "", **self.env})  # "": Discord not used
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    @property
    def text(self) -> str:
        return self.err.read_text(errors="replace")

    async def until(self, cond: Callable[[str], bool], what: str, timeout: float = 60) -> None:
        assert self.proc is not None
        await wait_until(lambda: cond(self.text) or self.proc.returncode is not None, what,
                         timeout)
        assert self.proc.returncode is None, f"exited {self.proc.returncode}:\n{self.text}"

    async def exit_code(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def sigterm(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.exit_code(15)


def clean(text: str, *secrets: str) -> None:
    """No traceback and no token anywhere in stderr."""
    assert "Traceback" not in text, text[-4000:]
    for secret in secrets:
        assert secret not in text, "a token reached stderr"


async def test_telegram_unreachable_at_start_is_retried_while_discord_delivers(
        tmp_path: Path) -> None:
    store = tmp_path / "bot.db"
    seed(store)  # three pending alerts for a Telegram chat and for a Discord channel
    async with FakeTelegram() as tg, FakeDiscord() as dc:
        proxy = await FlakyProxy(int(tg.base_url.split(":")[2].split("/")[0])).start()
        await proxy.stop()  # Telegram is down: connection refused on this port
        url = f"http://127.0.0.1:{proxy.port}/bot"
        config = CONFIG.format(store=store) + TELEGRAM.format(url=url) + DISCORD
        env = {"TELEGRAM_TOKEN": tg.token, "DISCORD_TOKEN": DISCORD_TOKEN,
               "FAKE_DISCORD_BASE": dc.base, "FAKE_DISCORD_GATEWAY": dc.gateway_url}
        down = f"telegram: the Bot API at {url} cannot be reached"
        try:
            async with Run(tmp_path, config, env) as run:
                await run.until(lambda t: f"{down}" in t and "(start attempt 2)" in t,
                                "two failed Telegram start attempts")
                # The rest of the bot runs: Discord gets its alerts while Telegram is down.
                await wait_until(lambda: len(dc.messages[CHANNEL]) == 3, "Discord alerts")
                assert tg.calls == []
                await proxy.start()  # Telegram is back
                await run.until(lambda t: "telegram: connected (start attempt" in t,
                                "Telegram connected")
                tg.command(PRIVATE, ANN, "/help")  # answered: polling runs
                await wait_until(lambda: any("/levels" in m.get("text", "") for m in tg.sent),
                                 "the /help answer")
                # The Telegram alerts held in the outbox meanwhile go out now.
                await wait_until(lambda: len(tg.sent_to(PRIVATE["id"])) >= 4,
                                 "the held Telegram alerts")
                code = await run.sigterm()
                text = run.text
        finally:
            await proxy.stop()
    assert code == 0, text[-4000:]
    attempts = [line for line in text.splitlines() if down in line]
    assert len(attempts) >= 2 and all("WARNING bot.platform_start" in a for a in attempts)
    assert "(start attempt 1); retrying in 1 s" in attempts[0], attempts[0]
    clean(text, tg.token, DISCORD_TOKEN)


@pytest.mark.parametrize("part", ["rest", "gateway"])
async def test_discord_unreachable_at_start_is_retried(tmp_path: Path, part: str) -> None:
    async with FakeDiscord() as dc:
        proxy = await FlakyProxy(int(dc.base.split(":")[2].split("/")[0])).start()
        await proxy.stop()
        via = f"127.0.0.1:{proxy.port}"
        env = {"DISCORD_TOKEN": DISCORD_TOKEN,
               "FAKE_DISCORD_BASE": f"http://{via}/api/v10" if part == "rest" else dc.base,
               "FAKE_DISCORD_GATEWAY": f"ws://{via}/gateway"}
        down = (f"discord: Discord's API at http://{via}/api/v10 cannot be reached"
                if part == "rest" else "discord: gateway connection attempt")
        try:
            async with Run(tmp_path, CONFIG.format(store=tmp_path / "bot.db") + DISCORD,
                           env) as run:
                await run.until(lambda t: t.count(down) >= 2, "two failed Discord attempts")
                assert dc.identify == []
                await proxy.start()
                await wait_until(lambda: len(dc.identify) == 1, "the gateway identified")
                assert dc.synced
                code = await run.sigterm()
                text = run.text
        finally:
            await proxy.stop()
    assert code == 0, text[-4000:]
    assert len([line for line in text.splitlines() if down in line]) >= 2
    clean(text, DISCORD_TOKEN)


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_rejected_token_is_one_line_and_exit_2(tmp_path: Path, platform: str) -> None:
    async with FakeTelegram() as tg, FakeDiscord() as dc:
        if platform == "telegram":
            config = TELEGRAM.format(url=tg.base_url)
            env = {"TELEGRAM_TOKEN": WRONG_TELEGRAM}
        else:
            config = DISCORD
            env = {"DISCORD_TOKEN": WRONG_DISCORD, "FAKE_DISCORD_BASE": dc.base,
                   "FAKE_DISCORD_GATEWAY": dc.gateway_url}
        async with Run(tmp_path, CONFIG.format(store=tmp_path / "bot.db") + config,
                       env) as run:
            code = await run.exit_code()
            text = run.text
    assert code == 2, text[-4000:]
    who = (f"telegram: the Bot API at {tg.base_url} rejected the token"
           if platform == "telegram" else "discord: Discord rejected the bot token")
    problem = [line for line in text.splitlines() if "rejected" in line]
    assert problem == [f"liqbot: config error: {who} in the environment variable "
                       f"{platform.upper()}_TOKEN ({platform}.token_env)"], text
    assert " ERROR " not in text, text  # e.g. aiohttp's "Unclosed connector"
    clean(text, WRONG_TELEGRAM, WRONG_DISCORD)


async def test_token_rejected_once_the_platform_answers_is_exit_2(tmp_path: Path) -> None:
    """Down at start, then up and refusing the token: the retried start stops the bot."""
    async with FakeTelegram() as tg:
        proxy = await FlakyProxy(int(tg.base_url.split(":")[2].split("/")[0])).start()
        await proxy.stop()
        url = f"http://127.0.0.1:{proxy.port}/bot"
        config = CONFIG.format(store=tmp_path / "bot.db") + TELEGRAM.format(url=url)
        try:
            async with Run(tmp_path, config, {"TELEGRAM_TOKEN": WRONG_TELEGRAM}) as run:
                await run.until(lambda t: "(start attempt 1)" in t, "a failed start attempt")
                await proxy.start()
                code = await run.exit_code()
                text = run.text
        finally:
            await proxy.stop()
    assert code == 2, text[-4000:]
    assert text.splitlines()[-1] == (
        f"liqbot: config error: telegram: the Bot API at {url} rejected the token in the "
        "environment variable TELEGRAM_TOKEN (telegram.token_env)"), text
    clean(text, WRONG_TELEGRAM)
