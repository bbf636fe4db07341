"""End to end: `aibot kb add/list/search/remove` and `aibot ask` as subprocesses, with
embeddings from the OpenAI-compatible endpoint (the fake server, real SDK)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kb_docs
from tests.test_kb import HANDBOOK

AIBOT = shutil.which("aibot", path=str(Path(sys.executable).parent)) or "aibot"


def aibot(*args: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([AIBOT, *args], env=env, capture_output=True, timeout=timeout, text=True)


@pytest.mark.slow
def test_kb_cli_add_list_search_ask_remove(env, tmp_path, fake_llm):
    env = {**env, "AIBOT_EMBEDDING_PROVIDER": "openai", "AIBOT_EMBEDDING_MODEL": "fake-embed"}
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "handbook.md").write_bytes(HANDBOOK)
    (docs / "sub" / "manual.pdf").write_bytes(kb_docs.pdf(["Paper jams are cleared from tray 2."]))
    (docs / "sub" / "ignored.bin").write_bytes(b"\x00\x01")
    for folder, what in (("a", "The a service restarts at midnight."), ("b", "The b service never restarts.")):
        (docs / folder).mkdir()
        (docs / folder / "README.md").write_text(f"# README\n\n{what}\n")
    (tmp_path / "empty.txt").write_bytes(b"")

    out = aibot("kb", "add", str(docs), str(tmp_path / "empty.txt"), env=env)
    assert out.returncode == 1, out.stderr  # one file was refused
    assert "Added handbook.md" in out.stdout and "Added sub/manual.pdf" in out.stdout
    assert "Added a/README.md" in out.stdout and "Added b/README.md" in out.stdout  # named by path: both kept
    assert "empty.txt is empty" in out.stdout
    assert "5/5" in out.stderr  # the progress bar
    # the five small files are embedded together, not one model call per file
    assert sum(r.path.endswith("/embeddings") for r in fake_llm.requests) == 1

    listing = json.loads(aibot("kb", "list", "--json", env=env).stdout)
    assert sorted(d["name"] for d in listing) == ["a/README.md", "b/README.md", "handbook.md", "sub/manual.pdf"]
    assert all(d["added_by"] == "tester" and d["chunks"] >= 1 for d in listing)

    found = json.loads(aibot("kb", "search", "--json", "-k", "1", "how", "are", "refunds", "paid", env=env).stdout)
    assert len(found) == 1 and found[0]["citation"] == "handbook.md, § Billing > Refunds"
    assert fake_llm.chat_requests == []

    assert json.loads(aibot("kb", "search", "--json", "--tenant", "other", "refunds", env=env).stdout) == []

    fake_llm.enqueue("Refunds are paid back to the original card [1].")
    out = aibot("ask", "how", "are", "refunds", "paid", "back?", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Refunds are paid back to the original card [1].")
    assert "[1] handbook.md, § Billing > Refunds" in out.stdout

    doc_id = next(d["id"] for d in listing if d["name"] == "handbook.md")
    out = aibot("kb", "remove", str(doc_id), env=env)
    assert out.returncode == 0 and f"Removed handbook.md (#{doc_id})" in out.stdout
    assert [d["name"] for d in json.loads(aibot("kb", "list", "--json", env=env).stdout)] == [
        "a/README.md", "b/README.md", "sub/manual.pdf"]
    out = aibot("kb", "remove", str(doc_id), env=env)
    assert out.returncode == 1 and "no document" in out.stderr


@pytest.mark.slow
def test_first_question_after_start_uses_the_preloaded_local_model_and_prints_no_progress_bars(env, tmp_path, fake_llm):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_bytes(HANDBOOK)
    out = aibot("kb", "add", str(docs), env=env, timeout=180)  # the local model (the default)
    assert out.returncode == 0, out.stderr
    fake_llm.enqueue("Refunds are paid back to the original card [1].")
    run = subprocess.run([AIBOT, "run"], input="@aibot how are refunds paid back?\n", env=env, capture_output=True,
                         timeout=180, text=True)
    assert run.returncode == 0, run.stderr
    assert "Refunds are paid back to the original card [1]." in run.stdout
    assert "handbook.md, § Billing > Refunds" in run.stdout
    for stream in (run.stdout, run.stderr, out.stdout, out.stderr):
        assert "Loading weights" not in stream and "it/s]" not in stream

    # a search from the command line needs neither torch nor sentence-transformers: it runs
    # the ONNX copy of the same model that the first load saved in the data directory
    assert (Path(env["AIBOT_DATA_DIR"]) / "models" / "all-MiniLM-L6-v2" / "model.onnx").is_file()
    search = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli", "kb", "search", "--json", "-k", "1",
                             "how", "are", "refunds", "paid?"], env=env, capture_output=True, timeout=120, text=True)
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["citation"] == "handbook.md, § Billing > Refunds"
    imported = {line.split("|")[-1].strip() for line in search.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and not {"torch", "sentence_transformers", "transformers"} & imported
    for args in (["--help"], ["kb", "list"]):  # and these need no model at all
        quick = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli", *args], env=env,
                               capture_output=True, timeout=120, text=True)
        assert quick.returncode == 0, quick.stderr
        imported = {line.split("|")[-1].strip() for line in quick.stderr.splitlines() if line.startswith("import time:")}
        assert not {"torch", "sentence_transformers", "onnxruntime"} & imported, args
