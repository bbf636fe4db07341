"""A fake Discord on 127.0.0.1: REST API v10 and a gateway WebSocket, real wire protocol.

The real discord.py client is pointed at it (`DISCORD_API_URL`) and runs end to end:
login (`/users/@me`, `/oauth2/applications/@me`), `/gateway/bot`, then the gateway
handshake (HELLO, heartbeats answered with HEARTBEAT_ACK, IDENTIFY, READY, GUILD_CREATE)
over the compression discord.py asks for (`zlib-stream`, or `zstd-stream` when a zstd
decompressor is installed). Tests then deliver MESSAGE_CREATE / INTERACTION_CREATE
dispatches and read what the bot did from `calls` and `messages`.

Rate limits are real: every message edit carries `X-RateLimit-*` headers of a per-channel
bucket of 5 per 5 s; going over it answers 429 with `retry_after` (and counts an
`overrun`), as does `fail_next(...)` on demand. Payloads start from the documented
examples kept in tests/fixtures/discord/.

    async with FakeDiscord() as fake:
        adapter = DiscordAdapter(token="x", api_url=fake.api_url, ...)
        await fake.send_message("<@BOT> hi", channel=fake.channel_id)
"""
from __future__ import annotations

import asyncio
import copy
import json
import re
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discord"
DISCORD_EPOCH_MS = 1_420_070_400_000
EDIT_LIMIT, EDIT_WINDOW = 5, 5.0  # per channel, like Discord's historical message-edit bucket

try:  # the same choice discord.py makes
    from zstandard import ZstdCompressor  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    ZstdCompressor = None


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


@dataclass
class Call:
    method: str
    path: str
    body: Any
    query: dict
    at: float
    status: int = 200


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    status: int
    retry_after: float
    times: int


@dataclass
class _Session:
    ws: web.WebSocketResponse
    compress: str | None
    shard: tuple[int, int] = (0, 1)
    intents: int = 0  # what IDENTIFY asked for: events outside them are not sent
    seq: int = 0
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    zlib: Any = None
    zstd: Any = None


