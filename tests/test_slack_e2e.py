"""End to end: `aibot run` as a subprocess with Slack tokens set connects to the (fake)
Slack in Socket Mode, answers a mention in its thread, and stops cleanly on SIGTERM."""
from __future__ import annotations

import asyncio
import signal

from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN
from tests.slack_support import *  # noqa: F401,F403
from tests.slack_support import load
from tests.test_console_e2e import AIBOT


async def test_aibot_run_serves_slack_when_its_tokens_are_set(env, fake_slack, fake_llm):
    env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": fake_slack.base_url}
    fake_llm.enqueue("Hello from the subprocess.")
    proc = await asyncio.create_subprocess_exec(AIBOT, "run", env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await fake_slack.wait_connected(timeout=60)
        env_id = await fake_slack.send_event(load("app_mention"))
        await fake_slack.wait_acked(env_id)
        await fake_slack.wait_for(lambda: fake_slack.calls_to("chat.stopStream"), timeout=30)
        answer = fake_slack.bot_messages("C123ABC456")[-1]
        assert answer.text == "Hello from the subprocess." and answer.thread_ts == "1515449522.000016"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert BOT_TOKEN not in (out + err).decode()  # no secrets in the output
