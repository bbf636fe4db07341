"""Small traps a new user fell into, each through the `aibot` command as a subprocess:
documents given to `aibot summarize`, files named on the console, a long text pasted
into the console, hints that name the command line's own commands, and the document
list's counts and sizes."""
from __future__ import annotations

import subprocess

from tests.kb_docs import docx, pdf
from tests.test_console_e2e import AIBOT, aibot


def test_summarize_reads_pdf_and_word_documents(env, fake_llm, tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(pdf(["Quarterly report: the billing migration finished in March."]))
    memo = tmp_path / "memo.docx"
    memo.write_bytes(docx([("Decision", ["The team adopts weekly releases from June onwards."])]))

    out = aibot("summarize", str(report), env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().startswith("Summary: Quarterly report: the billing migration")
    out = aibot("summarize", str(memo), env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert "weekly releases" in out.stdout.decode()
    assert len(fake_llm.chat_requests) == 2

    scan = tmp_path / "scan.pdf"
    scan.write_bytes(pdf([""]))  # a page without a text layer
    out = aibot("summarize", str(scan), env=env)
    assert out.returncode == 1 and "no text layer" in out.stderr.decode()
    sheet = tmp_path / "sheet.xlsx"
    sheet.write_bytes(b"PK\x03\x04\xff\xfe binary")
    out = aibot("summarize", str(sheet), env=env)
    assert out.returncode == 1
    assert "not UTF-8 text (nor a .pdf, .docx or .html document)" in out.stderr.decode()
    assert len(fake_llm.chat_requests) == 2


def run_in(cwd, env: dict, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([AIBOT, "run"], cwd=cwd, env=env, input=stdin, capture_output=True, timeout=120)


def test_console_kb_add_reads_the_named_file(env, fake_llm, tmp_path):
    (tmp_path / "deploy notes.md").write_text("# Deploys\n\nProduction deploys happen on Thursdays at 10:00.\n",
                                               encoding="utf-8")
    stdin = b"".join([
        b'/kb add "deploy notes.md"\n',
        b"/kb add handbook.pdf\n",  # a typo'd or missing file is not stored as a note
        b"/kb search when are deploys\n",
        b"/kb list\n",
    ])
    out = run_in(tmp_path, env, stdin)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "aibot: Added deploy notes.md: 1 passage (#1)."
    assert lines[1] == f"aibot: There is no file handbook.pdf (paths are relative to {tmp_path})."
    assert any("Production deploys happen on Thursdays" in line for line in lines[2:])
    listing = "\n".join(lines[lines.index("aibot: 1 document in the knowledge base:"):])
    assert "deploy notes.md" in listing and "handbook" not in listing


def test_long_text_on_the_console_says_how_to_summarize_a_file(env, fake_llm):
    text = ("The quarterly numbers are in and every region grew. " * 3_200)[:166_000]
    out = aibot("run", env=env, stdin=f"/summarize {text}\n".encode())
    assert out.returncode == 0
    line = out.stdout.decode().strip()
    assert line.startswith("aibot: That message is too long for me (166,")
    assert "aibot summarize FILE" in line and "/kb add PATH" in line
    assert "Send it as a file" not in line  # the console cannot send files
    assert fake_llm.chat_requests == []


def test_cli_hints_name_cli_commands_and_the_list_counts_right(env, fake_llm, tmp_path):
    out = aibot("kb", "list", env=env)
    assert out.returncode == 0
    assert "aibot kb add PATH" in out.stdout.decode() and "/kb add" not in out.stdout.decode()
    out = aibot("ask", "how", "do", "we", "deploy?", env=env)
    assert out.returncode == 0
    assert "aibot kb add PATH" in out.stdout.decode() and "/kb add" not in out.stdout.decode()

    note = tmp_path / "tiny.txt"
    note.write_bytes(b"Deploys are on Thursdays; rollbacks need a second reviewer to approve.\n")
    assert note.stat().st_size == 71
    assert aibot("kb", "add", str(note), env=env).returncode == 0
    out = aibot("kb", "list", env=env)
    assert "#1 tiny.txt: 1 passage, 71 B, added by" in out.stdout.decode()
