"""End to end: the `aibot` command as a subprocess, stdin piped, against the fake
OpenAI server and a real PostgreSQL database."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.openai_server import Script

AIBOT = shutil.which("aibot", path=str(Path(sys.executable).parent)) or "aibot"
LONG_TEXT = "\n\n".join(
    f"Section {i}. The migration to the new billing system continues; team {i} reports progress." for i in range(40)
)


def aibot(*args: str, env: dict, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([AIBOT, *args], input=stdin, env=env, capture_output=True, timeout=timeout)


def stats(env: dict) -> dict[str, dict]:
    out = aibot("stats", "--json", env=env)
    assert out.returncode == 0, out.stderr.decode()
    return {row["pattern"]: row for row in json.loads(out.stdout)}


async def read_progressively(env: dict, stdin: bytes) -> tuple[list[tuple[float, bytes]], int]:
    proc = await asyncio.create_subprocess_exec(
        AIBOT, "run", env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    proc.stdin.write(stdin)
    await proc.stdin.drain()
    proc.stdin.close()
    chunks = []
    while True:
        data = await asyncio.wait_for(proc.stdout.read(4096), 60)
        if not data:
            break
        chunks.append((time.monotonic(), data))
    return chunks, await proc.wait()


async def test_piped_session_streams_an_answer_summarizes_and_fills_the_ledger(env, fake_llm):
    answer = " ".join(f"token{i}" for i in range(24))
    fake_llm.enqueue(Script(text=answer, tokens_per_second=40))
    stdin = f"@aibot say hi\n/summarize {LONG_TEXT.replace(chr(10), ' ')}\n".encode()
    chunks, code = await read_progressively(env, stdin)
    assert code == 0
    out = b"".join(c for _, c in chunks).decode()
    assert f"aibot: {answer}\n" in out
    assert "aibot: Summary: Section 0." in out
    # the answer arrived in pieces over time, not in one write at the end
    answer_chunks = [(t, c) for t, c in chunks if b"token" in c]
    assert len(answer_chunks) >= 3
    assert answer_chunks[-1][0] - answer_chunks[0][0] > 0.2

    rows = stats(env)
    assert rows["streaming"]["requests"] == 1 and rows["streaming"]["completion_tokens"] == 24
    assert rows["streaming"]["avg_ttft_ms"] is not None
    assert rows["api_wrapper"]["requests"] == 1 and rows["api_wrapper"]["prompt_tokens"] > 100
    for row in rows.values():
        assert row["cost_usd"] > 0 and row["avg_latency_ms"] > 0 and row["errors"] == 0

    table = aibot("stats", env=env).stdout.decode()
    assert "streaming" in table and "api_wrapper" in table and "p95 ms" in table


def test_bad_input_gets_one_clear_message_each_and_the_session_continues(env, fake_llm):
    stdin = b"".join([
        b"\n",
        b"   \t  \n",
        b"@aibot caf\xc3\xa9 \xff\xfe broken\n",
        b"@aibot " + b"y" * 2_000_000 + b"\n",
        b"/nosuchcommand please\n",
        b"@aibot\n",
        b"@aibot are you still there?\n",
    ])
    out = aibot("run", env=env, stdin=stdin)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    lines = out.stdout.decode().splitlines()
    assert lines == [
        "aibot: That line isn't valid UTF-8 text, so I ignored it.",
        "aibot: That message is too long for me (2,000,000 characters; the limit is 100,000). "
        "To summarize a long text, save it to a file and run `aibot summarize FILE` in a shell "
        "(text, .pdf, .docx or .html); to ask questions about it, add it with `/kb add PATH`.",
        "aibot: I don't know the command /nosuchcommand. Type /help to see what I can do.",
        "aibot: Ask me something after the mention, e.g. `@aibot what changed in the release plan?` (or /help).",
        "aibot: Fake answer about: tester: are you still there?",
    ]
    assert len(fake_llm.chat_requests) == 1
    assert "Traceback" not in out.stderr.decode()


def test_model_failures_are_reported_and_the_session_continues(env, fake_llm):
    env = {**env, "AIBOT_LLM_TIMEOUT": "0.5", "AIBOT_LLM_MAX_RETRIES": "1"}
    fake_llm.enqueue(
        Script(status=429, retry_after=0.01), Script(status=429, retry_after=0.01),
        Script(status=500), Script(status=500),
        Script(hang=True), Script(hang=True),
        Script(text="partial answer then the line drops", cut_after=2),
        Script(text="all good now"),
    )
    stdin = b"@aibot one\n@aibot two\n@aibot three\n@aibot four\n@aibot five\n"
    out = aibot("run", env=env, stdin=stdin, timeout=90)
    assert out.returncode == 3  # a script can tell that some answers failed
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "aibot: The language model is rate-limiting us right now; please try again in a minute."
    assert lines[1] == "aibot: The language model service returned an error; please try again shortly."
    assert lines[2] == "aibot: The language model did not answer in time; please try again."
    assert lines[3:] == [
        "aibot: partial answer",
        "",
        "⚠️ _Answer cut short. The language model stopped answering midway._",
        "aibot: all good now",
    ]
    assert "Traceback" not in out.stderr.decode()
    rows = stats(env)["streaming"]
    assert rows["requests"] == 5  # one ledger row per call, retries included in it
    assert rows["errors"] == 4


def test_database_down_at_start_names_database_url(env):
    env = {**env, "DATABASE_URL": "postgresql://aibot:hunter2@127.0.0.1:1/aibot"}
    out = aibot("run", env=env, stdin=b"@aibot hi\n")
    err = out.stderr.decode()
    assert out.returncode == 2
    assert "DATABASE_URL" in err and "connection refused" in err
    assert "hunter2" not in err and "Traceback" not in err


def test_no_model_configured_is_a_supported_state(env):
    env = {k: v for k, v in env.items() if not k.startswith("OPENAI_")}
    out = aibot("run", env=env, stdin=b"hello team\n@aibot hi\n/summarize some text\n/help\n")
    assert out.returncode == 0
    lines = out.stdout.decode().splitlines()
    hint = [l for l in lines if "No language model is configured" in l]
    assert len(hint) == 2 and all("OPENAI_BASE_URL" in l for l in hint)
    assert any("/summarize" in l for l in lines)  # /help still works


def test_summarize_file_and_stdin(env, fake_llm, tmp_path):
    doc = tmp_path / "notes.txt"
    doc.write_text(LONG_TEXT, encoding="utf-8")
    out = aibot("summarize", str(doc), env=env)
    assert out.returncode == 0 and out.stdout.decode().startswith("Summary: Section 0.")
    out = aibot("summarize", "-", env=env, stdin="Kurzer deutscher Text über das Projekt.".encode())
    assert out.returncode == 0 and "deutscher" in out.stdout.decode()

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    out = aibot("summarize", str(bad), env=env)
    assert out.returncode == 1 and "not UTF-8" in out.stderr.decode()
    out = aibot("summarize", str(tmp_path / "missing.txt"), env=env)
    assert out.returncode == 1 and "Cannot read" in out.stderr.decode()
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    out = aibot("summarize", str(empty), env=env)
    assert out.returncode == 1 and "empty" in out.stderr.decode()


@pytest.mark.slow
def test_embedded_database_is_started_and_migrated_when_no_url_is_set(env, fake_llm, tmp_path):
    env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    env["AIBOT_DATA_DIR"] = str(tmp_path / "fresh")
    out = aibot("db", "upgrade", env=env, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert "revision" in out.stdout.decode()
    out = aibot("run", env=env, stdin=b"@aibot hello\n", timeout=120)
    assert out.returncode == 0 and "Fake answer about" in out.stdout.decode()
    assert stats(env)["streaming"]["requests"] == 1
