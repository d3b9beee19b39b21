"""``[discord] shards``: discord.py's AutoShardedClient against the loopback gateway fake.

The fake recommends ``fake.shards`` on ``GET /gateway/bot``, records each IDENTIFY's ``shard``
and sends a guild's interaction only to the connection of the shard owning that guild.
discord.py waits 5 s before identifying each further shard (Discord's identify spacing).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

with warnings.catch_warnings():  # discord.py's voice support imports audioop (unused here)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)

from bot.cli import main
from bot.config import parse_config
from bot.discord_adapter import DiscordAdapter
from bot.errors import ConfigError
from tests.bot.fake_discord import FakeDiscord, interaction_payload
from tests.bot.test_discord import (
    CHANNEL,
    _until,
    discord_api,
    reply_embed,
    started_bot,
)

GUILD_ON_SHARD_1 = 1 << 22  # (guild_id >> 22) % 2 == 1


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with discord_api() as f:
        yield f


@asynccontextmanager
async def running(fake: FakeDiscord, shards: int | str) -> AsyncIterator[DiscordAdapter]:
    """The real service and adapter with the gateway task, ``[discord] shards`` set."""
    async with started_bot(fake, gateway=True, shards=shards) as bot:
        yield bot.adapter
    assert bot.adapter.client.is_closed()


@pytest.mark.slow
async def test_two_shards_identify_apart_and_a_guild_is_answered_once(fake: FakeDiscord) -> None:
    fake.shards = 7  # a fixed count does not ask Discord
    async with running(fake, 2):
        await _until(lambda: len(fake.identify) == 2, timeout=20)
        assert [i["shard"] for i in fake.identify] == [[0, 2], [1, 2]]
        await fake.dispatch("INTERACTION_CREATE", interaction_payload(
            "levels", {"symbol": "BTC"}, interaction_id=5, channel_id=CHANNEL,
            guild_id=GUILD_ON_SHARD_1))
        await _until(lambda: fake.callbacks)
        await asyncio.sleep(0.3)  # a second answer (from the other shard) would be here now
        (callback,) = fake.callbacks
        assert "/interactions/5/" in callback.path
        assert "Shorts above" in reply_embed(callback.payload)["description"]
    assert not [p for p in fake.posted if p.path.endswith("/gateway/bot")]


@pytest.mark.slow
async def test_auto_uses_the_recommended_shard_count(fake: FakeDiscord) -> None:
    fake.shards = 2
    async with running(fake, "auto"):
        await _until(lambda: len(fake.identify) == 2, timeout=20)
        assert [i["shard"] for i in fake.identify] == [[0, 2], [1, 2]]


async def test_default_is_one_connection_without_a_shard_field(fake: FakeDiscord) -> None:
    fake.shards = 2
    assert parse_config("", env={}).discord.shards == 0
    async with running(fake, parse_config("", env={}).discord.shards):
        await _until(lambda: fake.identify)
        await asyncio.sleep(0.3)
        (identify,) = fake.identify
        assert "shard" not in identify


def test_shards_values_and_errors(tmp_path, capsys) -> None:
    assert parse_config("[discord]\nshards = 'auto'\n", env={}).discord.shards == "auto"
    assert parse_config("[discord]\nshards = 3\n", env={}).discord.shards == 3
    for bad in ("-1", "'two'", "1.5", "true", "[2]"):
        with pytest.raises(ConfigError, match=r"line 2: discord\.shards must be \"auto\" or"):
            parse_config(f"[discord]\nshards = {bad}\n", "c.toml", env={})
    path = tmp_path / "bad.toml"
    path.write_text("[discord]\nshards = 'many'\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "discord.shards" in err[0] and "'many'" in err[0]
