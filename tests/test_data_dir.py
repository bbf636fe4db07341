"""The data directory: one per user (platformdirs), so the embedded database is the same
from any working directory; AIBOT_DATA_DIR overrides it; a legacy `./.aibot` is still
used, with a note on moving it; a newly created database is announced with its path.
(conftest points the per-user directory into the session's temporary folder.)"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.core.settings import Settings
from tests.test_console_e2e import AIBOT


def user_data_home() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "aibot"


def test_default_is_the_users_data_dir_and_aibot_data_dir_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIBOT_DATA_DIR", raising=False)
    settings = Settings(_env_file=None)
    assert settings.data_dir == user_data_home() and settings.data_dir_note is None
    monkeypatch.setenv("AIBOT_DATA_DIR", str(tmp_path / "mine"))
    assert Settings(_env_file=None).data_dir == tmp_path / "mine"


def run_in(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AIBOT, *args], cwd=cwd, env=env, capture_output=True, timeout=180)


@pytest.mark.slow
def test_kb_from_another_directory_finds_the_same_database(env, tmp_path):
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "AIBOT_DATA_DIR")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # a user who has never run aibot
    here, there = tmp_path / "project", tmp_path / "elsewhere"
    here.mkdir(), there.mkdir()
    (here / "notes.txt").write_text("The release train leaves every second Tuesday.", encoding="utf-8")

    out = run_in(here, env, "kb", "add", "notes.txt")
    assert out.returncode == 0, out.stderr.decode()
    created = tmp_path / "xdg" / "aibot" / "pg"
    assert f"created a new database in {created}" in out.stderr.decode()
    assert not (here / ".aibot").exists()

    out = run_in(there, env, "kb", "list")
    assert out.returncode == 0, out.stderr.decode()
    assert "notes.txt" in out.stdout.decode()
    assert "created a new database" not in out.stderr.decode()  # said once, when it happened


@pytest.mark.slow
def test_a_legacy_dot_aibot_is_still_used_with_a_note(env, tmp_path):
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "AIBOT_DATA_DIR")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    old = tmp_path / "oldproject"
    (old / ".aibot" / "pg").mkdir(parents=True)  # where an older release kept its database

    out = run_in(old, env, "db", "upgrade")
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert (old / ".aibot" / "pg" / "PG_VERSION").is_file()
    assert not (tmp_path / "xdg" / "aibot").exists()
    assert f"using the database in {old / '.aibot'}" in err
    assert f"mv {old / '.aibot'} {tmp_path / 'xdg' / 'aibot'}" in err
