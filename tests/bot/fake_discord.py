"""A loopback Discord REST fake for discord.py 2.x (``discord.http.Route.BASE`` points here).

Serves what the adapter's HTTP traffic needs: login (``GET /users/@me``,
``GET /oauth2/applications/@me``), command sync (``PUT .../commands``), interaction responses
(``POST /interactions/{id}/{token}/callback``), follow-ups (``POST /webhooks/{app}/{token}``)
and channel messages (``POST /channels/{id}/messages``, JSON or multipart with
``payload_json`` + ``files[n]``; ``PATCH /channels/{id}/messages/{message}`` edits one in place,
listed in ``fake.edited``; a message in ``fake.deleted_messages`` or never posted answers 404
Unknown Message, code 10008). Messages honour ``nonce`` + ``enforce_nonce`` like Discord:
a repeated nonce in the same channel returns the first message and creates none.

Faults: ``fake.inject("messages", 503)`` makes the next channel post answer 503;
``"accept+503"`` stores the message and still answers 503 (a lost response).
``fake.forbidden`` / ``fake.deleted`` hold channel ids answering 403 / 404;
``fake.failing[channel] = 500`` makes every post to that channel answer 500 until removed
(``"hang"``: the request is never answered). Each request's arrival time is ``Posted.t``.

A minimal gateway (``fake.gateway_url``, for ``DiscordWebSocket.DEFAULT_GATEWAY``): HELLO,
IDENTIFY → READY (no guilds), heartbeat ACKs, and :meth:`FakeDiscord.dispatch` to push events
such as INTERACTION_CREATE, as text frames.

Sharding (discord.py's AutoShardedClient): ``GET /gateway/bot`` recommends ``fake.shards``
shards; each IDENTIFY's ``shard`` ([id, count], absent for one connection) is in
``fake.identify``; READY echoes it, and an event with a ``guild_id`` goes only to the
connection of the shard owning that guild, ``(guild_id >> 22) % count``, as Discord does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 900_000_000_000_000_001
BOT_USER = {"id": str(APP_ID), "username": "liqbot", "discriminator": "0", "avatar": None,
            "bot": True, "global_name": None}
TOKEN = "fake.bot.token-NEVER-LOG"
MANAGE_CHANNELS = 1 << 4
SEND_MESSAGES = 1 << 11


@dataclass
class Posted:
    """One request body: the JSON payload and the uploaded files (part name, filename, bytes)."""

    method: str
    path: str
    payload: dict[str, Any]
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    t: float = field(default_factory=time.time)  # arrival (wall clock, s)


def json_response(data: Any, status: int = 200) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly "application/json" (aiohttp's
    # content_type= would append "; charset=utf-8").
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json"})


def error(status: int, code: int, message: str) -> web.Response:
    return json_response({"code": code, "message": message}, status)


class FakeDiscord:
    """Run with ``async with FakeDiscord() as fake:``; ``fake.base`` is the API base URL."""

    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self.messages: dict[int, list[dict[str, Any]]] = defaultdict(list)  # channel → created
        self.callbacks: list[Posted] = []  # interaction responses
        self.followups: list[Posted] = []
        self.synced: dict[str, list[dict[str, Any]]] = {}  # "global" | guild id → commands
        self.faults: dict[str, deque[int | str]] = defaultdict(deque)
        self.forbidden: set[int] = set()
        self.deleted: set[int] = set()
        self.deleted_messages: set[int] = set()  # message ids a user deleted
        self.edited: list[Posted] = []  # accepted edits (path names the message)
        self.failing: dict[int, int | str] = {}  # channel → status (or "hang") while set
        self._closing = asyncio.Event()
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""
        self.gateway_url = ""
        self.identify: list[dict[str, Any]] = []  # IDENTIFY payloads ("d")
        self._sockets: list[web.WebSocketResponse] = []
        self._shard_of: dict[int, list[int]] = {}  # id(socket) → its IDENTIFY's [id, count]
        self.shards = 1  # what GET /gateway/bot recommends
        self._seq = 0

    def inject(self, kind: str, *faults: int | str) -> None:
        """Next requests of ``kind`` ("messages", "callback", "followup") get these faults."""
        self.faults[kind].extend(faults)

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        r = app.router
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/oauth2/applications/@me", self._app_info)
        r.add_put("/api/v10/applications/{app}/commands", self._sync)
        r.add_put("/api/v10/applications/{app}/guilds/{guild}/commands", self._sync)
        r.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_post("/api/v10/channels/{channel}/messages", self._channel_message)
        r.add_patch("/api/v10/channels/{channel}/messages/{message}", self._edit_message)
        r.add_get("/gateway", self._gateway)
        r.add_get("/api/v10/gateway/bot", self._gateway_bot)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- helpers --------------------------------------------------------------------------------
    async def _read(self, request: web.Request) -> Posted:
        posted = Posted(request.method, request.path, {}, headers=dict(request.headers))
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":  # type: ignore[union-attr]
                    posted.payload = json.loads(data)
                else:
                    posted.files.append((part.name or "", part.filename or "", bytes(data)))  # type: ignore[union-attr]
        elif request.can_read_body:
            posted.payload = await request.json()
        self.posted.append(posted)
        return posted

    def _fault(self, kind: str) -> int | str | None:
        q = self.faults.get(kind)
        return q.popleft() if q else None

    def _message(self, channel: int, posted: Posted, webhook: bool = False) -> dict[str, Any]:
        p = posted.payload
        msg: dict[str, Any] = {
            "id": str(next(self._ids)), "channel_id": str(channel), "type": 0,
            "content": p.get("content") or "", "author": BOT_USER, "embeds": p.get("embeds", []),
            "attachments": [
                {"id": str(i), "filename": fn, "size": len(b), "url": f"https://cdn/{fn}",
                 "proxy_url": f"https://cdn/{fn}"} for i, (_, fn, b) in enumerate(posted.files)],
            "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False,
            "tts": False, "timestamp": "2026-11-25T12:00:00+00:00", "edited_timestamp": None,
            "flags": p.get("flags", 0), "components": [], "nonce": p.get("nonce"),
        }
        if p.get("message_reference"):  # a reply: Discord echoes the reference
            msg["message_reference"] = {"type": 0, "channel_id": str(channel),
                                        **p["message_reference"]}
        if webhook:
            msg["webhook_id"] = str(APP_ID)
        return msg

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) event to every connected gateway client (an event of a
        guild: only to the shard owning it)."""
        self._seq += 1
        guild = data.get("guild_id")
        for ws in list(self._sockets):
            shard = self._shard_of.get(id(ws))
            if guild is not None and shard is not None and \
                    (int(guild) >> 22) % shard[1] != shard[0]:
                continue
            await ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    # --- routes ---------------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45_000}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame["op"] == 1:  # heartbeat
                    await ws.send_json({"op": 11})
                elif frame["op"] == 2:  # identify
                    self.identify.append(frame["d"])
                    ready: dict[str, Any] = {
                        "v": 10, "user": BOT_USER, "guilds": [],
                        "session_id": f"session-{len(self.identify)}",
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(APP_ID), "flags": 0}}
                    if "shard" in frame["d"]:
                        self._shard_of[id(ws)] = ready["shard"] = frame["d"]["shard"]
                    self._seq += 1
                    await ws.send_json({"op": 0, "t": "READY", "s": self._seq, "d": ready})
        finally:
            self._sockets.remove(ws)
            self._shard_of.pop(id(ws), None)
        return ws

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url, "shards": self.shards,
                              "session_start_limit": {"total": 1000, "remaining": 1000,
                                                      "reset_after": 0,
                                                      "max_concurrency": 1}})

    async def _me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {TOKEN}":
            return error(401, 0, "401: Unauthorized")
        return json_response(BOT_USER)

    async def _app_info(self, request: web.Request) -> web.Response:
        return json_response({
            "id": str(APP_ID), "name": "liqbot", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": BOT_USER,
            "verify_key": "0" * 64, "flags": 0, "summary": "",
        })

    async def _sync(self, request: web.Request) -> web.Response:
        posted = await self._read(request)
        commands = posted.payload if isinstance(posted.payload, list) else []
        key = request.match_info.get("guild", "global")
        self.synced[key] = commands
        out = [{**c, "id": str(next(self._ids)), "application_id": str(APP_ID), "version": "1",
                **({"guild_id": key} if key != "global" else {})} for c in commands]
        return json_response(out)

    async def _callback(self, request: web.Request) -> web.Response:
        posted = await self._read(request)
        fault = self._fault("callback")
        if isinstance(fault, int):
            return error(fault, 0, f"injected {fault}")
        self.callbacks.append(posted)
        return json_response({"interaction": {"id": request.match_info["id"], "type": 2}})

    async def _followup(self, request: web.Request) -> web.Response:
        posted = await self._read(request)
        fault = self._fault("followup")
        if isinstance(fault, int):
            return error(fault, 0, f"injected {fault}")
        self.followups.append(posted)
        return json_response(self._message(0, posted, webhook=True))

    async def _channel_message(self, request: web.Request) -> web.Response:
        posted = await self._read(request)
        channel = int(request.match_info["channel"])
        if channel in self.deleted:
            return error(404, 10003, "Unknown Channel")
        if channel in self.forbidden:
            return error(403, 50013, "Missing Permissions")
        failing = self.failing.get(channel)
        if failing == "hang":  # until the client gives up (or the fake closes)
            await self._closing.wait()
            return error(503, 0, "fake closed")
        if isinstance(failing, int):
            return error(failing, 0, f"channel {channel} failing with {failing}")
        fault = self._fault("messages")
        if isinstance(fault, int):
            return error(fault, 0, f"injected {fault}")
        nonce = posted.payload.get("nonce")
        key = (channel, str(nonce))
        if nonce is not None and posted.payload.get("enforce_nonce") and key in self._nonces:
            return json_response(self._nonces[key])  # Discord: the earlier message, no new one
        msg = self._message(channel, posted)
        self.messages[channel].append(msg)
        if nonce is not None:
            self._nonces[key] = msg
        if fault == "accept+503":
            return error(503, 0, "upstream timeout after accepting")
        return json_response(msg)


    async def _edit_message(self, request: web.Request) -> web.Response:
        posted = await self._read(request)
        channel, message = int(request.match_info["channel"]), request.match_info["message"]
        if channel in self.deleted:
            return error(404, 10003, "Unknown Channel")
        if channel in self.forbidden:
            return error(403, 50013, "Missing Permissions")
        fault = self._fault("edits")
        if isinstance(fault, int):
            return error(fault, 0, f"injected {fault}")
        found = [m for m in self.messages[channel] if m["id"] == message]
        if not found or int(message) in self.deleted_messages:
            return error(404, 10008, "Unknown Message")
        msg = found[0]
        for key in ("content", "embeds"):
            if key in posted.payload:
                msg[key] = posted.payload[key]
        msg["edited_timestamp"] = "2026-11-25T12:05:00+00:00"
        self.edited.append(posted)
        return json_response(msg)


