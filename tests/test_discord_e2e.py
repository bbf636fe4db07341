"""End to end: `aibot run` as a subprocess with DISCORD_BOT_TOKEN set connects to the
(fake) Discord named by DISCORD_API_URL, answers a mention, and stops cleanly on SIGTERM."""
from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord

AIBOT = shutil.which("aibot", path=str(Path(sys.executable).parent)) or "aibot"


@pytest.mark.slow
async def test_aibot_run_serves_discord_when_the_token_is_set(env, fake_llm):
    fake_llm.enqueue("Hello from the real process.")
    async with FakeDiscord() as fake:
        env = {**env, "DISCORD_BOT_TOKEN": "e2e-token-not-real", "DISCORD_API_URL": fake.api_url}
        proc = await asyncio.create_subprocess_exec(
            AIBOT, "run", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await fake.wait_ready(timeout=60)
            await fake.send_message(f"<@{fake.BOT_ID}> hello?")
            for _ in range(300):
                replies = fake.bot_messages()
                if replies and replies[-1]["content"] == "Hello from the real process.":
                    break
                await asyncio.sleep(0.1)
            assert [m["content"] for m in fake.bot_messages()] == ["Hello from the real process."]
            assert fake.identify[0]["token"] == "e2e-token-not-real"
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"e2e-token-not-real" not in out + err  # the token never reaches the logs
