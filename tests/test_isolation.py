"""Tenant isolation, randomized: several workspaces (on several platforms) each store
documents, settings, schedules and usage marked with a secret word of their own, then a
random sequence of requests from all of them goes through every interface: chat
commands and mentions (RAG, chat, settings, audit, export, stats, digests, removals of
others' document ids), the agent's knowledge-base tool, the exact answer cache, and the
`aibot` CLI. No reply, model prompt, count or document id of another workspace may ever
show up."""
from __future__ import annotations

import asyncio
import json
import random
import re
import uuid

import pytest
from sqlalchemy import text

from patterns.agent.toolbox import Run, kb_search
from tests.harness import Harness, RecordingConversation
from tests.test_kb_cli import aibot

TENANTS = [("slack", "T0ALPHA"), ("discord", "81384788765712384"), ("test", "TGAMMA"), ("discord", "dm:4242")]
ACTIONS = ("kb list", "kb search", "ask", "remove other", "settings", "audit", "export", "stats", "mention",
           "digest status", "agent kb_search", "summarize")


class World:
    def __init__(self, bot, fake_llm, seed: int) -> None:
        self.bot, self.llm = bot, fake_llm
        self.rng = random.Random(seed)
        tag = uuid.uuid4().hex[:6]
        self.marker = {t: f"quokka{i}x{tag}" for i, t in enumerate(TENANTS)}
        self.docs: dict[tuple[str, str], set[int]] = {t: set() for t in TENANTS}
        # one channel each, with its own history (as on the platforms)
        self.channels = {t: Harness(bot.app) for t in TENANTS}

    def others(self, t) -> list[str]:
        return [m for o, m in self.marker.items() if o != t]

    async def send(self, t, text: str, **kw) -> list[str]:
        platform, tenant = t
        return await self.channels[t].send(text, platform=platform, tenant=tenant, channel=f"C-{tenant}",
                                           is_dm=tenant.startswith("dm:"), **kw)

    async def setup(self) -> None:
        await self.bot.app.services.kb.embedder.embed(["warm up"])
        for t, m in self.marker.items():
            await self.send(t, f"/kb add {m} handbook\nThe refund window of {m} is {len(m)} days; ask {m} support.")
            await self.send(t, f"/aibot settings set persona You are {m}-bot, helpful and brief.")
            await self.send(t, f"/aibot channel set language {m}ese", user="U-admin", user_name=f"{m}-admin")
            await self.send(t, "/digest on 09:00 UTC")
            await self.send(t, "@aibot hello")
            docs = await self.bot.app.services.kb.list(tenant=t[1])
            self.docs[t] = {d.id for d in docs}

    def check(self, t, replies: list[str], requests: list[dict], *, typed_ids: set[int] = frozenset()) -> None:
        seen = "\n".join(replies) + "\n" + json.dumps(requests)
        for m in self.others(t):
            assert m not in seen, f"{t} saw another workspace's marker {m}:\n{seen[:2000]}"
        foreign = set().union(*(ids for o, ids in self.docs.items() if o != t)) - set(typed_ids)
        for i in re.findall(r"#(\d+)", "\n".join(replies)):
            assert int(i) not in foreign, f"{t} saw document id #{i} of another workspace"

    async def step(self) -> None:
        t = self.rng.choice(TENANTS)
        action = self.rng.choice(ACTIONS)
        before = len(self.llm.chat_requests)
        typed: set[int] = set()
        if action == "kb list":
            replies = await self.send(t, "/kb list")
            assert replies[0].startswith(f"{len(self.docs[t])} document")
        elif action == "kb search":
            replies = await self.send(t, "/kb search what is the refund window")
        elif action == "ask":
            replies = await self.send(t, "/ask what is the refund window and who do I ask?")
        elif action == "remove other":
            other = self.rng.choice([o for o in TENANTS if o != t])
            doc = self.rng.choice(sorted(self.docs[other]))
            typed = {doc}
            replies = await self.send(t, f"/kb remove {doc}")
            assert replies == [f"There is no document #{doc} in this workspace's knowledge base (see /kb list)."]
            assert doc in {d.id for d in await self.bot.app.services.kb.list(tenant=other[1])}
        elif action == "settings":
            replies = await self.send(t, "/aibot settings")
            assert self.marker[t] in replies[0]
        elif action == "audit":
            replies = await self.send(t, "/aibot audit")
            assert len(replies[0].splitlines()) == 1 + 2  # its own two changes
        elif action == "export":
            replies = await self.send(t, "/aibot export")
        elif action == "stats":
            replies = await self.send(t, "/ai-stats")
            async with self.bot.app.services.db.session() as s:
                mine = (await s.execute(text("SELECT count(*) FROM usage WHERE platform = :p AND workspace = :t"),
                                        dict(p=t[0], t=t[1]))).scalar()
            table = replies[0].split("```")[1].strip().splitlines()
            rows = [line for line in table[2:] if line.strip() and not line.startswith(("Cache hits", "total"))]
            assert sum(int(line.split()[1]) for line in rows) == mine, replies[0]
        elif action == "mention":
            replies = await self.send(t, "@aibot what is the refund window?")
            if len(self.llm.chat_requests) > before:  # (a repeat in its workspace is answered from the cache)
                assert self.marker[t] in json.dumps(self.llm.chat_requests[-1])  # its own persona and language
        elif action == "digest status":
            replies = await self.send(t, "/digest status")
            assert replies[0].startswith("Daily digest")
        elif action == "agent kb_search":
            msg = self.bot.incoming("refund window", platform=t[0], tenant=t[1])
            out = await kb_search.invoke(Run(self.bot.app.services, RecordingConversation(), msg),
                                         {"query": "refund window"}, timeout=30)
            replies = [out]
            assert self.marker[t] in out
        else:  # the summarizer caches answers: the same text elsewhere must not come from this cache
            replies = await self.send(t, "/summarize The refund window is the time in which a customer may ask "
                                         "for their money back; after it, store credit only.")
        self.check(t, replies, self.llm.chat_requests[before:], typed_ids=typed)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_no_workspace_ever_sees_anything_of_another(bot, fake_llm, seed):
    world = World(bot, fake_llm, seed)
    await world.setup()
    for _ in range(40):
        await world.step()


