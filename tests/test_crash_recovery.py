"""kill -9 of `aibot run` in the middle of an answer (a subprocess on Slack or Discord, the
fakes in this process), then a restart: within 30 s the cut-off message is closed with a
note (a native Slack stream is stopped; Discord's text gets the note edited in, so it
does not look finished) and the complete answer follows, once, even with two processes
restarting at the same time."""
from __future__ import annotations

import asyncio
import signal
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.recovery import CONTINUES
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import Script
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_console_e2e import AIBOT

LONG = " ".join(f"w{i}" for i in range(300))  # 30 s of tokens at 10/s
COMPLETE = "The complete answer, after the restart."
NOTE = "cut off when the bot restarted"
RECOVERY_BOUND = 30.0  # the promise: completed or closed within 30 s of the restart


async def start(env: dict) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(AIBOT, "run", env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def stop(*procs: asyncio.subprocess.Process) -> list[bytes]:
    errs = []
    for p in procs:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        _, err = await asyncio.wait_for(p.communicate(), 60)
        errs.append(err)
    return errs


async def recorded(database_url: str, timeout: float = 30) -> None:
    """Until the journal row of the one answer in flight holds its platform message."""
    engine = create_async_engine(database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with engine.connect() as c:
                state = (await c.execute(text("SELECT state FROM answer_journal WHERE messages <> '[]'"))).scalar()
            if state == "answering":
                return
            await asyncio.sleep(0.1)
        async with engine.connect() as c:
            rows = (await c.execute(text("SELECT key, state, messages, platform, action FROM answer_journal"))).all()
            ev = (await c.execute(text("SELECT key FROM processed_events"))).all()
        raise AssertionError(f"the answer never reached the journal: {rows} {ev}")
    finally:
        await engine.dispose()


async def until(predicate, timeout: float) -> float:
    """Seconds until `predicate()` holds (AssertionError past `timeout`)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def test_slack_answer_cut_by_kill_9_is_completed_once_by_two_restarted_processes(env, settings, fake_slack,
                                                                                       fake_llm):
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=10))
    slack_env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                 "SLACK_API_URL": fake_slack.base_url}
    first = await start(slack_env)
    try:
        await fake_slack.wait_connected(timeout=60)
        await fake_slack.send_event(load("app_mention"))
        await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.appendStream"), timeout=30)
        await recorded(settings.database_url)
    finally:
        first.kill()  # SIGKILL: no grace, no note, the stream left open
        await first.wait()
    [cut] = fake_slack.bot_messages("C123ABC456")
    assert cut.streaming and "w299" not in cut.text

    fake_llm.enqueue(COMPLETE)
    restarted = [await start(slack_env), await start(slack_env)]  # two replicas race for it
    try:
        took = await until(lambda: any(COMPLETE in m.text for m in fake_slack.bot_messages("C123ABC456")),
                           RECOVERY_BOUND)
        await asyncio.sleep(3)  # time for a second (wrong) answer to show
    finally:
        errs = await stop(*restarted)
    assert took < RECOVERY_BOUND, errs
    print(f"slack: completed {took:.1f} s after the restart")
    assert not cut.streaming and NOTE in cut.text and cut.text.startswith("w0")  # closed, text kept
    answers = [m for m in fake_slack.bot_messages("C123ABC456") if COMPLETE in m.text]
    assert len(answers) == 1 and answers[0].thread_ts == cut.thread_ts  # once, in the same thread
    assert len(fake_llm.chat_requests) == 2  # the cut call, and one more
    assert [p.returncode for p in restarted] == [0, 0]


async def test_discord_answer_cut_by_kill_9_gets_a_note_and_is_completed_right_after_restart(env, settings, fake_llm):
    fake_llm.enqueue(Script(text=LONG, tokens_per_second=10))
    async with FakeDiscord() as fake:
        # a lease far longer than the test: the restarted process on the same machine sees the
        # dead pid and takes the answer over at once, without waiting for the lease
        discord_env = {**env, "DISCORD_BOT_TOKEN": "e2e-token-not-real", "DISCORD_API_URL": fake.api_url,
                       "AIBOT_JOURNAL_LEASE": "120"}
        first = await start(discord_env)
        try:
            await fake.wait_ready(timeout=60)
            asked = await fake.send_message(f"<@{fake.BOT_ID}> a long story please")
            await until(lambda: fake.bot_messages(), 30)
            await recorded(settings.database_url)
        finally:
            first.kill()
            await first.wait()
        [cut] = fake.bot_messages()
        assert "w299" not in cut["content"] and NOTE not in cut["content"]

        fake_llm.enqueue(COMPLETE)
        second = await start(discord_env)
        try:
            took = await until(lambda: len(fake.bot_messages()) == 2 and COMPLETE in fake.bot_messages()[1]["content"],
                               RECOVERY_BOUND)
            await asyncio.sleep(2)
        finally:
            [err] = await stop(second)
        assert took < RECOVERY_BOUND, err
        print(f"discord: completed {took:.1f} s after the restart")
        first_reply, answer = fake.bot_messages()
        assert first_reply["id"] == cut["id"] and first_reply["content"].endswith(CONTINUES)
        assert first_reply["content"].startswith("w0")  # the text shown so far is kept
        assert answer["content"] == COMPLETE
        assert answer["message_reference"]["message_id"] == asked["id"]  # a reply to the question, as before
        assert second.returncode == 0
