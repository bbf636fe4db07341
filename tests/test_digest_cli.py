"""End to end: `aibot digest list/off/now` as subprocesses against the embedded
PostgreSQL and the fake OpenAI server."""
from __future__ import annotations

import asyncio
import json
from datetime import time

import pytest

from bot.core.messages import utcnow
from patterns.batch.schedules import DigestStore
from patterns.batch.times import Spec


async def run(*args: str, env: dict, stdin: str | None = None):
    import subprocess

    from tests.test_kb_cli import AIBOT

    return await asyncio.to_thread(
        subprocess.run, [AIBOT, *args], env=env, input=stdin, capture_output=True, timeout=90, text=True
    )


@pytest.mark.slow
async def test_digest_list_and_off(app, env):
    out = await run("digest", "list", env=env)
    assert out.returncode == 0 and "No digest scheduled." in out.stdout

    store = DigestStore(app.services.db)
    await store.put(platform="slack", tenant="T1", channel="C42", spec=Spec(time(9, 0), "Europe/Berlin", True),
                    user="U1", now=utcnow())
    rows = json.loads((await run("digest", "list", "--json", env=env)).stdout)
    assert len(rows) == 1
    row = rows[0]
    assert (row["platform"], row["workspace"], row["channel"], row["time"], row["zone"], row["weekdays"]) == (
        "slack", "T1", "C42", "09:00", "Europe/Berlin", True)
    assert row["last_period"] is None and row["next_run"].endswith(("+01:00", "+02:00"))
    assert "slack/T1/C42  09:00 Europe/Berlin weekdays" in (await run("digest", "list", env=env)).stdout

    out = await run("digest", "off", "--platform", "slack", "--channel", "C99", env=env)
    assert out.returncode == 1 and "no digest scheduled" in out.stderr
    assert len(await store.all()) == 1  # nothing changed

    out = await run("digest", "off", "--platform", "slack", "--channel", "C42", "--workspace", "T1", env=env)
    assert out.returncode == 0 and "Daily digest off for slack/T1/C42." in out.stdout
    assert await store.all() == []


async def test_digest_bad_arguments(env):
    out = await run("digest", "off", "--platform", "irc", "--channel", "C1", env=env)
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = await run("digest", "now", "notes.txt", env=env)
    assert out.returncode == 2 and "/digest now" in out.stderr
    out = await run("digest", "now", "--platform", "slack", "--channel", "C1", env=env)
    assert out.returncode == 1 and "cannot reach the running slack bot" in out.stderr


@pytest.mark.slow
async def test_digest_now_from_stdin(env, fake_llm):
    fake_llm.enqueue("Topics: release date.\nAction items: bob: write the notes")
    chat = "alice: shall we ship on Friday?\nbob: yes, I'll write the release notes\n"
    out = await run("digest", "now", "-", env=env, stdin=chat)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("**Daily digest** (2 messages since the start, UTC)")
    assert "bob: write the notes" in out.stdout
    sent = json.dumps(fake_llm.chat_requests[-1]["messages"])
    assert "alice: shall we ship on Friday?" in sent

    out = await run("digest", "now", "-", env=env, stdin="   \n")
    assert out.returncode == 1 and "empty" in out.stderr
