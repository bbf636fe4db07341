"""`aibot run --workers 2`: two bot processes on one Slack HTTP port (SO_REUSEPORT),
sharing the database: every mention answered exactly once, retried deliveries too, both
processes serving, and SIGTERM stops them all."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import socket
import time

import aiohttp

from tests.fakes.slack_server import BOT_TOKEN
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_console_e2e import AIBOT

SECRET = "workers-test-signing-secret-0001"


def signed(body: str, retry: str | None = None) -> dict:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": "application/json"}
    if retry:
        headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
    return headers


def finished(fake_slack) -> list[str]:
    """The threads of the bot's finished answers, one entry per answer message."""
    return [m.thread_ts for m in fake_slack.bot_messages() if m.thread_ts and not m.streaming and m.text]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_two_workers_share_the_slack_port_and_answer_each_mention_once(env, fake_slack, fake_llm):
    port = free_port()
    env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake_slack.base_url,
           "SLACK_HTTP_PORT": str(port), "AIBOT_EMBEDDING_PROVIDER": "openai"}
    proc = await asyncio.create_subprocess_exec(AIBOT, "run", "--workers", "2", env=env,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await fake_slack.wait_for(lambda: len(fake_slack.calls_to("auth.test")) >= 2, timeout=90)  # both up
        # a new connection per request, so the kernel spreads them over the two workers
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            bodies = []
            for i in range(20):
                payload = load("app_mention", event_id=f"EvWorkers{i}", ts=f"1700000100.{i:06d}", channel=f"C0W{i % 4}",
                               text=f"<@U0BOTUSER> question {i}")
                fake_slack.deliver(payload)
                bodies.append(json.dumps(payload))
            for body in bodies:
                async with session.post(url, data=body, headers=signed(body)) as resp:
                    assert resp.status == 200
            for body in bodies[:5]:  # Slack's retries of deliveries already acked
                async with session.post(url, data=body, headers=signed(body, retry="1")) as resp:
                    assert resp.status == 200
        # an answer is a native stream, or a post and edits when the workspace's stream budget
        # (chat.startStream is Tier 2) is spent: either way one finished bot message in its thread
        await fake_slack.wait_for(lambda: len(finished(fake_slack)) >= 20, timeout=120)
        await asyncio.sleep(1.0)  # a duplicate answer would have started by now
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    answered = finished(fake_slack)
    assert sorted(answered) == sorted(f"1700000100.{i:06d}" for i in range(20))  # each once
    assert len(fake_llm.chat_requests) == 20
    # users.info is cached per process: two lookups of the one asker means both workers answered
    assert len(fake_slack.calls_to("users.info")) == 2


async def registered(database_url: str) -> list[tuple[list[str], list[str]]]:
    """The live rows of the process registry: (platforms, workspaces written to) each."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT platforms, active FROM bot_processes WHERE lease_until > now()"))
            return [(list(r[0]), sorted(r[1])) for r in rows]
    finally:
        await engine.dispose()


async def test_two_workers_in_socket_mode_each_hold_a_connection_and_answer_each_mention_once(
        env, database_url, fake_slack, fake_llm):
    """Socket Mode with `--workers 2`: two connections to Slack, which spreads the events
    over them (each envelope to one); every mention is answered once, by whichever got it.
    Both workers write to the one workspace, so each knows it has half its rate limits
    (the process registry), and both leave the registry when they stop."""
    from tests.fakes.slack_server import APP_TOKEN, TEAM

    env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": fake_slack.base_url,
           "AIBOT_EMBEDDING_PROVIDER": "openai"}
    proc = await asyncio.create_subprocess_exec(AIBOT, "run", "--workers", "2", env=env,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        await fake_slack.wait_for(lambda: len(fake_slack._ws) >= 2, timeout=90)  # both connected
        envelopes = []
        for i in range(12):
            payload = load("app_mention", event_id=f"EvSock{i}", ts=f"1700000200.{i:06d}", channel=f"C0S{i % 3}",
                           text=f"<@U0BOTUSER> question {i}")
            envelopes.append(await fake_slack.send_event(payload))
        for env_id in envelopes[:4]:  # Slack retries four of them (on whichever connection comes next)
            await fake_slack.send_event(fake_slack.envelopes[env_id].payload, retry_attempt=1)
        await fake_slack.wait_for(lambda: len(finished(fake_slack)) >= 12, timeout=120)
        await asyncio.sleep(1.0)  # a duplicate answer would have started by now
        # each worker's heartbeat (every 2 s) says it writes to the workspace, for a lease
        # (15 s) after its last write
        deadline = time.monotonic() + 30
        while (workers := await registered(database_url)) != [(["slack"], [f"slack:{TEAM}"])] * 2:
            assert time.monotonic() < deadline, workers
            await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert await registered(database_url) == []  # each deleted its row as it stopped
    assert all(fake_slack.envelopes[e].acked_at is not None for e in envelopes)
    assert {fake_slack.envelopes[e].connection for e in envelopes} == {1, 2}  # both connections carried events
    assert sorted(finished(fake_slack)) == sorted(f"1700000200.{i:06d}" for i in range(12))  # each once
    assert len(fake_llm.chat_requests) == 12


async def test_two_workers_on_one_database_post_each_digest_once_and_work_each_bulk_item_once(
        env, database_url, fake_slack, fake_llm):
    """Scheduled digests and bulk-job items with `--workers 2` on one database: each
    digest posted once (one scheduler leader per platform, a run row per period), each
    item worked on once (claimed with SKIP LOCKED), with the scheduler ticking every
    second in both processes."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.core.db import Database
    from patterns.batch.jobs import Item, JobStore
    from patterns.batch.schedules import DigestStore
    from patterns.batch.times import Spec

    now = datetime.now(timezone.utc)
    due = (now - timedelta(minutes=2)).replace(second=0, microsecond=0)  # today's digest is due
    channels = ["C0DIGEST1", "C0DIGEST2", "C0DIGEST3"]
    engine = create_async_engine(database_url)
    db = Database.from_engine(engine)
    try:
        for i, channel in enumerate(channels):
            await DigestStore(db).put(platform="slack", tenant="T0FAKETEAM", channel=channel,
                                      spec=Spec(at=due.time(), tz="UTC"), user="U061F7AUR", now=now - timedelta(days=1))
            ts = f"{(now - timedelta(hours=1)).timestamp() + i:.6f}"
            fake_slack.deliver(load("app_mention", ts=ts, channel=channel, text=f"we shipped release {i} today"))
        items = [Item(id=f"item-{i}", text=f"bulk text number {i}", instruction="Summarize.") for i in range(12)]
        job = await JobStore(db).create(items, model="gpt-4o-mini")

        env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": fake_slack.base_url, "SLACK_HTTP_PORT": str(free_port()),
               "AIBOT_EMBEDDING_PROVIDER": "openai", "AIBOT_CACHE_TTL": "0", "AIBOT_DIGEST_TICK": "1",
               "AIBOT_BATCH_POLL": "0.5"}
        proc = await asyncio.create_subprocess_exec(AIBOT, "run", "--workers", "2", env=env,
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)

        def digests(channel: str) -> list:
            return [m for m in fake_slack.bot_messages(channel) if "Daily digest" in m.text]

        async def items_done() -> bool:
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM batch_items WHERE job_id = :j AND status <> 'done'"),
                                           {"j": job})).scalar_one()
            return left == 0

        try:
            await fake_slack.wait_for(lambda: all(digests(c) for c in channels), timeout=120)
            deadline = asyncio.get_running_loop().time() + 120
            while not await items_done():
                assert asyncio.get_running_loop().time() < deadline, "bulk items not done"
                await asyncio.sleep(0.2)
            await asyncio.sleep(3.0)  # three more ticks of both schedulers
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert [len(digests(c)) for c in channels] == [1, 1, 1]
        async with engine.connect() as conn:
            runs = (await conn.execute(text("SELECT channel, status FROM digest_runs ORDER BY channel"))).all()
            attempts = (await conn.execute(text("SELECT attempts FROM batch_items WHERE job_id = :j"),
                                           {"j": job})).scalars().all()
        assert [tuple(r) for r in runs] == [(c, "posted") for c in channels]
        assert attempts == [1] * 12
        asked = [r for r in fake_llm.chat_requests if "bulk text number" in str(r["messages"])]
        assert len(asked) == 12  # no item went to the model twice (the answer cache is off)
    finally:
        await engine.dispose()
