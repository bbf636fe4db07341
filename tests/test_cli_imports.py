"""A command starts fast when it imports only what it uses: `aibot --help`, `aibot kb list`
and a search of an empty knowledge base load neither the model SDK (openai, ~0.5 s) nor an
embedding runtime (torch, onnxruntime), even with a model endpoint configured; the SDK
comes with the first model call (tests/test_llm.py and the chat tests make those)."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"openai", "torch", "sentence_transformers", "transformers", "onnxruntime"}


def imported_by(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, set[str]]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli", *args], env=env,
                         capture_output=True, timeout=120, text=True)
    return run, {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["kb", "list"], ["kb", "search", "--tenant", "nobody", "wing flutter"]],
                         ids=["help", "kb-list", "kb-search-empty"])
def test_commands_that_never_call_the_model_do_not_import_its_sdk_or_an_embedding_runtime(env, args):
    assert env["OPENAI_API_KEY"]  # a model endpoint is configured: the client is built, not imported
    run, imported = imported_by(args, env)
    assert run.returncode == 0, run.stderr
    assert "aibot" in run.stdout or "knowledge base" in run.stdout.lower()
    assert not HEAVY & imported, HEAVY & imported
