"""What a person at the console reads is the chat: logs go to stderr only, and
libraries' noise (progress bars, warnings about things the bot does not use) stays out
of it; a warning that holds while nothing changes is said once."""
from __future__ import annotations

import asyncio
import logging

from bot.app import App
from bot.core.settings import Settings
from patterns.batch import Batch
from patterns.batch.jobs import Item, JobStore
from patterns.batch.settings import BatchSettings
from tests.kb_docs import pdf
from tests.test_console_e2e import aibot


def test_kb_add_prints_the_result_and_no_library_noise(env, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("The billing migration finished on Tuesday.", encoding="utf-8")
    report = tmp_path / "report.pdf"
    data = pdf(["Quarterly report: revenue grew in every region."])
    start = data.rfind(b"startxref")
    report.write_bytes(data[:start] + b"startxref\n999999\n%%EOF\n")  # pypdf repairs it, with warnings

    out = aibot("kb", "add", str(note), str(report), env=env, timeout=180)
    assert out.returncode == 0, out.stderr.decode()
    assert "Added note.txt" in out.stdout.decode() and "Added report.pdf" in out.stdout.decode()
    err = out.stderr.decode()
    assert "Loading weights" not in err  # sentence-transformers' progress bar
    assert "pypdf" not in err and "startxref" not in err


def test_discord_voice_and_bolt_token_notes_are_not_shown(env):
    # both libraries log their note when their client is built, before connecting
    # (which fails here, on purpose, so the run ends at once with one line)
    env = {**env, "DISCORD_BOT_TOKEN": "MTEx.secret", "DISCORD_API_URL": "http://127.0.0.1:9/api/v10",
           "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-A-1-abc",
           "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    out = aibot("run", env=env, timeout=90)
    err = out.stderr.decode()
    assert out.returncode == 2
    assert "PyNaCl" not in err and "voice" not in err and "will be unused" not in err
    assert len(err.strip().splitlines()) == 1, err


async def test_bulk_job_waiting_for_a_model_is_warned_about_once(database_url, tmp_path, caplog):
    settings = Settings(_env_file=None, database_url=database_url, data_dir=tmp_path / "data")
    settings = settings.with_sections(BatchSettings.load(env_file=None, poll=0.02, provider_poll=0.02))
    assert not settings.llm_configured
    async with await App.open(settings) as app:
        await JobStore(app.services.db).create([Item("a", "Some text to summarize.", "Summarize.")], model="m")
        caplog.set_level(logging.WARNING, logger="patterns.batch.worker")
        batch = app.feature(Batch)
        await batch.start()
        await asyncio.sleep(0.6)  # some 30 polls
        await batch.stop()
    warnings = [r for r in caplog.records if r.name == "patterns.batch.worker"]
    assert len(warnings) == 1
    assert "no language model is configured" in warnings[0].getMessage()
    assert "OPENAI_API_KEY" in warnings[0].getMessage()
