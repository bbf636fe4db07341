"""Configuration: environment and .env, and errors that say which variable to fix."""
from __future__ import annotations

import subprocess

import pytest

from bot.core.settings import Settings
from bot.core.errors import ConfigError
from bot.core.pricing import PriceTable
from tests.test_console_e2e import AIBOT


def test_env_file_and_blank_values(tmp_path, monkeypatch):
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "AIBOT_CHAT_MODEL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AIBOT_CHAT_MODEL=llama3.1\nOPENAI_BASE_URL=http://localhost:11434/v1\nDATABASE_URL=\n")
    s = Settings()
    assert s.chat_model == "llama3.1"
    assert s.llm_configured and s.database_url is None


def test_invalid_variable_is_named_with_the_problem(env):
    out = subprocess.run([AIBOT, "stats"], env={**env, "AIBOT_HTTP_PORT": "eighty"}, capture_output=True, timeout=60)
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "AIBOT_HTTP_PORT" in err and "Traceback" not in err


def test_price_overrides_and_prefix_matching(tmp_path):
    table = PriceTable('{"my-local-model": [0, 0], "gpt-4o-mini": {"input": 1, "output": 2}}')
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == 3
    assert table.cost("my-local-model", 10, 10) == 0
    assert table.cost("never-heard-of-it", 10, 10) == 0
    path = tmp_path / "prices.json"
    path.write_text('{"house-model": [2, 4]}')
    assert PriceTable(str(path)).cost("house-model", 500_000, 0) == 1
    with pytest.raises(ConfigError, match="AIBOT_PRICES"):
        PriceTable("{not json")


def test_a_bad_stats_window_is_one_line_on_stderr_and_exit_2(capsys):
    from bot.cli import main

    assert main(["stats", "--since", "yesterday-ish"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "aibot: --since takes a window like 30m, 24h or 7d"
