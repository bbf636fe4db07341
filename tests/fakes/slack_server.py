"""A fake Slack on 127.0.0.1: the Web API and a Socket Mode WebSocket server.

The real `slack_sdk.AsyncWebClient` (base_url) and slack-bolt's `AsyncSocketModeHandler`
talk to it. Every Web API call is recorded with its arguments (form or JSON bodies, as
slack_sdk sends them) and its time; every Socket Mode envelope sent is recorded with
the time its ack came back.

    fake = FakeSlack(); await fake.start()
    fake.fail("chat.startStream", "not_allowed")         # this workspace cannot stream
    fake.rate_limit("chat.update", times=1, retry_after=1)
    env_id = await fake.send_event(payload)              # events_api envelope
    await fake.wait_acked(env_id)
    fake.calls_to("chat.postMessage")[0].args["text"]

It runs in the caller's event loop. Rate limits per workspace are enforced at Slack's
documented tiers for the write methods (TIERS: a token bucket per workspace and method
holding a minute's worth of calls); `per_minute={"chat.update": 50}` overrides one.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
TEAM = "T0FAKETEAM"
BOT_USER = "U0BOTUSER"
BOT_ID = "B0BOTID"


@dataclass
class Call:
    method: str
    args: dict
    at: float
    status: int = 200
    ok: bool = True
    token: str = ""  # the token the call was made with
    team: str | None = None  # the workspace that token belongs to


@dataclass
class Workspace:
    """A workspace the app is installed in, and its bot there (one bot token each)."""

    team: str
    name: str
    bot_user: str
    bot_id: str
    token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # token rotation on: when `token` stops working


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict
    sent_at: float
    acked_at: float | None = None
    ack_payload: Any = None
    connection: int = 0  # which Socket Mode connection it went to (numbered as opened, from 1)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str = BOT_USER
    bot_id: str | None = BOT_ID
    thread_ts: str | None = None
    versions: list[str] = field(default_factory=list)
    streaming: bool = False
    extra: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)  # emoji name -> users, in order
    metadata: dict | None = None  # chat.postMessage/chat.update `metadata` (event_type, event_payload)

    def as_json(self, *, metadata: bool = False) -> dict:
        d = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.reactions:
            d["reactions"] = [{"name": n, "users": list(u), "count": len(u)} for n, u in self.reactions.items()]
        if metadata and self.metadata:
            d["metadata"] = self.metadata
        if self.bot_id:
            d["bot_id"] = self.bot_id
        if self.thread_ts:
            d["thread_ts"] = self.thread_ts
        if self.blocks:
            d["blocks"] = self.blocks
        d.update(self.extra)
        return d


# Documented per-workspace tiers (calls per minute) of the methods the bot writes with:
# Tier 2 = 20+, Tier 3 = 50+, Tier 4 = 100+.
TIERS = {
    "chat.update": 50,
    "chat.delete": 50,
    "chat.startStream": 20,
    "chat.stopStream": 20,
    "chat.appendStream": 100,
    "chat.postEphemeral": 100,
    "assistant.threads.setStatus": 50,
    "reactions.add": 50,
    "reactions.remove": 50,
}


class FakeSlack:
    def __init__(self, *, page_size: int = 3, per_minute: dict[str, int] | None = None) -> None:
        self.calls: list[Call] = []
        self.envelopes: dict[str, Envelope] = {}
        self.messages: dict[tuple[str, str], Message] = {}  # (channel, ts)
        self.ephemeral: list[dict] = []  # chat.postEphemeral and response_url ephemeral posts
        self.responses: list[dict] = []  # everything posted to a response_url
        self.files: dict[str, dict] = {}
        self.users: dict[str, str] = {"U2147483697": "Steve", "U061F7AUR": "Alice", "U0ALICE": "Alice",
                                      "U0BOB": "Bob", BOT_USER: "aibot"}
        self.timezones: dict[str, str] = {}  # user -> IANA zone, users.info `tz` (set by tests)
        # workspace roles as users.info reports them (`is_admin`, `is_owner`); the slash
        # command fixture's user (Steve) administers the workspace, the others are members
        self.admins: set[str] = {"U2147483697"}
        self.owners: set[str] = set()
        self.file_bytes: dict[str, bytes] = {}
        self.views: list[dict] = []  # views.open: the modals opened
        self.members_of: set[str] | None = None  # channels the bot is in (None: all of them), conversations.info
        self.downloads: list[dict] = []
        self.page_size = page_size  # small pages so that cursor paging is exercised
        self.per_minute = {**TIERS, **(per_minute or {})}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (team, method)
        self._failures: dict[str, deque] = defaultdict(deque)
        self._ts = itertools.count(1)
        self._base_time = 1_700_000_000
        self._ws: list[web.WebSocketResponse] = []
        self._ws_ids: dict[int, int] = {}  # id(ws) -> its number, 1 for the first connection opened
        self.connections_opened = 0
        self._spread = 0
        self._ws_ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.rate_limited = 0  # 429s answered
        # OAuth distribution: the app's credentials, installed workspaces by bot token, and
        # the codes Slack hands the redirect after an installer approves (oauth.v2.access)
        self.client_id, self.client_secret = "1111.2222", "fake-client-secret"
        self.workspaces: dict[str, Workspace] = {BOT_TOKEN: Workspace(TEAM, "Fake Team", BOT_USER, BOT_ID, BOT_TOKEN)}
        self._caller = self.workspaces[BOT_TOKEN]  # the workspace of the call being answered: its bot writes
        self.bot_ids = {BOT_ID}  # the app's bot in every workspace it was ever installed in
        self.codes: dict[str, Workspace] = {}
        self.homes: dict[str, dict] = {}  # user -> the Home tab published for them
        self.rotation = False  # token rotation on: tokens expire after `token_lifetime` s
        self.token_lifetime = 43_200

    # --- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "FakeSlack":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files/{file_id}/{name}", self._download)
        app.router.add_post("/respond/{token}", self._respond)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for ws in list(self._ws):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- scripting ------------------------------------------------------------------

    def fail(self, method: str, error: str, *, times: int | None = None) -> None:
        """Answer `method` with `{"ok": false, "error": error}`: always, or the next `times` calls."""
        if times is None:
            self._failures[method].append(("always", error))
        else:
            self._failures[method].extend([("error", error)] * times)

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and Retry-After."""
        self._failures[method].extend([("429", retry_after)] * times)

    def delete_message(self, channel: str, ts: str) -> None:
        """A user deletes a message: later edits, appends and stops get message_not_found."""
        self.messages.pop((channel, ts), None)

    def add_file(self, *, name: str, content: bytes, mimetype: str = "text/plain", filetype: str = "text", **extra) -> dict:
        fid = "F" + uuid.uuid4().hex[:10].upper()
        info = {
            "id": fid, "name": name, "title": name, "mimetype": mimetype, "filetype": filetype,
            "size": len(content), "mode": "hosted", "is_external": False,
            "url_private": f"{self.origin}/files/{fid}/{name}",
            "url_private_download": f"{self.origin}/files/{fid}/{name}?download=1",
        }
        info.update(extra)
        self.files[fid] = info
        self.file_bytes[fid] = content
        return info

    def add_message(self, channel: str, text: str, *, user: str = "U0ALICE", thread_ts: str | None = None,
                    bot: bool = False, ts: str | None = None) -> Message:
        """A message already in the channel (for history and thread context)."""
        ts = ts or self.next_ts()
        msg = Message(channel, ts, text, user=user, bot_id=BOT_ID if bot else None, thread_ts=thread_ts, versions=[text])
        self.messages[(channel, ts)] = msg
        return msg

    def deliver(self, event_callback: dict) -> None:
        """Store the message an event is about, as Slack has it before telling the app."""
        ev = event_callback.get("event") or {}
        if ev.get("type") in ("message", "app_mention") and ev.get("ts") and ev.get("channel") and not ev.get("subtype", "").startswith("message_"):
            key = (ev["channel"], ev["ts"])
            if key not in self.messages:
                self.messages[key] = Message(ev["channel"], ev["ts"], ev.get("text", ""), user=ev.get("user", ""),
                                             bot_id=ev.get("bot_id"), thread_ts=ev.get("thread_ts"),
                                             versions=[ev.get("text", "")])

    def approve(self, team: str, name: str = "") -> str:
        """An installer approves the app for `team` on Slack's consent page: the code Slack
        appends to the redirect URL (with the `state` it was given)."""
        n = len(self.workspaces) + len(self.codes) + 1
        ws = Workspace(team, name or f"Team {team}", f"U0BOT{n:04d}", f"B0BOT{n:04d}", f"xoxb-{team}-{uuid.uuid4().hex[:12]}")
        self.bot_ids.add(ws.bot_id)
        code = f"code-{uuid.uuid4().hex[:16]}"
        self.codes[code] = ws
        return code

    def revoke(self, team: str) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        for token in [t for t, ws in self.workspaces.items() if ws.team == team]:
            del self.workspaces[token]

    def token_of(self, team: str) -> str:
        return next(t for t, ws in self.workspaces.items() if ws.team == team)

    def response_url(self) -> str:
        return f"{self.origin}/respond/{uuid.uuid4().hex[:12]}"

    def next_ts(self) -> str:
        return f"{self._base_time + next(self._ts)}.{next(self._ts):06d}"

    # --- queries --------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status == 200]

    def bot_messages(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages.values() if m.bot_id in self.bot_ids and (channel is None or m.channel == channel)]

    async def wait_for(self, predicate, *, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the fake Slack")
            await asyncio.sleep(0.01)

    # --- Socket Mode ----------------------------------------------------------------

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ws_ready.wait(), timeout)

    async def send_envelope(self, type_: str, payload: dict, *, retry_attempt: int = 0,
                            connection: int = -1) -> str:
        """Deliver over one Socket Mode connection (Slack picks one of an app's open
        connections for each envelope; `connection` is its index, in connect order)."""
        await self.wait_connected()
        env_id = str(uuid.uuid4())
        body = {"envelope_id": env_id, "payload": payload, "type": type_,
                "accepts_response_payload": type_ != "events_api",
                "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else ""}
        self.envelopes[env_id] = Envelope(env_id, type_, payload, time.monotonic())
        if connection >= 0:  # a test picks the connection
            ws = self._ws[connection]
        else:  # Slack spreads envelopes over the app's open connections (up to 10): each goes to one
            open_ = [ws for ws in self._ws if not ws.closed] or self._ws
            ws = open_[self._spread % len(open_)]
            self._spread += 1
        self.envelopes[env_id].connection = self._ws_ids.get(id(ws), 0)
        await ws.send_str(json.dumps(body))
        return env_id

    async def send_event(self, event_callback: dict, *, retry_attempt: int = 0, connection: int = -1) -> str:
        self.deliver(event_callback)
        return await self.send_envelope("events_api", event_callback, retry_attempt=retry_attempt,
                                        connection=connection)

    async def send_command(self, command_payload: dict) -> str:
        return await self.send_envelope("slash_commands", command_payload)

    async def wait_acked(self, env_id: str, timeout: float = 5.0) -> Envelope:
        await self.wait_for(lambda: self.envelopes[env_id].acked_at is not None, timeout=timeout)
        return self.envelopes[env_id]

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws.append(ws)
        self._ws_ids[id(ws)] = self.connections_opened = self.connections_opened + 1
        await ws.send_str(json.dumps({"type": "hello", "num_connections": len(self._ws),
                                      "debug_info": {"host": "fake", "approximate_connection_time": 18060}}))
        self._ws_ready.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                env = self.envelopes.get(data.get("envelope_id", ""))
                if env is not None and env.acked_at is None:
                    env.acked_at = time.monotonic()
                    env.ack_payload = data.get("payload")
        finally:
            self._ws.remove(ws)
            if not self._ws:
                self._ws_ready.clear()
        return ws

    # --- Web API --------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if "json" in ctype:
            args = json.loads(raw or b"{}")
        else:
            args = dict(parse_qsl(raw.decode()))
        args.update(dict(request.query))
        auth = request.headers.get("Authorization", "")
        call = Call(method, args, time.monotonic())
        self.calls.append(call)
        if method == "oauth.v2.access":  # the app's credentials, not a token (Basic auth or form fields)
            result = self.m_oauth_v2_access(args, auth)
            call.ok = result.get("ok", False)
            return web.json_response(result)
        token = auth.removeprefix("Bearer ").strip() or args.get("token", "")
        call.token = token
        if method == "apps.connections.open":
            valid = token == APP_TOKEN
        else:
            ws = self.workspaces.get(token)
            valid = ws is not None
            if ws is not None:
                call.team = ws.team
                if ws.expires_at is not None and time.time() >= ws.expires_at:
                    call.ok = False
                    return web.json_response({"ok": False, "error": "token_expired"})
        if not valid:
            call.ok = False
            return web.json_response({"ok": False, "error": "invalid_auth"})
        scripted = self._scripted(method)
        if scripted is not None:
            kind, value = scripted
            if kind == "429":
                call.status = 429
                self.rate_limited += 1
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                         headers={"Retry-After": str(value)})
            call.ok = False
            return web.json_response({"ok": False, "error": value})
        wait = self._take(method, call.team or "")
        if wait:
            call.status = 429
            self.rate_limited += 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(math.ceil(wait))})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        self._caller = self.workspaces.get(token) or self._caller  # handlers are synchronous: no other call interleaves
        result = handler(args)
        if not result.get("ok", True):
            call.ok = False
        return web.json_response({"ok": True, **result} if "ok" not in result else result)

    def _take(self, method: str, team: str) -> float:
        """Slack's tiers as a token bucket per workspace and method (Slack counts each
        app's calls per workspace): a minute's worth of calls may come in a burst, then
        they refill at `per_minute / 60` per second. Returns 0 when the call may go, else
        the seconds until it could."""
        limit = self.per_minute.get(method)
        if limit is None:
            return 0.0
        now = time.monotonic()
        key = (team, method)
        tokens, last = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * limit / 60.0)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * 60.0 / limit
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _scripted(self, method: str):
        q = self._failures.get(method)
        if not q:
            return None
        item = q[0]
        if item[0] == "always":
            return ("error", item[1])
        q.popleft()
        return item

    def _msg(self, args: dict) -> Message | None:
        return self.messages.get((args.get("channel", ""), args.get("ts", "")))

    def m_auth_test(self, args):
        ws = self.workspaces[self.calls[-1].token]
        return {"url": f"https://{ws.team.lower()}.slack.com/", "team": ws.name, "user": "aibot", "team_id": ws.team,
                "user_id": ws.bot_user, "bot_id": ws.bot_id, "is_enterprise_install": False}

    def m_oauth_v2_access(self, args: dict, auth: str) -> dict:
        """Slack's oauth.v2.access: a code from the redirect (grant_type absent or
        authorization_code) or, with token rotation, a refresh token (grant_type=refresh_token)."""
        client_id, client_secret = args.get("client_id"), args.get("client_secret")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id" if client_id != self.client_id else "bad_client_secret"}
        if args.get("grant_type") == "refresh_token":
            old = next((ws for ws in self.workspaces.values() if ws.refresh_token == args.get("refresh_token")), None)
            if old is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            del self.workspaces[old.token]
            ws = Workspace(old.team, old.name, old.bot_user, old.bot_id, f"xoxe.xoxb-{old.team}-{uuid.uuid4().hex[:12]}")
        else:
            ws = self.codes.pop(args.get("code", ""), None)
            if ws is None:
                return {"ok": False, "error": "invalid_code"}
        if self.rotation:
            ws.refresh_token = f"xoxe-1-{uuid.uuid4().hex}"
            ws.expires_at = time.time() + self.token_lifetime
        self.workspaces[ws.token] = ws
        out = {"ok": True, "app_id": "A0FAKEAPP", "authed_user": {"id": "U2147483697"},
               "scope": "app_mentions:read,chat:write,commands", "token_type": "bot", "access_token": ws.token,
               "bot_user_id": ws.bot_user, "team": {"id": ws.team, "name": ws.name}, "enterprise": None,
               "is_enterprise_install": False}
        if ws.refresh_token:
            out.update(refresh_token=ws.refresh_token, expires_in=self.token_lifetime)
        return out

    def m_apps_connections_open(self, args):
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4().hex}"}

    def _post(self, args, *, text_key="text") -> Message:
        text = args.get(text_key) or args.get("markdown_text") or ""
        ts = self.next_ts()
        msg = Message(args["channel"], ts, text, user=self._caller.bot_user, bot_id=self._caller.bot_id,
                      thread_ts=args.get("thread_ts") or None, versions=[text], blocks=_blocks(args),
                      metadata=_metadata(args))
        self.messages[(msg.channel, ts)] = msg
        return msg

    def m_chat_postMessage(self, args):
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if invalid_blocks(_blocks(args)):
            return {"ok": False, "error": "invalid_blocks", "errors": [invalid_blocks(_blocks(args))]}
        text = args.get("text") or args.get("markdown_text") or ""
        if len(text) > 4000:
            return {"ok": False, "error": "msg_too_long"}
        msg = self._post(args)
        return {"channel": msg.channel, "ts": msg.ts, "message": msg.as_json()}

    def m_chat_update(self, args):
        msg = self._msg(args)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        text = args.get("text") or args.get("markdown_text") or ""
        if len(text) > 4000:
            return {"ok": False, "error": "msg_too_long"}
        if invalid_blocks(_blocks(args)):
            return {"ok": False, "error": "invalid_blocks", "errors": [invalid_blocks(_blocks(args))]}
        msg.text = text
        msg.versions.append(text)
        if "blocks" in args:  # chat.update without blocks keeps the message's blocks
            msg.blocks = _blocks(args)
        if "metadata" in args:
            msg.metadata = _metadata(args)
        return {"channel": msg.channel, "ts": msg.ts, "text": text}

    def m_chat_postEphemeral(self, args):
        self.ephemeral.append(dict(args))
        return {"message_ts": self.next_ts()}

    def _chunk_text(self, args) -> str:
        text = args.get("markdown_text") or ""
        for chunk in args.get("chunks") or []:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += chunk.get("text", "")
        return text

    def m_chat_startStream(self, args):
        if not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        text = self._chunk_text(args)
        ts = self.next_ts()
        msg = Message(args["channel"], ts, text, user=self._caller.bot_user, bot_id=self._caller.bot_id,
                      thread_ts=args["thread_ts"], versions=[text] if text else [], streaming=True)
        self.messages[(msg.channel, ts)] = msg
        return {"channel": msg.channel, "ts": ts}

    def m_chat_appendStream(self, args):
        msg = self._msg(args)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if not msg.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text = self._chunk_text(args)
        if len(text) > 12_000:
            return {"ok": False, "error": "msg_too_long"}
        msg.text += text
        msg.versions.append(msg.text)
        return {"channel": msg.channel, "ts": msg.ts}

    def m_chat_stopStream(self, args):
        msg = self._msg(args)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if not msg.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text = self._chunk_text(args)
        if invalid_blocks(_blocks(args)):
            return {"ok": False, "error": "invalid_blocks", "errors": [invalid_blocks(_blocks(args))]}
        if text:
            msg.text += text
            msg.versions.append(msg.text)
        msg.blocks = msg.blocks + _blocks(args)  # "rendered at the bottom of the finalized message"
        msg.streaming = False
        return {"channel": msg.channel, "ts": msg.ts, "message": msg.as_json()}

    def m_reactions_add(self, args):
        """reactions.add (channel, timestamp, name): the bot's reaction on a message."""
        msg = self.messages.get((args.get("channel", ""), args.get("timestamp", "")))
        name = args.get("name", "")
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if not name or ":" in name:
            return {"ok": False, "error": "invalid_name"}
        users = msg.reactions.setdefault(name, [])
        if self._caller.bot_user in users:
            return {"ok": False, "error": "already_reacted"}
        users.append(self._caller.bot_user)
        return {}

    def m_reactions_remove(self, args):
        msg = self.messages.get((args.get("channel", ""), args.get("timestamp", "")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        users = msg.reactions.get(args.get("name", ""), [])
        if self._caller.bot_user not in users:
            return {"ok": False, "error": "no_reaction"}
        users.remove(self._caller.bot_user)
        if not users:
            del msg.reactions[args["name"]]
        return {}

    def reaction(self, channel: str, ts: str, name: str, user: str) -> dict:
        """A person adds `name` to a message: recorded, and the `reaction_added` event
        (shaped like Slack's documented example) returned for `send_event`."""
        msg = self.messages[(channel, ts)]
        msg.reactions.setdefault(name, []).append(user)
        return {
            "token": "XXYYZZ", "team_id": TEAM, "api_app_id": "A123ABC456", "type": "event_callback",
            "event": {"type": "reaction_added", "user": user, "reaction": name, "item_user": msg.user,
                      "item": {"type": "message", "channel": channel, "ts": ts,
                               "channel_type": "im" if channel.startswith("D") else "channel"},
                      "event_ts": self.next_ts()},
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True, "is_enterprise_install": False}],
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
        }

    def m_assistant_threads_setStatus(self, args):
        return {}

    def m_views_publish(self, args):
        """views.publish: a Home tab for one user (Block Kit, at most 100 blocks)."""
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        self.homes[args["user_id"]] = view
        return {"view": {"id": f"V{uuid.uuid4().hex[:8].upper()}", "type": "home", **view}}

    def _assistant_thread(self, args) -> dict | None:
        if not args.get("channel_id") or not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        if not args["channel_id"].startswith("D"):
            return {"ok": False, "error": "channel_not_found"}  # assistant threads live in the app's DMs
        return None

    def m_assistant_threads_setTitle(self, args):
        bad = self._assistant_thread(args)
        if bad:
            return bad
        if not args.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        return {}

    def m_assistant_threads_setSuggestedPrompts(self, args):
        bad = self._assistant_thread(args)
        if bad:
            return bad
        prompts = args.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not prompts or len(prompts) > 4 or any(not p.get("title") or not p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        return {}

    def m_conversations_info(self, args):
        ch = args.get("channel", "")
        if not ch:
            return {"ok": False, "error": "channel_not_found"}
        member = self.members_of is None or ch in self.members_of
        return {"channel": {"id": ch, "is_channel": ch.startswith("C"), "is_im": ch.startswith("D"),
                            "is_member": member, "name": ch.lower()}}

    def m_views_open(self, args):
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if view.get("type") != "modal" or len(view.get("title", {}).get("text", "")) > 24 \
                or len(view.get("private_metadata") or "") > 3000 or invalid_blocks(view.get("blocks") or []):
            return {"ok": False, "error": "invalid_arguments"}
        self.views.append(view)
        return {"view": {"id": f"V{len(self.views):08d}", **view}}

    def _page(self, items: list[Message], args, *, metadata: bool = False) -> dict:
        limit = min(int(args.get("limit") or 100), self.page_size)
        start = int(args.get("cursor") or 0)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"messages": [m.as_json(metadata=metadata) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def m_conversations_replies(self, args):
        ch, ts = args.get("channel", ""), args.get("ts", "")
        items = [m for m in self.messages.values() if m.channel == ch and (m.ts == ts or m.thread_ts == ts)]
        if not items:
            return {"ok": False, "error": "thread_not_found"}
        items = [m for m in items if _in_window(m.ts, args)]
        items.sort(key=lambda m: float(m.ts))  # oldest first, the parent first
        return self._page(items, args, metadata=str(args.get("include_all_metadata")).lower() in ("1", "true"))

    def m_conversations_history(self, args):
        ch = args.get("channel", "")
        items = [m for m in self.messages.values()
                 if m.channel == ch and (m.thread_ts is None or m.thread_ts == m.ts) and _in_window(m.ts, args)]
        items.sort(key=lambda m: float(m.ts), reverse=True)  # newest first, like Slack
        return self._page(items, args)

    def m_users_info(self, args):
        uid = args.get("user", "")
        if uid not in self.users:
            return {"ok": False, "error": "user_not_found"}
        name = self.users[uid]
        owner = uid in self.owners
        return {"user": {"id": uid, "team_id": TEAM, "name": name.lower(), "real_name": f"{name} Example",
                         "profile": {"display_name": name, "real_name": f"{name} Example"},
                         # Slack: owners are admins too; is_primary_owner only for the one primary owner
                         "is_admin": uid in self.admins or owner, "is_owner": owner, "is_primary_owner": False,
                         "is_bot": uid in (BOT_USER, self._caller.bot_user), "deleted": False,
                         **({"tz": self.timezones[uid]} if uid in self.timezones else {})}}

    def m_files_info(self, args):
        info = self.files.get(args.get("file", ""))
        if info is None:
            return {"ok": False, "error": "file_not_found"}
        return {"file": info}

    async def _download(self, request: web.Request) -> web.Response:
        fid = request.match_info["file_id"]
        auth = request.headers.get("Authorization", "")
        ok = auth.removeprefix("Bearer ") in self.workspaces
        self.downloads.append({"file": fid, "authorization_ok": ok})
        if not ok:
            # Slack answers an unauthenticated file request with its HTML login page
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        if fid not in self.file_bytes:
            return web.Response(status=404)
        return web.Response(body=self.file_bytes[fid], content_type=self.files[fid]["mimetype"])

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_at"] = time.monotonic()
        self.responses.append(body)
        if body.get("response_type", "ephemeral") == "ephemeral":
            self.ephemeral.append(body)
        return web.Response(text="ok")


def _in_window(ts: str, args: dict) -> bool:
    """Slack's `oldest` / `latest` bounds of conversations.history and .replies: exclusive
    unless `inclusive` is set."""
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    value = float(ts)
    if args.get("oldest"):
        oldest = float(args["oldest"])
        if value < oldest or (value == oldest and not inclusive):
            return False
    if args.get("latest"):
        latest = float(args["latest"])
        if value > latest or (value == latest and not inclusive):
            return False
    return True


def _metadata(args: dict) -> dict | None:
    """`metadata` of chat.postMessage/chat.update: {event_type, event_payload}."""
    meta = args.get("metadata")
    if isinstance(meta, str):
        meta = json.loads(meta or "null")
    if isinstance(meta, dict) and meta.get("event_type"):
        return {"event_type": meta["event_type"], "event_payload": meta.get("event_payload") or {}}
    return None


def _blocks(args: dict) -> list:
    blocks = args.get("blocks")
    if isinstance(blocks, str):  # form-encoded calls send them as a JSON string
        blocks = json.loads(blocks or "[]")
    return list(blocks or [])


_BLOCK_TYPES = {"section", "actions", "markdown", "context", "divider", "header", "image", "input", "rich_text"}


def invalid_blocks(blocks: list) -> str | None:
    """Why Slack would refuse these blocks (Block Kit's documented limits), or None."""
    if len(blocks) > 50:
        return "no more than 50 items allowed"
    for b in blocks:
        kind = b.get("type")
        if kind not in _BLOCK_TYPES:
            return f"unknown block type {kind!r}"
        if len(b.get("block_id") or "") > 255:
            return "block_id must be at most 255 characters"
        if kind == "markdown" and not (0 < len(b.get("text") or "") <= 12_000):
            return "markdown text must be 1 to 12000 characters"
        if kind == "actions":
            elements = b.get("elements") or []
            if not 0 < len(elements) <= 25:
                return "actions need 1 to 25 elements"
            ids = [e.get("action_id") for e in elements]
            if len(set(ids)) != len(ids):
                return "action_id must be unique in the block"
            for e in elements:
                if e.get("type") == "button":
                    if len(e["text"]["text"]) > 75 or len(e.get("value") or "") > 2000 or len(e.get("action_id") or "") > 255:
                        return "button over its limits"
                    if e.get("style") not in (None, "primary", "danger"):
                        return "button style must be primary or danger"
    return None
