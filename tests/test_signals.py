"""SIGTERM and Ctrl-C (SIGINT) to a running bot: answers in flight are finished or closed
with a note within the grace period, and the process exits 0 (SIGTERM) or 130 (Ctrl-C),
never with an abort (`Fatal Python error`, exit 134). Console adapter here, idle at the
prompt and mid-answer; the Slack and Discord adapters in test_signals_platforms.py."""
from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from tests.fakes.openai_server import Script

CODES = {signal.SIGTERM: 0, signal.SIGINT: 130}


async def start(env: dict, **extra) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", env={**env, **extra}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def read_until(stream, needle: bytes, timeout: float = 60) -> bytes:
    seen = b""
    while needle not in seen:
        chunk = await asyncio.wait_for(stream.read(256), timeout)
        if not chunk:
            raise AssertionError(f"EOF before {needle!r}; got {seen[-500:]!r}")
        seen += chunk
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_at_the_idle_prompt_exits_cleanly(env, fake_llm, sig):
    fake_llm.enqueue("ready.")
    proc = await start(env)
    proc.stdin.write(b"@aibot are you there?\n")
    await proc.stdin.drain()
    await read_until(proc.stdout, b"ready.")
    proc.send_signal(sig)  # stdin stays open: the reader thread is blocked in a read
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == CODES[sig], err.decode()[-2000:]
    assert b"Fatal Python error" not in err and b"Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_mid_answer_finishes_it_within_the_grace_period(env, fake_llm, sig):
    words = " ".join(f"w{i}" for i in range(30))
    fake_llm.enqueue(Script(text=words, tokens_per_second=15))  # ~2 s of tokens
    proc = await start(env, AIBOT_SHUTDOWN_GRACE="10")
    proc.stdin.write(b"@aibot a long answer please\n")
    await proc.stdin.drain()
    seen = await read_until(proc.stdout, b"w3 ")
    proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == CODES[sig], err.decode()[-2000:]
    assert words.encode() in seen + out  # finished, not dropped
    assert b"Fatal Python error" not in err and b"Traceback" not in err


async def test_an_answer_longer_than_the_grace_period_is_closed_with_a_note(env, fake_llm):
    words = " ".join(f"w{i}" for i in range(200))
    fake_llm.enqueue(Script(text=words, tokens_per_second=10))  # 20 s of tokens
    proc = await start(env, AIBOT_SHUTDOWN_GRACE="1")
    proc.stdin.write(b"@aibot a very long answer please\n")
    await proc.stdin.drain()
    seen = await read_until(proc.stdout, b"w3 ")
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    text = (seen + out).decode()
    assert "w199" not in text and "cut short" in text and "shutting down" in text
    assert "Fatal Python error" not in err.decode()


def test_ctrl_c_typed_at_a_terminal_prompt_exits_130(env, fake_llm):
    """The real thing: the console on a pseudo-terminal, Ctrl-C typed (the terminal turns
    it into SIGINT for the foreground process group)."""
    import fcntl
    import os
    import select
    import subprocess
    import termios
    import time

    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "chat"], env=env, stdin=slave, stdout=slave,
                            stderr=subprocess.PIPE, preexec_fn=controlling_terminal)
    os.close(slave)
    try:
        seen, deadline = b"", time.monotonic() + 60
        while b"Ctrl-D to quit" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        assert b"Ctrl-D to quit" in seen, seen[-500:]
        os.write(master, b"\x03")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()[-2000:]
        assert b"Fatal Python error" not in err and b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
