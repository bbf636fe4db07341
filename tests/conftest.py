"""Shared fixtures: one real embedded PostgreSQL (pgvector) for the session with a
migrated template database, a fresh database per test, a fake OpenAI server, and the
bot composed exactly as `aibot run` composes it."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from bot.core import pgembed
from bot.app import App
from bot.core.settings import Settings
from bot.core.db import Database
from tests.fakes.openai_server import FakeOpenAI, default_responder
from tests.harness import Harness

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
TEMPLATE = "aibot_template"


@pytest.fixture(scope="session", autouse=True)
def _private_user_dirs(tmp_path_factory):
    """The per-user data directory (platformdirs honours XDG_DATA_HOME) points into the
    session's temporary folder, for this process and every `aibot` it starts: a test
    never touches the real one, even when it leaves AIBOT_DATA_DIR unset."""
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


class PgCluster:
    """The session's embedded server; hands out throwaway databases cloned from a
    migrated template (a clone takes milliseconds, migrations run once)."""

    def __init__(self, server, template_url: str) -> None:
        self.server = server
        self.template_url = template_url

    def url(self, database: str) -> str:
        return self.template_url.replace(f"/{TEMPLATE}?", f"/{database}?")

    def create(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        out = self.server.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}";')
        assert "CREATE DATABASE" in out, out
        return name

    def drop(self, name: str) -> None:
        self.server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture(scope="session")
def pg(tmp_path_factory) -> PgCluster:
    server, url = pgembed.start(tmp_path_factory.mktemp("pg") / "data", database=TEMPLATE)

    async def migrate() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            await Database.from_engine(engine).upgrade()
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    yield PgCluster(server, url)
    pgembed.stop(server)


@pytest.fixture
def database_url(pg: PgCluster) -> str:
    name = pg.create()
    yield pg.url(name)
    pg.drop(name)


@pytest.fixture(scope="session")
def _fake_openai() -> FakeOpenAI:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_llm(_fake_openai: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, with an empty script and no recorded requests."""
    _fake_openai.reset()
    _fake_openai.ttft = 0.0
    _fake_openai.tokens_per_second = None
    _fake_openai.responder = default_responder  # a test that scripted its own never leaks it
    yield _fake_openai
    _fake_openai.reset()
    _fake_openai.responder = default_responder


@pytest.fixture
def settings(database_url: str, fake_llm: FakeOpenAI, tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        openai_base_url=fake_llm.base_url,
        openai_api_key="sk-test-not-a-real-key",
        data_dir=tmp_path / "data",
        llm_timeout=5,
        llm_max_retries=2,
    )


@pytest.fixture
def env(settings: Settings) -> dict:
    """Environment for running `aibot` as a subprocess against the same database and fake."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AIBOT_", "OPENAI_", "SLACK_", "DISCORD_"))}
    e.update(
        DATABASE_URL=settings.database_url,
        OPENAI_BASE_URL=settings.openai_base_url,
        OPENAI_API_KEY=settings.openai_api_key.get_secret_value(),
        AIBOT_DATA_DIR=str(settings.data_dir),
        AIBOT_LLM_TIMEOUT="5",
        AIBOT_LLM_MAX_RETRIES="2",
        HF_HUB_OFFLINE="1",
        USER="tester",
        LOGNAME="tester",
    )
    return e


@pytest.fixture
async def app(settings: Settings) -> App:
    async with await App.open(settings) as app:
        yield app


@pytest.fixture
async def bot(app: App) -> Harness:
    return Harness(app)


# --- agent pattern: the sample sales database --------------------------------------


@pytest.fixture(scope="session")
def sales_db(pg: PgCluster) -> str:
    """The agent's sample "sales" database and its read-only role, loaded once on the
    session's server (`aibot agent load-sample` does the same); returns an admin URL."""
    from patterns.agent.sample import load

    admin = pg.url("postgres")
    asyncio.run(load(admin))
    return admin
