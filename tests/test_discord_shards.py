"""Discord shards split across processes (`DISCORD_SHARD_COUNT=2`, `DISCORD_SHARD_IDS`):
each `aibot run` identifies with its own shard only, Discord sends a guild's events to
the shard that guild is on, and every mention in either guild is answered exactly once,
by the one process that holds its shard; both processes share the database."""
from __future__ import annotations

import asyncio
import signal

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import Script
from tests.test_signals_platforms import run_bot


async def test_two_processes_each_run_their_own_shard_and_each_guild_is_answered_once(env, fake_llm):
    fake_llm.responder = lambda body: Script(text="answered.")
    async with FakeDiscord(second_guild=True) as fake:
        # the two guilds are on different shards of two
        assert {fake._shard_of(fake.GUILD_ID, 2), fake._shard_of(fake.SECOND_GUILD_ID, 2)} == {0, 1}
        base = {**env, "DISCORD_BOT_TOKEN": "shard-token-not-real", "DISCORD_API_URL": fake.api_url,
                "DISCORD_SHARD_COUNT": "2", "AIBOT_EMBEDDING_PROVIDER": "openai"}
        procs = []
        try:
            for shard in (0, 1):  # one after the other, so the order of IDENTIFYs says who is who
                procs.append(await run_bot({**base, "DISCORD_SHARD_IDS": str(shard)}))
                await fake.wait_ready(shards=shard + 1, timeout=90)
            assert [d["shard"] for d in fake.identify] == [[0, 2], [1, 2]]  # each its own shard, no other

            channels = [fake.CHANNEL_ID, fake.SECOND_CHANNEL_ID]
            for i in range(6):
                await fake.send_message(f"<@{fake.BOT_ID}> question {i}", channel=channels[i % 2])
            for _ in range(600):
                if len(fake.bot_messages()) >= 6:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # a second answer to any of them would have come by now
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            results = [await asyncio.wait_for(proc.communicate(), 60) for proc in procs]
        for proc, (out, err) in zip(procs, results):
            assert proc.returncode == 0, err.decode()[-2000:]
        asked = [m for m in fake.messages.values() if m["author"]["id"] != fake.BOT_ID and "question" in m["content"]]
        replies = fake.bot_messages()
        assert sorted(m["message_reference"]["message_id"] for m in replies) == sorted(m["id"] for m in asked)
        assert [len(fake.bot_messages(c)) for c in channels] == [3, 3]  # both guilds served, each mention once
        assert len(fake_llm.chat_requests) == 6