class FakeDiscord:
    BOT_ID = "1100000000000000001"
    APP_ID = "1100000000000000002"
    GUILD_ID = "1100000000000000010"
    CHANNEL_ID = "1100000000000000020"
    OTHER_CHANNEL_ID = "1100000000000000021"
    USER_ID = "1100000000000000030"
    OTHER_BOT_ID = "1100000000000000031"
    DM_CHANNEL_ID = "1100000000000000040"
    MEMBER_ID = "1100000000000000032"  # a member without Manage Server
    OWNER_ID = "1100000000000000033"  # the guild's owner
    MOD_ROLE_ID = "1100000000000000050"  # a role with Manage Server
    # @everyone: view, send, history, embeds, files, reactions, threads, app commands; no Manage Server
    EVERYONE = (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31) | (1 << 35) | (1 << 38)
    MANAGE_GUILD = 1 << 5
    # a second guild (with `second_guild=True`), on the other shard of two: (id >> 22) % 2
    SECOND_GUILD_ID = "1100000000004194314"
    SECOND_CHANNEL_ID = "1100000000000000022"

    def __init__(self, *, heartbeat_interval_ms: int = 41_250, second_guild: bool = False, channels: int = 0) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.second_guild = second_guild
        # more text channels in the first guild (`load_channels`), for spreading load
        self.load_channels = [str(1_200_000_000_000_000_000 + i) for i in range(channels)]
        self.calls: list[Call] = []
        self.messages: dict[str, dict] = {}  # id -> message payload (latest version)
        self.versions: dict[str, list[str]] = defaultdict(list)  # id -> every content shown
        self.files: dict[str, bytes] = {}
        self.commands: list[dict] = []
        self.identify: list[dict] = []
        self.heartbeats = 0
        self.overruns = 0
        self.failures: list[Failure] = []
        self.forbidden: set[str] = set()  # channels where the bot may not post (forbid())
        self.sessions: list[_Session] = []
        self._edits: dict[str, deque] = defaultdict(deque)
        self.interaction_channels: dict[str, str] = {}  # interaction token -> channel id
        self.admins: set[str] = {self.USER_ID}  # members given the Manage Server role (the default user is one)
        self._originals: dict[str, str] = {}  # interaction token -> original response message id
        self._threads: list[dict] = []
        self.modals: list[dict] = []  # interaction callbacks of type 9 (MODAL)
        self.callbacks: list[dict] = []  # every interaction callback body
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> "FakeDiscord":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for s in list(self.sessions):
            await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- ids and payloads -----------------------------------------------------------

    def snowflake(self) -> str:
        self._seq += 1
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (self._seq & 0x3FFFFF))

    def user(self, uid: str | None = None, *, name: str = "alice", bot: bool = False) -> dict:
        uid = uid or self.USER_ID
        if uid == self.BOT_ID:
            name, bot = "aibot", True
        return {"id": uid, "username": name, "discriminator": "0", "global_name": name.title(),
                "avatar": None, "bot": bot}

    def guild_of(self, channel: str) -> str:
        return self.SECOND_GUILD_ID if channel == self.SECOND_CHANNEL_ID else self.GUILD_ID

    def channel(self, cid: str, name: str, *, type: int = 0, parent: str | None = None, owner: str | None = None) -> dict:
        data = {"id": cid, "type": type, "guild_id": self.guild_of(cid), "name": name, "position": 0,
                "permission_overwrites": [], "nsfw": False, "parent_id": parent, "topic": None,
                "last_message_id": None, "rate_limit_per_user": 0}
        if type in (11, 12):
            data.update(owner_id=owner, message_count=0, member_count=1,
                        thread_metadata={"archived": False, "auto_archive_duration": 1440,
                                         "archive_timestamp": _iso(time.time()), "locked": False})
        return data

    def ready(self, shard: tuple[int, int]) -> dict:
        d = fixture("ready")
        d["user"] = {**d["user"], **self.user(self.BOT_ID)}
        d["guilds"] = [{"id": g["id"], "unavailable": True} for g in self.guilds() if self._shard_of(g["id"], shard[1]) == shard[0]]
        d["session_id"] = f"session-{shard[0]}"
        d["resume_gateway_url"] = f"ws://127.0.0.1:{self.port}/gateway"
        d["shard"] = list(shard)
        d["application"]["id"] = self.APP_ID
        return d

    def guilds(self) -> list[dict]:
        g = fixture("guild_create")
        g["id"] = g["roles"][0]["id"] = self.GUILD_ID
        g["roles"][0]["permissions"] = str(self.EVERYONE)
        g["roles"].append({**g["roles"][0], "id": self.MOD_ROLE_ID, "name": "Moderator", "position": 1,
                           "permissions": str(self.MANAGE_GUILD)})
        g["owner_id"] = self.OWNER_ID
        g["channels"] = [self.channel(self.CHANNEL_ID, "general"), self.channel(self.OTHER_CHANNEL_ID, "random")]
        g["channels"] += [self.channel(c, f"load-{i}") for i, c in enumerate(self.load_channels)]
        g["members"] = [{"user": self.user(self.BOT_ID), "roles": [], "joined_at": g["joined_at"], "deaf": False, "mute": False, "flags": 0}]
        g["threads"] = list(self._threads)
        if not self.second_guild:
            return [g]
        g2 = copy.deepcopy(g)
        g2["id"] = g2["roles"][0]["id"] = self.SECOND_GUILD_ID
        g2["roles"] = g2["roles"][:1]
        g2["name"] = "second guild"
        g2["channels"] = [self.channel(self.SECOND_CHANNEL_ID, "general")]
        g2["threads"] = []
        return [g, g2]

    def add_thread(self, *, owner: str, parent: str | None = None, name: str = "a thread") -> str:
        """A public thread in the guild (present in GUILD_CREATE: add it before the bot connects)."""
        tid = self.snowflake()
        self._threads.append(self.channel(tid, name, type=11, parent=parent or self.CHANNEL_ID, owner=owner))
        return tid

    @staticmethod
    def _shard_of(guild_id: str, count: int) -> int:
        return (int(guild_id) >> 22) % count

    def message(self, content: str, *, channel: str | None = None, author: dict | None = None, dm: bool = False,
                reply_to: str | None = None, attachments: list[dict] | None = None, mentions: list[dict] | None = None) -> dict:
        m = fixture("message_create")
        channel = channel or (self.DM_CHANNEL_ID if dm else self.CHANNEL_ID)
        m.update(id=self.snowflake(), channel_id=channel, author=author or self.user(), content=content,
                 timestamp=_iso(time.time()), attachments=attachments or [], mentions=mentions or [])
        if dm:
            del m["guild_id"], m["member"]
        else:
            m["guild_id"] = self.guild_of(channel)
            m["member"] = {**m["member"], "roles": self.roles_of(m["author"]["id"])}
        if f"<@{self.BOT_ID}>" in content and not mentions:
            m["mentions"] = [self.user(self.BOT_ID)]
        if reply_to is not None:
            m["type"] = 19
            m["message_reference"] = {"type": 0, "message_id": reply_to, "channel_id": channel, "guild_id": m.get("guild_id")}
            ref = self.messages.get(reply_to)
            m["referenced_message"] = copy.deepcopy(ref) if ref else None
        return m

    def attachment(self, name: str, data: bytes, *, content_type: str = "text/plain", size: int | None = None) -> dict:
        aid = self.snowflake()
        self.files[f"{aid}-{name}"] = data
        url = f"{self.base}/files/{aid}-{name}"
        return {"id": aid, "filename": name, "size": len(data) if size is None else size, "url": url,
                "proxy_url": url, "content_type": content_type}

    # --- what tests deliver -----------------------------------------------------------

    async def send_message(self, content: str, **kw) -> dict:
        """A user (or `author=`) posts a message; the bot receives MESSAGE_CREATE."""
        m = self.message(content, **kw)
        self._store(m)
        await self.dispatch("MESSAGE_CREATE", m, guild_id=m.get("guild_id"))
        return m

    def roles_of(self, uid: str) -> list[str]:
        return [self.MOD_ROLE_ID] if uid in self.admins else []

    def permissions_of(self, uid: str) -> int:
        """A member's guild permissions: the owner has all, else @everyone plus their roles'."""
        if uid == self.OWNER_ID:
            return (1 << 41) - 1
        return self.EVERYONE | (self.MANAGE_GUILD if uid in self.admins else 0)

    async def send_command(self, name: str, options: list[dict] | None = None, *, channel: str | None = None,
                           resolved: dict | None = None, dm: bool = False, user: str | None = None) -> dict:
        """A user runs a slash command; the bot receives INTERACTION_CREATE."""
        i = fixture("interaction_create")
        i.update(id=self.snowflake(), application_id=self.APP_ID, token=f"itoken-{self._seq}")
        i["data"].update(id=self.snowflake(), name=name, options=options or [])
        if resolved:
            i["data"]["resolved"] = resolved
        cid = channel or (self.DM_CHANNEL_ID if dm else self.CHANNEL_ID)
        i["channel_id"] = i["channel"]["id"] = cid
        if dm:
            del i["guild_id"], i["member"]
            i["user"] = self.user(user) if user else self.user()
            i["channel"] = {"id": cid, "type": 1, "recipients": [self.user()]}
            i["context"] = 1
        else:
            i["guild_id"] = i["channel"]["guild_id"] = self.GUILD_ID
            i["member"]["user"] = self.user(user) if user else self.user()
            uid = i["member"]["user"]["id"]
            # an interaction's member carries their permissions in the channel, as Discord sends them
            i["member"]["roles"] = self.roles_of(uid)
            i["member"]["permissions"] = str(self.permissions_of(uid))
        i["authorizing_integration_owners"] = {"0": self.GUILD_ID}
        self.interaction_channels[i["token"]] = cid
        await self.dispatch("INTERACTION_CREATE", i, guild_id=i.get("guild_id"))
        return i

    async def remove_bot(self) -> None:
        """The bot is kicked from the guild: GUILD_DELETE without `unavailable` (Discord's
        sign that the bot was removed, not an outage)."""
        await self.dispatch("GUILD_DELETE", {"id": self.GUILD_ID}, guild_id=self.GUILD_ID)

    def _interaction(self, type_: int, data: dict, *, channel: str | None, user: str | None = None) -> dict:
        i = fixture("interaction_create")
        i.update(id=self.snowflake(), application_id=self.APP_ID, token=f"itoken-{self._seq}", type=type_, data=data)
        cid = channel or self.CHANNEL_ID
        i["channel_id"] = i["channel"]["id"] = cid
        i["guild_id"] = i["channel"]["guild_id"] = self.GUILD_ID
        i["member"]["user"] = self.user(user or self.USER_ID)
        i["authorizing_integration_owners"] = {"0": self.GUILD_ID}
        self.interaction_channels[i["token"]] = cid
        return i

    async def press_button(self, message: dict, custom_id: str, *, user: str | None = None) -> dict:
        """A user clicks a button of `message`; the bot receives INTERACTION_CREATE type 3
        (MESSAGE_COMPONENT) with the message it is on."""
        i = self._interaction(3, {"custom_id": custom_id, "component_type": 2}, channel=message["channel_id"], user=user)
        i["message"] = copy.deepcopy(message)
        await self.dispatch("INTERACTION_CREATE", i, guild_id=self.GUILD_ID)
        return i

    async def submit_modal(self, modal: dict, values: dict[str, str], *, message: dict | None = None,
                           user: str | None = None) -> dict:
        """A user submits a modal the bot opened: INTERACTION_CREATE type 5 (MODAL_SUBMIT)."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": cid, "value": v}]} for cid, v in values.items()]
        i = self._interaction(5, {"custom_id": modal["custom_id"], "components": rows},
                              channel=(message or {}).get("channel_id"), user=user)
        if message is not None:
            i["message"] = copy.deepcopy(message)
        await self.dispatch("INTERACTION_CREATE", i, guild_id=self.GUILD_ID)
        return i

    GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS = 1 << 10, 1 << 13

    async def react(self, message: dict, emoji: str, *, user: str | None = None) -> dict:
        """A user adds a (unicode) reaction to `message`: MESSAGE_REACTION_ADD, shaped like
        Discord's documented event, sent only to sessions that asked for the reaction
        intent (GUILD_MESSAGE_REACTIONS, or DIRECT_MESSAGE_REACTIONS in a DM)."""
        user = user or self.USER_ID
        guild = message.get("guild_id")
        data = {"user_id": user, "channel_id": message["channel_id"], "message_id": message["id"],
                "emoji": {"id": None, "name": emoji}, "message_author_id": message["author"]["id"],
                "burst": False, "type": 0}
        if guild:
            data["guild_id"] = guild
            data["member"] = {"user": self.user(user), "roles": self.roles_of(user), "joined_at": _iso(time.time()),
                              "deaf": False, "mute": False, "flags": 0}
        needed = self.GUILD_MESSAGE_REACTIONS if guild else self.DIRECT_MESSAGE_REACTIONS
        await self.dispatch("MESSAGE_REACTION_ADD", data, guild_id=guild, intents=needed)
        return data

    async def dispatch(self, event: str, data: dict, *, guild_id: str | None = None, intents: int = 0) -> None:
        await self.wait_ready()
        for s in self.sessions:
            if intents and not s.intents & intents:
                continue  # Discord sends only what the session's intents ask for
            if guild_id is None and s.shard[0] != 0:
                continue
            if guild_id is not None and self._shard_of(guild_id, s.shard[1]) != s.shard[0]:
                continue
            await self._send(s, {"op": 0, "t": event, "d": data})

    async def wait_ready(self, shards: int = 1, timeout: float = 10) -> None:
        async def ready() -> None:
            while sum(s.identified.is_set() for s in self.sessions) < shards:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(ready(), timeout)

    def forbid(self, channel: str) -> None:
        """The bot loses Send Messages in `channel`: posts get 403 Missing Permissions (50013)."""
        self.forbidden.add(channel)

    def delete_message(self, mid: str) -> None:
        """A user deletes a message: later edits get 404 Unknown Message (10008)."""
        self.messages.pop(mid, None)

    def fail_next(self, method: str, path_regex: str, *, status: int = 429, retry_after: float = 0.3, times: int = 1) -> None:
        """The next `times` matching requests answer `status` (429 with `retry_after`)."""
        self.failures.append(Failure(method.upper(), re.compile(path_regex), status, retry_after, times))

    def requests(self, method: str, path_regex: str) -> list[Call]:
        rx = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and rx.search(c.path)]

    # --- gateway ----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress")
        s = _Session(ws, compress)
        if compress == "zlib-stream":
            s.zlib = zlib.compressobj()
        elif compress == "zstd-stream" and ZstdCompressor is not None:
            s.zstd = ZstdCompressor().compressobj()
        self.sessions.append(s)
        try:
            await self._send(s, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for raw in ws:
                if raw.type != WSMsgType.TEXT:
                    continue
                msg = json.loads(raw.data)
                op = msg.get("op")
                if op == 1:
                    self.heartbeats += 1
                    await self._send(s, {"op": 11})
                elif op == 2:
                    self.identify.append(msg["d"])
                    s.shard = tuple(msg["d"].get("shard") or (0, 1))  # type: ignore[assignment]
                    s.intents = int(msg["d"].get("intents") or 0)
                    await self._send(s, {"op": 0, "t": "READY", "d": self.ready(s.shard)})
                    for g in self.guilds():
                        if self._shard_of(g["id"], s.shard[1]) == s.shard[0]:
                            await self._send(s, {"op": 0, "t": "GUILD_CREATE", "d": g})
                    s.identified.set()
        finally:
            self.sessions.remove(s)
        return ws

    async def _send(self, s: _Session, payload: dict) -> None:
        if payload.get("op") == 0:
            s.seq += 1
            payload["s"] = s.seq
        else:
            payload.setdefault("s", None)
        payload.setdefault("t", None)
        data = json.dumps(payload).encode()
        if s.zlib is not None:
            await s.ws.send_bytes(s.zlib.compress(data) + s.zlib.flush(zlib.Z_SYNC_FLUSH))
        elif s.zstd is not None:
            await s.ws.send_bytes(s.zstd.compress(data) + s.zstd.flush(1))  # COMPRESSOBJ_FLUSH_BLOCK
        else:
            await s.ws.send_str(data.decode())

    # --- REST -------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        self.calls.append(Call("GET", request.path, None, dict(request.query), time.monotonic()))
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await request.json() if request.can_read_body and request.content_type == "application/json" else None
        call = Call(request.method, path, body, dict(request.query), time.monotonic())
        self.calls.append(call)
        for f in self.failures:
            if f.times > 0 and f.method == request.method and f.pattern.search(path):
                f.times -= 1
                call.status = f.status
                return _rate_limited(f.retry_after) if f.status == 429 else _json({"message": "error", "code": 0}, status=f.status)
        for method, rx, handler in self._routes():
            m = re.fullmatch(rx, path)
            if m and method == request.method:
                result = await handler(request, body, *m.groups())
                if isinstance(result, web.Response):
                    call.status = result.status
                    return result
                if result is None:
                    return web.Response(status=204)
                return _json(result)
        call.status = 404
        return _json({"message": f"404: Not Found ({request.method} {path})", "code": 0}, status=404)

    def _routes(self):
        ch, sf, tok = r"(\d+)", r"(\d+)", r"([^/]+)"
        return (
            ("GET", r"/users/@me", self._me),
            ("GET", r"/oauth2/applications/@me", self._app),
            ("GET", r"/gateway/bot", self._gateway_bot),
            ("PUT", rf"/applications/{sf}/commands", self._put_commands),
            ("PUT", rf"/applications/{sf}/guilds/{sf}/commands", self._put_guild_commands),
            ("POST", r"/users/@me/channels", self._open_dm),
            ("POST", rf"/channels/{ch}/messages", self._create),
            ("PATCH", rf"/channels/{ch}/messages/{sf}", self._edit),
            ("GET", rf"/channels/{ch}/messages/{sf}", self._fetch),
            ("GET", rf"/channels/{ch}/messages", self._history),
            ("POST", rf"/channels/{ch}/typing", self._typing),
            ("GET", rf"/channels/{ch}", self._get_channel),
            ("POST", rf"/interactions/{sf}/{tok}/callback", self._callback),
            ("PATCH", rf"/webhooks/{sf}/{tok}/messages/@original", self._edit_original),
            ("DELETE", rf"/webhooks/{sf}/{tok}/messages/@original", self._delete_original),
            ("POST", rf"/webhooks/{sf}/{tok}", self._followup),
            ("PATCH", rf"/webhooks/{sf}/{tok}/messages/{sf}", self._edit_followup),
        )

    async def _me(self, request, body):
        return self.user(self.BOT_ID)

    async def _app(self, request, body):
        return {"id": self.APP_ID, "name": "aibot", "icon": None, "description": "", "bot_public": True,
                "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 565248,
                "owner": self.user(), "team": None, "summary": ""}

    async def _gateway_bot(self, request, body):
        return {"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 16}}

    async def _put_commands(self, request, body, app_id):
        self.commands = [{**c, "id": self.snowflake(), "application_id": app_id, "version": "1"} for c in body]
        return self.commands

    async def _put_guild_commands(self, request, body, app_id, guild_id):
        return await self._put_commands(request, body, app_id)

    def _store(self, m: dict) -> None:
        self.messages[m["id"]] = m
        self.versions[m["id"]].append(m["content"])

    def _bot_message(self, channel: str, body: dict, **extra) -> dict:
        m = self.message(body.get("content") or "", channel=channel, author=self.user(self.BOT_ID),
                         dm=channel == self.DM_CHANNEL_ID or extra.pop("dm", False))
        m["mentions"] = []  # a bot message's content is only text here: nobody is pinged
        ref = body.get("message_reference")
        if ref:
            m["type"] = 19
            m["message_reference"] = {"type": 0, "message_id": str(ref["message_id"]), "channel_id": channel,
                                      "guild_id": m.get("guild_id")}
            m["referenced_message"] = copy.deepcopy(self.messages.get(str(ref["message_id"])))
        m.update(extra)
        self._store(m)
        return m

    async def _create(self, request, body, channel):
        if channel in self.forbidden:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        problem = invalid_components(body.get("components"))
        if problem:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": problem}, status=400)
        return self._bot_message(channel, body, components=body.get("components") or [])

    async def _open_dm(self, request, body):
        """Create DM: the one DM channel of the fake, with the recipient asked for."""
        return {"id": self.DM_CHANNEL_ID, "type": 1, "last_message_id": None,
                "recipients": [self.user(str(body["recipient_id"]))]}

    async def _edit(self, request, body, channel, mid):
        now = time.monotonic()
        window = self._edits[channel]
        while window and window[0] <= now - EDIT_WINDOW:
            window.popleft()
        if len(window) >= EDIT_LIMIT:
            self.overruns += 1
            return _rate_limited(window[0] + EDIT_WINDOW - now, bucket=f"edit-{channel}")
        window.append(now)
        m = self.messages.get(mid)
        if m is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        problem = invalid_components(body.get("components"))
        if problem:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": problem}, status=400)
        if "components" in body:  # absent: the components stay; [] removes them
            m["components"] = body["components"] or []
        if "content" in body:
            m["content"] = body["content"]
            self.versions[mid].append(body["content"])
        m["edited_timestamp"] = _iso(time.time())
        reset = window[0] + EDIT_WINDOW - now
        return _json(m, headers=_limit_headers(EDIT_LIMIT - len(window), reset, bucket=f"edit-{channel}"))

    async def _fetch(self, request, body, channel, mid):
        m = self.messages.get(mid)
        if m is None or m["channel_id"] != channel:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return m

    async def _history(self, request, body, channel):
        q = request.query
        limit = int(q.get("limit", 50))
        items = sorted((m for m in self.messages.values() if m["channel_id"] == channel), key=lambda m: int(m["id"]))
        if "before" in q:
            items = [m for m in items if int(m["id"]) < int(q["before"])]
        if "after" in q:
            items = [m for m in items if int(m["id"]) > int(q["after"])][:limit]
        else:
            items = items[-limit:]
        return list(reversed(items))  # Discord returns newest first

    async def _typing(self, request, body, channel):
        return None

    async def _get_channel(self, request, body, channel):
        if channel == self.DM_CHANNEL_ID:
            return {"id": channel, "type": 1, "recipients": [self.user()], "last_message_id": None}
        for g in self.guilds():
            for c in g["channels"] + g["threads"]:
                if c["id"] == channel:
                    return c
        return _json({"message": "Unknown Channel", "code": 10003}, status=404)

    # interactions: the callback (defer), then the original response and follow-ups

    async def _callback(self, request, body, iid, token):
        self.callbacks.append(body)
        if body.get("type") == 6:  # DEFERRED_UPDATE_MESSAGE: nothing shown now
            return {"interaction": {"id": iid, "type": 3}}
        if body.get("type") == 9:  # MODAL
            modal = body.get("data") or {}
            if not modal.get("custom_id") or len(modal["custom_id"]) > 100 or not 0 < len(modal.get("title", "")) <= 45 \
                    or not 1 <= len(modal.get("components") or []) <= 5:
                return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
            self.modals.append(modal)
            return {"interaction": {"id": iid, "type": 3}}
        flags = (body.get("data") or {}).get("flags", 0)
        original = self._bot_message(self.interaction_channels.get(token, self.CHANNEL_ID), {"content": (body.get("data") or {}).get("content", "")},
                                     interaction_token=token, flags=flags)
        self._originals[token] = original["id"]
        return {"interaction": {"id": iid, "type": 2, "response_message_id": original["id"],
                                "response_message_loading": body.get("type") == 5,
                                "response_message_ephemeral": bool(flags & 64)},
                "resource": {"type": body.get("type"), "message": original}}

    async def _edit_original(self, request, body, app_id, token):
        mid = self._originals.get(token)
        if mid is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        m = self.messages[mid]
        m["content"] = body.get("content", m["content"])
        if "components" in body:
            m["components"] = body["components"] or []
        self.versions[mid].append(m["content"])
        return m

    async def _delete_original(self, request, body, app_id, token):
        mid = self._originals.pop(token, None)
        if mid:
            self.messages.pop(mid, None)
        return None

    async def _followup(self, request, body, app_id, token):
        return self._bot_message(self.interaction_channels.get(token, self.CHANNEL_ID), body, interaction_token=token,
                                 flags=body.get("flags", 0), components=body.get("components") or [])

    async def _edit_followup(self, request, body, app_id, token, mid):
        m = self.messages[mid]
        m["content"] = body.get("content", m["content"])
        if "components" in body:
            m["components"] = body["components"] or []
        self.versions[mid].append(m["content"])
        return m

    # --- reading what the bot did ----------------------------------------------------

    def bot_messages(self, channel: str | None = None) -> list[dict]:
        return [m for m in sorted(self.messages.values(), key=lambda m: int(m["id"]))
                if m["author"]["id"] == self.BOT_ID and (channel is None or m["channel_id"] == channel)]


def invalid_components(rows) -> str | None:
    """Why Discord would refuse these message components (its documented limits), or None."""
    if not rows:
        return None
    if len(rows) > 5:
        return "at most 5 action rows"
    for row in rows:
        if row.get("type") != 1 or not 1 <= len(row.get("components") or []) <= 5:
            return "an action row holds 1 to 5 components"
        for c in row["components"]:
            if c.get("type") == 2:
                if c.get("style") not in (1, 2, 3, 4, 5, 6):
                    return "bad button style"
                if c.get("style") != 5 and not (0 < len(c.get("custom_id") or "") <= 100):
                    return "a button needs a custom_id of 1 to 100 characters"
                if len(c.get("label") or "") > 80 or not (c.get("label") or c.get("emoji")):
                    return "a button needs a label (up to 80 characters) or an emoji"
    return None


def _limit_headers(remaining: int, reset_after: float, *, bucket: str) -> dict:
    return {
        "X-RateLimit-Limit": str(EDIT_LIMIT),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{max(reset_after, 0.001):.3f}",
        "X-RateLimit-Bucket": bucket,
    }


def _rate_limited(retry_after: float, *, bucket: str = "scripted") -> web.Response:
    retry_after = max(retry_after, 0.001)
    headers = _limit_headers(0, retry_after, bucket=bucket)
    headers.update({"Retry-After": f"{retry_after:.3f}", "X-RateLimit-Scope": "user", "Via": "1.1 google"})
    return _json({"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                             status=429, headers=headers)


def _json(data: Any, *, status: int = 200, headers: dict | None = None) -> web.Response:
    # exactly "application/json", as Discord sends it (discord.py compares the header verbatim)
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})