def interaction_payload(name: str, options: dict[str, Any] | None = None, *,
                        interaction_id: int, channel_id: int, user_id: int = 42,
                        guild_id: int | None = 7, permissions: int = SEND_MESSAGES,
                        token: str = "interaction-token-SECRET") -> dict[str, Any]:
    """A raw APPLICATION_COMMAND interaction as the gateway delivers it (guild or DM)."""
    user = {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0",
            "avatar": None, "global_name": f"User {user_id}"}
    types = {str: 3, int: 4, bool: 5, float: 10}
    data: dict[str, Any] = {
        "id": str(interaction_id), "application_id": str(APP_ID), "type": 2, "token": token,
        "version": 1, "locale": "en-US", "attachment_size_limit": 8 * 1024 * 1024,
        "app_permissions": str(SEND_MESSAGES),
        "data": {"id": "1", "name": name, "type": 1,
                 "options": [{"name": k, "type": types[type(v)], "value": v}
                             for k, v in (options or {}).items()]},
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
        data["channel"] = {"id": str(channel_id), "type": 0, "name": "alerts", "position": 0,
                           "guild_id": str(guild_id)}
        data["member"] = {"user": user, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                          "deaf": False, "mute": False, "flags": 0,
                          "permissions": str(permissions)}
    else:
        data["channel"] = {"id": str(channel_id), "type": 1, "recipients": [user]}
        data["user"] = user
    return data
