"""Archive formats are bounded before they are unpacked: a zip bomb dressed as a .docx is
refused in one sentence, quickly and without the memory the unpacked data would need."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from patterns.rag.extract import Limits, extract
from tests import kb_docs
from tests.test_kb import count, upload

LIMITS = Limits(max_bytes=20 * 1024 * 1024, max_pages=500, max_chars=5_000_000)

MEASURE = r"""
import json, re, sys, time
from pathlib import Path
from bot.core.errors import UserError
from patterns.rag.extract import Limits, extract
data = Path(sys.argv[1]).read_bytes()
t0 = time.monotonic()
try:
    extract("bomb.docx", data, Limits(max_bytes=20 * 1024 * 1024, max_pages=500, max_chars=5_000_000))
    said = "accepted"
except UserError as exc:
    said = str(exc)
# VmHWM: this process's own peak (ru_maxrss would carry over the forking parent's, over exec)
peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"said": said, "seconds": time.monotonic() - t0, "peak_mb": peak_kb / 1024}))
"""


def test_a_gigabyte_zip_bomb_docx_is_refused_fast_and_small(tmp_path):
    bomb = tmp_path / "bomb.docx"
    kb_docs.zip_bomb_docx(bomb, 1024 * 1024 * 1024)
    assert bomb.stat().st_size < 5 * 1024 * 1024
    out = subprocess.run([sys.executable, "-c", MEASURE, str(bomb)], capture_output=True, text=True, timeout=120)
    got = json.loads(out.stdout)
    assert got["said"].startswith("bomb.docx unpacks to too much data (1024.0 MB")
    assert got["peak_mb"] <= 300 and got["seconds"] < 5


def test_a_small_but_highly_compressed_docx_is_refused_by_ratio(tmp_path):
    bomb = tmp_path / "dense.docx"
    kb_docs.zip_bomb_docx(bomb, 40 * 1024 * 1024)  # under the size limit, ~1000:1
    with pytest.raises(Exception, match=r"compressed suspiciously well \([\d,]+:1; the limit is 100:1\)"):
        extract("dense.docx", bomb.read_bytes(), LIMITS)


def test_an_ordinary_docx_still_goes_in():
    data = kb_docs.docx([("Travel", ["Book trains for trips under 500 km."])])
    assert extract("policy.docx", data, LIMITS).blocks[0].text == "Book trains for trips under 500 km."


async def test_a_zip_bomb_uploaded_in_chat_gets_one_sentence_and_stores_nothing(bot, app, tmp_path):
    bomb = tmp_path / "bomb.docx"
    kb_docs.zip_bomb_docx(bomb, 200 * 1024 * 1024)
    reply = await upload(bot, {"bomb.docx": bomb.read_bytes()})
    assert reply == "bomb.docx unpacks to too much data (200.0 MB; the limit is 64.0 MB)."
    assert await count(app, "kb_documents") == 0
