"""A loopback Bot API server (aiohttp) for python-telegram-bot 22, with fault injection.

Speaks the subset PTB uses: getMe, deleteWebhook, getUpdates (long poll, short), sendMessage,
sendPhoto (multipart, part ``photo``), editMessageText, editMessageCaption, deleteMessage,
setMyCommands, answerCallbackQuery, getChatMember. Edits change the recorded message in place
(its ``text`` / ``caption``, ``edits`` counts them) and are listed in
:attr:`FakeTelegram.edited`; editing a message :meth:`FakeTelegram.delete_message` removed (or
the bot deleted: :attr:`FakeTelegram.bot_deleted`) answers 400 "message to edit not found",
like the Bot API.
Every call is a POST to ``/bot<TOKEN>/<method>``; form values arrive as strings, JSON-encoded
for lists/dicts (DESIGN.md, Testing). Tests push updates with :meth:`FakeTelegram.command` /
:meth:`FakeTelegram.button` and read what the bot sent from :attr:`FakeTelegram.sent`.

Faults are scripted per method (optionally per chat): ``fake.inject("sendMessage", "429",
chat_id=111)`` makes the next sendMessage to chat 111 answer 429. Kinds: 403 (blocked), 429
(``parameters.retry_after`` = :attr:`retry_after`), 400 (can't parse entities), gone (400 chat
not found), 500, migrate (400 with ``migrate_to_chat_id``), lost (the call is carried out — the
message is accepted and shown — then the connection is dropped before the answer: the fault
that matters for exactly-once, since the Bot API has no idempotency key).

Webhooks: setWebhook is recorded in :attr:`FakeTelegram.webhook` (url, secret_token,
drop_pending_updates, allowed_updates) and :attr:`FakeTelegram.webhooks` (every call); while one
is set, getUpdates answers 409 Conflict like the Bot API, and deleteWebhook removes it.
:meth:`FakeTelegram.deliver` POSTs a queued update to the webhook URL (or to one replica's
address, as a load balancer would) with the ``X-Telegram-Bot-Api-Secret-Token`` header;
a 2xx answer takes it off the queue, anything else leaves it there (Telegram retries).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "123456:TEST-token-must-never-be-logged"
BOT: dict[str, Any] = {
    "id": 123456, "is_bot": True, "first_name": "liqbot", "username": "liqbot_test_bot",
    "can_join_groups": True, "can_read_all_group_messages": False,
    "supports_inline_queries": False}

ANN: dict[str, Any] = {"id": 111, "is_bot": False, "first_name": "Ann <b>&", "language_code": "en"}
BOB: dict[str, Any] = {"id": 222, "is_bot": False, "first_name": "Bob"}  # a plain group member
CAT: dict[str, Any] = {"id": 333, "is_bot": False, "first_name": "Cat"}  # a group administrator
PRIVATE: dict[str, Any] = {"id": 111, "type": "private", "first_name": "Ann"}
GROUP: dict[str, Any] = {"id": -100_111, "type": "supergroup", "title": "Traders"}
FORUM: dict[str, Any] = {"id": -100_222, "type": "supergroup", "title": "Forum", "is_forum": True}

FAULTS: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "403": (403, "Forbidden: bot was blocked by the user", None),
    "429": (429, "Too Many Requests: retry after {retry_after}", {"retry_after": None}),
    "400": (400, "Bad Request: can't parse entities: unsupported start tag", None),
    "gone": (400, "Bad Request: chat not found", None),
    "500": (500, "Internal Server Error", None),
    "migrate": (400, "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": -100_999}),
}


class FakeTelegram:
    """``async with FakeTelegram() as fake:``; PTB's base_url is :attr:`base_url`."""

    def __init__(self, token: str = TOKEN, retry_after: int = 1, max_poll_s: float = 0.5) -> None:
        self.token = token
        self.retry_after = retry_after
        self.max_poll_s = max_poll_s
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, params), faults included
        self.sent: list[dict[str, Any]] = []  # accepted sendMessage/sendPhoto, in order
        self.edited: list[dict[str, Any]] = []  # accepted edits: chat_id, message_id, text
        self.deleted: set[tuple[int, int]] = set()  # (chat id, message id) deleted by a user
        self.bot_deleted: list[tuple[int, int]] = []  # … and those deleted by deleteMessage
        self.faults: dict[tuple[str, int | None], deque[str]] = defaultdict(deque)
        self.fault_times: list[tuple[str, float]] = []
        self.admins: set[tuple[int, int]] = set()  # (chat id, user id)
        self.commands: list[dict[str, Any]] = []
        self.answered: list[str] = []
        self.chats = {c["id"]: c for c in (PRIVATE, GROUP, FORUM)}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.webhook: dict[str, Any] | None = None  # the registered webhook (setWebhook)
        self.webhooks: list[dict[str, Any]] = []  # every setWebhook, in order

    # --- test API ---------------------------------------------------------------------------
    def inject(self, method: str, *kinds: str, chat_id: int | None = None) -> None:
        """Script the next calls of ``method`` (to ``chat_id`` if given): one kind each."""
        self.faults[(method, chat_id)].extend(kinds)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    def command(self, chat: dict[str, Any], user: dict[str, Any], text: str,
                thread: int | None = None, sender_chat: dict[str, Any] | None = None) -> int:
        """Queue a message update whose text starts with a bot command; returns its update id."""
        cmd = text.split()[0]
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
            "from": user, "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(cmd)}],
        }
        if thread is not None:
            msg.update(message_thread_id=thread, is_topic_message=True)
        if sender_chat is not None:
            msg["sender_chat"] = sender_chat
        return self._push({"message": msg})

    def button(self, chat: dict[str, Any], user: dict[str, Any], data: str) -> int:
        """Queue a callback query from an inline button under a bot message in ``chat``."""
        message = {"message_id": next(self._message_ids), "date": int(time.time()),
                   "chat": chat, "from": BOT, "text": "levels"}
        return self._push({"callback_query": {
            "id": f"cq{next(self._message_ids)}", "from": user, "chat_instance": "ci",
            "data": data, "message": message}})

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """A user deleted this message: it can no longer be edited."""
        self.deleted.add((chat_id, message_id))

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["chat_id"] == chat_id]

    async def wait_sent(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages were accepted; returns all of them."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} sent messages, got {len(self.sent)}: "
                                     f"{[m.get('text') or m.get('caption') for m in self.sent]}")
            await asyncio.sleep(0.02)
        return self.sent

    async def wait_calls(self, method: str, n: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``method`` was called at least ``n`` times."""
        deadline = time.monotonic() + timeout
        while self.count(method) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} called {self.count(method)} times, not {n}")
            await asyncio.sleep(0.02)

    async def wait_consumed(self, timeout: float = 10.0) -> None:
        """Wait until PTB confirmed (offset past) every queued update."""
        deadline = time.monotonic() + timeout
        while self._updates:
            if time.monotonic() > deadline:
                raise AssertionError(f"updates not fetched: {self._updates}")
            await asyncio.sleep(0.02)

    async def deliver(self, update_id: int | None = None, *, url: str | None = None,
                      secret: str | None | bool = True) -> int:
        """POST queued update ``update_id`` (default: the oldest) to ``url`` (default: the
        registered webhook's) as Telegram does; returns the HTTP status. ``secret``: True sends
        the registered secret token, a string sends that one, None sends no header."""
        assert self.webhook is not None or url is not None, "no webhook set"
        queued = [u for u in self._updates if update_id is None or u["update_id"] == update_id]
        assert queued, f"update {update_id} is not queued"
        update = queued[0]
        headers = {}
        token = (self.webhook or {}).get("secret_token") if secret is True else secret
        if isinstance(token, str):
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        target = url or (self.webhook or {})["url"]
        async with aiohttp.ClientSession() as session, \
                session.post(target, json=update, headers=headers) as response:
            await response.read()
        if 200 <= response.status < 300:
            self._updates.remove(update)
        return response.status

    def _push(self, body: dict[str, Any]) -> int:
        uid = next(self._update_ids)
        self._updates.append({"update_id": uid, **body})
        return uid

    # --- server -----------------------------------------------------------------------------
    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = value.file.read()
                params[key + ":filename"] = value.filename
            else:
                params[key] = value
        self.calls.append((method, params))
        chat_id = int(params["chat_id"]) if "chat_id" in params else None
        fault = self._take_fault(method, chat_id)
        if fault is not None:
            self.fault_times.append((fault, time.monotonic()))
            if fault == "lost":
                await getattr(self, "_m_" + method)(params)  # accepted: in self.sent
                assert request.transport is not None
                request.transport.abort()  # the answer never arrives
                return web.Response()
            status, description, parameters = FAULTS[fault]
            if fault == "429":
                parameters = {"retry_after": self.retry_after}
                description = description.format(retry_after=self.retry_after)
            return _error(status, description, parameters)
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result = await handler(params)
        return result if isinstance(result, web.Response) else _ok(result)

    def _take_fault(self, method: str, chat_id: int | None) -> str | None:
        for key in ((method, chat_id), (method, None)):
            queue = self.faults.get(key)
            if queue:
                kind = queue.popleft()
                return None if kind == "ok" else kind
        return None

    # --- methods ----------------------------------------------------------------------------
    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        if p.get("drop_pending_updates") == "true":
            self._updates.clear()
        self.webhook = None
        return True

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        if not p.get("url"):
            return _error(400, "Bad Request: bad webhook: an HTTPS URL must be provided")
        if p.get("drop_pending_updates") == "true":
            self._updates.clear()
        self.webhook = {"url": p["url"], "secret_token": p.get("secret_token"),
                        "drop_pending_updates": p.get("drop_pending_updates"),
                        "allowed_updates": json.loads(p.get("allowed_updates", "null"))}
        self.webhooks.append(self.webhook)
        return True

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(p.get("offset", 0))
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + min(float(p.get("timeout", 0)), self.max_poll_s)
        while True:
            ready = [u for u in self._updates if u["update_id"] >= offset]
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.02)

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        self.commands = json.loads(p["commands"])
        return True

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        self.answered.append(p["callback_query_id"])
        return True

    async def _m_getChatMember(self, p: dict[str, Any]) -> Any:
        chat_id, user_id = int(p["chat_id"]), int(p["user_id"])
        user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
        if (chat_id, user_id) in self.admins:
            rights = dict.fromkeys(
                ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                 "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                 "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                 "can_delete_stories"), False)
            return {"status": "administrator", "user": user, **rights}
        return {"status": "member", "user": user}

    def _message(self, p: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(p["chat_id"])
        chat = self.chats.get(chat_id, {"id": chat_id,
                                        "type": "private" if chat_id > 0 else "supergroup"})
        msg: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                               "chat": chat, "from": BOT, **extra}
        record = {"chat_id": chat_id, "message_id": msg["message_id"], "edits": 0,
                  "thread": None, "t": time.monotonic(),
                  "parse_mode": p.get("parse_mode"),
                  "reply_markup": json.loads(p["reply_markup"]) if "reply_markup" in p else None,
                  "reply_to": (json.loads(p["reply_parameters"])["message_id"]
                               if "reply_parameters" in p else None),
                  **extra}
        if "message_thread_id" in p:
            msg.update(message_thread_id=int(p["message_thread_id"]), is_topic_message=True)
            record["thread"] = int(p["message_thread_id"])
        self.sent.append(record)
        return msg

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        return self._message(p, text=p["text"])

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        return self._edit(p, "text")

    async def _m_editMessageCaption(self, p: dict[str, Any]) -> Any:
        return self._edit(p, "caption")

    def _edit(self, p: dict[str, Any], field: str) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        found = [m for m in self.sent if m["chat_id"] == chat_id
                 and m["message_id"] == message_id and (chat_id, message_id) not in self.deleted]
        if not found:
            return _error(400, "Bad Request: message to edit not found")
        record = found[0]
        if field not in record:
            return _error(400, "Bad Request: there is no text in the message to edit")
        if record[field] == p[field]:
            return _error(400, "Bad Request: message is not modified: specified new message "
                               "content and reply markup are exactly the same")
        record[field] = p[field]
        record["edits"] += 1
        self.edited.append({"chat_id": chat_id, "message_id": message_id, field: p[field]})
        chat = self.chats.get(chat_id, {"id": chat_id, "type": "private"})
        return {"message_id": message_id, "date": int(time.time()), "edit_date":
                int(time.time()), "chat": chat, "from": BOT, field: p[field]}

    async def _m_deleteMessage(self, p: dict[str, Any]) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        if (chat_id, message_id) in self.deleted or not any(
                m["chat_id"] == chat_id and m["message_id"] == message_id for m in self.sent):
            return _error(400, "Bad Request: message to delete not found")
        self.deleted.add((chat_id, message_id))
        self.bot_deleted.append((chat_id, message_id))
        return True

    async def _m_sendPhoto(self, p: dict[str, Any]) -> Any:
        photo = p["photo"]
        if not isinstance(photo, bytes):
            return None  # a file_id/URL: not used by liqbot
        msg = self._message(p, caption=p.get("caption", ""))
        self.sent[-1].update(photo=photo, filename=p.get("photo:filename"))
        msg["photo"] = [{"file_id": "f1", "file_unique_id": "u1", "width": 1200,
                         "height": 700, "file_size": len(photo)}]
        return msg


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str,
           parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