async def test_the_exact_cache_never_answers_one_workspace_with_anothers_answer(bot, fake_llm):
    text_ = "/summarize The quarterly plan moves the launch to May and hires two engineers."
    fake_llm.enqueue("Summary for A.")
    assert await bot.send(text_, tenant="TA") == ["Summary for A."]
    again = await bot.send(text_, tenant="TA")  # cached within the workspace, and marked so
    assert again[0].startswith("Summary for A.") and "cached answer" in again[0]
    calls = len(fake_llm.chat_requests)
    fake_llm.enqueue("Summary for B.")
    assert await bot.send(text_, tenant="TB") == ["Summary for B."]
    assert len(fake_llm.chat_requests) == calls + 1


async def test_the_cli_answers_for_the_named_workspace_only(bot, fake_llm, env):
    world = World(bot, fake_llm, 7)
    await world.setup()
    t = TENANTS[0]
    listed = await asyncio.to_thread(aibot, "kb", "list", "--tenant", t[1], "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {d["id"] for d in json.loads(listed.stdout)} == world.docs[t]
    found = await asyncio.to_thread(aibot, "kb", "search", "refund window", "--tenant", t[1], "--json", env=env)
    exported = await asyncio.to_thread(aibot, "tenant", "export", f"{t[0]}:{t[1]}", env=env)
    stats = await asyncio.to_thread(aibot, "stats", "--tenant", f"{t[0]}:{t[1]}", "--json", env=env)
    for out in (found, exported, stats):
        assert out.returncode == 0, out.stderr
        world.check(t, [out.stdout], [])
    assert world.marker[t] in found.stdout and world.marker[t] in exported.stdout
    assert sum(s["requests"] for s in json.loads(stats.stdout)) == 1  # its one mention


async def test_metrics_name_no_tenant(bot, fake_llm):
    import aiohttp

    from bot.core.http import HttpServer

    world = World(bot, fake_llm, 11)
    await world.setup()
    server = HttpServer(bot.app.services, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.bound_port}/metrics") as resp:
                body = await resp.text()
    finally:
        await server.stop()
    assert "aibot_model_calls_total" in body
    for (platform, tenant), marker in world.marker.items():
        assert tenant not in body and marker not in body


async def test_the_http_api_answers_from_the_named_workspace_only(bot, fake_llm):
    """The HTTP API is the operator's (one bearer token) and names the workspace in each
    request: /api/ask and /api/chat/stream for one workspace never show another's."""
    import aiohttp
    from pydantic import SecretStr

    from bot.core.http import HttpServer

    world = World(bot, fake_llm, 13)
    await world.setup()
    app = bot.app
    app.settings.api_token = SecretStr("isolation-token")
    server = HttpServer(app.services, host="127.0.0.1", port=0)
    for feature in app.features:  # as `aibot run` mounts them
        feature.mount(server.app)
    await server.start()
    auth = {"Authorization": "Bearer isolation-token"}
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.bound_port}") as http:
            for t in TENANTS:
                before = len(fake_llm.chat_requests)
                async with http.post("/api/ask", headers=auth, json={
                        "question": "what is the refund window and who do I ask?", "workspace": t[1]}) as r:
                    assert r.status == 200
                    asked = await r.text()
                async with http.post("/api/chat/stream", headers=auth, json={
                        "message": "what is the refund window of our handbook?", "workspace": t[1]}) as r:
                    assert r.status == 200
                    streamed = await r.text()
                requests = fake_llm.chat_requests[before:]
                world.check(t, [asked, streamed], requests)
                assert world.marker[t] in json.dumps(requests)  # its own handbook reached the model
    finally:
        await server.stop()
