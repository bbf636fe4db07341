"""The console at a terminal: `aibot chat` under a pseudo-terminal (pexpect), against the
fake OpenAI server. A prompt with line editing and history kept across sessions,
answers rendered as Markdown, streamed answers shown as they arrive, Ctrl-D to quit.
(The piped path, plain text lines, is tests/test_console_e2e.py.)"""
from __future__ import annotations

import io
import re
import time

import pexpect

from tests.fakes.openai_server import Script
from tests.test_console_e2e import AIBOT

UP = "\x1b[A"
PROMPT = "tester>"  # prompt_toolkit draws the space after it as a cursor move
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])")


def screen_text(raw: str) -> str:
    """What a person reads: the terminal output without its control sequences."""
    return _ANSI.sub("", raw).replace("\r", "")


def spawn(env: dict) -> pexpect.spawn:
    # pexpect is no terminal emulator: it never answers prompt_toolkit's cursor position
    # request, so the prompt is told not to ask (tmux and real terminals do answer)
    env = {**env, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100", "LINES": "30"}
    child = pexpect.spawn(AIBOT, ["chat"], env=env, dimensions=(30, 100), timeout=90, encoding="utf-8")
    child.logfile_read = io.StringIO()  # everything it wrote to the terminal
    return child


def test_prompt_markdown_history_across_sessions_and_ctrl_d(env, fake_llm):
    fake_llm.enqueue(Script(text="Here is a **plan**:\n\n1. Run `make install`\n2. Start the bot\n\n"
                                 "```\nmake run\n```"))
    child = spawn(env)
    child.expect_exact(PROMPT)
    child.sendline("@aibot what is the plan?")
    child.expect("Start the bot")
    child.expect_exact(PROMPT)
    shown = screen_text(child.logfile_read.getvalue())
    assert "plan:" in shown and "Run make install" in shown and "make run" in shown
    assert "**" not in shown and "`" not in shown  # rendered, not raw Markdown

    child.send(UP)  # the previous line comes back for editing
    child.expect("what is the plan\\?")
    child.send("\r")
    child.expect("cached answer")  # the same question again: answered from the answer cache, and marked
    child.expect_exact(PROMPT)
    asked = [r["messages"][-1]["content"] for r in fake_llm.chat_requests]
    assert len(asked) == 1 and "what is the plan?" in asked[0]

    child.sendeof()  # Ctrl-D on an empty line quits
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    history = (env_data_dir(env) / "console_history").read_text(encoding="utf-8")
    assert "@aibot what is the plan?" in history
    child = spawn(env)  # a new session remembers it
    child.expect_exact(PROMPT)
    child.send(UP)
    child.expect("what is the plan\\?")
    child.sendcontrol("u")
    child.sendeof()
    child.expect(pexpect.EOF)


def test_a_streamed_answer_is_shown_as_it_arrives(env, fake_llm):
    words = [f"word{i}" for i in range(40)]
    fake_llm.enqueue(Script(text=" ".join(words), tokens_per_second=20))
    child = spawn(env)
    child.expect_exact(PROMPT)
    child.sendline("@aibot tell me a long story")
    child.expect("word3 ")
    first = time.monotonic()
    child.expect("word39")
    last = time.monotonic()
    child.expect_exact(PROMPT)
    assert last - first > 0.8  # 40 tokens at 20/s: the start was on screen well before the end
    child.sendeof()
    child.expect(pexpect.EOF)


def env_data_dir(env: dict):
    from pathlib import Path

    return Path(env["AIBOT_DATA_DIR"])
